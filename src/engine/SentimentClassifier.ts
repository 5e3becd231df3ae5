import { LlamaText, SpecialTokensText, TokenBias, type ChatHistoryItem, type ChatWrapper, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import { decodeFirst } from './decodeScheduling.js';
import { calibratedScores, meanPrior, type Calibration, type ContentFreeCalibration, type LabelProbabilities } from './sentimentCalibration.js';

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
  /**
   * Earlier chat turns put in front of every message. The product never sets this: it exists to
   * measure the naive in-session classifier (the seed article's bug) against the isolated one.
   */
  precedingTurns?: ReadonlyArray<{ text: string; label: SentimentLabel }>;
  /** The system instruction. Default SENTIMENT_INSTRUCTION. */
  instruction?: string;
  /** Worked examples shown as earlier turns. Default SENTIMENT_EXAMPLES. */
  examples?: ReadonlyArray<{ text: string; label: SentimentLabel }>;
  /** Read the label words (LABEL_WORDS) with the labels. Default true; false only to measure the classifier without them. */
  labelWords?: boolean;
}

/**
 * The classifier's instruction. It says what neutral is (facts, questions, plans, short replies):
 * without that, a Qwen2.5-0.5B-class model called plain logistics negative or positive (neutral
 * recall 43% raw on the project's held-out split; 53% with this instruction and the examples below).
 */
export const SENTIMENT_INSTRUCTION =
  'You label the mood of one chat message. ' +
  'positive: the writer is happy, grateful, excited, proud, or praises something. ' +
  'negative: the writer is sad, angry, annoyed, worried, complains, insults, or is sarcastic. ' +
  'neutral: no clear feeling: facts, questions, plans, logistics, greetings and short replies such as ok or got it. ' +
  'Answer with exactly one word: positive, neutral or negative.';

/**
 * Worked examples shown as earlier turns: they teach a small model the exact answer form (one
 * lowercase word) and the hard cases (sarcasm, emoji, plain logistics, a one-character reply),
 * in English and Chinese, labels interleaved so no label is always the last one seen. They sit in
 * the cached prefix, so they cost nothing per call. None is taken from the eval sets.
 */
export const SENTIMENT_EXAMPLES: ReadonlyArray<{ text: string; label: SentimentLabel }> = [
  { text: 'just got the job offer!!! 🎉', label: 'positive' },
  { text: 'what time does the stream start tonight?', label: 'neutral' },
  { text: 'wow, amazing, the bus skipped my stop again 🙃', label: 'negative' },
  { text: 'alright, talk later', label: 'neutral' },
  { text: 'this patch is garbage, it crashes every time', label: 'negative' },
  { text: 'thanks a lot, that really helped', label: 'positive' },
  { text: 'the file is in the shared folder', label: 'neutral' },
  { text: '这家店的面太好吃了，下次还来', label: 'positive' },
  { text: '快递到了，放在门口了', label: 'neutral' },
  { text: '又下雨了，伞也丢了，烦死了', label: 'negative' },
  { text: '行', label: 'neutral' },
  { text: 'I miss her so much', label: 'negative' },
  { text: 'best day ever 😄', label: 'positive' },
  { text: 'moving the call to 4pm', label: 'neutral' },
];

/**
 * Several words per label, read at the answer position in the same decode step as the labels
 * (label-word ensembles). Each label's own word comes first. Told to answer with a label, a model
 * gives these words little probability, but how little still says something about the message;
 * a calibration fitted on them (features 'words') reads all fifteen.
 */
export const LABEL_WORDS: Readonly<Record<SentimentLabel, readonly string[]>> = {
  positive: ['positive', 'good', 'happy', 'great', 'love'],
  neutral: ['neutral', 'none', 'okay', 'normal', 'calm'],
  negative: ['negative', 'bad', 'sad', 'angry', 'annoyed'],
};

// Placeholder where the message goes when rendering the chat template once.
const MESSAGE_SLOT = '\u0000MESSAGE\u0000';

/** Content-free inputs for calibration (Zhao et al. 2021, "Calibrate Before Use"). */
export const CONTENT_FREE_INPUTS = ['N/A', '[MASK]', '(empty message)'];

/**
 * Classifies one message at a time, isolated from every channel's history.
 *
 * The instruction prefix is evaluated once and stays in this sequence's KV cache; each call
 * evaluates only the message and the short template suffix and scores every label by its whole
 * token sequence, walking a small trie of the labels' spellings: ONE decode step when the labels'
 * first tokens differ, one more step only where spellings that share tokens part. The extra tokens
 * are erased again, and so is the message. No text is parsed, so a message cannot talk the
 * classifier into an answer outside the label set.
 */
export class SentimentClassifier {
  private steps = 0;
  /** How label probabilities become a label (see sentimentCalibration.ts); none: the largest wins. */
  calibration: Calibration | undefined;

