/**
 * `npm run bench:store`: history append time at 10 and at 500 stored turns, and sentiment-log append
 * time at 10 and at 100,000 stored records, for each backend it can
 * reach: SQLite (a temp file) always, Redis and PostgreSQL at TEST_REDIS_URL / TEST_POSTGRES_URL
 * (start them with `source .ci/test-servers.sh && start_test_servers`). test/bench/run.ts calls
 * benchStoreAppends() too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore, openHistoryBackend } from '../../src/history/KeyvHistoryStore.js';
import { MOOD_PAGE_RECORDS, moodHeadKey, moodPageKey } from '../../src/history/moodLog.js';
import { maskCredentials } from '../../src/logger.js';
import { median } from './stats.js';

export interface StoreAppendTiming {
  backend: 'sqlite' | 'redis' | 'postgresql';
  /** Median ms of one append to a channel holding 10 turns, and holding 500 (the store's cap). */
  append_ms_at_10: number;
  append_ms_at_500: number;
  /** append_ms_at_500 / append_ms_at_10: the goal is at most 1.5. */
  growth: number;
  /** Median ms of one sentiment-log append to a channel holding 10 records, and holding `moodRecords` (100,000). */
  mood_append_ms_at_10: number;
  mood_append_ms_at_many: number;
  mood_records: number;
  /** mood_append_ms_at_many / mood_append_ms_at_10: the goal is at most 1.5. */
  mood_growth: number;
}

export interface StoreBenchOptions {
  /** Backends to try; a missing URL is skipped. Default: a temp SQLite file, TEST_REDIS_URL, TEST_POSTGRES_URL. */
  urls?: Partial<Record<StoreAppendTiming['backend'], string | undefined>>;
  /** Timed appends per size. Default 40. */
  samples?: number;
  /** Records in the big sentiment log (written straight into its pages, then appended to). Default 100,000. */
  moodRecords?: number;
  log?: (line: string) => void;
}

// A turn of typical size: a short message and a few sentences of reply (about 700 bytes stored).
const turn = (n: number): HistoryTurn => ({ userName: `user${n % 7}`, userText: `message ${n} `.repeat(12), reply: `reply ${n} `.repeat(60), at: Date.now() });

