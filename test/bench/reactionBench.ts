/**
 * `npm run bench:reaction -- --model path.gguf`: the reaction's latency with the classifier as it
 * ships against the classifier as it was before issue 15 (a shorter instruction, six examples, and
 * content-free calibration) and as it was before issue 26 (the labels alone, no label words), side
 * by side in one run: one model, one context, a sequence each, the same messages, calls rotating so
 * the machine's load falls on all alike. `--quick-calibration N` fits each learned calibration on
 * N texts of the set instead of all (the same per-call work, minutes less on a busy machine).
 */
import { getLlama } from 'node-llama-cpp';
import { parseConfig } from '../../src/config.js';
import { sentimentCalibration } from '../../src/engine/Engine.js';
import { loadCalibrationSet } from '../../src/engine/learnCalibration.js';
import { fitCalibration, type CalibrationFeatures } from '../../src/engine/sentimentCalibration.js';
import { modelChatWrapper } from '../../src/engine/modelChatWrapper.js';
import { SentimentClassifier } from '../../src/engine/SentimentClassifier.js';
import { BENCH_MESSAGES } from './benchData.js';
import { median, percentile } from './stats.js';

/** The classifier's prompt before issue 15, kept here only to measure against. */
const PREVIOUS = {
  instruction:
    'You are a cold sentiment analyst. Classify the sentiment of the user message. ' + 'Answer with exactly one word: positive, neutral or negative.',
  examples: [
    { text: 'just got the job offer!!! 🎉', label: 'positive' },
    { text: 'what time does the stream start tonight?', label: 'neutral' },
    { text: 'wow, amazing, the bus skipped my stop again 🙃', label: 'negative' },
    { text: '这家店的面太好吃了，下次还来', label: 'positive' },
    { text: '快递到了，放在门口了', label: 'neutral' },
    { text: '又下雨了，伞也丢了，烦死了', label: 'negative' },
  ] as const,
};

const args = process.argv.slice(2);
const config = parseConfig(process.env);
const modelPath = args.includes('--model') ? args[args.indexOf('--model') + 1]! : process.env.MODEL!;
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 5;
const log = (line: string) => process.stderr.write(line + '\n');

const llama = await getLlama({ gpu: false });
const model = await llama.loadModel({ modelPath });
const quick = args.includes('--quick-calibration') ? Number(args[args.indexOf('--quick-calibration') + 1]) : 0;
const context = await model.createContext({ contextSize: 2048, sequences: 3, threads: config.THREADS, batchSize: 512 });
const { wrapper: chatWrapper } = modelChatWrapper(model, { thinking: false, today: new Date() });
const before = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper, ...PREVIOUS });
before.calibration = await before.contentFreeCalibration();
const after = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper });
const labelsOnly = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper, labelWords: false });
const quickFit = async (classifier: SentimentClassifier, features: CalibrationFeatures) => {
  const all = loadCalibrationSet();
  const set = all.filter((_, i) => i % Math.max(1, Math.floor(all.length / quick)) === 0);
  const samples = [];
  for (const item of set) samples.push({ probabilities: await classifier.labelProbabilities(item.text), label: item.label });
  return fitCalibration(samples, { features });
};
if (quick > 0) {
  after.calibration = await quickFit(after, 'words');
  labelsOnly.calibration = await quickFit(labelsOnly, 'labels');
} else {
  after.calibration = await sentimentCalibration(after, {
    modelPath,
    sentimentCalibration: 'learned',
    onCalibrationProgress: (done, total) => log(`learning the calibration: ${done}/${total}`),
  });
  const samples = [];
  for (const item of loadCalibrationSet()) samples.push({ probabilities: await labelsOnly.labelProbabilities(item.text), label: item.label });
  labelsOnly.calibration = fitCalibration(samples, { features: 'labels' });
}
log(`model ${modelPath}, ${config.THREADS} threads; prefix ${before.prefixTokenCount} tokens before, ${after.prefixTokenCount} after`);

const timings = { before: [] as number[], after: [] as number[], labelsOnly: [] as number[] };
const time = async (classifier: SentimentClassifier, text: string) => {
  const started = performance.now();
  await classifier.classify(text);
  return performance.now() - started;
};
for (const text of BENCH_MESSAGES.slice(0, 4)) for (const classifier of [before, labelsOnly, after]) await classifier.classify(text); // warm-up
const arms = [['before', before], ['labelsOnly', labelsOnly], ['after', after]] as const;
for (let round = 0; round < rounds; round++) {
  for (const [i, text] of BENCH_MESSAGES.entries()) {
    // Rotate which goes first, so none always meets a warmer cache.
    for (let k = 0; k < arms.length; k++) {
      const [name, classifier] = arms[(i + round + k) % arms.length]!;
      timings[name].push(await time(classifier, text));
    }
  }
  log(`round ${round + 1}/${rounds}: p50 before ${median(timings.before).toFixed(1)} ms, labels only ${median(timings.labelsOnly).toFixed(1)} ms, after ${median(timings.after).toFixed(1)} ms`);
}
const result = {
  model: modelPath,
  threads: config.THREADS,
  calls: timings.before.length,
  before_ms_p50: +median(timings.before).toFixed(1),
  before_ms_p95: +percentile(timings.before, 95).toFixed(1),
  after_ms_p50: +median(timings.after).toFixed(1),
  after_ms_p95: +percentile(timings.after, 95).toFixed(1),
  labels_only_ms_p50: +median(timings.labelsOnly).toFixed(1),
  labels_only_ms_p95: +percentile(timings.labelsOnly, 95).toFixed(1),
  ratio_p50: +(median(timings.after) / median(timings.before)).toFixed(3),
  /** Issue 26's cost: the label words read with the labels, against the labels alone. */
  ratio_p50_vs_labels_only: +(median(timings.after) / median(timings.labelsOnly)).toFixed(3),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
await context.dispose();
await model.dispose();
await llama.dispose();