  private constructor(
    private readonly model: LlamaModel,
    private readonly sequence: LlamaContextSequence,
    private readonly prefix: Token[],
    private readonly suffix: Token[],
    private readonly trie: LabelTrieNode,
    /** The first decode step's bias: the labels' first tokens and the label words' (see LABEL_WORDS). */
    private readonly rootBias: { bias: TokenBias; size: number },
    /** Which label word (index into LABEL_WORDS, flattened) each first token spells. */
    private readonly wordTokens: Map<Token, number>,
    private readonly maxMessageTokens: number,
    /** The rendered prompt around the message, as text: what a learned calibration depends on. */
    readonly promptKey: string,
  ) {}

  static async create(options: SentimentClassifierOptions): Promise<SentimentClassifier> {
    const { model, sequence, chatWrapper, maxMessageTokens = 256, precedingTurns = [], instruction, examples, labelWords = true } = options;
    const trie = buildLabelTrie(model);
    const wordTokens = labelWords ? labelWordTokens(model) : new Map<Token, number>();
    const rootTokens = new Set([...trie.children.keys(), ...wordTokens.keys()]);
    const rootBias = new TokenBias(model.tokenizer);
    for (const token of rootTokens) rootBias.set(token, { logit: 1000 });
    const [before, after] = renderAroundMessage(chatWrapper, precedingTurns, instruction, examples);
    const prefix = before.tokenize(model.tokenizer);
    const suffix = after.tokenize(model.tokenizer, 'trimLeadingSpace');
    // The message gets what the sequence has left after the prompt and the labels' few tokens.
    const room = sequence.contextSize - prefix.length - suffix.length - 8;
    if (room < 32) {
      throw new Error(
        `The sentiment prompt takes ${prefix.length + suffix.length} tokens with this model, which leaves no room for a message in a ${sequence.contextSize}-token context; raise CONTEXT_SIZE.`,
      );
    }
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prefix);
    return new SentimentClassifier(model, sequence, prefix, suffix, trie, { bias: rootBias, size: rootTokens.size }, wordTokens, Math.min(maxMessageTokens, room), prefixKeyOf(model, before, after));
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

  /** Decode steps the last call took: 1 when the labels' first tokens differ. */
  get lastDecodeSteps(): number {
    return this.steps;
  }

  /** Tokens a message takes: typed special tokens such as `<|im_end|>` stay plain text. */
  messageTokens(text: string): Token[] {
    const tokens = this.model.tokenize(text.trim() || '(empty message)', false, 'trimLeadingSpace');
    return tokens.slice(0, this.maxMessageTokens);
  }

  /** Every token of the classifier's prompt for this message: cached prefix, message, template suffix. */
  promptTokens(text: string): Token[] {
    return [...this.prefix, ...this.messageTokens(text), ...this.suffix];
  }

  async classify(text: string): Promise<SentimentResult> {
    return (await this.classifyWithScores(text)).result;
  }

  /** The result, and the label probabilities before calibration (for the eval). */
  async classifyWithScores(text: string): Promise<{ result: SentimentResult; raw: Record<SentimentLabel, number> }> {
    const raw = await this.labelProbabilities(text);
    return { result: pickLabel(raw, this.calibration), raw };
  }

  /**
   * Each label's probability as a sequence of tokens after the prompt, restricted to the labels'
   * spellings (a label's spellings add up), summing to 1 unless the model gave no usable numbers;
   * and, read in the same first decode step, each label word's share among the label words' first
   * tokens (`words`, LABEL_WORDS order).
   */
  labelProbabilities(text: string): Promise<LabelProbabilities & { words: number[] }> {
    // The replies' next steps wait while this runs: a reaction waits one decode step, not one per reply.
    return decodeFirst(this.sequence, () => this.scoreMessage(text));
  }

  private async scoreMessage(text: string): Promise<LabelProbabilities & { words: number[] }> {
    const scores = { positive: 0, neutral: 0, negative: 0 } satisfies Record<SentimentLabel, number>;
    this.steps = 0;
    let first: Map<Token, number> | undefined;
    try {
      first = await this.scoreBranch([...this.messageTokens(text), ...this.suffix], this.trie, 1, scores, this.rootBias);
    } finally {
      // Back to the bare prefix, so no message ever sees another.
      await this.sequence.eraseContextTokenRanges([{ start: this.prefix.length, end: this.sequence.nextTokenIndex }]);
    }
    return { ...scores, words: labelWordShares(this.wordTokens, (token) => first?.get(token) ?? 0) };
  }

