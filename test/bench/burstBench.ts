/**
 * `npm run bench:burst`: a burst of 4 channels × 3 messages through the real ChannelSessions,
 * GenerationQueue and Engine (no Discord), once per PARALLEL_REPLIES value, each in a child process
 * of its own (so one run's memory never counts for another) with the same model, messages,
 * histories and seed. Measures messages per minute, when the last channel's first reply text
 * arrives, the reaction (sentiment) latency during the burst, per-reply decode speed and RSS.
 * Writes data/bench/burst.json (`--out PATH` elsewhere).
 *
 * Options: `--model PATH` (default test/.models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf),
 * `--parallel 1,2,4` (the values to run), `--default N` (the one compared with 1; default the
 * config's DEFAULT_PARALLEL_REPLIES when it is run and more than 1, else the largest value run), `--repeat N`
 * (N rounds, each running every value in turn; the table shows each measure's median), `--warm` (each channel has replied once before the burst, so
 * its history sits in its warm sequence: an active server; default cold, as after a restart).
 * THREADS (default 2) and REPLY_MAX_TOKENS (default 256) come from the environment, as for the bot.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineOptions } from '../../src/app.js';
import { DEFAULT_PARALLEL_REPLIES, parseConfig } from '../../src/config.js';
import { Engine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import { BENCH_MESSAGES, benchHistory } from './benchData.js';
import { median, percentile } from './stats.js';

const CHANNELS = 4;
const PER_CHANNEL = 3;
/** Tokens of history each channel already has (read cold from the store, as after a restart). */
const HISTORY_TOKENS = 400;
/** A reaction-only message (another channel) every this many ms while the burst runs. */
const PROBE_EVERY_MS = 1000;
const SEED = 42;

const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const modelPath = arg('--model') ?? 'test/.models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf';
const warm = args.includes('--warm');
const log = (line: string) => process.stderr.write(line + '\n');

interface RunResult {
  parallel_replies: number;
  answered: number;
  order_violations: number;
  generated_tokens: number;
  burst_ms: number;
  messages_per_minute: number;
  /** Tokens generated per second by all replies together. */
  total_decode_tok_s: number;
  /** From the burst's start to the first reply text of the last channel. */
  last_channel_first_token_ms: number;
  /** Every reaction during the burst: the burst's own messages (arrival to label) and the probes. */
  reaction_ms_p50: number;
  reaction_ms_p95: number;
  /** The probes alone: messages of a reaction-only channel arriving while the replies decode. */
  probe_reaction_ms_p50: number;
  probe_reaction_ms_p95: number;
  /** Generated tokens per second of one reply, from its first text to its end (median over replies). */
  per_reply_decode_tok_s_p50: number;
  rss_after_load_mb: number;
  rss_peak_mb: number;
}

if (args[0] === '--child') {
  process.stdout.write(JSON.stringify(await runBurst(Number(args[1]))) + '\n');
  process.exit(0);
} else {
  await main();
}

