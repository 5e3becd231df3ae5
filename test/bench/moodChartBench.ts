/**
 * `npm run bench:mood`: how long /mood's work takes for a busy channel: loading nothing (the records
 * are made here), counting 100,000 records of 30 days into buckets, and drawing the 30-day chart
 * as a PNG, in place and through the bot's worker thread (with the longest the event loop went
 * without a turn meanwhile). The first render (fonts loaded, code warmed) is reported apart.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MoodRecord } from '../../src/history/HistoryStore.js';
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

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const result = await benchMoodChart();
  process.stdout.write(formatMoodChartBench(result) + '\n' + JSON.stringify(result) + '\n');
}
