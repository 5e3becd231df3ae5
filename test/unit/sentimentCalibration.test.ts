// The learned calibration on its own: plain numbers in, a correction out; and its cache by model hash.
import { readdirSync, writeFileSync } from 'node:fs';
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
});
