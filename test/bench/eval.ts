/**
 * `npm run eval`: the sentiment classifier's quality on the labeled set (test/fixtures/sentiment-eval.jsonl)
 * with the configured MODEL: with and without calibration, beside the majority class and an AFINN
 * lexicon on the English half, and how often a naive in-chat classifier changes its label.
 * `-- --limit N` classifies only N items spread over the set (a smoke run).
 */
import { parseConfig } from '../../src/config.js';
import { Engine } from '../../src/engine/Engine.js';
import { resolveModelPath } from '../../src/engine/loadModel.js';
import { formatReport, loadEvalSet } from './evalHarness.js';
import { formatStudy, studySentiment } from './sentimentStudy.js';

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
    calibrateSentiment: true,
  });
  try {
    process.stderr.write(`classifying ${items.length} messages with ${modelPath} (${config.THREADS} threads)\n`);
    const study = await studySentiment(engine, items, config.THREADS);
    process.stdout.write(formatReport(study.calibrated) + '\n\n' + formatStudy(study) + '\n');
  } finally {
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`eval failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
