import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';

/** What opening a store at `url` fails with, and how long it took. */
async function openFailure(url: string): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  const store = await KeyvHistoryStore.open({ url, connectTimeoutMs: 3000 }).catch((error: Error) => error);
  if (!(store instanceof Error)) {
    await store.dispose();
    throw new Error(`expected ${url} to be refused`);
  }
  return { error: store, ms: performance.now() - started };
}

/** The URL with its password (and database) replaced. */
function withPassword(url: string, password: string, database?: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  if (database !== undefined) parsed.pathname = `/${database}`;
  return parsed.toString();
}

describe('the history store start-up probe', () => {
  it.each([
    ['redis://:no-server-pw@127.0.0.1:1', 'redis server 127.0.0.1:1', 'no-server-pw'],
    ['postgresql://bot:no-server-pw@127.0.0.1:1/history', 'postgresql server 127.0.0.1:1', 'no-server-pw'],
  ])('refuses %s (nothing listens) within seconds, naming the host and never the password', async (url, host, password) => {
    const { error, ms } = await openFailure(url);

    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`Cannot use the history database on ${host}: connect ECONNREFUSED`);
    expect(error.message).not.toContain(password);
    expect(ms).toBeLessThan(5000);
  });

  const redis = process.env.TEST_REDIS_URL;
  const postgres = process.env.TEST_POSTGRES_URL;
  const servers: Array<[string, string | undefined, Array<[string, () => string, RegExp]>]> = [
    ['Redis', redis, [
      ['a refused password', () => withPassword(redis!, 'wrong-pw-1'), /WRONGPASS/],
      ['a missing database', () => withPassword(redis!, new URL(redis!).password, '99'), /DB index is out of range/],
    ]],
    ['PostgreSQL', postgres, [
      ['a refused password', () => withPassword(postgres!, 'wrong-pw-1'), /password authentication failed for user "moodbot"/],
      ['a missing database', () => withPassword(postgres!, new URL(postgres!).password, 'no_such_db'), /database "no_such_db" does not exist/],
    ]],
  ];
  for (const [name, server, cases] of servers) {
    if (!server) {
      it.skip(`${name}: refused password and missing database skipped, its test server is not set (see .ci/test-servers.sh)`, () => {});
      continue;
    }
    for (const [what, url, reason] of cases) {
      it(`refuses ${what} on ${name} within seconds, naming the host and never the password`, async () => {
        const { error, ms } = await openFailure(url());

        expect(error).toBeInstanceOf(UserError);
        expect(error.message).toContain(`Cannot use the history database on ${new URL(server).protocol.slice(0, -1)} server ${new URL(server).host}: `);
        expect(error.message).toMatch(reason);
        expect(error.message).not.toContain(new URL(url()).password);
        expect(ms).toBeLessThan(5000);
      });
    }
  }

  it('stops `npm run chat` with exit 1 and one line naming the host, not the password', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/chat.ts'], {
      env: { ...process.env, DATABASE_URL: 'postgresql://bot:hunter2-pw@127.0.0.1:1/history', MODEL: 'package.json', LOG_LEVEL: 'silent' },
      input: '',
      encoding: 'utf8',
      timeout: 30_000,
    });

    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'Error: Cannot use the history database on postgresql server 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1. Check DATABASE_URL.',
    );
  });
});
