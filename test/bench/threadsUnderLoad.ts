/**
 * `npx tsx test/bench/threadsUnderLoad.ts [model.gguf]`: replies of one model with 1 and with all
 * cores' threads, alternating in one run, with the load average before and after. On a machine busy
 * with other work llama.cpp's threads wait for each other's turn on a core; the real-model test
 * tier picks its thread count from this (test/support/limitUnderLoad.ts).
 */
import os from 'node:os';
import { Engine } from '../../src/engine/Engine.js';
import { REAL_MODEL_PATH } from '../support/realModel.js';

const modelPath = process.argv[2] ?? REAL_MODEL_PATH;
const counts = [...new Set([1, os.availableParallelism()])];
const make = (threads: number) =>
  Engine.create({ modelPath, threads, contextSize: 1024, warmChannels: 1, historyMaxTokens: 256, replyMaxTokens: 48, systemPrompt: 'Answer briefly.', sentimentCalibration: 'off', seed: 1 });
const engines = new Map<number, Engine>();
for (const threads of counts) engines.set(threads, await make(threads));
const ms = new Map(counts.map((threads) => [threads, [] as number[]]));
const tokens = new Map(counts.map((threads) => [threads, 0]));
const load = () => os.loadavg().map((value) => value.toFixed(1)).join(' ');
console.log(`load average before: ${load()} (${os.availableParallelism()} cores)`);
for (let i = 0; i < 6; i++) {
  for (const threads of counts) {
    const engine = engines.get(threads)!;
    const started = performance.now();
    const reply = await engine.reply({ channelId: `c${i}`, turns: [], userName: 'sam', userText: `tell me a fun fact number ${i}` });
    ms.get(threads)!.push(performance.now() - started);
    tokens.set(threads, tokens.get(threads)! + (reply.generatedTokens ?? 0));
    engine.forget(`c${i}`);
  }
}
console.log(`load average after: ${load()}`);
for (const threads of counts) {
  const times = ms.get(threads)!;
  const seconds = times.reduce((sum, value) => sum + value, 0) / 1000;
  console.log(`threads ${threads}: ${times.map(Math.round).join(', ')} ms per reply; ${tokens.get(threads)} tokens, ${(tokens.get(threads)! / seconds).toFixed(1)} tokens/s`);
}
for (const engine of engines.values()) await engine.dispose();
