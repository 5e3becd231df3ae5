/**
 * `npm run bench:mood`: how long /mood's work takes for a busy channel: counting 100,000 records of
 * 30 days into buckets, and drawing the 30-day chart as a PNG, in place and through the bot's worker
 * thread (with the longest the event loop went without a turn meanwhile); the first render (fonts
 * loaded, code warmed) is reported apart. Then the store read: `/mood days:1` on a SQLite log of
 * 350 messages a day kept 30, 365 and 3,650 days, beside a read of the whole log (what /mood did before).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MoodRecord } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore, openHistoryBackend } from '../../src/history/KeyvHistoryStore.js';
import { MOOD_PAGE_RECORDS, moodHeadKey, moodPageKey } from '../../src/history/moodLog.js';
import { moodReport } from '../../src/mood/moodReport.js';
import { renderMoodChart } from '../../src/mood/moodChart.js';
import { MoodChartRenderer } from '../../src/mood/MoodChartRenderer.js';
import { DAY_MS, summarizeMood } from '../../src/mood/moodSummary.js';
import { median, percentile } from './stats.js';

export interface MoodChartTiming {
  records: number;
  days: number;
  first_render_ms: number;
  summarize_ms_p50: number;
  render_ms_p50: number;
  render_ms_max: number;
  /** Through MoodChartRenderer: one chart's round trip (p50), and the longest event-loop stall over all of them. */
  worker_render_ms_p50: number;
  worker_event_loop_stall_ms: number;
  png_bytes: number;
}

/** `records` spread evenly over `days` days with a fixed label pattern; `renders` timed renders after the first. */
export async function benchMoodChart({ records = 100_000, days = 30, renders = 10 } = {}): Promise<MoodChartTiming> {
  const now = Date.now();
  const log: MoodRecord[] = Array.from({ length: records }, (_, i) => ({
    at: now - days * DAY_MS + ((i + 0.5) * days * DAY_MS) / records,
    label: (['positive', 'neutral', 'positive', 'negative', 'neutral'] as const)[i % 5]!,
    confidence: 0.8,
  }));
  const timed = <T>(work: () => T): [T, number] => {
    const started = performance.now();
    const result = work();
    return [result, performance.now() - started];
  };
  const [firstSummary] = timed(() => summarizeMood(log, { days, now }));
  const [firstPng, firstMs] = timed(() => renderMoodChart({ channelName: 'general', days, summary: firstSummary }));
  const summarizeMs: number[] = [];
  const renderMs: number[] = [];
  for (let i = 0; i < renders; i++) {
    const [summary, sMs] = timed(() => summarizeMood(log, { days, now }));
    summarizeMs.push(sMs);
    renderMs.push(timed(() => renderMoodChart({ channelName: 'general', days, summary }))[1]);
  }
  const renderer = new MoodChartRenderer();
  const workerMs: number[] = [];
  let stall = 0;
  try {
    await renderer.render({ channelName: 'general', days, summary: firstSummary }); // the worker's start
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      stall = Math.max(stall, now - last);
      last = now;
    }, 1);
    for (let i = 0; i < renders; i++) {
      const started = performance.now();
      await renderer.render({ channelName: 'general', days, summary: firstSummary });
      workerMs.push(performance.now() - started);
    }
    clearInterval(ticker);
  } finally {
    await renderer.dispose();
  }
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    records,
    days,
    first_render_ms: round(firstMs),
    summarize_ms_p50: round(median(summarizeMs)),
    render_ms_p50: round(median(renderMs)),
    render_ms_max: round(percentile(renderMs, 100)),
    worker_render_ms_p50: round(median(workerMs)),
    worker_event_loop_stall_ms: round(stall),
    png_bytes: firstPng.length,
  };
}

export function formatMoodChartBench(t: MoodChartTiming): string {
  return [
    `| /mood, ${t.days} days of ${t.records.toLocaleString('en-US')} records | time |`,
    '|---|---|',
    `| count into buckets (p50) | ${t.summarize_ms_p50} ms |`,
    `| draw the PNG (p50 / max) | ${t.render_ms_p50} / ${t.render_ms_max} ms |`,
    `| first draw after start | ${t.first_render_ms} ms |`,
    `| draw on the worker thread, round trip (p50) | ${t.worker_render_ms_p50} ms |`,
    `| longest event-loop stall meanwhile | ${t.worker_event_loop_stall_ms} ms |`,
    `| PNG size | ${Math.round(t.png_bytes / 1000)} KB |`,
  ].join('\n');
}

