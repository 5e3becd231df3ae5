/**
 * `npm run bench:server [-- --model path.gguf] [--threads 1] [--rounds 3] [--port 18022] [--quick] [--out file.json]`: the bot's model on llama.cpp's
 * own llama-server (the test tier's xllamacpp wheel, started here on 127.0.0.1) against the same model in process,
 * in one run on one machine, as ratios measured side by side:
 * - the reaction (one sentiment call) p50 through the server vs in process, on the same messages, calls alternating;
 * - a reply's time to first text on a warm channel with ~1,500 tokens of history vs an empty channel (the server's
 *   prefix cache must hit), with a cold channel (a history the server never saw) beside it;
 * - a burst of 4 channels x 3 messages through the real sessions and queue: messages per minute with
 *   INFERENCE_PARALLEL=4 vs 1, on the same server (5 slots: 4 for replies, 1 for the classifier);
 * - held-out macro-F1 of the sentiment through the server vs in process (both with the learned calibration).
 * Default model: the fetched Qwen2.5-Coder-0.5B (the default model's architecture and template). Writes
 * data/bench/server.json and prints the table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HistoryTurn } from '../../src/domain.js';
import type { ReplyRequest, ReplyResult } from '../../src/engine/ChatReplies.js';
import { Engine, type ModelEngine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { ServerEngine } from '../../src/engine/server/ServerEngine.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { createLogger } from '../../src/logger.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import { llamaServerAvailable, HOW_TO_GET_LLAMA_SERVER, startLlamaServer } from '../support/llamaServer.js';
import { MODELS_DIR } from '../support/testModels.js';
import { REAL_MODELS } from '../support/realModel.js';
import { BENCH_MESSAGES, benchHistory } from './benchData.js';
import { loadEvalSet, runEval } from './evalHarness.js';
import { heldOutSplit } from './sentimentStudy.js';
import { median, percentile } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
/** Read before anything of this run starts. */
const LOAD_AT_START = os.loadavg()[0]!;
const modelPath = arg('--model') ?? path.join(MODELS_DIR, REAL_MODELS.qwen);
const threads = Number(arg('--threads') ?? 1);
const rounds = Number(arg('--rounds') ?? (quick ? 1 : 3));
const ttftRuns = quick ? 2 : 3;
/** A fixed port: the server's learned calibration is cached by URL and model, so a second run skips learning it. */
const port = Number(arg('--port') ?? 18022);
const F1_LIMIT = quick ? 24 : Infinity;
const OUT = arg('--out') ?? 'data/bench/server.json';
const SYSTEM_PROMPT = 'You are a friendly, concise assistant in a Discord server.';
/** Replies in flight on the server in the main setting; the server has one slot more, for the classifier. */
const PARALLEL = 4;
const SLOT_CONTEXT = 2048;
const HISTORY_TOKENS = 1500;
const BURST = { channels: 4, perChannel: 3, replyTokens: 32 };
const log = (line: string) => process.stderr.write(line + '\n');

interface BurstResult { answered: number; seconds: number; messages_per_min: number; reply_chars: number }

/** What data/bench/server.json holds. */
interface ServerBenchResult {
  model: string;
  threads: number;
  machine: { cores: number; cpu: string; /** The 1-minute load average when the run began: other work on the machine inflates every time. */ loadAtStart: number };
  server: { kind: string; slots: number; slot_context: number };
  reaction: { calls: number; local_ms_p50: number; local_ms_p95: number; server_ms_p50: number; server_ms_p95: number; ratio_p50: number };
  ttft: {
    history_tokens: number;
    server_warm_empty_ms: number;
    server_warm_1500_ms: number;
    server_cold_1500_ms: number;
    server_growth: number;
    server_cold_over_warm: number;
    local_warm_empty_ms: number;
    local_warm_1500_ms: number;
  };
  burst: { channels: number; messages_per_channel: number; reply_tokens: number; parallel_4: BurstResult; parallel_1: BurstResult; speedup: number };
  macro_f1: { items: number; local: number; server: number; difference_points: number; same_right_or_wrong: number; server_label_floors: number };
  at: string;
}
const round = (value: number, places = 2) => Math.round(value * 10 ** places) / 10 ** places;

