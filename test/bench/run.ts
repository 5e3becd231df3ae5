/**
 * `npm run bench`: the product's speed against the naive method, measured side by side in one run
 * on one model. `-- --quick` runs a reduced version on the tiny test model (used by `npm test`).
 * `-- --out PATH` writes the JSON elsewhere than data/bench/latest.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TokenBias, type ChatWrapper, type LlamaContextSequence, type Token } from 'node-llama-cpp';
import { parseConfig } from '../../src/config.js';
import { Engine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { classifierChatHistory } from '../../src/engine/SentimentClassifier.js';
import type { ReplyRequest, ReplyResult } from '../../src/engine/ChatReplies.js';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import { ensureQwenShapeModel, ensureTinyModel } from '../support/testModels.js';
import { BENCH_MESSAGES, benchHistory } from './benchData.js';
import { benchChart } from './chart.js';
import { median, percentile, formatTable } from './stats.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outPath = args.includes('--out') ? args[args.indexOf('--out') + 1]! : 'data/bench/latest.json';
const config = parseConfig(process.env);
const threads = quick ? 1 : config.THREADS;
const runs = quick
  ? { sentiment: 6, ttft: 3, decode: 12, decodeRounds: 2, channels: 4, perChannel: 3, queueReply: 4 }
  : { sentiment: 30, ttft: 7, decode: 64, decodeRounds: 9, channels: 20, perChannel: 5, queueReply: 8 };

const log = (line: string) => process.stderr.write(line + '\n');

async function main(): Promise<void> {
  const modelPath = quick ? await ensureTinyModel() : process.env.MODEL ? path.resolve(process.env.MODEL) : await ensureQwenShapeModel();
  log(`model ${modelPath}, threads ${threads}${quick ? ' (quick)' : ''}`);
  const engine = await Engine.create({
    modelPath,
    threads,
    contextSize: 2048,
    warmChannels: 8,
    historyMaxTokens: 1536,
    replyMaxTokens: 256,
    systemPrompt: config.SYSTEM_PROMPT,
    seed: 42,
  });
  const { model } = engine;
  const messages = BENCH_MESSAGES;

  // Warm-up: the first passes over freshly mapped weights run several times slower.
  for (const text of messages) await engine.classify(text);
  await replyForChunks(engine, DECODE_REQUEST, quick ? 8 : 32);
  engine.forget('decode');

  // --- Sentiment: product (cached prefix, one decode step) -------------------------------------
  const sentimentMs = await timeEach(runs.sentiment, (i) => engine.classify(messages[i % messages.length]!));
  // What one call evaluates: the message and the template suffix (the instruction stays cached).
  const sentimentTokens =
    messages.reduce((sum, text) => sum + engine.classifier.messageTokens(text).length, 0) / messages.length + engine.classifier.suffixTokenCount;
  log(`sentiment p50 ${median(sentimentMs).toFixed(1)} ms`);

  // --- Sentiment while another channel's reply streams --------------------------------------
  const streaming = new AbortController();
  let replyTokens = 0;
  const background = engine
    .reply({ channelId: 'streaming', turns: [], userName: 'Ann', userText: messages[1]!, signal: streaming.signal, onText: () => void replyTokens++ })
    .catch(() => undefined);
  while (replyTokens < 2) await sleep(5);
  const duringReplyMs = await timeEach(runs.sentiment, (i) => engine.classify(messages[(i + 3) % messages.length]!));
  const tokensDuringProbe = replyTokens;
  streaming.abort();
  await background;
  log(`sentiment during a streaming reply p50 ${median(duringReplyMs).toFixed(1)} ms (reply kept streaming: ${tokensDuringProbe} chunks)`);

  // --- Replies: time to first token, warm vs re-encoded -------------------------------------
  const history = benchHistory(model, 1500);
  const ttftEmpty = await measureTtft(engine, 'warm-empty', [], runs.ttft, true);
  const ttft1500 = await measureTtft(engine, 'warm-1500', history.turns, runs.ttft, true);
  const ttftReencode = await measureTtft(engine, 'cold-1500', history.turns, runs.ttft, false);
  log(`ttft empty ${median(ttftEmpty).toFixed(0)} ms, 1500 warm ${median(ttft1500).toFixed(0)} ms, 1500 re-encoded ${median(ttftReencode).toFixed(0)} ms`);

  const rssMb = await warmEightChannels(engine, history.turns);
  log(`RSS with 8 warm channels ${Math.round(rssMb)} MB`);

  // The bare side runs on a context of the product's shape (9 sequences): llama.cpp decodes one
  // sequence of a 9-sequence context ~10% slower than a lone one, which is not the product's code.
  const baseline = await model.createContext({ contextSize: 2048, threads, sequences: 9 });
  const baseSequence = baseline.getSequence();
  const lone = await model.createContext({ contextSize: 2048, threads, sequences: 1 });
  const loneTokS = median((await alternatingDecode(engine, lone.getSequence(), Math.max(2, Math.ceil(runs.decodeRounds / 3)), runs.decode, true)).raw);
  await lone.dispose();

  // --- Decode speed: product reply path vs a bare evaluate loop, alternating, several rounds ---
  const decode = await alternatingDecode(engine, baseSequence, runs.decodeRounds, runs.decode);
  const productTokS = median(decode.product);
  const rawTokS = median(decode.raw);
  log(`decode rounds: product ${decode.product.map((v) => v.toFixed(1)).join(', ')} / bare ${decode.raw.map((v) => v.toFixed(1)).join(', ')} tok/s`);

  // --- The classifier against a bare evaluation of exactly the tokens it sends ------------------
  const classifyVsBare = await classifierOverhead(engine, baseSequence, runs.sentiment);
  log(`classify p50 ${classifyVsBare.product_ms_p50} ms vs bare ${classifyVsBare.bare_ms_p50} ms (${classifyVsBare.ratio}×)`);

  const prefillTokS = await prefillRate(baseSequence, history.turns.map((turn) => turn.userText).join('\n'));
  const bareGrowth = await attentionGrowth(baseSequence, history.turns, runs.ttft);
  const chatWrapper = engine.chatWrapper;
  const naiveMs = await timeEach(runs.sentiment, (i) => naiveSentiment(engine, chatWrapper, baseSequence, messages[i % messages.length]!));
  await baseline.dispose();
  log(`decode ${productTokS.toFixed(1)} tok/s product, ${rawTokS.toFixed(1)} tok/s raw; naive sentiment p50 ${median(naiveMs).toFixed(1)} ms`);

  // --- The real queue under a burst --------------------------------------------------------------
  log(`queue burst: ${runs.channels} channels × ${runs.perChannel} messages ...`);
  const queueStats = await queueBurst(engine, runs);
  await engine.dispose();

  // --- Memory by loading option, each in a process of its own ----------------------------------
  log('memory: loading the model with and without mmap, one child process each ...');
  const memory = memoryByOption(modelPath, quick ? 1 : 3);

  const result = {
    quick,
    sentiment_ms_p50: round(median(sentimentMs)),
    sentiment_ms_p95: round(percentile(sentimentMs, 95)),
    sentiment_naive_ms_p50: round(median(naiveMs)),
    sentiment_speedup: round(median(naiveMs) / median(sentimentMs)),
    sentiment_tokens_per_call: round(sentimentTokens),
    prefill_tok_s: round(prefillTokS),
    sentiment_ms_p50_during_reply: round(median(duringReplyMs)),
    sentiment_ms_p95_during_reply: round(percentile(duringReplyMs, 95)),
    ttft_ms_empty: round(median(ttftEmpty)),
    ttft_ms_1500: round(median(ttft1500)),
    ttft_reencode_ms_1500: round(median(ttftReencode)),
    ttft_growth: round(median(ttft1500) / median(ttftEmpty)),
    ttft_growth_bare: round(bareGrowth),
    ttft_speedup_1500: round(median(ttftReencode) / median(ttft1500)),
    history_tokens: history.tokens,
    decode_tok_s: round(productTokS),
    decode_tok_s_raw: round(rawTokS),
    decode_efficiency: round(productTokS / rawTokS),
    decode_tok_s_raw_lone_sequence: round(loneTokS),
    decode_rounds: decode.product.map((product, i) => ({ product_tok_s: round(product), bare_tok_s: round(decode.raw[i]!), efficiency: round(product / decode.raw[i]!) })),
    per_token_overhead_ms: round(1000 / productTokS - 1000 / rawTokS),
    classify_vs_bare: classifyVsBare,
    memory,
    rss_mb: Math.round(rssMb),
    model_file_mb: round(fs.statSync(modelPath).size / 2 ** 20),
    queue: queueStats,
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30) },
    model: path.basename(modelPath),
    threads,
    node_llama_cpp: (JSON.parse(fs.readFileSync('node_modules/node-llama-cpp/package.json', 'utf8')) as { version: string }).version,
    measured_at: new Date().toISOString(),
  };
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
  const chartPath = outPath.replace(/\.json$/, '') + '.svg';
  fs.writeFileSync(chartPath, benchChart(result));
  process.stdout.write(formatTable(result) + `\nwritten to ${outPath} and ${chartPath}\n`);
}

/** Times each call one after another, in ms. */
async function timeEach(count: number, call: (index: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await call(i);
    times.push(performance.now() - started);
  }
  return times;
}

