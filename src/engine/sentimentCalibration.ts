// How the classifier turns the model's three label probabilities into a label. The raw
// probabilities of a small model lean toward one word (SmolLM2 says "positive" to nearly
// anything; a Qwen2.5-0.5B-class model says "negative" to plain logistics), and which way it leans
// differs by model, so the correction is learned for the loaded model: a multinomial logistic
// regression on the log-probabilities, fitted on a small labeled set that ships with the project.
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';

export type LabelProbabilities = Readonly<Record<SentimentLabel, number>> & {
  /** The label words' shares (LABEL_WORDS order, flattened), when the classifier read them. */
  readonly words?: ReadonlyArray<number>;
};

/** What a learned calibration reads: the three labels' log-probabilities, or the fifteen label words'. */
export type CalibrationFeatures = 'labels' | 'words';

/** A fitted correction: scores = weights · log(features) + bias, one row per label (SENTIMENT_LABELS order). */
export interface LearnedCalibration {
  kind: 'learned';
  weights: number[][];
  bias: number[];
  /** Absent: 'labels' (fits cached before issue 26). */
  features?: CalibrationFeatures;
}

/** Zhao et al. 2021: divide out the prior the model gives content-free inputs. */
export interface ContentFreeCalibration {
  kind: 'content-free';
  prior: Record<SentimentLabel, number>;
}

export type Calibration = LearnedCalibration | ContentFreeCalibration;

export interface LabeledProbabilities {
  probabilities: LabelProbabilities;
  label: SentimentLabel;
}

// Probabilities under this are treated as this: log(0) would make one label impossible forever.
const FLOOR = 1e-6;

/** The features a learned calibration reads: the log-probability of each label, or of each label word. */
export function logFeatures(probabilities: LabelProbabilities, features: CalibrationFeatures = 'labels'): number[] {
  if (features === 'words') {
    if (!probabilities.words) throw new Error('This calibration reads label words, but the classifier gave only the labels.');
    return probabilities.words.map((p) => Math.log(Math.max(p, FLOOR)));
  }
  return SENTIMENT_LABELS.map((label) => Math.log(Math.max(probabilities[label], FLOOR)));
}

/** Each label's calibrated score (higher wins); for content-free, the ratio to the prior. */
export function calibratedScores(probabilities: LabelProbabilities, calibration?: Calibration): Record<SentimentLabel, number> {
  if (!calibration) return { positive: probabilities.positive, neutral: probabilities.neutral, negative: probabilities.negative };
  if (calibration.kind === 'content-free') {
    const { prior } = calibration;
    return { positive: probabilities.positive / prior.positive, neutral: probabilities.neutral / prior.neutral, negative: probabilities.negative / prior.negative };
  }
  return softmaxRecord(linearScores(calibration, logFeatures(probabilities, calibration.features)));
}

/**
 * The mean of several label distributions as a prior to divide out: over content-free inputs
 * (Zhao et al. 2021) or over a batch of real inputs (Zhou et al. 2024). A label the model never
 * says keeps a small floor instead of dividing by zero.
 */
export function meanPrior(probabilities: ReadonlyArray<LabelProbabilities>): ContentFreeCalibration {
  const prior = { positive: 0, neutral: 0, negative: 0 } satisfies Record<SentimentLabel, number>;
  for (const p of probabilities) for (const label of SENTIMENT_LABELS) prior[label] += p[label] / probabilities.length;
  for (const label of SENTIMENT_LABELS) prior[label] = Math.max(prior[label], 1e-3);
  return { kind: 'content-free', prior };
}

export interface FitOptions {
  /** L2 penalty on the (standardized) weights, not the bias. Default 0.01: a dozen parameters, a few hundred samples. */
  l2?: number;
  /** Full-batch gradient steps. Default 3000. */
  iterations?: number;
  /** Step size. Default 0.5. */
  learningRate?: number;
  /** What the fit reads (see CalibrationFeatures). Default 'labels'. */
  features?: CalibrationFeatures;
}

/**
 * Fits the learned calibration: multinomial logistic regression on the log-probabilities, by
 * gradient descent on the class-balanced cross-entropy. Class weights make each label count the
 * same, so the set's label mix does not become the bot's bias. The features are standardized
 * while fitting (a label the model almost never says has log-probabilities near -10, which would
 * stall plain gradient descent) and the scaling is folded back into the returned weights. A set
 * with fewer than two labels leaves the model as it is (the identity).
 */
