import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger, maskCredentials, prettyLine } from '../../src/logger.js';

describe('logger', () => {
  it('writes one JSON object per line by default when given a writer, with the base fields and errors spelled out', () => {
    const lines: string[] = [];
    const logger = createLogger('info', (line) => lines.push(line), { shard: 0 });
    logger.debug('not shown');
    logger.warn('queue full; message refused', { channelId: '123', pending: 64 });

    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ time: expect.any(String), level: 'warn', message: 'queue full; message refused', shard: 0, channelId: '123', pending: 64 });
  });

  it('writes short readable lines in the pretty format: time, level, message, key=value, an error and its stack indented below', () => {
    const lines: string[] = [];
    const logger = createLogger('debug', (line) => lines.push(line), {}, 'pretty');
    const error = new TypeError('x is undefined');
    error.stack = 'TypeError: x is undefined\n    at answer (src/a.ts:1:1)';
    logger.info('message answered', { channelId: '123', label: 'positive', saved: true, note: 'two words' });
    logger.error('reply failed', { channelId: '9', error });

    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d INFO  message answered {2}channelId=123 label=positive saved=true note="two words"$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d ERROR reply failed {2}channelId=9 error="TypeError: x is undefined"\n {4}at answer \(src\/a\.ts:1:1\)$/);
  });

  it('masks URL credentials in both formats, in fields and in error messages', () => {
    for (const format of ['json', 'pretty'] as const) {
      const lines: string[] = [];
      const logger = createLogger('info', (line) => lines.push(line), {}, format);
      logger.error('store failed', { url: 'postgresql://bot:s3cret@db/history', error: new Error('connect redis://:hunter2@cache:6379 refused') });
      expect(lines.join('\n')).not.toMatch(/s3cret|hunter2/);
      expect(lines.join('\n')).toContain('postgresql://***@db/history');
    }
  });

  it("keeps the help text's example URLs whole while masking the real credentials next to them", () => {
    const help = 'must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database';
    expect(maskCredentials(help)).toBe(help);
    expect(maskCredentials(`${help} (got "redis://:hunter2@cache:6379")`)).toBe(`${help} (got "redis://***@cache:6379")`);
    let message = '';
    try {
      parseConfig({ DATABASE_URL: 'history.db' });
    } catch (error) {
      message = maskCredentials((error as Error).message);
    }
    expect(message).toContain('DATABASE_URL: must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database');
  });

  it('leaves a line without fields bare', () => {
    expect(prettyLine({ time: '2026-12-02T12:04:31.000Z', level: 'info', message: 'stopped' })).toBe('12:04:31 INFO  stopped');
  });
});