export async function benchStoreAppends({ urls, samples = 40, moodRecords = 100_000, log = () => {} }: StoreBenchOptions = {}): Promise<StoreAppendTiming[]> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'store-bench-'));
  const targets = urls ?? { sqlite: `sqlite://${folder}/h.sqlite`, redis: process.env.TEST_REDIS_URL, postgresql: process.env.TEST_POSTGRES_URL };
  const results: StoreAppendTiming[] = [];
  try {
    for (const [backend, url] of Object.entries(targets) as Array<[StoreAppendTiming['backend'], string | undefined]>) {
      if (!url) {
        log(`store bench: ${backend} skipped (no URL)`);
        continue;
      }
      const store = await KeyvHistoryStore.open({ url, maxTurns: 500 }).catch((error: Error) => error);
      if (store instanceof Error) {
        log(`store bench: ${backend} skipped: ${maskCredentials(store.message)}`);
        continue;
      }
      try {
        results.push({ ...(await measure(backend, store, samples)), ...(await measureMood(url, store, samples, moodRecords)) });
      } finally {
        await store.dispose();
      }
    }
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  return results;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function measure(backend: StoreAppendTiming['backend'], store: KeyvHistoryStore, samples: number) {
  const run = `bench-${process.pid}-${Date.now().toString(36)}`;
  const timed = async (channel: string, n: number) => {
    const started = performance.now();
    await store.append(channel, turn(n));
    return performance.now() - started;
  };
  // At 10: each sample is the 11th append to a channel of its own, so the history really holds 10.
  const at10: number[] = [];
  for (let s = 0; s < samples; s++) {
    const channel = `${run}-small-${s}`;
    for (let n = 0; n < 10; n++) await store.append(channel, turn(n));
    at10.push(await timed(channel, 10));
    await store.clear(channel);
  }
  // At 500: the channel is full, so every append also trims (and now and then drops a page).
  const big = `${run}-big`;
  for (let n = 0; n < 500; n++) await store.append(big, turn(n));
  const at500: number[] = [];
  for (let s = 0; s < samples; s++) at500.push(await timed(big, 500 + s));
  await store.clear(big);
  const [small, large] = [median(at10), median(at500)];
  return { backend, append_ms_at_10: round(small), append_ms_at_500: round(large), growth: Math.round((large / small) * 100) / 100 };
}

async function measureMood(url: string, store: KeyvHistoryStore, samples: number, records: number) {
  const run = `moodbench-${process.pid}-${Date.now().toString(36)}`;
  const now = Date.now();
  const record = (i: number) => ({ at: now - 29 * 86_400_000 + i * 1000, label: (['positive', 'neutral', 'negative'] as const)[i % 3]!, confidence: 0.5 + (i % 50) / 100 });
  const timed = async (channel: string) => {
    const started = performance.now();
    await store.appendMood(channel, { at: Date.now(), label: 'neutral', confidence: 0.8 });
    return performance.now() - started;
  };
  // The big log is written page by page in one transaction (appending 100,000 one by one takes minutes), as appends would leave it.
  const big = `${run}-big`;
  const raw = await openHistoryBackend({ url });
  try {
    await raw.run(moodHeadKey(big), 'write', async (kv) => {
      for (let page = 0; page * MOOD_PAGE_RECORDS < records; page++) {
        const count = Math.min(MOOD_PAGE_RECORDS, records - page * MOOD_PAGE_RECORDS);
        await kv.set(moodPageKey(big, page), { records: Array.from({ length: count }, (_, i) => record(page * MOOD_PAGE_RECORDS + i)) });
      }
      await kv.set(moodHeadKey(big), { v: 1, first: 0, next: records, oldestEnd: record(MOOD_PAGE_RECORDS - 1).at });
    });
  } finally {
    await raw.close();
  }
  // Untimed appends first: the bulk write's aftermath (SQLite's WAL checkpoint) is not an append's cost.
  for (let s = 0; s < 5; s++) await timed(big);
  // Small and big alternate, so a load that comes and goes on a shared machine hits both alike.
  const at10: number[] = [];
  const atMany: number[] = [];
  for (let s = 0; s < samples; s++) {
    const channel = `${run}-small-${s}`;
    for (let n = 0; n < 10; n++) await store.appendMood(channel, record(n));
    at10.push(await timed(channel));
    atMany.push(await timed(big));
    await store.clearMood(channel);
  }
  if ((await store.loadMood(big, 0)).length !== records + samples + 5) throw new Error('mood bench: the big log does not hold what was written');
  await store.clearMood(big);
  const [small, large] = [median(at10), median(atMany)];
  return { mood_append_ms_at_10: round(small), mood_append_ms_at_many: round(large), mood_records: records, mood_growth: Math.round((large / small) * 100) / 100 };
}

export function formatStoreBench(results: StoreAppendTiming[]): string {
  const rows = results.map((r) => `| ${r.backend} | ${r.append_ms_at_10.toFixed(2)} ms | ${r.append_ms_at_500.toFixed(2)} ms | ${r.growth.toFixed(2)}× |`);
  const moodRows = results.map(
    (r) => `| ${r.backend} | ${r.mood_append_ms_at_10.toFixed(2)} ms | ${r.mood_append_ms_at_many.toFixed(2)} ms | ${r.mood_growth.toFixed(2)}× |`,
  );
  const many = results[0]?.mood_records.toLocaleString('en-US') ?? '100,000';
  return [
    ...['| history backend | append at 10 turns | append at 500 turns | 500 / 10 (goal ≤ 1.5×) |', '|---|---|---|---|', ...rows],
    '',
    ...[`| sentiment log backend | append at 10 records | append at ${many} records | ${many} / 10 (goal ≤ 1.5×) |`, '|---|---|---|---|', ...moodRows],
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const results = await benchStoreAppends({ log: (line) => process.stderr.write(line + '\n') });
  process.stdout.write(formatStoreBench(results) + '\n' + JSON.stringify(results) + '\n');
  process.exit(0);
}