/** The options both engines share (threads only matter in process; the server got its own at start). */
const ENGINE_OPTIONS = { threads, historyMaxTokens: HISTORY_TOKENS + 100, replyMaxTokens: BURST.replyTokens, systemPrompt: SYSTEM_PROMPT, seed: 11, sentimentCalibration: 'learned' as const };

async function main(): Promise<void> {
  if (!llamaServerAvailable()) throw new Error(HOW_TO_GET_LLAMA_SERVER);
  if (!fs.existsSync(modelPath)) throw new Error(`no model at ${modelPath} (run \`npm run fetch-test-model\`, or pass --model path.gguf)`);

  log(`llama-server: ${path.basename(modelPath)}, ${PARALLEL + 1} slots of ${SLOT_CONTEXT} tokens, ${threads} thread(s)`);
  const server = await startLlamaServer({ modelPath, port, parallel: PARALLEL + 1, contextSize: (PARALLEL + 1) * SLOT_CONTEXT, threads, startTimeoutMs: 600_000 });
  const local = await Engine.create({ modelPath, contextSize: SLOT_CONTEXT, warmChannels: PARALLEL, ...ENGINE_OPTIONS, onCalibrationProgress: progress('in process') });
  const remote = await serverEngine(server.url, PARALLEL, ENGINE_OPTIONS);
  try {
    // --- 1. The reaction: one sentiment call, server vs in process ---------------------------------------------
    log('reaction latency ...');
    for (const text of BENCH_MESSAGES.slice(0, 4)) {
      await local.classify(text);
      await remote.classify(text);
    }
    const reaction = { local: [] as number[], server: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (const [i, text] of BENCH_MESSAGES.entries()) {
        // Alternate which goes first, so the machine's load falls on both alike.
        const pair = (i + r) % 2 === 0 ? (['local', 'server'] as const) : (['server', 'local'] as const);
        for (const side of pair) reaction[side].push(await timed(() => (side === 'local' ? local : remote).classify(text)));
      }
    }

    // --- 2. Time to first text through the server: warm empty, warm at ~1500 tokens, cold at ~1500 ------------
    log('time to first text ...');
    const history = benchHistory(local.model, HISTORY_TOKENS);
    const ttft = {
      warmEmpty: await warmTtft(remote, 'ttft-empty', [], ttftRuns),
      warm1500: await warmTtft(remote, 'ttft-1500', history.turns, ttftRuns),
      cold1500: await coldTtft(remote, history.turns, ttftRuns),
      localWarmEmpty: await warmTtft(local, 'ttft-empty', [], ttftRuns),
      localWarm1500: await warmTtft(local, 'ttft-1500', history.turns, ttftRuns),
    };

    // --- 3. A burst of 4 channels x 3 messages: INFERENCE_PARALLEL 4 vs 1 on the same server -------------------
    log('burst ...');
    const burst1 = await burst(server.url, 1, ENGINE_OPTIONS);
    const burst4 = await burst(server.url, PARALLEL, ENGINE_OPTIONS);

    // --- 4. Held-out macro-F1: server vs in process ----------------------------------------------------------
    log('held-out macro-F1 ...');
    const heldOut = heldOutSplit(loadEvalSet('test/fixtures/sentiment-eval.jsonl')).heldOut.slice(0, F1_LIMIT);
    const f1Local = await runEval({ items: heldOut, classify: (text) => local.classify(text) });
    const floorsBefore = remote.labelFloors;
    const f1Server = await runEval({ items: heldOut, classify: (text) => remote.classify(text) });
    const sameLabels = heldOut.filter((item) => !f1Local.mistakes.some((m) => m.id === item.id) === !f1Server.mistakes.some((m) => m.id === item.id)).length;

    const result: ServerBenchResult = {
      model: path.basename(modelPath),
      threads,
      machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown', loadAtStart: LOAD_AT_START },
      server: { kind: 'llama.cpp llama-server (xllamacpp 2026.10.11549 wheel)', slots: PARALLEL + 1, slot_context: SLOT_CONTEXT },
      reaction: {
        calls: reaction.local.length,
        local_ms_p50: round(median(reaction.local), 1),
        local_ms_p95: round(percentile(reaction.local, 95), 1),
        server_ms_p50: round(median(reaction.server), 1),
        server_ms_p95: round(percentile(reaction.server, 95), 1),
        ratio_p50: round(median(reaction.server) / median(reaction.local), 3),
      },
      ttft: {
        history_tokens: history.tokens,
        server_warm_empty_ms: round(median(ttft.warmEmpty), 0),
        server_warm_1500_ms: round(median(ttft.warm1500), 0),
        server_cold_1500_ms: round(median(ttft.cold1500), 0),
        server_growth: round(median(ttft.warm1500) / median(ttft.warmEmpty), 3),
        server_cold_over_warm: round(median(ttft.cold1500) / median(ttft.warm1500), 2),
        local_warm_empty_ms: round(median(ttft.localWarmEmpty), 0),
        local_warm_1500_ms: round(median(ttft.localWarm1500), 0),
      },
      burst: {
        channels: BURST.channels,
        messages_per_channel: BURST.perChannel,
        reply_tokens: BURST.replyTokens,
        parallel_4: burst4,
        parallel_1: burst1,
        speedup: round(burst4.messages_per_min / burst1.messages_per_min, 2),
      },
      macro_f1: {
        items: heldOut.length,
        local: round(f1Local.model.macroF1 * 100, 1),
        server: round(f1Server.model.macroF1 * 100, 1),
        difference_points: round((f1Server.model.macroF1 - f1Local.model.macroF1) * 100, 1),
        same_right_or_wrong: sameLabels,
        server_label_floors: remote.labelFloors - floorsBefore,
      },
      at: new Date().toISOString(),
    };
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(formatServerTable(result) + '\n');
    log(`written to ${OUT}`);
  } finally {
    await remote.dispose();
    await local.dispose();
    await server.stop();
  }
}

