import { SENTIMENT_LABELS, type SentimentLabel } from '../../domain.js';

/** One candidate next token and its log-probability, as a server reports its top-N. */
export interface TopToken {
  token: string;
  logprob: number;
}

/** Shortest token text credited to a label: "pos", "neg" and "neu" already tell the three apart. */
const MIN_PREFIX = 3;

/**
 * Which label a candidate token starts, if exactly one: the token's text (one leading space
 * allowed, any case) is a start of that label's word of at least three letters, or the whole word.
 * A token that starts two labels ("ne") or none is not credited.
 */
export function labelOfToken(token: string): SentimentLabel | undefined {
  const text = token.replace(/^ /, '').toLowerCase();
  if (text.length < MIN_PREFIX) return undefined;
  const matches = SENTIMENT_LABELS.filter((label) => label.startsWith(text));
  return matches.length === 1 ? matches[0] : undefined;
}

export interface ServerLabelProbabilities {
  /** The labels' shares of the probability their tokens got (sums to 1 unless nothing was usable). */
  probabilities: Record<SentimentLabel, number>;
  /** Labels none of whose tokens were in the server's top-N: they got the floor. */
  floored: SentimentLabel[];
}

/**
 * The label probabilities at the answer position from a server's top-N next tokens. A server
 * returns only its N most likely tokens; a label none of whose spellings is among them is given
 * the floor, the smallest probability returned (an upper bound on what it had), and reported as
 * floored so the caller can count it. With no candidates at all every label gets the same share.
 */
export function labelProbabilitiesFromTop(top: readonly TopToken[]): ServerLabelProbabilities {
  const mass = { positive: 0, neutral: 0, negative: 0 } satisfies Record<SentimentLabel, number>;
  let floor = Infinity;
  for (const { token, logprob } of top) {
    const probability = Math.exp(logprob);
    if (!Number.isFinite(probability)) continue;
    floor = Math.min(floor, probability);
    const label = labelOfToken(token);
    if (label) mass[label] += probability;
  }
  const floored = SENTIMENT_LABELS.filter((label) => mass[label] === 0);
  if (!Number.isFinite(floor) || floor <= 0) floor = 1;
  for (const label of floored) mass[label] = floor;
  const total = SENTIMENT_LABELS.reduce((sum, label) => sum + mass[label], 0);
  const probabilities = Object.fromEntries(SENTIMENT_LABELS.map((label) => [label, mass[label] / total])) as Record<SentimentLabel, number>;
  return { probabilities, floored };
}