/**
 * Time to the first reply text for a new ~20-token message. Warm: the channel's history is already
 * in its sequence (one unmeasured reply first); each measured reply is aborted at its first text so
 * the history stays the same. Cold: the channel is forgotten before each reply, so the whole history
 * is encoded again — what the naive method does on every reply.
 */
async function measureTtft(engine: Engine, channelId: string, turns: readonly HistoryTurn[], count: number, warm: boolean): Promise<number[]> {
  const firstText = async (text: string) => {
    const started = performance.now();
    let at = 0;
    await replyForChunks(engine, { channelId, turns, userName: 'Bo', userText: text }, 1, () => (at = performance.now()));
    return at - started;
  };
  if (warm) await firstText(BENCH_MESSAGES[0]!);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    if (!warm) engine.forget(channelId);
    times.push(await firstText(BENCH_MESSAGES[(i + 5) % BENCH_MESSAGES.length]!));
  }
  return times;
}

// A request a real model answers at length, so its reply does not end before the measured tokens.
const DECODE_REQUEST = { channelId: 'decode', turns: [], userName: 'Ann', userText: 'Tell me a long story about a dragon who learns to bake bread, in many paragraphs.' };

/**
 * Runs a reply until `chunks` pieces of text arrived, then stops it: a random model never stops by
 * itself. An `outer` abort (shutdown) still fails the reply as usual.
 */
