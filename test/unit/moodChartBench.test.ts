import { describe, expect, it } from 'vitest';
import { benchMoodChart, benchMoodRetention, formatMoodChartBench, formatMoodRetentionBench } from '../bench/moodChartBench.js';

describe('the /mood bench', () => {
  it('times counting and drawing a chart of the given size, in place and on the worker, and prints a table of it', async () => {
    const result = await benchMoodChart({ records: 2000, days: 30, renders: 2 });

    expect(result).toMatchObject({ records: 2000, days: 30 });
    for (const key of ['first_render_ms', 'summarize_ms_p50', 'render_ms_p50', 'render_ms_max', 'worker_render_ms_p50', 'worker_event_loop_stall_ms'] as const) expect(result[key], key).toBeGreaterThan(0);
    expect(result.render_ms_max).toBeGreaterThanOrEqual(result.render_ms_p50);
    expect(result.png_bytes).toBeGreaterThan(5000);
    expect(formatMoodChartBench(result)).toMatch(/^\| \/mood, 30 days of 2,000 records \| time \|\n\|---\|---\|\n\| count into buckets \(p50\) \| [\d.]+ ms \|/);
  });

  it('times /mood days:1 on logs of growing retention, beside a read of the whole log, and prints a table of it', async () => {
    const rows = await benchMoodRetention({ retentions: [2, 20], perDay: 100, runs: 2 });

    expect(rows.map((row) => [row.retention_days, row.records])).toEqual([
      [2, 200],
      [20, 2000],
    ]);
    for (const row of rows) for (const key of ['mood_1_day_ms_p50', 'read_1_day_ms_p50', 'read_all_ms'] as const) expect(row[key], key).toBeGreaterThan(0);
    expect(formatMoodRetentionBench(rows)).toMatch(/\| 20 days \| 2,000 \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \|$/);
  });
});
