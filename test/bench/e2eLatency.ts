/**
 * `npm run bench:latency`: what a Discord user waits for, end to end through the emulator and the
 * real discord.js client, with every REST request taking a fixed round trip (`-- --rest-ms 150`),
 * once as is and once with Discord answering the first reaction PUT of each message with a 429
 * (Retry-After 1 s). Measured from the user's message: the reaction shown, the bot's first message
 * in reply, the reply complete. Uses the tiny model unless MODEL is set (THREADS, default 1).
 * Writes data/bench/latency.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../src/engine/Engine.js';
import { startBot, whenAnswered, repliesTo } from '../support/botHarness.js';
import { DiscordEmulator } from '../support/DiscordEmulator.js';
import { ensureTinyModel } from '../support/testModels.js';
import { BENCH_MESSAGES } from './benchData.js';
import { median } from './stats.js';

const args = process.argv.slice(2);
const restMs = args.includes('--rest-ms') ? Number(args[args.indexOf('--rest-ms') + 1]) : 150;
const messages = args.includes('--messages') ? Number(args[args.indexOf('--messages') + 1]) : 8;
const outPath = args.includes('--out') ? args[args.indexOf('--out') + 1]! : 'data/bench/latency.json';
const SENTIMENT_EMOJIS = ['😄', '😐', '😢'];

interface Timing {
  reaction_ms: number;
  first_reply_post_ms: number;
  reply_complete_ms: number;
  reaction_first: boolean;
}

async function scenario(engine: Engine, reactionRateLimited: boolean): Promise<Timing[]> {
  const emulator = await DiscordEmulator.start();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'latency-'));
  const bot = await startBot({ emulator, engine, databaseFile: path.join(folder, 'h.sqlite'), editIntervalMs: 1000 });
  try {
    await emulator.waitFor(() => emulator.registeredCommands().length > 0);
    emulator.setRestLatency(restMs);
    const timings: Timing[] = [];
    for (let i = 0; i < messages; i++) {
      if (reactionRateLimited) emulator.failNext({ method: 'PUT', path: /\/reactions\//, status: 429, retryAfter: 1 });
      const sent = Date.now();
      const message = emulator.sendUserMessage({ channelId: emulator.defaultChannelId, content: BENCH_MESSAGES[i % BENCH_MESSAGES.length]! });
      await whenAnswered(emulator, bot, message.id, 60_000);
      const done = Date.now();
      const reaction = emulator.reactions(emulator.defaultChannelId, message.id).find((r) => SENTIMENT_EMOJIS.includes(r.emoji));
      const [firstPost] = repliesTo(emulator, emulator.defaultChannelId, message.id);
      if (!reaction || !firstPost) throw new Error(`message ${i}: no reaction or no reply recorded`);
      timings.push({
        reaction_ms: reaction.time - sent,
        first_reply_post_ms: firstPost.createdAt - sent,
        reply_complete_ms: done - sent,
        reaction_first: reaction.time <= firstPost.createdAt,
      });
    }
    return timings;
  } finally {
    await bot.stop();
    await emulator.stop();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

function summary(timings: Timing[]) {
  return {
    reaction_ms_p50: Math.round(median(timings.map((t) => t.reaction_ms))),
    first_reply_post_ms_p50: Math.round(median(timings.map((t) => t.first_reply_post_ms))),
    reply_complete_ms_p50: Math.round(median(timings.map((t) => t.reply_complete_ms))),
    reaction_first_in_all: timings.every((t) => t.reaction_first),
  };
}

async function main(): Promise<void> {
  const modelPath = process.env.MODEL ? path.resolve(process.env.MODEL) : await ensureTinyModel();
  const threads = Number(process.env.THREADS ?? 1);
  const engine = await Engine.create({ modelPath, threads, contextSize: 2048, warmChannels: 4, historyMaxTokens: 1024, replyMaxTokens: 48, systemPrompt: 'You are a kind assistant.', seed: 5 });
  try {
    const plain = summary(await scenario(engine, false));
    process.stderr.write(`REST ${restMs} ms: ${JSON.stringify(plain)}\n`);
    const limited = summary(await scenario(engine, true));
    process.stderr.write(`REST ${restMs} ms, reaction 429 (Retry-After 1): ${JSON.stringify(limited)}\n`);
    const result = { rest_ms: restMs, messages, model: path.basename(modelPath), threads, plain, reaction_429: limited, measured_at: new Date().toISOString() };
    fs.mkdirSync(path.dirname(outPath), { recursive: true });
    fs.writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`latency bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