async function replyForChunks(
  engine: Engine,
  request: Omit<ReplyRequest, 'signal' | 'onText'>,
  chunks: number,
  onChunk: () => void = () => {},
  outer?: AbortSignal,
): Promise<{ result?: ReplyResult; chunks: number }> {
  const controller = new AbortController();
  outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  let received = 0;
  const onText = () => {
    onChunk();
    if (++received >= chunks) controller.abort();
  };
  try {
    return { result: await engine.reply({ ...request, signal: controller.signal, onText }), chunks: received };
  } catch (error) {
    if (!controller.signal.aborted || outer?.aborted) throw error;
    return { chunks: received };
  }
}

/**
 * Decode speed of the product's reply path and of a bare evaluate loop with the same sampling
 * settings, alternating round by round so drifting machine load hits both alike.
 */
async function alternatingDecode(engine: Engine, sequence: LlamaContextSequence, rounds: number, tokens: number, bareOnly = false): Promise<{ product: number[]; raw: number[] }> {
  const product: number[] = [];
  const raw: number[] = [];
  // The same templated request as the product's; a real model's end-of-turn is banned so the bare
  // loop always runs to `tokens` (the product's reply may end sooner; its rate is over what it made).
  const { contextText } = engine.chatWrapper.generateContextState({
    chatHistory: [{ type: 'system', text: config.SYSTEM_PROMPT }, { type: 'user', text: `${DECODE_REQUEST.userName}: ${DECODE_REQUEST.userText}` }, { type: 'model', response: [] }],
  });
  const prompt = contextText.tokenize(engine.model.tokenizer);
  const noEnd = new TokenBias(engine.model.tokenizer);
  for (const token of [engine.model.tokens.eos, engine.model.tokens.eot]) if (token !== null) noEnd.set(token, 'never');
  for (let round = 0; round < rounds; round++) {
    if (!bareOnly) {
      const stamps: number[] = [];
      engine.forget(DECODE_REQUEST.channelId);
      await replyForChunks(engine, DECODE_REQUEST, tokens, () => stamps.push(performance.now()));
      product.push(tokensPerSecond(stamps));
    }

    await sequence.clearHistory();
    const bare: number[] = [];
    for await (const token of sequence.evaluate(prompt, { temperature: 0.7, topP: 0.9, seed: 42 + round, tokenBias: noEnd })) {
      void token;
      bare.push(performance.now());
      if (bare.length >= tokens) break;
    }
    raw.push(tokensPerSecond(bare));
  }
  await sequence.clearHistory();
  return { product, raw };
}