  /**
   * Evaluates `input`, reads the odds of `node`'s children in one decode step, and goes down where
   * labels part. Returns that step's probabilities (under `bias`, which may let more tokens in).
   */
  private async scoreBranch(
    input: Token[],
    node: LabelTrieNode,
    mass: number,
    scores: Record<SentimentLabel, number>,
    bias = { bias: node.bias!, size: node.children.size },
  ): Promise<Map<Token, number> | undefined> {
    const forkStart = this.sequence.nextTokenIndex + input.length;
    const last = input.length - 1;
    const options = { temperature: 1, topK: bias.size, topP: 1, minP: 0, tokenBias: bias.bias };
    const results = await this.sequence.controlledEvaluate(
      input.map((token, index) => (index === last ? ([token, { generateNext: { probabilities: true, options } }] as const) : token)),
      { evaluationPriority: 5 },
    );
    this.steps++;
    const probabilities = results[last]?.next.probabilities;
    let total = 0;
    for (const token of node.children.keys()) total += probabilities?.get(token) ?? 0;
    if (total <= 0) return probabilities;
    for (const [token, child] of node.children) {
      const share = (mass * (probabilities?.get(token) ?? 0)) / total;
      if (share <= 0) continue;
      if (child.labels.size === 1) {
        scores[[...child.labels][0]!] += share;
        continue;
      }
      // Spellings of different labels still share this token: follow it to where they part.
      const { path, fork } = descendToFork(token, child);
      await this.scoreBranch(path, fork, share, scores);
      await this.sequence.eraseContextTokenRanges([{ start: forkStart, end: this.sequence.nextTokenIndex }]);
    }
    return probabilities;
  }

  /** The labels' prior on content-free inputs (Zhao et al. 2021), for the content-free calibration. */
  async contentFreeCalibration(): Promise<ContentFreeCalibration> {
    const probabilities = [];
    for (const text of CONTENT_FREE_INPUTS) probabilities.push(await this.labelProbabilities(text));
    return meanPrior(probabilities);
  }
}

/**
 * The classifier's prompt around the message, as text, under this wrapper (what `promptKey` holds).
 * A wrapper rendered with a fixed date gives a key that does not change from day to day.
 */
export function classifierPromptKey(model: LlamaModel, chatWrapper: ChatWrapper): string {
  const [before, after] = renderAroundMessage(chatWrapper);
  return prefixKeyOf(model, before, after);
}

function renderAroundMessage(chatWrapper: ChatWrapper, ...rest: Parameters<typeof classifierChatHistory> extends [unknown, ...infer R] ? R : never): [LlamaText, LlamaText] {
  const { contextText } = chatWrapper.generateContextState({ chatHistory: classifierChatHistory(MESSAGE_SLOT, ...rest) });
  return splitAtSlot(contextText);
}

/** The label with the largest calibrated score, and its share of the three scores as the confidence. */
export function pickLabel(probabilities: LabelProbabilities, calibration?: Calibration): SentimentResult {
  const scores = calibratedScores(probabilities, calibration);
  const total = SENTIMENT_LABELS.reduce((sum, label) => sum + scores[label], 0);
  let best: SentimentLabel = 'neutral';
  for (const label of SENTIMENT_LABELS) if (scores[label] > scores[best]) best = label;
  // With no usable probabilities (never seen in practice) fall back to an honest "unsure neutral".
  return { label: best, confidence: total > 0 ? scores[best] / total : 0 };
}

/** The classifier's whole conversation for one message: instruction, worked examples, the message. */
export function classifierChatHistory(
  message: string,
  precedingTurns: SentimentClassifierOptions['precedingTurns'] = [],
  instruction = SENTIMENT_INSTRUCTION,
  examples = SENTIMENT_EXAMPLES,
): ChatHistoryItem[] {
  return [
    { type: 'system', text: instruction },
    ...[...examples, ...precedingTurns].flatMap(({ text, label }): ChatHistoryItem[] => [
      { type: 'user', text },
      { type: 'model', response: [label] },
    ]),
    { type: 'user', text: message },
    { type: 'model', response: [] },
  ];
}

export interface LabelTrieNode {
  children: Map<Token, LabelTrieNode>;
  /** Labels with a spelling below this node. */
  labels: Set<SentimentLabel>;
  /** Leaves only the children's tokens in play (nodes with children only). */
  bias?: TokenBias;
}

/** How a model may write each label: as asked, capitalized, and either of those after a space. */
export function labelSpellings(label: string): string[] {
  const capitalized = label[0]!.toUpperCase() + label.slice(1);
  return [label, capitalized, ` ${label}`, ` ${capitalized}`];
}

/**
 * A trie over the token sequences of every label's spellings, under this model's tokenizer. Labels
 * may share leading tokens ("n" for neutral and negative under a byte-level tokenizer): the
 * classifier then reads one more decode step where they part. No spelling is a prefix of another's,
 * since none of the words is, so every leaf is exactly one spelling.
 */
