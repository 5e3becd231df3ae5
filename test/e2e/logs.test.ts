/**
 * The bot's log format, from the real process (`node --import tsx src/index.ts`) against the
 * emulator: short readable lines when stderr is a terminal (run under `script`, which gives the
 * process a pseudo-terminal), JSON lines otherwise. The token shows in neither.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { ensureTinyModel } from '../support/testModels.js';

let emulator: DiscordEmulator | undefined;
let child: ChildProcess | undefined;
let folder: string | undefined;

afterEach(async () => {
  // The child leads its own process group (detached): end the group, the bot under `script` included.
  if (child?.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
  child = undefined;
  await emulator?.stop();
  emulator = undefined;
  if (folder) fs.rmSync(folder, { recursive: true, force: true });
});

/** Starts the bot on the tiny model; `terminal` runs it under `script` so its stderr is a terminal. Returns its output so far. */
async function startBot(terminal: boolean): Promise<() => string> {
  emulator = await DiscordEmulator.start();
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-logs-'));
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DISCORD_TOKEN: emulator.token,
    DISCORD_API_URL: emulator.apiUrl,
    MODEL: await ensureTinyModel(),
    CONTEXT_SIZE: '1024',
    HISTORY_MAX_TOKENS: '256',
    REPLY_MAX_TOKENS: '8',
    WARM_CHANNELS: '2',
    THREADS: '1',
    LOG_LEVEL: 'info',
    DATABASE_URL: `sqlite://${path.join(folder, 'history.sqlite')}`,
    ...NO_BACKGROUND_CALIBRATION,
  };
  const command = `${process.execPath} --import tsx src/index.ts`;
  child = terminal
    ? spawn('script', ['-qfec', command, '/dev/null'], { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await emulator.whenReady({ timeoutMs: 30_000 });
  const message = emulator.sendUserMessage({ content: 'hello logs' });
  await emulator.waitFor(() => output.includes('message answered') && output.includes(message.id), { timeoutMs: 30_000 });
  return () => output;
}

describe('log format', () => {
  it('writes short readable lines when stderr is a terminal', async () => {
    const output = await startBot(true);
    const lines = output().split(/\r?\n/).filter(Boolean);

    expect(lines.some((line) => /^\d\d:\d\d:\d\d INFO  bot is online {2}user=/.test(line))).toBe(true);
    expect(lines.some((line) => /^\d\d:\d\d:\d\d INFO  message answered {2}channelId=\d+ messageId=\d+ chars=10 label=\w+ replyChars=\d+ saved=true stopped=false$/.test(line))).toBe(true);
    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
    expect(output()).not.toContain(emulator!.token);
  });

  it('writes JSON lines when stderr is not a terminal', async () => {
    const output = await startBot(false);
    const lines = output().split('\n').filter(Boolean);

    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(lines.map((line) => JSON.parse(line) as { message: string }).some((entry) => entry.message === 'message answered')).toBe(true);
    expect(output()).not.toContain(emulator!.token);
  });
});
