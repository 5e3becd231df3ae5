/**
 * The bot and the terminal chat as child processes (`node --import tsx src/index.ts` / `src/chat.ts`),
 * on the tiny model, a temp SQLite file and the Discord emulator: startup errors are clear and
 * quick, SIGTERM mid-reply is clean, and a SIGKILL leaves a store the next start opens intact.
 * The token given to a process never shows in its output.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CUT_MARKER } from '../../src/discord/DiscordBot.js';
import { RESTART_NOTICE } from '../../src/discord/answerMessage.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { ensureTinyModel } from '../support/testModels.js';

/** A token-shaped secret for the runs that never reach Discord. */
const FAKE_TOKEN = 'MTk4NjIyNDgzNDcxOTI1MjQ4.Gh7Ykp.fake-token-never-to-be-printed-0123456789';

const folders: string[] = [];
let emulator: DiscordEmulator | undefined;
const children: ChildRun[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.code === undefined) child.process.kill('SIGKILL');
  await emulator?.stop();
  emulator = undefined;
});

afterAll(() => {
  for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
});

function tempFolder(): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-process-'));
  folders.push(folder);
  return folder;
}

interface ChildRun {
  process: ReturnType<typeof spawn>;
  stdout: () => string;
  stderr: () => string;
  /** Exit code, undefined while running, null when killed by a signal. */
  code: number | null | undefined;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts an entry point with exactly these settings: every key the program reads is set, so a
 * developer's .env never leaks in (values already in the environment win over .env).
 */
function run(entry: 'src/index.ts' | 'src/chat.ts', env: Record<string, string>, input?: string): ChildRun {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DISCORD_TOKEN: '',
      DISCORD_API_URL: '',
      GUILD_ID: '',
      CHANNEL_IDS: '',
      THREADS: '1',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MESSAGES: '0',
      REPLY_MODE: '',
      ATTACHMENT_MAX_KB: '',
      METRICS_PORT: '',
      METRICS_HOST: '',
      MOOD_RETENTION_DAYS: '',
      ...NO_BACKGROUND_CALIBRATION,
      ...env,
    },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  if (input !== undefined) child.stdin!.end(input);
  const result: ChildRun = {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    code: undefined,
    exited: new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        result.code = code;
        resolve({ code, signal });
      }),
    ),
  };
  children.push(result);
  return result;
}

/** Log lines (JSON on stderr) with this message. */
function logged(child: ChildRun, message: string): number {
  return child.stderr().split('\n').filter((line) => line.includes(`"message":"${message}"`)).length;
}

function expectNoToken(child: ChildRun, token: string): void {
  expect(child.stdout()).not.toContain(token);
  expect(child.stderr()).not.toContain(token);
}

async function botEnv(folder: string, overrides: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    DISCORD_TOKEN: emulator!.token,
    DISCORD_API_URL: emulator!.apiUrl,
    MODEL: await ensureTinyModel(),
    CONTEXT_SIZE: '1024',
    HISTORY_MAX_TOKENS: '256',
    REPLY_MAX_TOKENS: '24',
    WARM_CHANNELS: '2',
    DATABASE_URL: `sqlite://${path.join(folder, 'history.sqlite')}`,
    ...overrides,
  };
}

