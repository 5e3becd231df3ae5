import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/tempDir.js';
import { ensureTinyModel } from '../support/testModels.js';

const run = promisify(execFile);
const dirs = tempDirs('bench-scripts-');
afterAll(() => dirs.removeAll());

describe('npm run bench -- --quick', () => {
  it('runs on the tiny model and writes every field of the report, well formed', async () => {
    const out = join(dirs.make(), 'latest.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', '--quick', '--out', out], { timeout: 120_000 });
    expect(stdout).toContain('sentiment speedup (naive / product)');
    const report = JSON.parse(readFileSync(out, 'utf8'));
    const positiveNumbers = [
      'sentiment_ms_p50', 'sentiment_ms_p95', 'sentiment_naive_ms_p50', 'sentiment_speedup', 'sentiment_ms_p50_during_reply',
      'sentiment_tokens_per_call', 'prefill_tok_s', 'ttft_ms_empty', 'ttft_ms_1500', 'ttft_reencode_ms_1500', 'ttft_growth',
      'ttft_speedup_1500', 'ttft_growth_bare', 'model_file_mb', 'decode_tok_s', 'decode_tok_s_raw', 'decode_efficiency', 'rss_mb', 'history_tokens',
    ];
    for (const key of positiveNumbers) {
      expect(report[key], key).toBeTypeOf('number');
      expect(report[key], key).toBeGreaterThan(0);
    }
    expect(report.per_token_overhead_ms).toBeTypeOf('number');
    expect(report.history_tokens).toBeGreaterThan(1000);
    expect(report.queue).toMatchObject({ lost: 0, order_violations: 0, answered: report.queue.channels * report.queue.messages_per_channel });
    expect(report.queue.max_wait_ms).toBeGreaterThanOrEqual(report.queue.p50_wait_ms);
    expect(report).toMatchObject({ quick: true, threads: 1, model: 'tiny-qwen2.gguf', node_llama_cpp: '3.21.1' });
    expect(report.machine.cores).toBeGreaterThan(0);
  }, 150_000);
});

describe('npm run eval', () => {
  it('classifies the labeled set with the configured model and prints accuracy, macro-F1, confusion and the lexicon baseline', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/bench/eval.ts', '--limit', '12'], {
      timeout: 120_000,
      env: { ...process.env, MODEL: await ensureTinyModel(), THREADS: '1', LOG_LEVEL: 'silent' },
    });
    expect(stdout).toContain('Sentiment eval: 12 items');
    expect(stdout).toMatch(/accuracy \d+\.\d%\s+macro-F1 \d+\.\d%/);
    expect(stdout).toContain('Confusion (rows gold, columns predicted)');
    expect(stdout).toMatch(/lexicon\s+\d+\.\d%/);
    expect(stdout).toMatch(/Latency per message: p50 \d/);
  }, 150_000);
});

describe('npm run bench:burst', () => {
  it('runs the burst for each PARALLEL_REPLIES value in rounds on the tiny model, answers all 12 messages in order each time, and writes the ratios and the curve', async () => {
    const out = join(dirs.make(), 'burst.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/bench/burstBench.ts', '--model', await ensureTinyModel(), '--parallel', '1,2', '--repeat', '2', '--out', out], {
      timeout: 240_000,
      env: { ...process.env, THREADS: '1', REPLY_MAX_TOKENS: '8' },
    });
    expect(stdout).toContain('| PARALLEL_REPLIES | messages/min |');
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report).toMatchObject({ model: 'tiny-qwen2.gguf', threads: 1, reply_max_tokens: 8, compared_parallel_replies: 2, burst: { channels: 4, messages_per_channel: 3 } });
    expect(report.curve.map((r: { parallel_replies: number }) => r.parallel_replies)).toEqual([1, 2]);
    // Two rounds of each value; the curve holds each measure's median over them.
    expect(Object.keys(report.every_round)).toEqual(['1', '2']);
    for (const rounds of Object.values(report.every_round) as Array<Array<{ answered: number }>>) expect(rounds.map((r) => r.answered)).toEqual([12, 12]);
    for (const r of report.curve) {
      expect(r).toMatchObject({ answered: 12, order_violations: 0 });
      for (const key of ['messages_per_minute', 'last_channel_first_token_ms', 'reaction_ms_p95', 'per_reply_decode_tok_s_p50', 'rss_peak_mb']) expect(r[key], key).toBeGreaterThan(0);
    }
    for (const key of ['throughput_ratio', 'last_channel_first_token_ratio', 'reaction_p95_ratio']) expect(report[key], key).toBeGreaterThan(0);
  }, 300_000);
});