export interface MoodRetentionTiming {
  retention_days: number;
  records: number;
  /** `/mood days:1` (store read, count, draw on the worker), p50. */
  mood_1_day_ms_p50: number;
  /** The store read of those records alone, p50. */
  read_1_day_ms_p50: number;
  /** A read of the whole log (every page), once. */
  read_all_ms: number;
}

/**
 * For each retention, a SQLite mood log of `perDay` records a day over that many days, then
 * `/mood days:1` timed `runs` times. The pages are written in the layout appendMood writes (one
 * append per record would take hours for 3,650 days); the whole-log read proves every record is there.
 */
export async function benchMoodRetention({ retentions = [30, 365, 3650], perDay = 350, runs = 5 } = {}): Promise<MoodRetentionTiming[]> {
  const results: MoodRetentionTiming[] = [];
  const charts = new MoodChartRenderer();
  try {
    for (const days of retentions) {
      const dir = mkdtempSync(path.join(tmpdir(), 'mood-retention-'));
      try {
        const url = `sqlite://${path.join(dir, 'h.sqlite')}`;
        const now = Date.now();
        const total = days * perDay;
        const channelId = 'busy';
        const backend = await openHistoryBackend({ url });
        await backend.run(moodHeadKey(channelId), 'write', async (kv) => {
          for (let page = 0; page * MOOD_PAGE_RECORDS < total; page++) {
            const records = Array.from({ length: Math.min(MOOD_PAGE_RECORDS, total - page * MOOD_PAGE_RECORDS) }, (_, i): MoodRecord => {
              const index = page * MOOD_PAGE_RECORDS + i;
              return { at: now - days * DAY_MS + ((index + 0.5) * days * DAY_MS) / total, label: (['positive', 'neutral', 'negative'] as const)[index % 3]!, confidence: 0.8 };
            });
            await kv.set(moodPageKey(channelId, page), { records });
          }
          await kv.set(moodHeadKey(channelId), { v: 1, first: 0, next: total });
        });
        await backend.close();
        const store = await KeyvHistoryStore.open({ url, moodRetentionDays: days, moodSweepIntervalMs: 0 });
        try {
          const readAllStarted = performance.now();
          const all = await store.loadMood(channelId, 0);
          const readAll = performance.now() - readAllStarted;
          if (all.length !== total) throw new Error(`the log holds ${all.length} records, not ${total}`);
          const moodMs: number[] = [];
          const readMs: number[] = [];
          for (let i = 0; i < runs; i++) {
            let started = performance.now();
            await moodReport({ store, channelId, channelName: 'busy', days: 1, emojis: { positive: '+', neutral: '=', negative: '-' }, charts });
            moodMs.push(performance.now() - started);
            started = performance.now();
            await store.loadMood(channelId, now - DAY_MS);
            readMs.push(performance.now() - started);
          }
          const round = (ms: number) => Math.round(ms * 10) / 10;
          results.push({ retention_days: days, records: total, mood_1_day_ms_p50: round(median(moodMs)), read_1_day_ms_p50: round(median(readMs)), read_all_ms: round(readAll) });
        } finally {
          await store.dispose();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await charts.dispose();
  }
  return results;
}

export function formatMoodRetentionBench(rows: MoodRetentionTiming[]): string {
  return [
    '| retention (350 messages a day) | records | `/mood days:1` (p50) | its store read (p50) | whole-log read |',
    '|---|---|---|---|---|',
    ...rows.map((t) => `| ${t.retention_days} days | ${t.records.toLocaleString('en-US')} | ${t.mood_1_day_ms_p50} ms | ${t.read_1_day_ms_p50} ms | ${t.read_all_ms} ms |`),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const result = await benchMoodChart();
  process.stdout.write(formatMoodChartBench(result) + '\n' + JSON.stringify(result) + '\n\n');
  const retention = await benchMoodRetention();
  process.stdout.write(formatMoodRetentionBench(retention) + '\n' + JSON.stringify(retention) + '\n');
}