describe('startup errors', () => {
  it('exits non-zero naming the file when MODEL does not exist', async () => {
    const folder = tempFolder();
    const model = path.join(folder, 'no-such-model.gguf');
    emulator = await DiscordEmulator.start();
    const child = run('src/index.ts', { DISCORD_TOKEN: emulator.token, DISCORD_API_URL: emulator.apiUrl, MODEL: model, DATABASE_URL: `sqlite://${folder}/history.sqlite` });
    expect((await child.exited).code).not.toBe(0);
    expect(child.stderr()).toContain(`Model file not found: ${model}`);
    expectNoToken(child, emulator.token);
  });

  it('exits non-zero naming the file when MODEL is a text file (terminal chat)', async () => {
    const folder = tempFolder();
    const model = path.join(folder, 'notes.gguf');
    fs.writeFileSync(model, 'these are my notes, not a model\n');
    const child = run('src/chat.ts', { DISCORD_TOKEN: FAKE_TOKEN, MODEL: model, DATABASE_URL: `sqlite://${folder}/history.sqlite` }, '');
    expect((await child.exited).code).not.toBe(0);
    expect(child.stderr()).toContain(`Not a GGUF model file: ${model}`);
    expectNoToken(child, FAKE_TOKEN);
  });

  it('exits non-zero naming the file when MODEL is a truncated GGUF', async () => {
    const folder = tempFolder();
    const model = path.join(folder, 'truncated.gguf');
    const whole = fs.readFileSync(await ensureTinyModel());
    fs.writeFileSync(model, whole.subarray(0, Math.floor(whole.length / 2)));
    emulator = await DiscordEmulator.start();
    const child = run('src/index.ts', { DISCORD_TOKEN: emulator.token, DISCORD_API_URL: emulator.apiUrl, MODEL: model, DATABASE_URL: `sqlite://${folder}/history.sqlite` });
    expect((await child.exited).code).not.toBe(0);
    expect(child.stderr()).toMatch(new RegExp(`Cannot load the model ${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*truncated or corrupt`));
    expectNoToken(child, emulator.token);
  });

  it('exits non-zero without DISCORD_TOKEN, telling how to get one and that `npm run chat` works without', async () => {
    const folder = tempFolder();
    const child = run('src/index.ts', { MODEL: await ensureTinyModel(), DATABASE_URL: `sqlite://${folder}/history.sqlite` });
    expect((await child.exited).code).not.toBe(0);
    expect(child.stderr()).toContain('DISCORD_TOKEN is not set');
    expect(child.stderr()).toContain('https://discord.com/developers/applications');
    expect(child.stderr()).toContain('npm run chat');
  });

  it('a wrong token fails in seconds with the token message, before the store or the model is touched', async () => {
    const folder = tempFolder();
    emulator = await DiscordEmulator.start();
    const started = Date.now();
    // A model path that does not exist: had the model come first, its error would show instead.
    const child = run('src/index.ts', { DISCORD_TOKEN: FAKE_TOKEN, DISCORD_API_URL: emulator.apiUrl, MODEL: path.join(folder, 'not-downloaded.gguf'), DATABASE_URL: `sqlite://${folder}/history.sqlite` });
    expect((await child.exited).code).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(child.stderr()).toContain('Error: Discord refused DISCORD_TOKEN (401 Unauthorized)');
    expect(child.stderr()).toContain('https://discord.com/developers/applications');
    expect(child.stderr()).not.toMatch(/\w\.\.(\s|$)/);
    expect(child.stderr()).not.toContain('not-downloaded.gguf');
    expect(child.stderr()).not.toContain('    at ');
    expect(fs.existsSync(path.join(folder, 'history.sqlite'))).toBe(false);
    expect(emulator.requests.some((request) => request.path === '/users/@me' && request.status === 401)).toBe(true);
    expectNoToken(child, FAKE_TOKEN);
  });

  it('says it cannot reach Discord (not that the token is wrong) when nothing answers at the API address', async () => {
    const folder = tempFolder();
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const child = run('src/index.ts', { DISCORD_TOKEN: FAKE_TOKEN, DISCORD_API_URL: `http://127.0.0.1:${closed}/api`, MODEL: path.join(folder, 'not-downloaded.gguf'), DATABASE_URL: `sqlite://${folder}/history.sqlite` });
    expect((await child.exited).code).toBe(1);
    expect(child.stderr()).toContain(`Error: Cannot reach Discord at http://127.0.0.1:${closed}/api (ECONNREFUSED), so DISCORD_TOKEN could not be checked. Check the network connection and DISCORD_API_URL, then start again.`);
    expect(child.stderr()).not.toContain('refused DISCORD_TOKEN');
    expectNoToken(child, FAKE_TOKEN);
  });

  it.each([
    ['history.db', 'DATABASE_URL: must be sqlite://<file>, redis://[:password@]host[:port] or postgresql://user:password@host[:port]/database'],
    ['sqlite://README.md/x.sqlite', 'Cannot use the history database README.md/x.sqlite: the folder'],
  ])('DATABASE_URL=%s: one line saying what is wrong and how to fix it, before the model', async (url, expected) => {
    const folder = tempFolder();
    emulator = await DiscordEmulator.start();
    const child = run('src/chat.ts', { MODEL: path.join(folder, 'not-downloaded.gguf'), DATABASE_URL: url }, '');
    expect((await child.exited).code).toBe(1);
    expect(child.stderr()).toContain(expected);
    expect(child.stderr()).not.toContain('Fatal error');
    expect(child.stderr()).not.toContain('    at ');
    expect(child.stderr()).not.toContain('***');
    expect(child.stderr()).not.toContain('not-downloaded.gguf');
  });

  it('the terminal chat answers piped input without any DISCORD_TOKEN', async () => {
    const folder = tempFolder();
    const child = run(
      'src/chat.ts',
      { MODEL: await ensureTinyModel(), CONTEXT_SIZE: '1024', HISTORY_MAX_TOKENS: '256', REPLY_MAX_TOKENS: '16', DATABASE_URL: `sqlite://${folder}/history.sqlite` },
      'hello from a pipe\n/quit\n',
    );
    expect((await child.exited).code).toBe(0);
    expect(child.stdout()).toMatch(/^(😄|😐|😢) (positive|neutral|negative) \(\d+%\)$/m);
    expect(child.stdout()).toContain('bot> ');
    const store = await KeyvHistoryStore.open({ url: `sqlite://${folder}/history.sqlite` });
    expect((await store.load('terminal')).map((turn) => turn.userText)).toEqual(['hello from a pipe']);
    await store.dispose();
  });
});

