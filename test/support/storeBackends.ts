import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { tempDirs } from './tempDir.js';

/** A backend the store contract runs against; `url` is undefined when its server is not there. */
export interface BackendUnderTest {
  name: string;
  /** A fresh, empty store location: a new SQLite file, or the shared test server (tests use fresh channel ids). */
  url: (() => string) | undefined;
  /** Why it is skipped, in one line. */
  missing: string;
}

const dirs = tempDirs('store-contract-');

/** SQLite always; Redis and PostgreSQL when TEST_REDIS_URL / TEST_POSTGRES_URL name a running server (.ci/test-servers.sh). */
export function storeBackends(): BackendUnderTest[] {
  const redis = process.env.TEST_REDIS_URL;
  const postgres = process.env.TEST_POSTGRES_URL;
  const how = 'start one with `source .ci/test-servers.sh && start_test_servers`';
  return [
    { name: 'SQLite', url: () => `sqlite://${join(dirs.make(), 'h.sqlite')}`, missing: '' },
    { name: 'Redis', url: redis ? () => redis : undefined, missing: `TEST_REDIS_URL is not set; ${how}` },
    { name: 'PostgreSQL', url: postgres ? () => postgres : undefined, missing: `TEST_POSTGRES_URL is not set; ${how}` },
  ];
}

export const removeStoreDirs = () => dirs.removeAll();

/** A channel id no earlier run on a shared server has used. */
export const freshChannel = (name: string) => `${name}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Runs `count` appends to one channel in a child process that starts when told to (stdin), as a second bot would:
 * history turns, or (`mood`) sentiment records stamped now whose confidence is the digits of `name` / 10 (p1: 0.1).
 */
export function appenderProcess(url: string, channelId: string, name: string, count: number, what: 'turns' | 'mood' = 'turns') {
  const storeModule = resolve('src/history/KeyvHistoryStore.ts');
  const code = `
    const { KeyvHistoryStore } = await import(${JSON.stringify(storeModule)});
    const store = await KeyvHistoryStore.open({ url: ${JSON.stringify(url)}, busyTimeoutMs: 20000 });
    process.stdout.write('ready\\n');
    process.stdin.once('data', async () => {
      for (let i = 0; i < ${count}; i++) {
        ${
          what === 'mood'
            ? `await store.appendMood(${JSON.stringify(channelId)}, { at: Date.now(), label: 'neutral', confidence: ${JSON.stringify(Number(name.replace(/\D/g, '')) / 10)} });`
            : `await store.append(${JSON.stringify(channelId)}, { userName: '${name}', userText: '${name}-' + i, reply: 'r', at: i });`
        }
        process.stdout.write('.');
        // A pause between messages, as a bot has: without it SQLite's sleeping busy handler can starve the other process.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await store.dispose();
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let appended = 0;
  child.stdout.on('data', (chunk: Buffer) => (appended += chunk.toString().split('.').length - 1));
  return { ready, exited, go: () => child.stdin.write('go\n'), kill: () => child.kill('SIGKILL'), appended: () => appended };
}
