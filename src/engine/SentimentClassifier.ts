import { LlamaText, TokenBias, type ChatHistoryItem, type ChatWrapper, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { SENTIMENT_LABELS, type SentimentLabel } from '../config.js';

export interface SentimentResult {
  label: SentimentLabel;
  /** The label's share of the probability the model gave the three labels, 0..1. */
  confidence: number;
}

export interface SentimentClassifierOptions {
  model: LlamaModel;
  /** A sequence of its own: it holds the instruction prefix and nothing else between calls. */
  sequence: LlamaContextSequence;
  chatWrapper: ChatWrapper;
  /** Messages longer than this many tokens are cut (the start carries the mood). Default 256. */
  maxMessageTokens?: number;
}

export const SENTIMENT_INSTRUCTION =
  'You are a cold sentiment analyst. Classify the sentiment of the user message. ' +
  'Answer with exactly one word: positive, neutral or negative.';

/**
 * Worked examples shown as earlier turns: they teach a small model the exact answer form (one
 * lowercase word) and the hard cases (sarcasm, emoji, a plain question). They sit in the cached
 * prefix, so they cost nothing per call. Not taken from the eval set.
 */
export const SENTIMENT_EXAMPLES: ReadonlyArray<{ text: string; label: SentimentLabel }> = [
  { text: 'just got the job offer!!! 🎉', label: 'positive' },
  { text: 'what time does the stream start tonight?', label: 'neutral' },
  { text: 'wow, amazing, the bus skipped my stop again 🙃', label: 'negative' },
  { text: '这家店的面太好吃了，下次还来', label: 'positive' },
  { text: '快递到了，放在门口了', label: 'neutral' },
  { text: '又下雨了，伞也丢了，烦死了', label: 'negative' },
];

// Placeholder where the message goes when rendering the chat template once.
const MESSAGE_SLOT = '\u0000MESSAGE\u0000';

/**
 * Classifies one message at a time, isolated from every channel's history.
 *
 * The instruction prefix is evaluated once and stays in this sequence's KV cache; each call
 * evaluates only the message and the short template suffix, picks the label in ONE decode step
 * from the probabilities of the labels' first tokens, then erases the message again. No text is
 * parsed, so a message cannot talk the classifier into an answer outside the label set.
 */
export class SentimentClassifier {
  private constructor(
    private readonly model: LlamaModel,
    private readonly sequence: LlamaContextSequence,
    private readonly prefix: Token[],
    private readonly suffix: Token[],
    private readonly labelTokens: ReadonlyMap<Token, SentimentLabel>,
    private readonly bias: TokenBias,
    private readonly maxMessageTokens: number,
  ) {}

  static async create({ model, sequence, chatWrapper, maxMessageTokens = 256 }: SentimentClassifierOptions): Promise<SentimentClassifier> {
    const labelTokens = firstTokensOfLabels(model);
    const { contextText } = chatWrapper.generateContextState({ chatHistory: classifierChatHistory(MESSAGE_SLOT) });
    const [before, after] = splitAtSlot(contextText);
    const prefix = before.tokenize(model.tokenizer);
    const suffix = after.tokenize(model.tokenizer, 'trimLeadingSpace');
    // A large logit bonus leaves only the labels' tokens in play while keeping their relative odds;
    // topK = their count then spares the sampler a probability map of the whole vocabulary.
    const bias = new TokenBias(model.tokenizer);
    for (const token of labelTokens.keys()) bias.set(token, { logit: 1000 });
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prefix);
    return new SentimentClassifier(model, sequence, prefix, suffix, labelTokens, bias, maxMessageTokens);
  }

  /** Token counts of the cached prefix; what each call adds is message + suffix. */
  get prefixTokenCount(): number {
    return this.prefix.length;
  }

  get suffixTokenCount(): number {
    return this.suffix.length;
  }

  /** Input tokens this sequence has evaluated so far (for tests and benchmarks). */
  get evaluatedTokens(): number {
    return this.sequence.tokenMeter.usedInputTokens;
  }

  /** Tokens a message takes: typed special tokens such as `<|im_end|>` stay plain text. */
  messageTokens(text: string): Token[] {
    const tokens = this.model.tokenize(text.trim() || '(empty message)', false, 'trimLeadingSpace');
    return tokens.slice(0, this.maxMessageTokens);
  }

  async classify(text: string): Promise<SentimentResult> {
    const input = [...this.messageTokens(text), ...this.suffix];
    const last = input.length - 1;
    try {
      const results = await this.sequence.controlledEvaluate(
        input.map((token, index) =>
          index === last
            ? ([token, { generateNext: { probabilities: true, options: { temperature: 1, topK: this.labelTokens.size, topP: 1, minP: 0, tokenBias: this.bias } } }] as const)
            : token,
        ),
        { evaluationPriority: 5 },
      );
      return this.pickLabel(results[last]?.next.probabilities);
    } finally {
      // Back to the bare prefix, so no message ever sees another.
      await this.sequence.eraseContextTokenRanges([{ start: this.prefix.length, end: this.sequence.nextTokenIndex }]);
    }
  }

  private pickLabel(probabilities: Map<Token, number> | undefined): SentimentResult {
    const scores = new Map<SentimentLabel, number>(SENTIMENT_LABELS.map((label) => [label, 0]));
    for (const [token, label] of this.labelTokens) scores.set(label, scores.get(label)! + (probabilities?.get(token) ?? 0));
    const total = [...scores.values()].reduce((sum, p) => sum + p, 0);
    let best: SentimentLabel = 'neutral';
    for (const label of SENTIMENT_LABELS) if (scores.get(label)! > scores.get(best)!) best = label;
    // With no usable probabilities (never seen in practice) fall back to an honest "unsure neutral".
    return { label: best, confidence: total > 0 ? scores.get(best)! / total : 0 };
  }
}

