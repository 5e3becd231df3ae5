// How the classifier turns the model's three label probabilities into a label. The raw
// probabilities of a small model lean toward one word (SmolLM2 says "positive" to nearly
// anything; a Qwen2.5-0.5B-class model says "negative" to plain logistics), and which way it leans
// differs by model, so the correction is learned for the loaded model: a multinomial logistic
// regression on the log-probabilities, fitted on a small labeled set that ships with the project.
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';

export type LabelProbabilities = Readonly<Record<SentimentLabel, number>>;

/** A fitted correction: scores = weights · log(p) + bias, one row per label (SENTIMENT_LABELS order). */
export interface LearnedCalibration {
  kind: 'learned';
  weights: number[][];
  bias: number[];
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

/** The features a learned calibration reads: the log-probability of each label. */
export function logFeatures(probabilities: LabelProbabilities): number[] {
  return SENTIMENT_LABELS.map((label) => Math.log(Math.max(probabilities[label], FLOOR)));
}

/** Each label's calibrated score (higher wins); for content-free, the ratio to the prior. */
export function calibratedScores(probabilities: LabelProbabilities, calibration?: Calibration): Record<SentimentLabel, number> {
  if (!calibration) return { ...probabilities };
  if (calibration.kind === 'content-free') {
    const { prior } = calibration;
    return { positive: probabilities.positive / prior.positive, neutral: probabilities.neutral / prior.neutral, negative: probabilities.negative / prior.negative };
  }
  return softmaxRecord(linearScores(calibration, logFeatures(probabilities)));
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
  const { l2 = 0.01, iterations = 3000, learningRate = 0.5 } = options;
  const k = SENTIMENT_LABELS.length;
  const identity: LearnedCalibration = { kind: 'learned', weights: SENTIMENT_LABELS.map((_, row) => SENTIMENT_LABELS.map((__, column) => (row === column ? 1 : 0))), bias: [0, 0, 0] };
  const targets = samples.map((sample) => SENTIMENT_LABELS.indexOf(sample.label));
  const counts = SENTIMENT_LABELS.map((_, index) => targets.filter((target) => target === index).length);
  const present = counts.filter((count) => count > 0).length;
  if (present < 2) return identity;
  const raw = samples.map((sample) => logFeatures(sample.probabilities));
  const mean = SENTIMENT_LABELS.map((_, j) => raw.reduce((sum, x) => sum + x[j]!, 0) / raw.length);
  const std = SENTIMENT_LABELS.map((_, j) => Math.sqrt(raw.reduce((sum, x) => sum + (x[j]! - mean[j]!) ** 2, 0) / raw.length) || 1);
  const features = raw.map((x) => x.map((value, j) => (value - mean[j]!) / std[j]!));
  const classWeight = counts.map((count) => (count > 0 ? samples.length / (present * count) : 0));
  const fitted: LearnedCalibration = { kind: 'learned', weights: SENTIMENT_LABELS.map(() => [0, 0, 0]), bias: [0, 0, 0] };
  const { weights, bias } = fitted;
  for (let step = 0; step < iterations; step++) {
    const gradWeights = weights.map((row) => row.map(() => 0));
    const gradBias = bias.map(() => 0);
    for (let n = 0; n < samples.length; n++) {
      const x = features[n]!;
      const p = softmax(linearScores(fitted, x));
      const w = classWeight[targets[n]!]!;
      for (let row = 0; row < k; row++) {
        const g = w * (p[row]! - (row === targets[n] ? 1 : 0));
        gradBias[row]! += g;
        for (let column = 0; column < k; column++) gradWeights[row]![column]! += g * x[column]!;
      }
    }
    for (let row = 0; row < k; row++) {
      bias[row]! -= (learningRate * gradBias[row]!) / samples.length;
      for (let column = 0; column < k; column++) weights[row]![column]! -= learningRate * (gradWeights[row]![column]! / samples.length + l2 * weights[row]![column]!);
    }
  }
  // Back to raw log-probabilities: w·(x - mean)/std + b = (w/std)·x + (b - Σ w·mean/std).
  return {
    kind: 'learned',
    weights: weights.map((row) => row.map((weight, column) => weight / std[column]!)),
    bias: bias.map((b, row) => b - weights[row]!.reduce((sum, weight, column) => sum + (weight * mean[column]!) / std[column]!, 0)),
  };
}

function linearScores({ weights, bias }: LearnedCalibration, x: number[]): number[] {
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
