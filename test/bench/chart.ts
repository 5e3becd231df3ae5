// The bench as a picture: one SVG (no browser needed) with a pair of bars per measure, the
// product beside what it is compared with, each pair on its own scale.

interface ChartInput {
  model: string;
  threads: number;
  machine: { cpu: string; cores: number };
  sentiment_ms_p50: number;
  sentiment_naive_ms_p50: number;
  classify_vs_bare: { product_ms_p50: number; bare_ms_p50: number };
  ttft_ms_1500: number;
  ttft_reencode_ms_1500: number;
  decode_tok_s: number;
  decode_tok_s_raw: number;
  memory: { no_mmap: Record<string, number | boolean>; mmap: Record<string, number | boolean> };
}

interface Pair {
  title: string;
  unit: string;
  product: { label: string; value: number };
  other: { label: string; value: number };
  better: 'lower' | 'higher';
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function benchChart(r: ChartInput): string {
  const pairs: Pair[] = [
    { title: 'Sentiment call, p50', unit: 'ms', product: { label: 'product (cached prefix)', value: r.sentiment_ms_p50 }, other: { label: 'naive (whole prompt each call)', value: r.sentiment_naive_ms_p50 }, better: 'lower' },
    { title: 'Classifier vs bare llama.cpp, same tokens', unit: 'ms', product: { label: 'product classify()', value: r.classify_vs_bare.product_ms_p50 }, other: { label: 'bare evaluate + erase', value: r.classify_vs_bare.bare_ms_p50 }, better: 'lower' },
    { title: 'First reply token, ~1500 tokens of history', unit: 'ms', product: { label: 'warm channel', value: r.ttft_ms_1500 }, other: { label: 'history re-encoded (naive)', value: r.ttft_reencode_ms_1500 }, better: 'lower' },
    { title: 'Decode speed, median of rounds', unit: 'tok/s', product: { label: 'product reply path', value: r.decode_tok_s }, other: { label: 'bare evaluate loop', value: r.decode_tok_s_raw }, better: 'higher' },
    { title: 'RSS after load + run (model, KV of 9 × 2048)', unit: 'MB', product: { label: 'weights read (no mmap)', value: Number(r.memory.no_mmap.rss_after_run_mb) }, other: { label: 'weights mapped (mmap)', value: Number(r.memory.mmap.rss_after_run_mb) }, better: 'lower' },
  ];
  const width = 760;
  const left = 250;
  const barMax = width - left - 90;
  const rowHeight = 78;
  const top = 56;
  const height = top + pairs.length * rowHeight + 16;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="22" font-size="15" font-weight="bold">${escape(`mood-bot bench: ${r.model}, ${r.threads} threads`)}</text>`,
    `<text x="16" y="40" fill="#555">${escape(`${r.machine.cpu}, ${r.machine.cores} cores. Blue: the product; grey: what it is compared with.`)}</text>`,
  ];
  pairs.forEach((pair, i) => {
    const y = top + i * rowHeight;
    const scale = barMax / Math.max(pair.product.value, pair.other.value, 1e-9);
    parts.push(`<text x="16" y="${y + 14}" font-weight="bold">${escape(`${pair.title} (${pair.better} is better)`)}</text>`);
    [pair.product, pair.other].forEach((bar, j) => {
      const barY = y + 22 + j * 24;
      const barWidth = Math.max(1, bar.value * scale);
      parts.push(
        `<text x="16" y="${barY + 14}">${escape(bar.label)}</text>`,
        `<rect x="${left}" y="${barY}" width="${barWidth.toFixed(1)}" height="18" fill="${j === 0 ? '#3b82f6' : '#9ca3af'}"/>`,
        `<text x="${(left + barWidth + 6).toFixed(1)}" y="${barY + 14}">${escape(`${bar.value} ${pair.unit}`)}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
