import { SENTIMENT_LABELS, type SentimentLabel } from '../../domain.js';
import { firstTokenOwners, LABEL_WORDS, labelSpellings, labelWordShares } from '../SentimentClassifier.js';
import type { LabelProbabilities } from '../sentimentCalibration.js';

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

/**
 * The tokens a server is asked about when it can boost them (llama-server's logit_bias): each
 * label's and each label word's first token under its tokenizer, as the in-process classifier reads
 * them (its label trie's first step and LABEL_WORDS). A first token two labels share, or two words,
 * tells neither apart: left out.
 */
export interface LabelTokens {
  /** Every token to read, labels' and words' together. */
  tokens: number[];
  labelOf: Map<number, SentimentLabel>;
  /** Index into LABEL_WORDS, flattened (SENTIMENT_LABELS order). */
  wordOf: Map<number, number>;
}

/** The label and word tokens under a server's tokenizer; undefined when some label has no first token of its own. */
export async function labelTokensOf(tokenize: (text: string) => Promise<number[]>): Promise<LabelTokens | undefined> {
  const words = SENTIMENT_LABELS.flatMap((label) => LABEL_WORDS[label]);
  // Every spelling asked at once (a label is one of the words); then read from here.
  const spellings = [...new Set(words.flatMap(labelSpellings))];
  const ids = await Promise.all(spellings.map(tokenize));
  const firstTokenOf = new Map(spellings.map((spelling, i) => [spelling, ids[i]![0]]));
  const firstToken = (spelling: string) => firstTokenOf.get(spelling);
  const labelOf = firstTokenOwners(SENTIMENT_LABELS.map((label) => [label, label] as const), firstToken);
  if (SENTIMENT_LABELS.some((label) => ![...labelOf.values()].includes(label))) return undefined;
  const wordOf = firstTokenOwners(words.map((word, index) => [index, word] as const), firstToken);
  return { tokens: [...new Set([...labelOf.keys(), ...wordOf.keys()])], labelOf, wordOf };
}

/**
 * The labels' probabilities (their first tokens' shares among the labels' first tokens) and the label
 * words' shares, from the boosted tokens' probabilities: the in-process classifier's reading.
 */
export function labelProbabilitiesFromBoosted(probabilities: ReadonlyMap<number, number>, { labelOf, wordOf }: LabelTokens): LabelProbabilities & { words: number[] } {
  const probabilityOf = (token: number) => probabilities.get(token) ?? 0;
  const mass = { positive: 0, neutral: 0, negative: 0 } satisfies Record<SentimentLabel, number>;
  for (const [token, label] of labelOf) mass[label] += probabilityOf(token);
  const total = SENTIMENT_LABELS.reduce((sum, label) => sum + mass[label], 0);
  const share = (p: number) => (total > 0 ? p / total : 1 / 3);
  return { positive: share(mass.positive), neutral: share(mass.neutral), negative: share(mass.negative), words: labelWordShares(wordOf, probabilityOf) };
}
