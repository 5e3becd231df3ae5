// The learned calibration on its own: plain numbers in, a correction out; and its cache by model hash.
import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SENTIMENT_LABELS, type SentimentLabel } from '../../src/domain.js';
import { learnCalibration, loadCalibrationSet } from '../../src/engine/learnCalibration.js';
import { calibratedScores, fitCalibration, type LabelProbabilities } from '../../src/engine/sentimentCalibration.js';
import { pickLabel } from '../../src/engine/SentimentClassifier.js';
import { tempDirs } from '../support/tempDir.js';

const dirs = tempDirs('calibration-');
afterAll(() => dirs.removeAll());

/** A model that leans hard toward "positive": the true label still has the most probability left after the lean. */
function leaningModel(truth: SentimentLabel, jitter: number): LabelProbabilities {
  const share = { positive: 0.1, neutral: 0.1, negative: 0.1 };
  share[truth] += 0.25 + jitter;
  share.positive += 0.5;
  const total = share.positive + share.neutral + share.negative;
  const p = { positive: share.positive / total, neutral: share.neutral / total, negative: share.negative / total };
  return { ...p, words: wordsOf(p) };
}

/** Label words as a classifier reads them: each label's own word carries most of its share, the other words a little. */
function wordsOf(p: Record<SentimentLabel, number>): number[] {
  const words = SENTIMENT_LABELS.flatMap((label) => [0.9 * p[label], 0.04 * p[label], 0.03 * p[label], 0.02 * p[label], 0.01 * p[label]]);
  const total = words.reduce((a, b) => a + b, 0);
  return words.map((w) => w / total);
}

const samples = Array.from({ length: 90 }, (_, i) => {
  const label = SENTIMENT_LABELS[i % 3]!;
  return { label, probabilities: leaningModel(label, (i % 7) / 100) };
});

describe('fitCalibration', () => {
  it('fits on the fifteen label words when asked, and reads the same lean through them', () => {
    const calibration = fitCalibration(samples, { features: 'words' });
    expect(calibration.features).toBe('words');
    expect(calibration.weights.map((row) => row.length)).toEqual([15, 15, 15]);
    const correct = samples.filter((s) => pickLabel(s.probabilities, calibration).label === s.label).length;
    expect(correct / samples.length).toBeGreaterThan(0.9);
  });

  it('a words calibration given label probabilities without words says what is missing instead of guessing', () => {
    const calibration = fitCalibration(samples, { features: 'words' });
    expect(() => pickLabel({ positive: 0.5, neutral: 0.3, negative: 0.2 }, calibration)).toThrow(/label words/);
  });

  it('given a model that says "positive" to everything, learns to read the label it leans toward underneath', () => {
    const raw = samples.map((s) => pickLabel(s.probabilities).label);
    expect(new Set(raw)).toEqual(new Set(['positive']));
    const calibration = fitCalibration(samples);
    const learned = samples.map((s) => pickLabel(s.probabilities, calibration).label);
    expect(learned).toEqual(samples.map((s) => s.label));
  });

  it('returns calibrated scores that are a probability distribution', () => {
    const calibration = fitCalibration(samples);
    const scores = calibratedScores(leaningModel('neutral', 0), calibration);
    expect(scores.positive + scores.neutral + scores.negative).toBeCloseTo(1, 9);
    expect(scores.neutral).toBeGreaterThan(0.5);
  });

  it('leaves the model as it is (the identity) when the set has fewer than two labels', () => {
    const calibration = fitCalibration(samples.filter((s) => s.label === 'negative'));
    expect(calibration.weights).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    expect(calibration.bias).toEqual([0, 0, 0]);
  });

  it('weighs each label the same whatever the set mix: 10 negatives among 60 positives still come out negative', () => {
    const skewed = [...samples.filter((s) => s.label !== 'negative'), ...samples.filter((s) => s.label !== 'negative'), ...samples.filter((s) => s.label === 'negative').slice(0, 10)];
    const calibration = fitCalibration(skewed);
    expect(pickLabel(leaningModel('negative', 0.03), calibration).label).toBe('negative');
  });
});