/**
 * The product's classify() against a bare llama.cpp evaluation of exactly the tokens it sends
 * (message + template suffix after the same cached prefix, reading the next token's probabilities,
 * then erasing them), message by message, alternating.
 */
async function classifierOverhead(engine: Engine, sequence: LlamaContextSequence, count: number) {
  const { classifier } = engine;
  await sequence.clearHistory();
  const prefix = classifier.promptTokens('').slice(0, classifier.prefixTokenCount);
  await sequence.evaluateWithoutGeneratingNewTokens(prefix);
  const product: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < count; i++) {
    const text = BENCH_MESSAGES[i % BENCH_MESSAGES.length]!;
    const input = classifier.promptTokens(text).slice(classifier.prefixTokenCount);
    let started = performance.now();
    await classifier.classify(text);
    product.push(performance.now() - started);
    started = performance.now();
    await sequence.controlledEvaluate(input.map((token, index) => (index === input.length - 1 ? ([token, { generateNext: { probabilities: true, options: { topK: 12 } } }] as const) : token)));
    await sequence.eraseContextTokenRanges([{ start: prefix.length, end: sequence.nextTokenIndex }]);
    bare.push(performance.now() - started);
  }
  await sequence.clearHistory();
  return { product_ms_p50: round(median(product)), bare_ms_p50: round(median(bare)), ratio: round(median(product) / median(bare)), decode_steps: classifier.lastDecodeSteps };
}

/**
 * Each loading option probed `times` times, alternating (speed on a shared machine drifts); for
 * each field the median over its probes.
 */
function memoryByOption(modelPath: string, times: number): { no_mmap: Record<string, number | boolean>; mmap: Record<string, number | boolean> } {
  const runs = { no_mmap: [] as Record<string, number | boolean>[], mmap: [] as Record<string, number | boolean>[] };
  for (let i = 0; i < times; i++) {
    runs.no_mmap.push(probeMemory(modelPath, false));
    runs.mmap.push(probeMemory(modelPath, true));
  }
  const medianOf = (probes: Record<string, number | boolean>[]) =>
    Object.fromEntries(Object.keys(probes[0]!).map((key) => [key, typeof probes[0]![key] === 'number' ? median(probes.map((p) => p[key] as number)) : probes[0]![key]!]));
  return { no_mmap: medianOf(runs.no_mmap), mmap: medianOf(runs.mmap) };
}

/** Runs test/bench/memoryProbe.ts in a child process for one loading option. */
function probeMemory(modelPath: string, useMmap: boolean): Record<string, number | boolean> {
  const output = execFileSync(process.execPath, ['--import', 'tsx', 'test/bench/memoryProbe.ts', modelPath, useMmap ? 'mmap' : 'no-mmap', String(threads), '2048', '9'], { encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1)!) as Record<string, number | boolean>;
}

/** Prompt evaluation speed (tokens per second) on a ~250-token text: what bounds any prompt's cost. */
async function prefillRate(sequence: LlamaContextSequence, text: string): Promise<number> {
  const tokens = sequence.model.tokenize(text).slice(0, 256);
  await sequence.clearHistory();
  const started = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(tokens);
  const seconds = (performance.now() - started) / 1000;
  await sequence.clearHistory();
  return tokens.length / seconds;
}

/**
 * The same growth without any of the product's code: evaluating one ~40-token message on a bare
 * sequence after ~1500 tokens vs on an empty one. Attention over the longer context is what grows.
 */
async function attentionGrowth(sequence: LlamaContextSequence, turns: readonly HistoryTurn[], count: number): Promise<number> {
  const { model } = sequence;
  const history = model.tokenize(turns.map((turn) => `${turn.userName}: ${turn.userText}\n${turn.reply}`).join('\n')).slice(0, 1500);
  const message = model.tokenize(BENCH_MESSAGES[0]!).slice(0, 40);
  const timeAt = async (prefix: Token[]) => {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prefix.length > 0 ? prefix : [message[0]!]);
    const start = sequence.nextTokenIndex;
    return timeEach(count, async () => {
      await sequence.evaluateWithoutGeneratingNewTokens(message);
      await sequence.eraseContextTokenRanges([{ start, end: sequence.nextTokenIndex }]);
    });
  };
  const empty = await timeAt([]);
  const long = await timeAt(history);
  await sequence.clearHistory();
  return median(long) / median(empty);
}

