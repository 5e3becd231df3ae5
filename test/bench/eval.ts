/**
 * `npm run eval`: the sentiment classifier's quality on the labeled set (test/fixtures/sentiment-eval.jsonl)
 * with the configured MODEL, beside a lexicon baseline on the English half.
 * `-- --limit N` classifies only N items spread over the set (a smoke run).
 */
import { parseConfig } from '../../src/config.js';
import { Engine } from '../../src/engine/Engine.js';
import { resolveModelPath } from '../../src/engine/loadModel.js';
import { formatReport, loadEvalSet, runEval } from './evalHarness.js';

const EVAL_SET = 'test/fixtures/sentiment-eval.jsonl';

async function main(): Promise<void> {
  const dotenv = await import('dotenv');
  dotenv.config({ quiet: true });
  const config = parseConfig(process.env);
  const args = process.argv.slice(2);
  const limit = args.includes('--limit') ? Number(args[args.indexOf('--limit') + 1]) : Infinity;
  const all = loadEvalSet(EVAL_SET);
  // A limited run samples across the whole set (both languages, all labels), not just its start.
  const step = Number.isFinite(limit) ? Math.max(1, Math.floor(all.length / limit)) : 1;
  const items = all.filter((_, index) => index % step === 0).slice(0, limit);
  const modelPath = await resolveModelPath({ model: config.MODEL, modelsDir: config.MODELS_DIR });
  const engine = await Engine.create({
    modelPath,
    threads: config.THREADS,
    contextSize: 1024,
    warmChannels: 1,
    historyMaxTokens: 256,
    replyMaxTokens: 16,
    systemPrompt: config.SYSTEM_PROMPT,
  });
  try {
    process.stderr.write(`classifying ${items.length} messages with ${modelPath} (${config.THREADS} threads)\n`);
    const report = await runEval({ items, classify: (text) => engine.classify(text) });
    process.stdout.write(formatReport(report) + '\n');
  } finally {
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`eval failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
