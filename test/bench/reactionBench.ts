/**
 * `npm run bench:reaction -- --model path.gguf`: the reaction's latency with the classifier as it
 * ships against the classifier as it was before issue 15 (a shorter instruction, six examples, and
 * content-free calibration), side by side in one run: one model, one context, a sequence each,
 * the same messages, calls alternating so the machine's load falls on both alike.
 */
import { getLlama } from 'node-llama-cpp';
import { parseConfig } from '../../src/config.js';
import { sentimentCalibration } from '../../src/engine/Engine.js';
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
const context = await model.createContext({ contextSize: 2048, sequences: 2, threads: config.THREADS, batchSize: 512 });
const { wrapper: chatWrapper } = modelChatWrapper(model, { thinking: false, today: new Date() });
const before = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper, ...PREVIOUS });
before.calibration = await before.contentFreeCalibration();
const after = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper });
after.calibration = await sentimentCalibration(after, {
  modelPath,
  sentimentCalibration: 'learned',
  onCalibrationProgress: (done, total) => log(`learning the calibration: ${done}/${total}`),
});
log(`model ${modelPath}, ${config.THREADS} threads; prefix ${before.prefixTokenCount} tokens before, ${after.prefixTokenCount} after`);

const timings = { before: [] as number[], after: [] as number[] };
const time = async (classifier: SentimentClassifier, text: string) => {
  const started = performance.now();
  await classifier.classify(text);
  return performance.now() - started;
};
for (const text of BENCH_MESSAGES.slice(0, 4)) await Promise.all([before.classify(text), after.classify(text)]); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const [i, text] of BENCH_MESSAGES.entries()) {
    // Alternate which goes first, so neither always meets a warmer cache.
    if ((i + round) % 2 === 0) {
      timings.before.push(await time(before, text));
      timings.after.push(await time(after, text));
    } else {
      timings.after.push(await time(after, text));
      timings.before.push(await time(before, text));
    }
  }
  log(`round ${round + 1}/${rounds}: p50 before ${median(timings.before).toFixed(1)} ms, after ${median(timings.after).toFixed(1)} ms`);
}
const result = {
  model: modelPath,
  threads: config.THREADS,
  calls: timings.before.length,
  before_ms_p50: +median(timings.before).toFixed(1),
  before_ms_p95: +percentile(timings.before, 95).toFixed(1),
  after_ms_p50: +median(timings.after).toFixed(1),
  after_ms_p95: +percentile(timings.after, 95).toFixed(1),
  ratio_p50: +(median(timings.after) / median(timings.before)).toFixed(3),
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
await context.dispose();
await model.dispose();
await llama.dispose();
