/**
 * `npm run eval`: the sentiment classifier's quality with the configured MODEL (or `-- --model
 * path.gguf`): every calibration variant side by side on the held-out split of the project's
 * labeled set (test/fixtures/sentiment-eval.jsonl) and on human-rated snippets outside the
 * calibration set, beside the majority class and the AFINN word list, and how often a naive
 * in-chat classifier changes its label. `-- --limit N` classifies only N items of each split.
 */
import { parseConfig } from '../../src/config.js';
import { Engine } from '../../src/engine/Engine.js';
import { resolveModelPath } from '../../src/engine/loadModel.js';
import { formatReport, loadEvalSet, type EvalItem } from './evalHarness.js';
import { formatStudy, heldOutSplit, studySentiment } from './sentimentStudy.js';

const EVAL_SET = 'test/fixtures/sentiment-eval.jsonl';
const OUTSIDE_SET = 'test/fixtures/sentiment-vader-heldout.jsonl';

async function main(): Promise<void> {
  const dotenv = await import('dotenv');
  dotenv.config({ quiet: true });
  const config = parseConfig(process.env);
  const args = process.argv.slice(2);
  const limit = args.includes('--limit') ? Number(args[args.indexOf('--limit') + 1]) : Infinity;
  // A limited run samples across the whole split (both languages, all labels), not just its start.
  const sample = (items: EvalItem[]) => {
    const step = Number.isFinite(limit) ? Math.max(1, Math.floor(items.length / limit)) : 1;
    return items.filter((_, index) => index % step === 0).slice(0, limit);
  };
  const heldOut = sample(heldOutSplit(loadEvalSet(EVAL_SET)).heldOut);
  const outside = sample(loadEvalSet(OUTSIDE_SET));
  const modelPath = args.includes('--model') ? args[args.indexOf('--model') + 1]! : await resolveModelPath({ model: config.MODEL, modelsDir: config.MODELS_DIR });
  const engine = await Engine.create({
    modelPath,
    threads: config.THREADS,
    contextSize: 1024,
    warmChannels: 1,
    historyMaxTokens: 256,
    replyMaxTokens: 16,
    systemPrompt: config.SYSTEM_PROMPT,
    sentimentCalibration: 'learned',
    onCalibrationProgress: (done, total) => process.stderr.write(`learning the calibration for this model: ${done}/${total}\n`),
  });
  try {
    process.stderr.write(`classifying ${heldOut.length} + ${outside.length} messages with ${modelPath} (${config.THREADS} threads)\n`);
    const study = await studySentiment(engine, { heldOut, outside }, config.THREADS);
    process.stdout.write(`${modelPath}\n\n${formatReport(study.report)}\n\n${formatStudy(study)}\n`);
  } finally {
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`eval failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
