/**
 * One process, one loading option: where the memory goes (Node, weights, KV cache and compute
 * buffers) and how fast prompt evaluation and decoding run with it. Run in a child process per
 * option by the bench, so one option's pages never count for the other:
 * `tsx test/bench/memoryProbe.ts MODEL_PATH mmap|no-mmap THREADS CONTEXT_SIZE SEQUENCES`. Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';

const [modelPath, mmapArg, threadsArg, contextArg, sequencesArg] = process.argv.slice(2);
const useMmap = mmapArg === 'mmap';
const threads = Number(threadsArg);
const contextSize = Number(contextArg);
const sequences = Number(sequencesArg);

/** RSS split as the kernel counts it: anonymous memory vs pages of mapped files. */
function rss(): { total: number; anon: number; file: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { total: Math.round(kb('VmRSS')), anon: Math.round(kb('RssAnon')), file: Math.round(kb('RssFile')) };
}

/** f16 keys and values for every layer and cell: what llama.cpp allocates for the context up front. */
function kvCacheBytes(metadata: Record<string, Record<string, unknown>>, cells: number): number {
  const arch = String((metadata.general as { architecture: string }).architecture);
  const info = metadata[arch] as { block_count: number; embedding_length: number; attention: { head_count: number; head_count_kv?: number } };
  const kvWidth = (info.embedding_length / info.attention.head_count) * (info.attention.head_count_kv ?? info.attention.head_count);
  return info.block_count * cells * 2 * kvWidth * 2;
}

const node = rss();
const llama = await getLlama({ gpu: false, logLevel: 'error' as never, progressLogs: false });
const started = performance.now();
const model = await llama.loadModel({ modelPath: modelPath!, useMmap });
const loadMs = performance.now() - started;
const afterModel = rss();
const context = await model.createContext({ sequences, contextSize, threads, batchSize: Math.min(512, contextSize) });
const afterContext = rss();
const kvBytes = kvCacheBytes(model.fileInfo.metadata as unknown as Record<string, Record<string, unknown>>, contextSize * sequences);

// Speed with this option: a 256-token prompt, then 48 decoded tokens, each twice (the first pass warms the pages).
const sequence = context.getSequence();
const prompt = model.tokenize('The quick brown fox jumps over the lazy dog while the band plays on. '.repeat(30)).slice(0, 256);
let prefillTokS = 0;
let decodeTokS = 0;
for (let pass = 0; pass < 2; pass++) {
  await sequence.clearHistory();
  const t0 = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  prefillTokS = prompt.length / ((performance.now() - t0) / 1000);
  await sequence.clearHistory();
  const stamps: number[] = [];
  for await (const token of sequence.evaluate(prompt.slice(0, 16), { temperature: 0.7, seed: 1 })) {
    void token;
    stamps.push(performance.now());
    if (stamps.length >= 48) break;
  }
  decodeTokS = ((stamps.length - 1) / (stamps.at(-1)! - stamps[0]!)) * 1000;
}
const afterRun = rss();
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
process.stdout.write(
  JSON.stringify({
    use_mmap: useMmap,
    load_ms: Math.round(loadMs),
    rss_node_mb: node.total,
    weights_mb: afterModel.total - node.total,
    weights_anon_mb: afterModel.anon - node.anon,
    weights_file_pages_mb: afterModel.file - node.file,
    context_mb: afterContext.total - afterModel.total,
    kv_cache_mb: mb(kvBytes),
    compute_and_other_mb: afterRun.total - afterModel.total - mb(kvBytes),
    rss_after_run_mb: afterRun.total,
    prefill_tok_s: Math.round(prefillTokS),
    decode_tok_s: Math.round(decodeTokS * 10) / 10,
  }) + '\n',
);
await context.dispose();
await model.dispose();
await llama.dispose();
