/** Nearest-rank percentile: always a value that was measured. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);

interface BenchResult {
  sentiment_ms_p50: number;
  sentiment_ms_p95: number;
  sentiment_naive_ms_p50: number;
  sentiment_speedup: number;
  sentiment_ms_p50_during_reply: number;
  sentiment_tokens_per_call: number;
  prefill_tok_s: number;
  ttft_ms_empty: number;
  ttft_ms_1500: number;
  ttft_reencode_ms_1500: number;
  ttft_growth: number;
  ttft_growth_bare: number;
  model_file_mb: number;
  ttft_speedup_1500: number;
  decode_tok_s: number;
  decode_tok_s_raw: number;
  decode_efficiency: number;
  per_token_overhead_ms: number;
  rss_mb: number;
  decode_rounds: Array<{ efficiency: number }>;
  decode_tok_s_raw_lone_sequence: number;
  classify_vs_bare: { product_ms_p50: number; bare_ms_p50: number; ratio: number; decode_steps: number };
  memory: { no_mmap: Record<string, number | boolean>; mmap: Record<string, number | boolean> };
  queue: { lost: number; order_violations: number; p50_wait_ms: number; p95_wait_ms: number; max_wait_ms: number; answered: number; channels: number; messages_per_channel: number };
  model: string;
  threads: number;
  machine: { cores: number; cpu: string };
}

/** The bench result as a readable table: measured value, target, and whether it is met. */
export function formatTable(r: BenchResult): string {
  const rows: [string, string, string][] = [
    ['sentiment p50 / p95 (idle)', `${r.sentiment_ms_p50} / ${r.sentiment_ms_p95} ms`, '≤ 80 ms'],
    ['sentiment p50 while a reply streams', `${r.sentiment_ms_p50_during_reply} ms`, ''],
    ['sentiment tokens evaluated per call', `${r.sentiment_tokens_per_call}`, ''],
    ['prompt evaluation speed (bare)', `${r.prefill_tok_s} tok/s`, ''],
    ['sentiment, naive full prompt p50', `${r.sentiment_naive_ms_p50} ms`, ''],
    ['sentiment speedup (naive / product)', `${r.sentiment_speedup}×`, '≥ 5×'],
    ['TTFT, warm, empty history', `${r.ttft_ms_empty} ms`, ''],
    ['TTFT, warm, ~1500 tokens history', `${r.ttft_ms_1500} ms`, ''],
    ['TTFT, history re-encoded (cold/naive)', `${r.ttft_reencode_ms_1500} ms`, ''],
    ['TTFT growth (1500 / empty)', `${r.ttft_growth}×`, '≤ 1.3×'],
    ['  same growth, bare llama.cpp evaluation', `${r.ttft_growth_bare}×`, ''],
    ['TTFT speedup at 1500 (re-encode / warm)', `${r.ttft_speedup_1500}×`, '≥ 5×'],
    ['decode, product reply path', `${r.decode_tok_s} tok/s`, ''],
    ['decode, bare evaluate loop (context of 9 sequences, as the product)', `${r.decode_tok_s_raw} tok/s`, ''],
    ['  the same on a context of 1 sequence', `${r.decode_tok_s_raw_lone_sequence} tok/s`, ''],
    ['decode efficiency', `${r.decode_efficiency}`, '≥ 0.9'],
    ['per-token overhead', `${r.per_token_overhead_ms} ms`, ''],
    ['  efficiency per round (alternating)', r.decode_rounds.map((round) => round.efficiency).join(' / '), '≥ 0.9 each'],
    ['classify vs bare, same tokens (p50)', `${r.classify_vs_bare.product_ms_p50} / ${r.classify_vs_bare.bare_ms_p50} ms = ${r.classify_vs_bare.ratio}×`, '≤ 1.1×'],
    ['RSS, model + 8 warm channels', `${r.rss_mb} MB`, '≤ 1000 MB'],
    ['  model file', `${r.model_file_mb} MB`, ''],
    ...(['no_mmap', 'mmap'] as const).map((option): [string, string, string] => {
      const m = r.memory[option];
      return [
        `  loaded ${option === 'mmap' ? 'with' : 'without'} mmap: Node / weights / KV / compute`,
        `${m.rss_node_mb} / ${m.weights_mb} (${m.weights_anon_mb} anon) / ${m.kv_cache_mb} / ${m.compute_and_other_mb} MB`,
        `${m.prefill_tok_s} tok/s prefill, ${m.decode_tok_s} decode`,
      ];
    }),
    [`queue burst ${r.queue.channels}×${r.queue.messages_per_channel}: answered / lost`, `${r.queue.answered} / ${r.queue.lost}`, 'lost = 0'],
    ['queue order violations', `${r.queue.order_violations}`, '= 0'],
    ['queue wait p50 / p95 / max', `${r.queue.p50_wait_ms} / ${r.queue.p95_wait_ms} / ${r.queue.max_wait_ms} ms`, ''],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  const lines = rows.map(([name, value, target]) => `${name.padEnd(width)}  ${value.padStart(valueWidth)}  ${target}`);
  return [`model ${r.model}, ${r.threads} threads, ${r.machine.cores} cores (${r.machine.cpu})`, ...lines].join('\n');
}
