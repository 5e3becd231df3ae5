import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { UserError } from '../../src/errors.js';
import { createLogger, maskCredentials } from '../../src/logger.js';

/** Runs parseConfig and returns the UserError it throws (fails the test if it does not throw one). */
function configError(env: Record<string, string | undefined>): UserError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('parseConfig accepted an invalid configuration');
}

describe('parseConfig', () => {
  it('fills every key with its default when the environment is empty', () => {
    const config = parseConfig({});

    expect(config).toEqual({
      DISCORD_TOKEN: undefined,
      DISCORD_API_URL: undefined,
      GUILD_ID: undefined,
      CHANNEL_IDS: [],
      MODEL: 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0',
      MODELS_DIR: 'data/models',
      DATABASE_URL: 'sqlite://data/history.sqlite',
      THREADS: os.availableParallelism(),
      CONTEXT_SIZE: 2048,
      HISTORY_MAX_TOKENS: 1280,
      REPLY_MAX_TOKENS: 256,
      WARM_CHANNELS: 8,
      PARALLEL_REPLIES: 4,
      QUEUE_MAX: 64,
      MESSAGE_MAX_CHARS: 2000,
      RATE_LIMIT_MESSAGES: 5,
      RATE_LIMIT_WINDOW_SECONDS: 10,
      SYSTEM_PROMPT: expect.stringContaining('empathetic assistant'),
      SENTIMENT_EMOJIS: { positive: '😄', neutral: '😐', negative: '😢' },
      SENTIMENT_CALIBRATION: 'learned',
      THINKING: 'off',
      CHAT_CHANNEL: 'terminal',
      LOG_LEVEL: 'info',
      SHARDS: 1,
      REPLY_MODE: 'all',
      ATTACHMENT_MAX_KB: 32,
      METRICS_PORT: undefined,
      METRICS_HOST: '127.0.0.1',
      MOOD_RETENTION_DAYS: 30,
      INFERENCE_TIMEOUT_MS: 120_000,
      INFERENCE_IDLE_TIMEOUT_MS: 60_000,
    });
  });

  it('takes THINKING as off, on (a 512-token thought) or a thought budget, and refuses anything else', () => {
    expect(parseConfig({ THINKING: 'off' }).THINKING).toBe('off');
    expect(parseConfig({ THINKING: 'on' }).THINKING).toBe(512);
    expect(parseConfig({ THINKING: '200' }).THINKING).toBe(200);
    expect(configError({ THINKING: 'maybe' }).message).toContain('THINKING: must be off, on, or a thought budget in tokens from 16 to 8192 (got "maybe")');
  });

  it('takes REPLY_MODE, ATTACHMENT_MAX_KB and the metrics keys, and refuses bad values with what to write instead', () => {
    expect(parseConfig({ REPLY_MODE: 'mentions', ATTACHMENT_MAX_KB: '0', METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' })).toMatchObject({
      REPLY_MODE: 'mentions',
      ATTACHMENT_MAX_KB: 0,
      METRICS_PORT: 9464,
      METRICS_HOST: '0.0.0.0',
    });
    const error = configError({ REPLY_MODE: 'sometimes', METRICS_PORT: '70000', ATTACHMENT_MAX_KB: '-1' });
    expect(error.message).toContain('REPLY_MODE: must be one of all, mentions, react (got "sometimes")');
    expect(error.message).toContain('METRICS_PORT: must be a whole number from 0 to 65535 (got "70000")');
    expect(error.message).toContain('ATTACHMENT_MAX_KB: must be a whole number from 0 to 1024 (got "-1")');
  });

  it('takes MOOD_RETENTION_DAYS from 1 to 3650 days and refuses 0', () => {
    expect(parseConfig({ MOOD_RETENTION_DAYS: '7' }).MOOD_RETENTION_DAYS).toBe(7);
    expect(configError({ MOOD_RETENTION_DAYS: '0' }).message).toContain('MOOD_RETENTION_DAYS: must be a whole number from 1 to 3650 (got "0")');
  });

  it('returns a frozen config, emojis included', () => {
    const config = parseConfig({});

    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.SENTIMENT_EMOJIS)).toBe(true);
  });

  it('turns numeric strings into numbers and keeps explicit values', () => {
    const config = parseConfig({
      DISCORD_TOKEN: 'abc.def.ghi',
      THREADS: '3',
      CONTEXT_SIZE: '4096',
      HISTORY_MAX_TOKENS: '1000',
      REPLY_MAX_TOKENS: '64',
      DATABASE_URL: 'sqlite:///var/lib/bot/h.sqlite',
      LOG_LEVEL: 'debug',
      CHAT_CHANNEL: 'desk',
    });

    expect(config.DISCORD_TOKEN).toBe('abc.def.ghi');
    expect(config.THREADS).toBe(3);
    expect(config.CONTEXT_SIZE).toBe(4096);
    expect(config.HISTORY_MAX_TOKENS).toBe(1000);
    expect(config.REPLY_MAX_TOKENS).toBe(64);
    expect(config.DATABASE_URL).toBe('sqlite:///var/lib/bot/h.sqlite');
    expect(config.LOG_LEVEL).toBe('debug');
    expect(config.CHAT_CHANNEL).toBe('desk');
  });

  it('treats empty and blank strings as unset, so the defaults apply', () => {
    const config = parseConfig({
      DISCORD_TOKEN: '',
      THREADS: '',
      CONTEXT_SIZE: '   ',
      DATABASE_URL: '',
      SENTIMENT_EMOJIS: ' ',
      CHANNEL_IDS: '',
      GUILD_ID: '',
      LOG_LEVEL: '',
    });

    expect(config.DISCORD_TOKEN).toBeUndefined();
    expect(config.THREADS).toBe(os.availableParallelism());
    expect(config.CONTEXT_SIZE).toBe(2048);
    expect(config.DATABASE_URL).toBe('sqlite://data/history.sqlite');
    expect(config.SENTIMENT_EMOJIS).toEqual({ positive: '😄', neutral: '😐', negative: '😢' });
    expect(config.CHANNEL_IDS).toEqual([]);
    expect(config.GUILD_ID).toBeUndefined();
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('learns the sentiment calibration unless told otherwise, reads an old `on` as learned, and refuses other words', () => {
    expect(parseConfig({ SENTIMENT_CALIBRATION: 'off' }).SENTIMENT_CALIBRATION).toBe('off');
    expect(parseConfig({ SENTIMENT_CALIBRATION: 'content-free' }).SENTIMENT_CALIBRATION).toBe('content-free');
    expect(parseConfig({ SENTIMENT_CALIBRATION: 'on' }).SENTIMENT_CALIBRATION).toBe('learned');
    expect(() => parseConfig({ SENTIMENT_CALIBRATION: 'yes' })).toThrow(/SENTIMENT_CALIBRATION: must be one of learned, content-free, off/);
  });

  it('parses CHANNEL_IDS as a trimmed comma-separated list, skipping empty entries', () => {
    const config = parseConfig({ CHANNEL_IDS: ' 123456789012345678, 223456789012345678 ,,' });

    expect(config.CHANNEL_IDS).toEqual(['123456789012345678', '223456789012345678']);
  });

  it('rejects CHANNEL_IDS with a non-numeric id', () => {
    const error = configError({ CHANNEL_IDS: '123456789012345678,general' });

    expect(error.message).toContain('CHANNEL_IDS: must be comma-separated numeric channel ids (got "123456789012345678,general")');
  });

  it('maps SENTIMENT_EMOJIS to positive, neutral and negative in that order, trimming spaces', () => {
    const config = parseConfig({ SENTIMENT_EMOJIS: '👍, 😶 ,👎' });

    expect(config.SENTIMENT_EMOJIS).toEqual({ positive: '👍', neutral: '😶', negative: '👎' });
  });

  it('reports every bad key in one UserError, each with how to fix it', () => {
    const error = configError({ THREADS: 'abc', CONTEXT_SIZE: '10', DATABASE_URL: 'mysql://x', SENTIMENT_EMOJIS: 'a,b' });

    expect(error.message).toMatch(/^Invalid configuration; fix these keys in \.env or the environment/);
    const lines = error.message.split('\n').slice(1);
    expect(lines).toHaveLength(4);
    expect(lines).toEqual(
      expect.arrayContaining([
        '  THREADS: must be a whole number from 1 to 256 (got "abc")',
        '  CONTEXT_SIZE: must be a whole number from 512 to 32768 (got "10")',
        '  DATABASE_URL: must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database (got "mysql://x")',
        '  SENTIMENT_EMOJIS: must be three comma-separated emojis: positive,neutral,negative (got "a,b")',
      ]),
    );
  });

  it('rejects fractional numbers and out-of-range values with the allowed range', () => {
    const error = configError({ QUEUE_MAX: '1.5', THREADS: '0', REPLY_MAX_TOKENS: '5000' });

    expect(error.message).toContain('QUEUE_MAX: must be a whole number from 1 to 100000 (got "1.5")');
    expect(error.message).toContain('THREADS: must be a whole number from 1 to 256 (got "0")');
    expect(error.message).toContain('REPLY_MAX_TOKENS: must be a whole number from 1 to 4096 (got "5000")');
  });

  it('names LOG_LEVEL, GUILD_ID and DISCORD_API_URL when they are malformed', () => {
    const error = configError({ LOG_LEVEL: 'loud', GUILD_ID: 'my-guild', DISCORD_API_URL: 'discord' });

    expect(error.message).toMatch(/ {2}LOG_LEVEL: .*debug.*silent.* \(got "loud"\)/);
    expect(error.message).toContain('GUILD_ID: must be a numeric Discord id (got "my-guild")');
    expect(error.message).toContain('DISCORD_API_URL: must be an http(s) URL such as https://discord.com/api (got "discord")');
  });

  it('refuses a THINKING budget that leaves the history less than 256 tokens of CONTEXT_SIZE, naming both settings', () => {
    // The thought is generated after the prompt, so it takes the history's room (README: "the history
    // gets that much less room"); below 256 tokens every prompt would hold (almost) no history at all.
    const tooLong = configError({ THINKING: '4096' });
    expect(tooLong.message).toContain(
      'THINKING: REPLY_MAX_TOKENS (256) + THINKING (4096) + 256 for the prompt + 256 for the history must fit in CONTEXT_SIZE (2048); lower THINKING or raise CONTEXT_SIZE',
    );
    expect(configError({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '512', THINKING: '1024' }).message).toMatch(/THINKING: .*THINKING \(1024\).*CONTEXT_SIZE \(1024\)/);
    expect(configError({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '512', THINKING: '257' }).message).toContain('THINKING (257)');

    expect(parseConfig({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '512', THINKING: '256' }).THINKING).toBe(256);
    expect(parseConfig({ THINKING: 'on' }).THINKING).toBe(512);
    expect(parseConfig({ THINKING: 'off', CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '512' }).THINKING).toBe('off');
  });

  it('never echoes the DISCORD_TOKEN value in an error', () => {
    const token = 'MTAxMjM0NTY3ODkwMTIzNDU2.Gabcde.secret-token-value';

    const schemaError = configError({ DISCORD_TOKEN: token, THREADS: 'abc', CHANNEL_IDS: 'x' });
    const budgetError = configError({ DISCORD_TOKEN: token, CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '1000' });

    for (const error of [schemaError, budgetError]) {
      expect(error.message).not.toContain(token);
      expect(error.message).not.toContain('secret-token-value');
    }
  });

  it('shows a bad DATABASE_URL without its user and password', () => {
    const error = configError({ DATABASE_URL: 'mysql://bot:s3cret-pw@db.example.com:3306/history' });

    expect(error.message).toContain('DATABASE_URL: must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database (got "mysql://***@db.example.com:3306/history")');
    expect(error.message).not.toContain('s3cret-pw');
    expect(error.message).not.toContain('bot:');
  });

  it('refuses a history and reply budget that does not fit in the context, naming the keys to change', () => {
    const error = configError({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '700', REPLY_MAX_TOKENS: '100' });

    expect(error.message).toContain(
      'HISTORY_MAX_TOKENS: HISTORY_MAX_TOKENS (700) + REPLY_MAX_TOKENS (100) + 256 for the prompt must fit in CONTEXT_SIZE (1024); lower them or raise CONTEXT_SIZE',
    );
  });

  it('accepts a budget that exactly fills the context', () => {
    const config = parseConfig({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '668', REPLY_MAX_TOKENS: '100' });

    expect(config.HISTORY_MAX_TOKENS + config.REPLY_MAX_TOKENS + 256).toBe(1024);
  });

  it('takes PARALLEL_REPLIES from 1 to 64, and refuses more than WARM_CHANNELS naming both keys', () => {
    expect(parseConfig({ PARALLEL_REPLIES: '1' }).PARALLEL_REPLIES).toBe(1);
    expect(parseConfig({ PARALLEL_REPLIES: '3', WARM_CHANNELS: '3' }).PARALLEL_REPLIES).toBe(3);
    // Unset, it is 4, or WARM_CHANNELS when fewer: a small WARM_CHANNELS alone never stops the start.
    expect(parseConfig({}).PARALLEL_REPLIES).toBe(4);
    expect(parseConfig({ WARM_CHANNELS: '2' }).PARALLEL_REPLIES).toBe(2);
    expect(configError({ PARALLEL_REPLIES: '0' }).message).toContain('  PARALLEL_REPLIES: must be a whole number from 1 to 64 (got "0")');
    expect(configError({ PARALLEL_REPLIES: 'two' }).message).toContain('  PARALLEL_REPLIES: must be a whole number from 1 to 64 (got "two")');

    const error = configError({ PARALLEL_REPLIES: '6', WARM_CHANNELS: '4' });

    expect(error.message).toContain(
      '  PARALLEL_REPLIES: PARALLEL_REPLIES (6) must be at most WARM_CHANNELS (4), since each running reply needs a warm channel\'s sequence; lower PARALLEL_REPLIES or raise WARM_CHANNELS',
    );
  });

  it('lists a context that is too small and too many parallel replies in one error', () => {
    const lines = configError({ CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '700', REPLY_MAX_TOKENS: '100', PARALLEL_REPLIES: '9' }).message.split('\n').slice(1);

    expect(lines.map((line) => line.trim().split(':')[0])).toEqual(['HISTORY_MAX_TOKENS', 'PARALLEL_REPLIES']);
  });

  it('takes SHARDS as auto or a count, and ignores it in a shard process (where discord.js sets it to the shard id)', () => {
    expect(parseConfig({ SHARDS: 'auto' }).SHARDS).toBe('auto');
    expect(parseConfig({ SHARDS: '4' }).SHARDS).toBe(4);
    expect(parseConfig({ SHARDS: '0', SHARDING_MANAGER: 'true' }).SHARDS).toBe(1);
    expect(configError({ SHARDS: 'many' }).message).toContain('  SHARDS: must be auto or a whole number from 1 to 4096 (got "many")');
    expect(configError({ SHARDS: '0' }).message).toContain('  SHARDS: must be a whole number from 1 to 4096 (got "0")');
  });
});

describe('maskCredentials', () => {
  it('hides user and password of every URL in a text, and leaves URLs without them alone', () => {
    expect(maskCredentials('got postgresql://user:secret@host/db and redis://:pw@cache:6379 then https://discord.com/api')).toBe(
      'got postgresql://***@host/db and redis://***@cache:6379 then https://discord.com/api',
    );
    expect(maskCredentials('sqlite://data/history.sqlite')).toBe('sqlite://data/history.sqlite');
    expect(maskCredentials('sqlite://admin:pw@/var/lib/h.sqlite')).toBe('sqlite://***@/var/lib/h.sqlite');
  });

  it('masks everything from :// to the last @ before the host, whatever the scheme and whatever the password holds', () => {
    expect(maskCredentials('postgresq://bot:Tr0ub4dor@3@db.internal:5432/h')).toBe('postgresq://***@db.internal:5432/h');
    expect(maskCredentials('mysql://bot:s3cr/et@db.internal/x')).toBe('mysql://***@db.internal/x');
    expect(maskCredentials('rediss://:pw?x#y@cache:6380 and mongodb+srv://u:p@ss@cluster0.example.net/db')).toBe('rediss://***@cache:6380 and mongodb+srv://***@cluster0.example.net/db');
    expect(maskCredentials('{"url":"amqp://guest:gu\\"est@mq/vhost","note":"a@b"}')).toBe('{"url":"amqp://***@mq/vhost","note":"a@b"}');
  });

  it('leaves an @ in the path of a URL without credentials alone', () => {
    expect(maskCredentials('GET https://discord.com/api/v10/users/@me failed')).toBe('GET https://discord.com/api/v10/users/@me failed');
  });

  it('is applied to every log line, error messages and stacks included', () => {
    const lines: string[] = [];
    const logger = createLogger('debug', (line) => lines.push(line));
    logger.error('store failed', { error: new Error('connect ECONNREFUSED postgresql://bot:s3cret-pw@db:5432/h'), url: 'mysql://root:hunter2@db/x' });

    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/s3cret-pw|hunter2/);
    const entry = JSON.parse(lines[0]!) as { url: string; error: { message: string } };
    expect(entry.url).toBe('mysql://***@db/x');
    expect(entry.error.message).toBe('connect ECONNREFUSED postgresql://***@db:5432/h');
  });
});
