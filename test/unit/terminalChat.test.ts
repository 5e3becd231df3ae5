// The terminal chat end to end: `src/chat.ts` as a child process with the tiny model, lines on
// stdin, then end of input.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { TERMINAL_CUT_MARKER } from '../../src/terminal/terminalChat.js';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import { tempDirs } from '../support/tempDir.js';
import { ensureTinyModel, TEST_THREADS } from '../support/testModels.js';

const CHAT_SCRIPT = fileURLToPath(new URL('../../src/chat.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const EMOJI = { positive: '😄', neutral: '😐', negative: '😢' } as const;
/** "😐 neutral (37%)": the emoji must be the one configured for the label. */
const SENTIMENT_LINE = /^(😄|😐|😢) (positive|neutral|negative) \((\d{1,3})%\)$/;
/** The same shape without capture groups, to find sentiment lines in a whole transcript. */
const SENTIMENT_SHAPE = '(?:😄|😐|😢) (?:positive|neutral|negative) \\(\\d{1,3}%\\)';

const dirs = tempDirs('terminal-chat-');
let modelPath: string;

beforeAll(async () => {
  modelPath = await ensureTinyModel();
});
afterAll(() => dirs.removeAll());

interface ChatRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The chat's environment: only the test decides the configuration (no developer .env, cwd is a temp folder). */
function chatEnv(cwd: string, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Only this test decides the configuration.
  for (const key of Object.keys(env)) if (/^(DISCORD_|GUILD_ID|CHANNEL_IDS|MODEL|DATABASE_URL|SYSTEM_PROMPT|CHAT_CHANNEL|SENTIMENT_EMOJIS|MESSAGE_MAX_CHARS|QUEUE_MAX|WARM_CHANNELS)/.test(key)) delete env[key];
  Object.assign(env, {
    MODEL: modelPath,
    THREADS: String(TEST_THREADS),
    DATABASE_URL: `sqlite://${join(cwd, 'h.sqlite')}`,
    REPLY_MAX_TOKENS: '8',
    CONTEXT_SIZE: '1024',
    HISTORY_MAX_TOKENS: '256',
    WARM_CHANNELS: '1',
    LOG_LEVEL: 'warn',
    CHAT_CHANNEL: 'terminal',
    SENTIMENT_EMOJIS: '😄,😐,😢',
    ...NO_BACKGROUND_CALIBRATION,
    ...overrides,
  });
  return env;
}

/** Runs the chat in `cwd` with the given input lines, then EOF. */
function runChat(cwd: string, inputLines: string[]): Promise<ChatRun> {
  const env = chatEnv(cwd);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, CHAT_SCRIPT], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(inputLines.map((line) => line + '\n').join(''));
  });
}

type Part = 'sentiment' | 'reply' | { line: string };

/**
 * Matches the whole of stdout against the expected parts, in order, and returns one string per
 * sentiment or reply part. A reply is read up to the next expected part, since the model may put
 * newlines in it.
 */
function transcript(stdout: string, parts: Part[]): string[] {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const source = parts
    .map((part) => (part === 'sentiment' ? `(${SENTIMENT_SHAPE})\\n` : part === 'reply' ? 'bot> ([\\s\\S]*?)\\n' : `${escape(part.line)}\\n`))
    .join('');
  const match = new RegExp(`^${source}$`, 'u').exec(stdout);
  expect(match, `stdout does not have the expected shape:\n${stdout}`).not.toBeNull();
  return match!.slice(1);
}

/** Checks a sentiment line ("😐 neutral (37%)", with the label's own emoji) and returns its label. */
function expectSentimentLine(line: string | undefined): string {
  const match = SENTIMENT_LINE.exec(line ?? '');
  expect(match, `not a sentiment line: ${JSON.stringify(line)}`).not.toBeNull();
  const [, emoji, label, percent] = match!;
  expect(emoji).toBe(EMOJI[label as keyof typeof EMOJI]);
  expect(Number(percent)).toBeGreaterThanOrEqual(33);
  expect(Number(percent)).toBeLessThanOrEqual(100);
  return label!;
}