async function main(): Promise<void> {
  const values = (arg('--parallel') ?? '1,2,4').split(',').map(Number);
  // Compared with 1: the bot's default when it is run and more than 1, else the largest value run.
  const chosen = Number(arg('--default') ?? (DEFAULT_PARALLEL_REPLIES > 1 && values.includes(DEFAULT_PARALLEL_REPLIES) ? DEFAULT_PARALLEL_REPLIES : Math.max(...values)));
  const outPath = arg('--out') ?? 'data/bench/burst.json';
  // Rounds run every value in turn, so a machine whose speed drifts (a shared VM) drifts for all of them alike.
  const repeat = Math.max(1, Number(arg('--repeat') ?? 1));
  const each = new Map<number, RunResult[]>(values.map((value) => [value, []]));
  for (let round = 1; round <= repeat; round++) {
    for (const parallel of values) {
      log(`PARALLEL_REPLIES=${parallel}${repeat > 1 ? ` (round ${round} of ${repeat})` : ''}…`);
      const r = await child(parallel);
      each.get(parallel)!.push(r);
      log(`  ${r.messages_per_minute} msg/min, last channel first token ${r.last_channel_first_token_ms} ms, reaction p95 ${r.reaction_ms_p95} ms, per reply ${r.per_reply_decode_tok_s_p50} tok/s, RSS peak ${r.rss_peak_mb} MB`);
    }
  }
  const runs = values.map((value) => medianRun(each.get(value)!));
  const one = runs.find((r) => r.parallel_replies === 1);
  const picked = runs.find((r) => r.parallel_replies === chosen);
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : undefined);
  const config = parseConfig(process.env);
  const result = {
    model: path.basename(modelPath),
    threads: config.THREADS,
    reply_max_tokens: config.REPLY_MAX_TOKENS,
    burst: { channels: CHANNELS, messages_per_channel: PER_CHANNEL, history_tokens: HISTORY_TOKENS, warm_channels_before: warm, probe_every_ms: PROBE_EVERY_MS, seed: SEED },
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', load_average_at_start: os.loadavg().map((v) => Math.round(v * 100) / 100) },
    bot_default_parallel_replies: DEFAULT_PARALLEL_REPLIES,
    compared_parallel_replies: chosen,
    throughput_ratio: ratio(picked?.messages_per_minute, one?.messages_per_minute),
    last_channel_first_token_ratio: ratio(one?.last_channel_first_token_ms, picked?.last_channel_first_token_ms),
    reaction_p95_ratio: ratio(picked?.reaction_ms_p95, one?.reaction_ms_p95),
    rounds: repeat,
    curve: runs,
    ...(repeat > 1 ? { every_round: Object.fromEntries(each) } : {}),
  };
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
  log(`wrote ${outPath}`);
  process.stdout.write(formatTable(result.curve, chosen) + '\n');
  process.stdout.write(`${chosen} vs 1: throughput ×${result.throughput_ratio}, last channel's first token ×${result.last_channel_first_token_ratio} sooner, reaction p95 ×${result.reaction_p95_ratio}\n`);
}

/** Each measure's median over the rounds of one value (the table shows these). */
function medianRun(rounds: RunResult[]): RunResult {
  const keys = Object.keys(rounds[0]!) as Array<keyof RunResult>;
  return Object.fromEntries(keys.map((key) => [key, Math.round(median(rounds.map((r) => r[key])) * 10) / 10])) as unknown as RunResult;
}