/**
 * A ServerEngine on the bench's server, resolved once its learned calibration is ready (it learns in the background,
 * 300 classifications the first time; cached per server URL and model after that), so no measurement runs beside it.
 */
async function serverEngine(url: string, parallel: number, options: typeof ENGINE_OPTIONS): Promise<ServerEngine> {
  let ready!: () => void;
  const calibrated = new Promise<void>((resolve) => (ready = resolve));
  const logger = createLogger('info', (line) => {
    const entry = JSON.parse(line) as { message: string; level: string; done?: number; total?: number };
    if (entry.message === 'sentiment calibration ready') ready();
    else if (entry.message.startsWith('learning the sentiment calibration') && entry.done !== undefined) progress('through the server')(entry.done, entry.total!);
    else if (entry.level === 'warn' || entry.level === 'error') log(line);
  });
  const engine = await ServerEngine.start({ url, parallel, timeoutMs: 300_000, contextSize: SLOT_CONTEXT, logger, ...options });
  await engine.firstConnect;
  await calibrated;
  return engine;
}

function progress(where: string) {
  return (done: number, total: number) => {
    if (done === total || done % 50 === 0) log(`learning the calibration ${where}: ${done}/${total}`);
  };
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Runs a reply until its first piece of text, then stops it; the time to that piece. */
async function firstText(engine: ModelEngine, request: Omit<ReplyRequest, 'signal' | 'onText'>): Promise<number> {
  const controller = new AbortController();
  const started = performance.now();
  let at = 0;
  try {
    await engine.reply({ ...request, signal: controller.signal, onText: () => {
      if (at === 0) at = performance.now();
      controller.abort();
    } });
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  if (at === 0) throw new Error(`no text came for ${request.channelId}`);
  return at - started;
}

/** A channel's TTFT once its prompt is cached: one reply first, then `count` measured ones on the same history. */
async function warmTtft(engine: ModelEngine, channelId: string, turns: readonly HistoryTurn[], count: number): Promise<number[]> {
  await firstText(engine, { channelId, turns, userName: 'Bo', userText: BENCH_MESSAGES[0]! });
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await firstText(engine, { channelId, turns, userName: 'Bo', userText: BENCH_MESSAGES[(i + 5) % BENCH_MESSAGES.length]! }));
  return times;
}

/**
 * A cold channel's TTFT: each time a new channel with a history the server has never seen (its first turn differs),
 * since llama-server restores evicted prompts from its RAM cache and would otherwise hit.
 */
async function coldTtft(engine: ModelEngine, turns: readonly HistoryTurn[], count: number): Promise<number[]> {
  const times: number[] = [];
  const run = `${process.pid}-${Date.now()}`;
  for (let i = 0; i < count; i++) {
    const fresh = turns.map((turn, index) => (index === 0 ? { ...turn, userText: `[${run}-${i}] ${turn.userText}` } : turn));
    times.push(await firstText(engine, { channelId: `ttft-cold-${i}`, turns: fresh, userName: 'Bo', userText: BENCH_MESSAGES[(i + 5) % BENCH_MESSAGES.length]! }));
  }
  return times;
}

/**
 * 4 channels x 3 messages pushed at once through the real sessions, queue and a ServerEngine with INFERENCE_PARALLEL
 * = `parallel` (queue and engine alike), on the same server. Each reply asks for a long story, so each runs to the
 * token cap and both settings generate the same amount.
 */
async function burst(url: string, parallel: number, options: typeof ENGINE_OPTIONS): Promise<BurstResult> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-server-'));
  const store = await KeyvHistoryStore.open({ url: `sqlite://${folder}/h.sqlite` });
  const engine = await serverEngine(url, parallel, options);
  const queue = new GenerationQueue({ maxPending: BURST.channels * BURST.perChannel + 1, parallelReplies: parallel });
  const sessions = new ChannelSessions({ engine, queue, store });
  const run = `${parallel}-${Date.now()}`;
  let generated = 0;
  let answered = 0;
  const started = performance.now();
  const all: Promise<void>[] = [];
  for (let m = 0; m < BURST.perChannel; m++) {
    for (let c = 0; c < BURST.channels; c++) {
      all.push(
        sessions
          .handleMessage({ channelId: `burst-${run}-${c}`, userName: 'Ann', text: `Tell me a long story about ${BENCH_MESSAGES[(c + m) % BENCH_MESSAGES.length]}` })
          .then((outcome) => {
            answered++;
            generated += outcome.reply.length;
          }),
      );
    }
  }
  await Promise.all(all);
  const seconds = (performance.now() - started) / 1000;
  await sessions.close();
  await engine.dispose();
  await store.dispose();
  fs.rmSync(folder, { recursive: true, force: true });
  return { answered, seconds: round(seconds, 1), messages_per_min: round((answered / seconds) * 60, 1), reply_chars: generated };
}