describe('learnCalibration (cached by the model file hash)', () => {
  const set = loadCalibrationSet().slice(0, 30);
  const probabilitiesOf = (text: string) => leaningModel(set.find((item) => item.text === text)!.label, 0);

  it('reads the shipped set: a few hundred labeled texts, every label well represented', () => {
    const all = loadCalibrationSet();
    expect(all.length).toBeGreaterThanOrEqual(240);
    for (const label of SENTIMENT_LABELS) expect(all.filter((item) => item.label === label).length).toBeGreaterThanOrEqual(80);
  });

  it('classifies the set once with progress, then a restart with the same model reads the fit from the cache', async () => {
    const dir = dirs.make();
    const modelPath = join(dir, 'model.gguf');
    writeFileSync(modelPath, 'weights v1');
    const cacheDir = join(dir, 'cache');
    let calls = 0;
    const progress: number[] = [];
    const options = { modelPath, cacheDir, promptKey: 'prompt', set, labelProbabilities: async (text: string) => (calls++, probabilitiesOf(text)), onProgress: (done: number) => progress.push(done) };
    const first = await learnCalibration(options);
    expect(first.cached).toBe(false);
    expect(first.calibration.features).toBe('words');
    expect(calls).toBe(30);
    expect(progress).toEqual([25, 30]);
    const second = await learnCalibration(options);
    expect(second.cached).toBe(true);
    expect(calls).toBe(30);
    expect(second.calibration).toEqual(first.calibration);
    expect(readdirSync(cacheDir).filter((file) => file.endsWith('.part'))).toEqual([]);
  });

  it('fits on the three labels alone when the reader gives no label words (a server path), and keeps that fit apart from the words fit', async () => {
    const dir = dirs.make();
    const modelPath = join(dir, 'model.gguf');
    writeFileSync(modelPath, 'weights v1');
    const cacheDir = join(dir, 'cache');
    const labelsOnly = async (text: string) => {
      const { positive, neutral, negative } = probabilitiesOf(text);
      return { positive, neutral, negative };
    };
    const fit = await learnCalibration({ modelPath, cacheDir, promptKey: 'prompt', set, labelProbabilities: labelsOnly, features: 'labels' });
    expect(fit.calibration.features).toBe('labels');
    expect(fit.calibration.weights.map((row) => row.length)).toEqual([3, 3, 3]);
    expect(pickLabel({ positive: 0.7, neutral: 0.2, negative: 0.1 }, fit.calibration).label).toBeDefined();
    const words = await learnCalibration({ modelPath, cacheDir, promptKey: 'prompt', set, labelProbabilities: async (text) => probabilitiesOf(text) });
    expect(words.cached).toBe(false);
    expect(words.calibration.features).toBe('words');
  });

  it('learns again for another model file, another prompt, or an unreadable cache file', async () => {
    const dir = dirs.make();
    const modelPath = join(dir, 'model.gguf');
    writeFileSync(modelPath, 'weights v1');
    const cacheDir = join(dir, 'cache');
    let calls = 0;
    const options = { modelPath, cacheDir, promptKey: 'prompt', set, labelProbabilities: async (text: string) => (calls++, probabilitiesOf(text)) };
    await learnCalibration(options);
    expect((await learnCalibration({ ...options, promptKey: 'another prompt' })).cached).toBe(false);
    writeFileSync(modelPath, 'weights v2');
    expect((await learnCalibration(options)).cached).toBe(false);
    for (const file of readdirSync(cacheDir)) writeFileSync(join(cacheDir, file), '{"kind":"learned","weights":');
    expect((await learnCalibration(options)).cached).toBe(false);
    expect(calls).toBe(4 * 30);
  });

  it('uses the fit when the cache folder cannot be written, says so once naming the folder, and leaves no .part file', async () => {
    const dir = dirs.make();
    const modelPath = join(dir, 'model.gguf');
    writeFileSync(modelPath, 'weights v1');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    const failures: string[] = [];
    const options = { modelPath, cacheDir: join(file, 'calibration'), promptKey: 'prompt', set, labelProbabilities: async (text: string) => probabilitiesOf(text) };
    const learned = await learnCalibration({ ...options, onSaveFailed: (folder) => failures.push(folder) });
    expect(learned.saved).toBe(false);
    expect(learned.calibration.kind).toBe('learned');
    expect(failures).toEqual([join(file, 'calibration')]);

    // A folder that takes the .part file but not the rename (a folder where the fit would go).
    const cacheDir = join(dir, 'cache');
    await learnCalibration({ ...options, cacheDir });
    const [fit] = readdirSync(cacheDir);
    rmSync(join(cacheDir, fit!));
    mkdirSync(join(cacheDir, fit!, 'in-the-way'), { recursive: true });
    const again = await learnCalibration({ ...options, cacheDir, onSaveFailed: (folder) => failures.push(folder) });
    expect(again.saved).toBe(false);
    expect(failures).toEqual([join(file, 'calibration'), cacheDir]);
    expect(readdirSync(cacheDir)).toEqual([fit]);
  });

  it('removes a crash\'s old .part files, fits of an older prompt of this model and fits of model files that are gone, and keeps other models\' fits', async () => {
    const dir = dirs.make();
    const cacheDir = join(dir, 'cache');
    const modelPath = join(dir, 'model.gguf');
    const otherModel = join(dir, 'other.gguf');
    const goneModel = join(dir, 'gone.gguf');
    writeFileSync(modelPath, 'weights v1');
    writeFileSync(otherModel, 'other weights');
    writeFileSync(goneModel, 'weights soon deleted');
    const options = { modelPath, cacheDir, promptKey: 'prompt of day 1', set, labelProbabilities: async (text: string) => probabilitiesOf(text) };
    await learnCalibration(options);
    const [oldPrompt] = readdirSync(cacheDir);
    await learnCalibration({ ...options, modelPath: otherModel });
    const otherFit = readdirSync(cacheDir).find((name) => name !== oldPrompt)!;
    await learnCalibration({ ...options, modelPath: goneModel });
    const goneFit = readdirSync(cacheDir).find((name) => name !== oldPrompt && name !== otherFit)!;
    rmSync(goneModel);
    writeFileSync(join(cacheDir, 'sentiment-calibration-0123456789abcdef0123456789abcdef.json'), JSON.stringify({ kind: 'learned', weights: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], bias: [0, 0, 0] }));
    writeFileSync(join(cacheDir, 'crashed.part'), '{');
    utimesSync(join(cacheDir, 'crashed.part'), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    writeFileSync(join(cacheDir, 'being-written.part'), '{');
    writeFileSync(join(cacheDir, 'notes.txt'), 'mine');

    await learnCalibration({ ...options, promptKey: 'prompt of day 2' });
    const left = readdirSync(cacheDir);
    expect(left).toContain(otherFit);
    expect(left).toContain('being-written.part');
    expect(left).toContain('notes.txt');
    expect(left).not.toContain(oldPrompt);
    expect(left).not.toContain(goneFit);
    expect(left).not.toContain('crashed.part');
    expect(left).not.toContain('sentiment-calibration-0123456789abcdef0123456789abcdef.json');
    expect(left).toHaveLength(4);
  });
});