/** One PARALLEL_REPLIES value in a fresh process. */
function child(parallel: number): Promise<RunResult> {
  const tsx = path.resolve('node_modules/.bin/tsx');
  return new Promise((resolve, reject) => {
    const proc = spawn(tsx, [new URL(import.meta.url).pathname, '--child', String(parallel), '--model', modelPath, ...(warm ? ['--warm'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the run with PARALLEL_REPLIES=${parallel} exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as RunResult);
    });
  });
}

async function runBurst(parallel: number): Promise<RunResult> {
  const config = parseConfig({ THREADS: '2', ...process.env, PARALLEL_REPLIES: String(parallel), WARM_CHANNELS: String(Math.max(8, parallel)) });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const engine = await Engine.create({
    ...engineOptions(config, modelPath),
    seed: SEED,
    // Greedy: every value generates the same replies, so messages per minute compare the same work
    // (sampled, the replies of one value came out 20-30% shorter than another's and looked faster).
    temperature: 0,
    // The label's mapping does not change the time a sentiment call takes; `off` skips learning one.
    sentimentCalibration: 'off',
  });
  const rssAfterLoad = process.memoryUsage().rss;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'burst-'));
  const store = await KeyvHistoryStore.open({ url: `sqlite://${folder}/h.sqlite` });
  const { turns } = benchHistory(engine.model, HISTORY_TOKENS);
  for (let c = 0; c < CHANNELS; c++) for (const turn of turns) await store.append(`burst-${c}`, turn);

  const replies: { tokens: number; decodeMs: number }[] = [];
  const queue = new GenerationQueue({ maxPending: CHANNELS * PER_CHANNEL + 8, parallelReplies: config.PARALLEL_REPLIES });
  const sessions = new ChannelSessions({
    engine,
    queue,
    store,
    observer: {
      replyDone: ({ ttftMs, ms, generatedTokens }) => {
        if (ttftMs !== undefined && generatedTokens !== undefined && generatedTokens > 1) replies.push({ tokens: generatedTokens - 1, decodeMs: ms - ttftMs });
      },
    },
  });
  // Warm-up: one sentiment call, so the first reaction of the burst does not pay for loading pages.
  await sessions.classify('warm-up', BENCH_MESSAGES[0]!);
  if (warm) {
    for (let c = 0; c < CHANNELS; c++) await sessions.handleMessage({ channelId: `burst-${c}`, userName: 'Bo', text: BENCH_MESSAGES[(c + 5) % BENCH_MESSAGES.length]! });
    replies.length = 0;
  }

  const reactions: number[] = [];
  const probes: number[] = [];
  const firstText = new Map<string, number>();
  const answered = new Map<string, number[]>();
  const started = performance.now();
  let generatedTokens = 0;
  let burstOver = false;
  const probing = (async () => {
    for (let i = 0; !burstOver; i++) {
      const at = performance.now();
      await sessions.classifyMessage('probe', BENCH_MESSAGES[(i + 3) % BENCH_MESSAGES.length]!);
      probes.push(performance.now() - at);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, PROBE_EVERY_MS - (performance.now() - at))));
    }
  })();
  const all: Promise<void>[] = [];
  for (let m = 0; m < PER_CHANNEL; m++) {
    for (let c = 0; c < CHANNELS; c++) {
      const channelId = `burst-${c}`;
      const arrived = performance.now();
      const text = BENCH_MESSAGES[(c * PER_CHANNEL + m) % BENCH_MESSAGES.length]!;
      all.push(
        sessions
          .handleMessage(
            { channelId, userName: c % 2 ? 'Ann' : 'Bo', text },
            {
              onSentiment: () => void reactions.push(performance.now() - arrived),
              onText: () => void (firstText.has(channelId) || firstText.set(channelId, performance.now() - started)),
            },
          )
          .then(() => {
            const list = answered.get(channelId) ?? [];
            list.push(m);
            answered.set(channelId, list);
          }),
      );
    }
  }
  const settled = await Promise.allSettled(all);
  const burstMs = performance.now() - started;
  burstOver = true;
  await probing;
  for (const outcome of settled) if (outcome.status === 'rejected') log(`  a turn failed: ${String(outcome.reason)}`);
  let orderViolations = 0;
  let answeredCount = 0;
  for (const list of answered.values()) {
    answeredCount += list.length;
    list.forEach((value, index) => void (index > 0 && value < list[index - 1]! && orderViolations++));
  }
  for (const reply of replies) generatedTokens += reply.tokens + 1;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  await sessions.close();
  await store.dispose();
  await engine.dispose();
  fs.rmSync(folder, { recursive: true, force: true });
  const everyReaction = [...reactions, ...probes];
  const round = (value: number) => Math.round(value * 10) / 10;
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  return {
    parallel_replies: parallel,
    answered: answeredCount,
    order_violations: orderViolations,
    generated_tokens: generatedTokens,
    burst_ms: Math.round(burstMs),
    messages_per_minute: round((answeredCount / burstMs) * 60_000),
    total_decode_tok_s: round((generatedTokens / burstMs) * 1000),
    last_channel_first_token_ms: Math.round(firstText.get(`burst-${CHANNELS - 1}`) ?? Number.NaN),
    reaction_ms_p50: Math.round(median(everyReaction)),
    reaction_ms_p95: Math.round(percentile(everyReaction, 95)),
    probe_reaction_ms_p50: Math.round(median(probes)),
    probe_reaction_ms_p95: Math.round(percentile(probes, 95)),
    per_reply_decode_tok_s_p50: round(median(replies.map((reply) => (reply.tokens / reply.decodeMs) * 1000))),
    rss_after_load_mb: mb(rssAfterLoad),
    rss_peak_mb: mb(peak),
  };
}

/** The curve as a Markdown table. */
function formatTable(runs: RunResult[], chosen: number): string {
  const cpu = execFileSync('sh', ['-c', "lscpu | sed -n 's/^Model name: *//p'"]).toString().trim() || os.cpus()[0]?.model;
  const lines = [
    `Burst of ${CHANNELS} ${warm ? 'warm' : 'cold'} channels × ${PER_CHANNEL} messages, ${path.basename(modelPath)}, THREADS=${parseConfig({ THREADS: '2', ...process.env }).THREADS}, ${cpu} (${os.availableParallelism()} cores)`,
    '',
    '| PARALLEL_REPLIES | messages/min | tokens generated | last channel first token | reaction p50 / p95 | per-reply decode | all replies decode | RSS peak |',
    '|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.parallel_replies}${r.parallel_replies === chosen ? ' (compared)' : ''} | ${r.messages_per_minute} | ${r.generated_tokens} | ${(r.last_channel_first_token_ms / 1000).toFixed(1)} s | ${r.reaction_ms_p50} / ${r.reaction_ms_p95} ms | ${r.per_reply_decode_tok_s_p50} tok/s | ${r.total_decode_tok_s} tok/s | ${r.rss_peak_mb} MB |`,
    ),
  ];
  return lines.join('\n');
}