describe('signals', () => {
  it('on SIGTERM mid-reply marks the reply as cut, tells each waiting message once to be sent again, records no half turn, and exits 0 within 10 s', async () => {
    emulator = await DiscordEmulator.start();
    const emu = emulator;
    const folder = tempFolder();
    const databaseUrl = `sqlite://${path.join(folder, 'history.sqlite')}`;
    const channelId = emu.defaultChannelId;
    // An earlier, whole turn: it must come through the shutdown untouched.
    const seeded = await KeyvHistoryStore.open({ url: databaseUrl });
    const earlier = { userName: 'alice', userText: 'an earlier message', reply: 'an earlier reply', at: 1 };
    await seeded.append(channelId, earlier);
    await seeded.dispose();

    // A reply of up to 3000 tokens takes the tiny model seconds: long enough to be caught mid-stream.
    const child = run('src/index.ts', await botEnv(folder, { CONTEXT_SIZE: '4096', HISTORY_MAX_TOKENS: '512', REPLY_MAX_TOKENS: '3000' }));
    await emu.whenReady({ timeoutMs: 30_000 });
    const message = emu.sendUserMessage({ channelId, content: 'tell me everything you know' });
    await emu.waitFor(() => emu.botMessages(channelId).some((reply) => reply.replyTo === message.id), { timeoutMs: 30_000 });
    expect(logged(child, 'message answered')).toBe(0); // really mid-stream
    const waiting = ['and one more thing', 'are you there?'].map((content) => emu.sendUserMessage({ channelId, content }));
    await emu.waitFor(() => waiting.every((m) => emu.reactions(channelId, m.id).some((reaction) => reaction.emoji === '⏳')), { timeoutMs: 30_000 });

    const signalled = Date.now();
    child.process.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(logged(child, 'reply aborted by shutdown')).toBe(1);
    expect(logged(child, 'stopped')).toBe(1);

    const shown = emu.botMessages(channelId).filter((reply) => reply.replyTo === message.id && !reply.deleted);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.at(-1)!.content.endsWith(CUT_MARKER.trim())).toBe(true);
    for (const m of waiting) {
      expect(emu.botMessages(channelId).filter((reply) => reply.replyTo === m.id).map((reply) => reply.content)).toEqual([RESTART_NOTICE]);
      expect(emu.reactions(channelId, m.id).filter((reaction) => reaction.emoji === '⏳' && !reaction.removed)).toEqual([]);
    }

    const store = await KeyvHistoryStore.open({ url: databaseUrl });
    expect(await store.load(channelId)).toEqual([earlier]);
    await store.dispose();
    expectNoToken(child, emu.token);
  }, 90_000);

  it('after SIGKILL, a restart on the same SQLite file opens the store with the earlier turns intact', async () => {
    emulator = await DiscordEmulator.start();
    const emu = emulator;
    const folder = tempFolder();
    const channelId = emu.defaultChannelId;
    const env = await botEnv(folder);

    const first = run('src/index.ts', env);
    await emu.whenReady({ timeoutMs: 30_000 });
    for (const content of ['first message', 'second message']) {
      emu.sendUserMessage({ channelId, content });
      const answered = logged(first, 'message answered') + 1;
      await emu.waitFor(() => logged(first, 'message answered') === answered, { timeoutMs: 30_000 });
    }
    first.process.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(folder, 'history.sqlite-wal'))).toBe(true); // killed with the write-ahead log open

    const identified = emu.identifyCount;
    const second = run('src/index.ts', env);
    await emu.waitFor(() => logged(second, 'bot is online') === 1 && emu.identifyCount > identified, { timeoutMs: 30_000 });
    await emu.whenReady();
    emu.sendUserMessage({ channelId, content: 'third message' });
    await emu.waitFor(() => logged(second, 'message answered') === 1, { timeoutMs: 30_000 });
    second.process.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    const store = await KeyvHistoryStore.open({ url: env.DATABASE_URL! });
    expect((await store.load(channelId)).map((turn) => turn.userText)).toEqual(['first message', 'second message', 'third message']);
    await store.dispose();
    expectNoToken(first, emu.token);
    expectNoToken(second, emu.token);
  }, 90_000);
});

