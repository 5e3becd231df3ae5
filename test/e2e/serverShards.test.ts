/**
 * `npm start` with SHARDS=2 and INFERENCE_URL: a ShardingManager and two shard processes against the emulator with
 * two shards and two guilds, both on ONE real llama-server (SmolLM2-135M, 1 thread), MODEL pointing at a file that
 * does not exist (so no process loads weights). Each shard answers the messages of its own guild, with a reaction.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBotProcess, type BotProcess } from '../support/botProcess.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { HOW_TO_GET_LLAMA_SERVER, llamaServerAvailable, startLlamaServer, type RunningLlamaServer } from '../support/llamaServer.js';
import { HOW_TO_GET_A_REAL_MODEL, REAL_MODEL_PATH } from '../support/realModel.js';
import { tempDirs } from '../support/tempDir.js';

const ready = llamaServerAvailable() && existsSync(REAL_MODEL_PATH);
if (!ready) console.warn(existsSync(REAL_MODEL_PATH) ? HOW_TO_GET_LLAMA_SERVER : HOW_TO_GET_A_REAL_MODEL);

describe.skipIf(!ready)('two shards on one llama-server', () => {
  const dirs = tempDirs('bot-server-shards-');
  let server: RunningLlamaServer;
  let emu: DiscordEmulator;
  let bot: BotProcess;
  /** The first channel of shard 0's guild and of shard 1's. */
  const channelOfShard: string[] = [];

  beforeAll(async () => {
    server = await startLlamaServer({ modelPath: REAL_MODEL_PATH, parallel: 3, contextSize: 3 * 1024, threads: 1 });
    emu = await DiscordEmulator.start({ shards: 2 });
    const second = emu.addGuild('Second Guild', ['lobby'], 1 - emu.shardOf(emu.guildId));
    channelOfShard[emu.shardOf(emu.guildId)] = emu.defaultChannelId;
    channelOfShard[emu.shardOf(second.guildId)] = second.channelIds[0]!;
    const folder = dirs.make();
    bot = startBotProcess({
      SHARDS: '2',
      DISCORD_TOKEN: emu.token,
      DISCORD_API_URL: emu.apiUrl,
      INFERENCE_URL: server.url,
      INFERENCE_PARALLEL: '2',
      MODEL: path.join(folder, 'no-such-model.gguf'),
      MODELS_DIR: path.join(folder, 'models'),
      DATABASE_URL: process.env.TEST_REDIS_URL ?? `sqlite://${path.join(folder, 'history.sqlite')}`,
      SENTIMENT_CALIBRATION: 'off',
      HISTORY_MAX_TOKENS: '256',
      REPLY_MAX_TOKENS: '32',
    });
    await emu.waitFor(() => bot.lines().some((line) => line.message === 'all shards ready') || bot.child.exitCode !== null, {
      timeoutMs: 120_000,
      description: 'both shards ready',
    });
    expect(bot.child.exitCode, bot.output().slice(-3000)).toBeNull();
  }, 180_000);

  afterAll(async () => {
    await bot?.stop();
    await emu?.stop();
    await server?.stop();
    dirs.removeAll();
  });

  it('answers on both shards, each message once and from the shard owning its guild, with no model file anywhere', async () => {
    const run = `${process.pid}-${Date.now()}`;
    const messages = [0, 1].map((shard) => emu.sendUserMessage({ channelId: channelOfShard[shard]!, content: `Hello from shard ${shard}'s guild! ${run}` }));
    for (const message of messages) {
      await emu.waitFor(() => bot.answeredBy(message.id).length > 0, { timeoutMs: 120_000, description: `message ${message.id} answered` });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));

    for (const [shard, message] of messages.entries()) {
      expect(bot.answeredBy(message.id)).toEqual([shard]);
      const replies = emu.botMessages(message.channel_id).filter((posted) => posted.replyTo === message.id);
      expect(replies.map((reply) => reply.content.trim().length > 0)).toEqual([true]);
      expect(emu.reactions(message.channel_id, message.id).filter((reaction) => reaction.userId === emu.botUser.id).length).toBe(1);
    }
    expect(emu.connectedShards()).toEqual([0, 1]);
    expect(bot.output()).not.toContain('Model file not found');
    // Both shards' requests reached the one server.
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(Number(/^llamacpp:tokens_predicted_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(2);
  }, 240_000);
});