/** The classifier's whole conversation for one message: instruction, worked examples, the message. */
export function classifierChatHistory(message: string): ChatHistoryItem[] {
  return [
    { type: 'system', text: SENTIMENT_INSTRUCTION },
    ...SENTIMENT_EXAMPLES.flatMap(({ text, label }): ChatHistoryItem[] => [
      { type: 'user', text },
      { type: 'model', response: [label] },
    ]),
    { type: 'user', text: message },
    { type: 'model', response: [] },
  ];
}

/**
 * The first tokens a model may start each label with: the word as asked ("positive") must start with
 * a token of its own under this tokenizer, or one decode step could not tell the labels apart. The
 * capitalized and space-led spellings count for their label too, unless another label shares them.
 */
export function firstTokensOfLabels(model: LlamaModel): Map<Token, SentimentLabel> {
  const firstToken = (text: string) => model.tokenize(text, false, 'trimLeadingSpace')[0];
  const map = new Map<Token, SentimentLabel>();
  for (const label of SENTIMENT_LABELS) {
    const first = firstToken(label);
    if (first === undefined) throw new Error(`The model's tokenizer turns "${label}" into no tokens.`);
    const clash = map.get(first);
    if (clash) {
      throw new Error(
        `The labels "${clash}" and "${label}" start with the same token under this model's tokenizer, ` +
          'so the classifier cannot tell them apart in one step; use another model.',
      );
    }
    map.set(first, label);
  }
  const variants = new Map<Token, SentimentLabel | 'shared'>();
  for (const label of SENTIMENT_LABELS) {
    const capitalized = label[0]!.toUpperCase() + label.slice(1);
    for (const spelling of [capitalized, ` ${label}`, ` ${capitalized}`]) {
      const token = model.tokenize(spelling, false)[0];
      if (token === undefined || map.has(token)) continue;
      variants.set(token, variants.has(token) && variants.get(token) !== label ? 'shared' : label);
    }
  }
  for (const [token, label] of variants) if (label !== 'shared') map.set(token, label);
  return map;
}

function splitAtSlot(text: LlamaText): [LlamaText, LlamaText] {
  const values = text.values;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'string' || !value.includes(MESSAGE_SLOT)) continue;
    const [head, tail] = value.split(MESSAGE_SLOT) as [string, string];
    return [LlamaText([...values.slice(0, i), head]), LlamaText([tail, ...values.slice(i + 1)])];
  }
  throw new Error('The chat template dropped the message placeholder; this model template is not supported.');
}