/** The bench result as a table: measured value, target. */
function formatServerTable(r: ServerBenchResult): string {
  const rows: Array<[string, string, string]> = [
    ['reaction p50, in process / llama-server', `${r.reaction.local_ms_p50} / ${r.reaction.server_ms_p50} ms`, ''],
    ['reaction p50 ratio (server / in process)', `${r.reaction.ratio_p50}×`, '≤ 1.3×'],
    ['TTFT through the server, warm, empty channel', `${r.ttft.server_warm_empty_ms} ms`, ''],
    [`TTFT through the server, warm, ~${r.ttft.history_tokens} tokens of history`, `${r.ttft.server_warm_1500_ms} ms`, ''],
    ['TTFT growth (warm 1500 / empty)', `${r.ttft.server_growth}×`, '≤ 1.3×'],
    [`TTFT through the server, cold (history never seen)`, `${r.ttft.server_cold_1500_ms} ms (${r.ttft.server_cold_over_warm}× warm)`, ''],
    ['  in process: warm empty / warm 1500', `${r.ttft.local_warm_empty_ms} / ${r.ttft.local_warm_1500_ms} ms`, ''],
    [`burst ${r.burst.channels}×${r.burst.messages_per_channel}, INFERENCE_PARALLEL=4`, `${r.burst.parallel_4.messages_per_min} msg/min (${r.burst.parallel_4.seconds} s)`, ''],
    [`burst ${r.burst.channels}×${r.burst.messages_per_channel}, INFERENCE_PARALLEL=1`, `${r.burst.parallel_1.messages_per_min} msg/min (${r.burst.parallel_1.seconds} s)`, ''],
    ['burst speedup (4 / 1)', `${r.burst.speedup}×`, ''],
    [`held-out macro-F1 (${r.macro_f1.items} items), in process / llama-server (label words on both)`, `${r.macro_f1.local} / ${r.macro_f1.server}`, 'within 2 points'],
    ['  label floors used through the server', `${r.macro_f1.server_label_floors}`, ''],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  return [
    `model ${r.model}, ${r.threads} thread(s) each, ${r.machine.cores} cores (${r.machine.cpu}); load average ${r.machine.loadAtStart.toFixed(1)} at the start`,
    ...rows.map(([name, value, target]) => `${name.padEnd(width)}  ${value.padStart(valueWidth)}  ${target}`),
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