export function fitCalibration(samples: ReadonlyArray<LabeledProbabilities>, options: FitOptions = {}): LearnedCalibration {
  const identity: LearnedCalibration = { kind: 'learned', weights: SENTIMENT_LABELS.map((_, row) => SENTIMENT_LABELS.map((__, column) => (row === column ? 1 : 0))), bias: [0, 0, 0] };
  const targets = samples.map((sample) => SENTIMENT_LABELS.indexOf(sample.label));
  if (new Set(targets).size < 2) return identity;
  const features = options.features ?? 'labels';
  const { weights, bias } = fitLogisticRegression(samples.map((sample) => logFeatures(sample.probabilities, features)), targets, options);
  return { kind: 'learned', weights, bias, features };
}

/**
 * Class-balanced multinomial logistic regression over any number of features (one row of weights
 * per label, SENTIMENT_LABELS order), by full-batch gradient descent on standardized features;
 * the scaling is folded back into the returned weights. `targets` are indexes into SENTIMENT_LABELS.
 */
export function fitLogisticRegression(raw: ReadonlyArray<ReadonlyArray<number>>, targets: ReadonlyArray<number>, options: FitOptions = {}): { weights: number[][]; bias: number[] } {
  const { l2 = 0.01, iterations = 3000, learningRate = 0.5 } = options;
  const k = SENTIMENT_LABELS.length;
  const d = raw[0]?.length ?? 0;
  const counts = SENTIMENT_LABELS.map((_, index) => targets.filter((target) => target === index).length);
  const present = counts.filter((count) => count > 0).length;
  const n = raw.length;
  const columns = Array.from({ length: d }, (_, j) => j);
  const mean = columns.map((j) => raw.reduce((sum, x) => sum + x[j]!, 0) / n);
  const std = columns.map((j) => Math.sqrt(raw.reduce((sum, x) => sum + (x[j]! - mean[j]!) ** 2, 0) / n) || 1);
  const features = raw.map((x) => x.map((value, j) => (value - mean[j]!) / std[j]!));
  const classWeight = counts.map((count) => (count > 0 ? n / (present * count) : 0));
  const fitted = { weights: SENTIMENT_LABELS.map(() => columns.map(() => 0)), bias: SENTIMENT_LABELS.map(() => 0) };
  const { weights, bias } = fitted;
  for (let step = 0; step < iterations; step++) {
    const gradWeights = weights.map((row) => row.map(() => 0));
    const gradBias = bias.map(() => 0);
    for (let i = 0; i < n; i++) {
      const x = features[i]!;
      const p = softmax(linearScores(fitted, x));
      const w = classWeight[targets[i]!]!;
      for (let row = 0; row < k; row++) {
        const g = w * (p[row]! - (row === targets[i] ? 1 : 0));
        gradBias[row]! += g;
        for (let column = 0; column < d; column++) gradWeights[row]![column]! += g * x[column]!;
      }
    }
    for (let row = 0; row < k; row++) {
      bias[row]! -= (learningRate * gradBias[row]!) / n;
      for (let column = 0; column < d; column++) weights[row]![column]! -= learningRate * (gradWeights[row]![column]! / n + l2 * weights[row]![column]!);
    }
  }
  // Back to raw features: w·(x - mean)/std + b = (w/std)·x + (b - Σ w·mean/std).
  return {
    weights: weights.map((row) => row.map((weight, column) => weight / std[column]!)),
    bias: bias.map((b, row) => b - weights[row]!.reduce((sum, weight, column) => sum + (weight * mean[column]!) / std[column]!, 0)),
  };
}

/** Each label's probability under a fitted regression, for features of the kind it was fitted on. */
export function regressionScores(fitted: { weights: number[][]; bias: number[] }, x: ReadonlyArray<number>): Record<SentimentLabel, number> {
  return softmaxRecord(linearScores(fitted, x));
}

function linearScores({ weights, bias }: { weights: number[][]; bias: number[] }, x: ReadonlyArray<number>): number[] {
  return weights.map((row, index) => row.reduce((sum, weight, column) => sum + weight * x[column]!, bias[index]!));
}

function softmax(z: number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((value) => Math.exp(value - max));
  const total = e.reduce((sum, value) => sum + value, 0);
  return e.map((value) => value / total);
}

function softmaxRecord(z: number[]): Record<SentimentLabel, number> {
  const p = softmax(z);
  return { positive: p[0]!, neutral: p[1]!, negative: p[2]! };
}