export function buildLabelTrie(model: LlamaModel): LabelTrieNode {
  const root: LabelTrieNode = { children: new Map(), labels: new Set() };
  for (const label of SENTIMENT_LABELS) {
    for (const spelling of labelSpellings(label)) {
      const tokens = spelling.startsWith(' ') ? model.tokenize(spelling, false) : model.tokenize(spelling, false, 'trimLeadingSpace');
      if (tokens.length === 0) {
        if (spelling === label) throw new Error(`The model's tokenizer turns the label "${label}" into no tokens, so it cannot be scored.`);
        continue;
      }
      let node = root;
      node.labels.add(label);
      for (const token of tokens) {
        let child = node.children.get(token);
        if (!child) node.children.set(token, (child = { children: new Map(), labels: new Set() }));
        child.labels.add(label);
        node = child;
      }
    }
  }
  const addBias = (node: LabelTrieNode): void => {
    if (node.children.size === 0) return;
    // A large logit bonus keeps the children's relative odds and drops every other token.
    node.bias = new TokenBias(model.tokenizer);
    for (const token of node.children.keys()) node.bias.set(token, { logit: 1000 });
    for (const child of node.children.values()) addBias(child);
  };
  addBias(root);
  return root;
}

/**
 * The first token of every spelling of every label word, and which word (LABEL_WORDS order,
 * flattened) it spells. A first token that two words share says nothing about either: left out.
 */
export function labelWordTokens(model: LlamaModel): Map<Token, number> {
  const words = SENTIMENT_LABELS.flatMap((label) => LABEL_WORDS[label]);
  return firstTokenOwners(
    words.map((word, index) => [index, word] as const),
    (spelling) => (spelling.startsWith(' ') ? model.tokenize(spelling, false) : model.tokenize(spelling, false, 'trimLeadingSpace'))[0],
  );
}

/**
 * Which key each first token starts, over every spelling (labelSpellings) of each key's word, with
 * `firstToken` giving a spelling's first token under some tokenizer. A first token two keys share
 * says nothing about either: left out. Read by the in-process classifier and by a server's.
 */
export function firstTokenOwners<T extends number, K>(words: ReadonlyArray<readonly [K, string]>, firstToken: (spelling: string) => T | undefined): Map<T, K> {
  const owners = new Map<T, K>();
  const shared = new Set<T>();
  for (const [key, word] of words) {
    for (const spelling of labelSpellings(word)) {
      const token = firstToken(spelling);
      if (token === undefined) continue;
      if (owners.has(token) && owners.get(token) !== key) shared.add(token);
      owners.set(token, key);
    }
  }
  for (const token of shared) owners.delete(token);
  return owners;
}

/** Each label word's share of the probability its first tokens got (LABEL_WORDS order, flattened); all 0 when they got none. */
export function labelWordShares<T extends number>(wordTokens: ReadonlyMap<T, number>, probabilityOf: (token: T) => number): number[] {
  const words = SENTIMENT_LABELS.flatMap((label) => LABEL_WORDS[label].map(() => 0));
  for (const [token, word] of wordTokens) words[word]! += probabilityOf(token);
  const total = words.reduce((sum, p) => sum + p, 0);
  return words.map((p) => (total > 0 ? p / total : 0));
}

/** From a child shared by several labels, the tokens down to the next node where spellings part. */
function descendToFork(token: Token, child: LabelTrieNode): { path: Token[]; fork: LabelTrieNode } {
  const path = [token];
  let node = child;
  while (node.children.size === 1) {
    const [next, only] = node.children.entries().next().value!;
    path.push(next);
    node = only;
  }
  return { path, fork: node };
}

function splitAtSlot(text: LlamaText): [LlamaText, LlamaText] {
  const values = text.values;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    // A wrapper that renders the template itself gives the whole prompt as one special-tokens text.
    const raw = typeof value === 'string' ? value : value instanceof SpecialTokensText ? value.value : undefined;
    if (raw === undefined || !raw.includes(MESSAGE_SLOT)) continue;
    const [head, tail] = raw.split(MESSAGE_SLOT) as [string, string];
    const wrap = (part: string): LlamaText['values'][number] => (typeof value === 'string' ? part : new SpecialTokensText(part));
    return [LlamaText([...values.slice(0, i), wrap(head)]), LlamaText([wrap(tail), ...values.slice(i + 1)])];
  }
  throw new Error('The chat template dropped the message placeholder; this model template is not supported.');
}

/** The classifier's prompt around the message, detokenized: changes whenever instruction, examples or template do. */
function prefixKeyOf(model: LlamaModel, before: LlamaText, after: LlamaText): string {
  return `${before.toString()}\u0000${after.toString()}\u0000${model.tokenizer('positive neutral negative', false).join(',')}`;
}
