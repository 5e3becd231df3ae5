/**
 * `npm run eval`: the sentiment classifier's quality with the configured MODEL (or `-- --model
 * path.gguf`): every calibration variant side by side on the held-out split of the project's
 * labeled set (test/fixtures/sentiment-eval.jsonl) and on human-rated snippets outside the
 * calibration set, beside the majority class and the AFINN word list, and how often a naive
 * in-chat classifier changes its label. `-- --limit N` classifies only N items of each split.
 * `-- --server URL` runs the same table through an inference server (INFERENCE_API, INFERENCE_API_KEY,
 * INFERENCE_MODEL and CHAT_TEMPLATE_FILE as configured), its calibration learned for that server and
 * model, and says how many calls gave a label the floor (a label outside the server's top-N).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config.js';
import { ServerEngine } from '../../src/engine/server/ServerEngine.js';
import { createLogger } from '../../src/logger.js';
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
  if (args.includes('--server')) return evalServer(args[args.indexOf('--server') + 1]!, config, heldOut, outside);
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

/** The same study through an inference server: the classifier is the ServerEngine's, nothing loaded here. */
async function evalServer(url: string, config: Config, heldOut: EvalItem[], outside: EvalItem[]): Promise<void> {
  const chatTemplate = config.CHAT_TEMPLATE_FILE === undefined ? undefined : await readFile(config.CHAT_TEMPLATE_FILE, 'utf8');
  const engine = await ServerEngine.start({
    url,
    api: config.INFERENCE_API,
    apiKey: config.INFERENCE_API_KEY,
    model: config.INFERENCE_MODEL,
    parallel: 1,
    timeoutMs: config.INFERENCE_TIMEOUT_MS,
    contextSize: 1024,
    historyMaxTokens: 256,
    replyMaxTokens: 16,
    systemPrompt: config.SYSTEM_PROMPT,
    chatTemplate,
    sentimentCalibration: 'learned',
    calibrationCacheDir: join(config.MODELS_DIR, 'calibration'),
    logger: createLogger('info'),
  });
  try {
    if (!engine.status().ready) throw new Error(`${engine.shownUrl} cannot be reached`);
    await engine.calibrationReady();
    const { model } = engine.status();
    const floorsBefore = engine.labelFloors;
    process.stderr.write(`classifying ${heldOut.length} + ${outside.length} messages with ${model} on ${engine.shownUrl}\n`);
    const classifier = {
      get calibration() {
        return engine.calibrationInUse;
      },
      contentFreeCalibration: () => engine.contentFreeCalibration(),
      classifyWithScores: (text: string) => engine.classifyWithScores(text),
      labelProbabilities: (text: string) => engine.labelProbabilities(text),
    };
    const study = await studySentiment({ classifier }, { heldOut, outside }, 1);
    const floors = engine.labelFloors - floorsBefore;
    process.stdout.write(
      `${model} on ${engine.status().runsOn}\n\n${formatReport(study.report)}\n\n${formatStudy(study)}\n\n` +
        `Label floors: ${floors} of the calls in this run had a label outside the server's top tokens and gave it the floor (the smallest probability returned).\n`,
    );
  } finally {
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`eval failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
