/**
 * `npm start` with SHARDS=2 as a real process tree (ShardingManager + two shard processes, each
 * with the tiny model on 1 thread) against the emulator with two shards and two guilds, history in
 * Redis: each message is answered once, by the shard that owns its guild; a shard SIGKILLed
 * mid-reply is started again and answers with its history intact while the other kept answering;
 * SIGTERM stops the whole tree within 10 s. SHARDS=auto asks the gateway; a shard that cannot start
 * fails the start.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { ensureTinyModel } from '../support/testModels.js';

const redisUrl = process.env.TEST_REDIS_URL;

interface LogLine {
  message: string;
  shard?: number | 'manager';
  pid?: number;
  messageId?: string;
  signal?: string;
}

describe('npm start with SHARDS=auto', () => {
  it('asks the gateway for the shard count, and fails the start (exit 1, within seconds) when a shard cannot open its store', async () => {
    const emu = await DiscordEmulator.start({ shards: 2 });
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SHARDS: 'auto', DISCORD_TOKEN: emu.token, DISCORD_API_URL: emu.apiUrl, DATABASE_URL: 'redis://:hunter2-pw@127.0.0.1:1', MODEL: await ensureTinyModel(), THREADS: '1', LOG_LEVEL: 'info', ...NO_BACKGROUND_CALIBRATION },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    await emu.stop();

    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(output).toContain('"message":"starting shards","shard":"manager","shards":2');
    expect(output).toContain('Error: Cannot use the history database on redis server 127.0.0.1:1: connect ECONNREFUSED');
    expect(output).toContain("Error: A shard did not start (Shard 0's process exited before its Client became ready); its own error is above. Every shard was stopped.");
    expect(output).not.toContain('hunter2-pw');
  }, 60_000);
});

describe('npm start with SHARDS=2 and an hf: model', () => {
  it('fetches the model once, in the manager, before any shard starts: a download that fails is told once and starts no shard', async () => {
    const emu = await DiscordEmulator.start({ shards: 2 });
    const models = mkdtempSync(join(tmpdir(), 'shards-hf-'));
    // No route to Hugging Face here (and no such repository): the download fails after its stall timeout.
    const uri = 'hf:no-such-user-0000/no-such-model-GGUF/model-q8_0.gguf';
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SHARDS: '2', DISCORD_TOKEN: emu.token, DISCORD_API_URL: emu.apiUrl, DATABASE_URL: `sqlite://${join(models, 'h.sqlite')}`, MODEL: uri, MODELS_DIR: models, THREADS: '1', LOG_LEVEL: 'info', ...NO_BACKGROUND_CALIBRATION },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    await emu.stop();
    rmSync(models, { recursive: true, force: true });

    expect(code).toBe(1);
    expect(output).toContain('"message":"downloading the model once for every shard","shard":"manager"');
    expect(output.split(`Could not download the model ${uri}`)).toHaveLength(2);
    expect(output).not.toContain('"message":"shard started"');
  }, 90_000);
});

if (!redisUrl) {
  it.skip('two shards through the emulator: skipped, TEST_REDIS_URL is not set (start Redis with .ci/test-servers.sh)', () => {});
} else {
  describe('npm start with SHARDS=2', () => {
    let emu: DiscordEmulator;
    let manager: ReturnType<typeof spawn>;
    let stderr = '';
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    /** Guild, and its first channel, of shard 0 and of shard 1. */
    const channelOfShard: string[] = [];
    const run = `${process.pid}-${Date.now()}`;

    const lines = (): LogLine[] =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogLine);
    const answeredBy = (messageId: string) => lines().filter((l) => l.message === 'message answered' && l.messageId === messageId).map((l) => l.shard);
    const shardPid = (shard: number) => lines().filter((l) => l.message === 'shard started' && l.shard === shard).at(-1)?.pid;
    const ask = async (shard: number, content: string) => {
      const message = emu.sendUserMessage({ channelId: channelOfShard[shard]!, content: `${content} ${run}` });
      await emu.waitFor(() => answeredBy(message.id).length > 0, { timeoutMs: 60_000, description: `an answer on shard ${shard}` });
      return message;
    };

    beforeAll(async () => {
      emu = await DiscordEmulator.start({ shards: 2 });
      const second = emu.addGuild('Second Guild', ['lobby'], 1 - emu.shardOf(emu.guildId));
      channelOfShard[emu.shardOf(emu.guildId)] = emu.defaultChannelId;
      channelOfShard[emu.shardOf(second.guildId)] = second.channelIds[0]!;
      manager = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          SHARDS: '2',
          DISCORD_TOKEN: emu.token,
          DISCORD_API_URL: emu.apiUrl,
          DATABASE_URL: redisUrl,
          MODEL: await ensureTinyModel(),
          THREADS: '1',
          CONTEXT_SIZE: '2048',
          HISTORY_MAX_TOKENS: '256',
          // Long enough that a reply is still streaming when the test kills its shard.
          REPLY_MAX_TOKENS: '1500',
          RATE_LIMIT_MESSAGES: '0',
          LOG_LEVEL: 'info',
          ...NO_BACKGROUND_CALIBRATION,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      manager.stdout!.on('data', (chunk) => (stderr += chunk));
      manager.stderr!.on('data', (chunk) => (stderr += chunk));
      exited = new Promise((resolve) => manager.once('exit', (code, signal) => resolve({ code, signal })));
      await emu.waitFor(() => lines().some((l) => l.message === 'all shards ready'), { timeoutMs: 100_000, description: 'both shards ready' });
    }, 120_000);

    afterAll(async () => {
      if (manager.exitCode === null && manager.signalCode === null) {
        manager.kill('SIGKILL');
        for (const shard of [0, 1]) {
          const pid = shardPid(shard);
          if (pid) process.kill(pid, 'SIGKILL');
        }
      }
      await emu?.stop();
    });

    it('answers each message once, from the shard that owns its guild, one gateway session per shard', async () => {
      expect(emu.connectedShards()).toEqual([0, 1]);

      const first = await ask(0, 'hello shard zero');
      const second = await ask(1, 'hello shard one');
      await new Promise((resolve) => setTimeout(resolve, 500));

      expect(answeredBy(first.id)).toEqual([0]);
      expect(answeredBy(second.id)).toEqual([1]);
      for (const message of [first, second]) expect(emu.botMessages(message.channel_id).filter((m) => m.replyTo === message.id).length).toBeGreaterThan(0);
      // Every shard process logs with its shard id.
      expect(new Set(lines().map((l) => l.shard))).toEqual(new Set(['manager', 0, 1]));
    }, 120_000);

    it('starts a shard SIGKILLed mid-reply again: it answers the next message with its history intact, and the other shard never stopped', async () => {
      const store = await KeyvHistoryStore.open({ url: redisUrl });
      const before = await store.load(channelOfShard[1]!);
      expect(before.length).toBeGreaterThan(0);
      const victim = shardPid(1)!;
      const cut = emu.sendUserMessage({ channelId: channelOfShard[1]!, content: `tell me a long story ${run}` });
      await emu.waitFor(() => emu.botMessages(channelOfShard[1]).some((m) => m.replyTo === cut.id), { timeoutMs: 60_000, description: 'the reply streaming' });
      expect(answeredBy(cut.id)).toEqual([]); // really mid-reply

      const killedAt = Date.now();
      process.kill(victim, 'SIGKILL');
      const duringRestart = await ask(0, 'are you still there, shard zero?');
      await emu.waitFor(() => shardPid(1) !== victim && lines().filter((l) => l.message === 'shard ready' && l.shard === 1).length === 2, {
        timeoutMs: 60_000,
        description: 'shard 1 ready again',
      });
      const readyAgainMs = Date.now() - killedAt;
      const next = await ask(1, 'and now, shard one?');
      const answeringAgainMs = Date.now() - killedAt;
      console.log(`shard 1 SIGKILLed: ready again after ${readyAgainMs} ms, answering again after ${answeringAgainMs} ms`);

      expect(answeredBy(duringRestart.id)).toEqual([0]);
      expect(answeredBy(next.id)).toEqual([1]);
      expect(answeredBy(cut.id)).toEqual([]);
      expect(lines().filter((l) => l.message === 'shard died; starting it again').map((l) => [l.shard, l.signal])).toEqual([[1, 'SIGKILL']]);
      const after = await store.load(channelOfShard[1]!);
      // The killed reply left no half turn; the turns before it and the new one are there.
      expect(after.slice(0, before.length)).toEqual(before);
      expect(after.slice(before.length).map((turn) => turn.userText)).toEqual([`and now, shard one? ${run}`]);
      await store.dispose();
    }, 180_000);

    it('stops every shard and itself within 10 s on SIGTERM', async () => {
      const pids = [shardPid(0)!, shardPid(1)!];
      const signalled = Date.now();
      manager.kill('SIGTERM');

      expect(await exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(lines().filter((l) => l.message === 'stopped').map((l) => l.shard).sort()).toEqual([0, 1, 'manager']);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    }, 30_000);
  });
}