/**
 * The seed article's method: build the whole prompt every call (nothing cached), sample greedily,
 * parse the text. Same prompt as the product (instruction, examples, message). A random model never
 * stops, so it stops after the two tokens a real model needs (the label and its end token) — not at
 * the seed's cap of 10, which would flatter the product.
 */
async function naiveSentiment(engine: Engine, chatWrapper: ChatWrapper, sequence: LlamaContextSequence, text: string): Promise<string> {
  const { model } = engine;
  await sequence.clearHistory();
  const { contextText } = chatWrapper.generateContextState({ chatHistory: classifierChatHistory(text) });
  const generated: Token[] = [];
  for await (const token of sequence.evaluate(contextText.tokenize(model.tokenizer), { temperature: 0 })) {
    generated.push(token);
    if (generated.length >= 2) break;
  }
  const answer = model.detokenize(generated).toLowerCase();
  return ['positive', 'negative', 'neutral'].find((label) => answer.includes(label)) ?? 'neutral';
}

/** RSS with the model loaded and 8 channels warm, each holding a history in its sequence. */
async function warmEightChannels(engine: Engine, turns: readonly HistoryTurn[]): Promise<number> {
  for (let i = 0; i < 8; i++) {
    await replyForChunks(engine, { channelId: `rss-${i}`, turns: turns.slice(0, 6), userName: 'Ann', userText: BENCH_MESSAGES[i % BENCH_MESSAGES.length]! }, 1);
  }
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * channels × perChannel messages pushed at once through the real sessions and queue (a fake edge:
 * no Discord). Each message must be answered once, in order within its channel.
 */
async function queueBurst(engine: Engine, counts: typeof runs) {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  const store = await KeyvHistoryStore.open({ url: `sqlite://${folder}/h.sqlite` });
  const queue = new GenerationQueue({ maxPending: counts.channels * counts.perChannel + 1 });
  const short: Engine['reply'] = async ({ signal, ...request }) => {
    const { result, chunks } = await replyForChunks(engine, request, counts.queueReply, undefined, signal);
    return result ?? { text: `(${chunks} chunks)`, evaluatedTokens: 0, turnsInPrompt: 0, messageTruncated: false };
  };
  const sessions = new ChannelSessions({ engine: { classify: (t) => engine.classify(t), reply: short, fitMessage: (n, t) => engine.fitMessage(n, t), forget: (c) => engine.forget(c), status: () => engine.status(), dispose: async () => {} }, queue, store });
  const started = performance.now();
  const waits: number[] = [];
  const answered = new Map<string, number[]>();
  let refused = 0;
  const all: Promise<void>[] = [];
  for (let m = 0; m < counts.perChannel; m++) {
    for (let c = 0; c < counts.channels; c++) {
      const channelId = `burst-${c}`;
      try {
        all.push(
          sessions
            .handleMessage({ channelId, userName: 'Ann', text: `${m}: ${BENCH_MESSAGES[(c + m) % BENCH_MESSAGES.length]}` }, { onReplyStart: () => void waits.push(performance.now() - started) })
            .then(() => {
              const list = answered.get(channelId) ?? [];
              list.push(m);
              answered.set(channelId, list);
            }),
        );
      } catch {
        refused++;
      }
    }
  }
  await Promise.allSettled(all);
  let orderViolations = 0;
  let answeredCount = 0;
  for (const list of answered.values()) {
    answeredCount += list.length;
    list.forEach((value, index) => void (index > 0 && value < list[index - 1]! && orderViolations++));
  }
  await sessions.close();
  await store.dispose();
  const total = counts.channels * counts.perChannel;
  return {
    channels: counts.channels,
    messages_per_channel: counts.perChannel,
    answered: answeredCount,
    refused_busy: refused,
    lost: total - answeredCount - refused,
    p50_wait_ms: round(median(waits)),
    p95_wait_ms: round(percentile(waits, 95)),
    max_wait_ms: round(Math.max(...waits)),
    order_violations: orderViolations,
  };
}

/** Tokens per second over the gaps between per-token timestamps (ms). */
const tokensPerSecond = (stamps: number[]) => ((stamps.length - 1) / (stamps.at(-1)! - stamps[0]!)) * 1000;
const round = (value: number) => Math.round(value * 100) / 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