describe('the sentiment calibration of a new model', () => {
  // The other tests here start with it off (NO_BACKGROUND_CALIBRATION): this one is the real start's path.
  it('is learned in the background while the bot already answers, saved under MODELS_DIR, and read from there at the next start', async () => {
    emulator = await DiscordEmulator.start();
    const emu = emulator;
    const folder = tempFolder();
    const channelId = emu.defaultChannelId;
    const env = await botEnv(folder, { SENTIMENT_CALIBRATION: 'learned', MODELS_DIR: path.join(folder, 'models') });

    const first = run('src/index.ts', env);
    await emu.whenReady({ timeoutMs: 30_000 });
    expect(logged(first, 'answering now with the raw sentiment probabilities; learning the calibration for this model in the background')).toBe(1);
    const message = emu.sendUserMessage({ channelId, content: 'hello there' });
    await emu.waitFor(() => logged(first, 'message answered') === 1, { timeoutMs: 30_000 });
    expect(emu.reactions(channelId, message.id).length).toBeGreaterThan(0);
    // Answered before the fit was done (300 texts take the tiny model seconds; a message, a fraction of one).
    expect(logged(first, 'sentiment calibration learned; in use from now on')).toBe(0);
    await emu.waitFor(() => logged(first, 'sentiment calibration learned; in use from now on') === 1, { timeoutMs: 120_000 });
    const fits = fs.readdirSync(path.join(folder, 'models', 'calibration'));
    expect(fits.filter((name) => name.endsWith('.json'))).toHaveLength(1);
    first.process.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = run('src/index.ts', env);
    await emu.waitFor(() => logged(second, 'bot is online') === 1, { timeoutMs: 30_000 });
    expect(second.stderr()).toContain('"sentimentCalibration":"learned"');
    expect(logged(second, 'answering now with the raw sentiment probabilities; learning the calibration for this model in the background')).toBe(0);
    second.process.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(fs.readdirSync(path.join(folder, 'models', 'calibration'))).toEqual(fits);
  }, 180_000);
});