/** What the terminal shows for a stored reply: the streamed text, or "(no reply)" for blank text. */
const shownReply = (reply: string) => reply || '(no reply)';

async function storedTurns(cwd: string) {
  const store = await KeyvHistoryStore.open({ url: `sqlite://${join(cwd, 'h.sqlite')}` });
  try {
    return await store.load('terminal');
  } finally {
    await store.dispose();
  }
}

describe('terminal chat (src/chat.ts)', () => {
  const userName = os.userInfo().username || 'you';
  let cwd: string;
  let firstRun: ChatRun;

  beforeAll(async () => {
    cwd = dirs.make();
    firstRun = await runChat(cwd, ['hello there', '', '/sentiment I love this', 'how are you?', '/nope']);
  });

  it('exits with code 0 at the end of input', () => {
    expect(firstRun.stderr).not.toMatch(/"level":"error"|Fatal error/);
    expect(firstRun.code).toBe(0);
  });

  it('prints the sentiment line before the reply for each message, and a label alone for /sentiment', async () => {
    const [sentiment1, reply1, sentimentCommand, sentiment2, reply2] = transcript(firstRun.stdout, [
      'sentiment', // hello there
      'reply',
      'sentiment', // /sentiment I love this: no reply follows
      'sentiment', // how are you?
      'reply',
      { line: 'Unknown command /nope. Type a message and press Enter. Commands: /sentiment <text>, /mood [days], /reset, /help, /quit (or Ctrl+C).' },
    ]);

    for (const line of [sentiment1, sentimentCommand, sentiment2]) expectSentimentLine(line);
    const turns = await storedTurns(cwd);
    expect([reply1!.trim(), reply2!.trim()]).toEqual(turns.map((turn) => shownReply(turn.reply!)));
  });

  it('persists each message and its reply, in order, in the SQLite file; /sentiment adds nothing', async () => {
    const turns = await storedTurns(cwd);

    expect(turns).toEqual([
      { userName, userText: 'hello there', reply: expect.any(String), at: expect.any(Number) },
      { userName, userText: 'how are you?', reply: expect.any(String), at: expect.any(Number) },
    ]);
    expect(turns[0]!.at).toBeLessThanOrEqual(turns[1]!.at);
  });

  it("answers /mood with the chat's shares in one line and writes the chart to a PNG whose path it prints; an empty log gets a sentence", async () => {
    const folder = dirs.make();
    const run = await runChat(folder, ['/mood', 'I love this', '/mood', '/mood 40', '/mood 2']);

    expect(run.code).toBe(0);
    const [empty, sentiment, , week, weekChart, tooLong, twoDays, twoDaysChart] = run.stdout.replace(/bot> [\s\S]*?\n(?=😄 |😐 |😢 )/, 'bot>\n').split('\n');
    expect(empty).toBe('No message in #terminal has a mood on record for the last 7 days, so there is nothing to chart yet.');
    const label = expectSentimentLine(sentiment);
    const shares = { positive: '😄 100% · 😐 0% · 😢 0%', neutral: '😄 0% · 😐 100% · 😢 0%', negative: '😄 0% · 😐 0% · 😢 100%' }[label as 'positive'];
    expect(week).toMatch(new RegExp(`^${shares} · 1 message in #terminal, last 7 days · busiest hour \\d{1,2} [A-Z][a-z]{2} \\d{2}:00 UTC \\(1\\)$`));
    expect(weekChart).toBe(`Chart: ${join(folder, 'data', 'mood', 'terminal-7d.png')}`);
    expect(tooLong).toBe('Pick from 1 to 30 days (got 40).');
    expect(twoDays).toMatch(/· 1 message in #terminal, last 48 hours ·/);
    expect(twoDaysChart).toBe(`Chart: ${join(folder, 'data', 'mood', 'terminal-48h.png')}`);
    const png = readFileSync(join(folder, 'data', 'mood', 'terminal-7d.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1200, 600]);
  });

  it('clears the history with /reset, keeps only what follows, and stops reading at /quit', async () => {
    const run = await runChat(cwd, ['/help', '/reset', 'after reset', '/quit', 'never read']);

    expect(run.code).toBe(0);
    const [sentiment, reply] = transcript(run.stdout, [
      { line: 'Type a message and press Enter. Commands: /sentiment <text>, /mood [days], /reset, /help, /quit (or Ctrl+C).' },
      { line: 'History cleared for this chat: the bot forgets the conversation. The mood log is kept (/mood still shows it).' },
      'sentiment',
      'reply',
    ]);
    expectSentimentLine(sentiment);
    const turns = await storedTurns(cwd);
    expect(turns).toEqual([{ userName, userText: 'after reset', reply: expect.any(String), at: expect.any(Number) }]);
    // As it said: the mood log still holds the messages from before the reset.
    const store = await KeyvHistoryStore.open({ url: `sqlite://${join(cwd, 'h.sqlite')}` });
    try {
      expect((await store.loadMood('terminal', 0)).length).toBeGreaterThanOrEqual(3);
    } finally {
      await store.dispose();
    }
    expect(reply!.trim()).toBe(shownReply(turns[0]!.reply!));
  });

  it('reports a bad configuration as a user error and exits 1', async () => {
    const dir = dirs.make();
    const run = await new Promise<ChatRun>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX_LOADER, CHAT_SCRIPT], {
        cwd: dir,
        env: { ...process.env, MODEL: modelPath, THREADS: 'abc', DATABASE_URL: 'mysql://user:secret@db/x' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: '', stderr }));
    });

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Error: Invalid configuration');
    expect(run.stderr).toContain('THREADS: must be a whole number from 1 to 256 (got "abc")');
    expect(run.stderr).toContain('DATABASE_URL: must be sqlite://<file>, redis://');
    expect(run.stderr).not.toContain('secret');
  });

  it('says so on Ctrl+C while it is still starting (here: a store that never answers), and exits 0', async () => {
    const dir = dirs.make();
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const env = chatEnv(dir, { DATABASE_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'info' });
      const child = spawn(process.execPath, ['--import', TSX_LOADER, CHAT_SCRIPT], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, by) => resolve({ code, signal: by })));
      const deadline = Date.now() + 30_000;
      while (!stderr.includes('"opening the history store"')) {
        if (Date.now() > deadline) throw new Error(`it never began opening the store:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill('SIGINT');
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(stderr).toContain('Stopped before the chat started (nothing was changed).');
    } finally {
      silent.close();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} mid-reply cuts the reply, marks it, keeps the turns answered before, and exits 0`, async () => {
      const dir = dirs.make();
      // Replies of 2000 tokens take the tiny model seconds: the second is caught mid-stream.
      const env = chatEnv(dir, { REPLY_MAX_TOKENS: '2000', CONTEXT_SIZE: '4096', HISTORY_MAX_TOKENS: '512', LOG_LEVEL: 'info' });
      const child = spawn(process.execPath, ['--import', TSX_LOADER, CHAT_SCRIPT], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, by) => resolve({ code, signal: by })));
      child.stdin.write('first message\nsecond message\n'); // stdin stays open, as in a terminal
      const deadline = Date.now() + 40_000;
      // The second reply is streaming: two sentiment lines, two "bot> ", and text after the second.
      while (!/bot> [\s\S]*\nbot> [\s\S]{40}/.test(stdout)) {
        if (Date.now() > deadline) throw new Error(`the second reply never started:\n${stdout}\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const signalled = Date.now();
      child.kill(signal);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(stdout.endsWith(TERMINAL_CUT_MARKER + '\n')).toBe(true);
      expect(stderr).toContain('"shutting down"');
      expect(stderr).toContain('Stopping: the reply in progress is cut; the turns answered so far are saved.');
      const store = await KeyvHistoryStore.open({ url: `sqlite://${join(dir, 'h.sqlite')}` });
      expect((await store.load('terminal')).map((turn) => turn.userText)).toEqual(['first message']);
      await store.dispose();
    }, 60_000);
  }
});
