/**
 * `npm run eval:chat -- --model path.gguf`: issue 26's study. Every variant of turning the model's
 * answer-position distribution into a label, side by side from one run, on the held-out chat-like
 * splits (our own short posts and VADER tweets) and on the other splits, beside AFINN.
 *
 * Each text is read by the model ONCE: the message is evaluated after the cached prompt, and the
 * answer position is read twice (each read re-decodes only the last prompt token): the
 * probabilities of a few label words' first tokens (the three labels and their ensemble words),
 * and the top of the unrestricted next-token distribution (for kNN prompting). The readings are
 * cached in a JSON file (`--cache`), so variants can be re-scored without the model.
 * Options: `--threads N` (default 1), `--limit N` items per split, `--cache file`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { getLlama, TokenBias, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import { SENTIMENT_LABELS, type SentimentLabel } from '../../src/domain.js';
import type { LabeledText } from '../../src/engine/learnCalibration.js';
import { modelChatWrapper } from '../../src/engine/modelChatWrapper.js';
import { buildLabelTrie, CONTENT_FREE_INPUTS, labelSpellings, pickLabel, SentimentClassifier } from '../../src/engine/SentimentClassifier.js';
import { fitCalibration, fitLogisticRegression, meanPrior, regressionScores, type LabelProbabilities } from '../../src/engine/sentimentCalibration.js';
import { lexiconBaseline, loadEvalSet, majorityBaseline, scoreLabels, type EvalItem, type Label, type ScoreReport } from './evalHarness.js';
import { heldOutSplit } from './sentimentStudy.js';

/** Several words per label read together (label-word ensembles); each label's own word first. */
export const ENSEMBLE_WORDS: Record<SentimentLabel, string[]> = {
  positive: ['positive', 'good', 'happy', 'great', 'love'],
  neutral: ['neutral', 'none', 'okay', 'normal', 'calm'],
  negative: ['negative', 'bad', 'sad', 'angry', 'annoyed'],
};
const DIST_TOP_K = 100;
const FLOOR = 1e-6;

interface Reading {
  /** The product's three label probabilities. */
  p3: Record<SentimentLabel, number>;
  /** Each ensemble word's probability among all ensemble words' first tokens (ENSEMBLE_WORDS order, flattened). */
  words: number[];
  /** The top of the unrestricted next-token distribution: token ids and probabilities. */
  dist: [number[], number[]];
}

const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const modelPath = arg('--model') ?? process.env.MODEL!;
const threads = Number(arg('--threads') ?? 1);
const limit = Number(arg('--limit') ?? Infinity);
const cachePath = arg('--cache');
const log = (line: string) => process.stderr.write(line + '\n');

const sample = <T>(items: T[]): T[] => {
  const step = Number.isFinite(limit) ? Math.max(1, Math.floor(items.length / limit)) : 1;
  return items.filter((_, index) => index % step === 0).slice(0, limit);
};
/** A calibration file's lines with their source. */
const linesOf = (path: URL) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('//'))
    .map((line) => JSON.parse(line) as LabeledText & { source: string });
const shipped = linesOf(new URL('../../src/engine/calibration-set.jsonl', import.meta.url));
const plain = (items: Array<LabeledText & { source: string }>): LabeledText[] => items.map(({ text, label }) => ({ text, label }));
/** The set as it shipped before issue 26: today's lines without the tweets, and the VADER review/NYT lines the tweets replaced. */
const base = sample(plain([...shipped.filter((item) => item.source !== 'vader-tweets'), ...linesOf(new URL('../fixtures/calibration-dropped-vader.jsonl', import.meta.url))]));
/** 120 VADER tweets, none in the eval split (test/support/buildVaderTweets.ts). */
const tweetsForCalibration = sample(plain(shipped.filter((item) => item.source === 'vader-tweets')));
/** The set as it ships now: as many texts as before, half of each label's VADER review/NYT lines swapped for the tweets. */
const swapped = sample(plain(shipped));
const splits: Record<string, EvalItem[]> = {
  'chat: own posts': sample(loadEvalSet('test/fixtures/sentiment-chat-own.jsonl')),
  'chat: VADER tweets': sample(loadEvalSet('test/fixtures/sentiment-vader-tweets.jsonl')),
  'held-out (project set)': sample(heldOutSplit(loadEvalSet('test/fixtures/sentiment-eval.jsonl')).heldOut),
  'outside (VADER reviews+NYT)': sample(loadEvalSet('test/fixtures/sentiment-vader-heldout.jsonl')),
};
const CHAT_SPLITS = ['chat: own posts', 'chat: VADER tweets'];

/** Reads every text once; the readings are cached by text. */
async function readAll(texts: string[]): Promise<Map<string, Reading>> {
  const cache: Record<string, Reading> = cachePath && existsSync(cachePath) ? JSON.parse(readFileSync(cachePath, 'utf8')) : {};
  const todo = [...new Set(texts)].filter((text) => !cache[text]);
  if (todo.length > 0) {
    const llama = await getLlama({ gpu: false });
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ contextSize: 1024, sequences: 2, threads, batchSize: 512 });
    const { wrapper: chatWrapper } = modelChatWrapper(model, { thinking: false, today: new Date() });
    const classifier = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper });
    const reader = await AnswerReader.create(model, context.getSequence(), classifier);
    const started = performance.now();
    for (const [index, text] of todo.entries()) {
      cache[text] = await reader.read(text);
      if (index < 3) {
        // The study's label probabilities must be the product's own.
        const product = await classifier.labelProbabilities(text);
        const gap = Math.max(...SENTIMENT_LABELS.map((label) => Math.abs(product[label] - cache[text]!.p3[label])));
        log(`check ${JSON.stringify(text.slice(0, 30))}: largest gap to the product's label probabilities ${gap.toExponential(1)}`);
        if (gap > 0.02) throw new Error('the study does not read what the product reads');
      }
      if ((index + 1) % 50 === 0 || index + 1 === todo.length) {
        log(`read ${index + 1}/${todo.length} (${((performance.now() - started) / (index + 1)).toFixed(0)} ms each)`);
        if (cachePath) writeFileSync(cachePath, JSON.stringify(cache));
      }
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return new Map(Object.entries(cache));
}

/** The answer position of the classifier's own prompt, read in more ways than the product reads it. */
class AnswerReader {
  private constructor(
    private readonly sequence: LlamaContextSequence,
    private readonly classifier: SentimentClassifier,
    private readonly ensembleBias: TokenBias,
    /** Each ensemble first token: which word (flattened index) it spells; the labels' own tokens too. */
    private readonly tokenWord: Map<Token, number>,
    private readonly labelToken: Map<Token, SentimentLabel> | undefined,
  ) {}

  static async create(model: LlamaModel, sequence: LlamaContextSequence, classifier: SentimentClassifier): Promise<AnswerReader> {
    const tokenWord = new Map<Token, number>();
    const clash = new Set<Token>();
    let index = 0;
    for (const label of SENTIMENT_LABELS) {
      for (const word of ENSEMBLE_WORDS[label]) {
        for (const spelling of labelSpellings(word as SentimentLabel)) {
          const token = (spelling.startsWith(' ') ? model.tokenize(spelling, false) : model.tokenize(spelling, false, 'trimLeadingSpace'))[0];
          if (token === undefined) continue;
          const other = tokenWord.get(token);
          if (other !== undefined && other !== index) clash.add(token);
          tokenWord.set(token, index);
        }
        index++;
      }
    }
    // A first token two words share says nothing about either.
    for (const token of clash) tokenWord.delete(token);
    const bias = new TokenBias(model.tokenizer);
    for (const token of tokenWord.keys()) bias.set(token, { logit: 1000 });
    // The product's labels: read from the same step when each label's spellings start with tokens of their own.
    const trie = buildLabelTrie(model);
    const flat = [...trie.children.values()].every((child) => child.labels.size === 1 && child.children.size === 0);
    const labelToken = flat ? new Map([...trie.children].map(([token, child]) => [token, [...child.labels][0]!])) : undefined;
    if (labelToken) for (const token of labelToken.keys()) bias.set(token, { logit: 1000 });
    const prefix = classifier.promptTokens('x').slice(0, classifier.prefixTokenCount);
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prefix);
    return new AnswerReader(sequence, classifier, bias, tokenWord, labelToken);
  }

  async read(text: string): Promise<Reading> {
    const start = this.classifier.prefixTokenCount;
    const rest = this.classifier.promptTokens(text).slice(start);
    const last = rest.pop()!;
    try {
      await this.sequence.evaluateWithoutGeneratingNewTokens(rest);
      const ensembleSize = this.tokenWord.size + (this.labelToken?.size ?? 0);
      const restricted = await this.readLast(last, { temperature: 1, topK: ensembleSize, topP: 1, minP: 0, tokenBias: this.ensembleBias });
      const open = await this.readLast(last, { temperature: 1, topK: DIST_TOP_K, topP: 1, minP: 0 });
      const words = Object.values(ENSEMBLE_WORDS).flat().map(() => 0);
      for (const [token, word] of this.tokenWord) words[word]! += restricted.get(token) ?? 0;
      const total = words.reduce((a, b) => a + b, 0) || 1;
      let p3: Record<SentimentLabel, number>;
      if (this.labelToken) {
        p3 = { positive: 0, neutral: 0, negative: 0 };
        for (const [token, label] of this.labelToken) p3[label] += restricted.get(token) ?? 0;
        const sum = p3.positive + p3.neutral + p3.negative || 1;
        for (const label of SENTIMENT_LABELS) p3[label] /= sum;
      } else {
        p3 = await this.classifier.labelProbabilities(text);
      }
      return { p3, words: words.map((p) => p / total), dist: [[...open.keys()], [...open.values()]] };
    } finally {
      await this.sequence.eraseContextTokenRanges([{ start, end: this.sequence.nextTokenIndex }]);
    }
  }

  /** Decodes the prompt's last token and reads the next-token probabilities under `options`, then forgets that token. */
  private async readLast(token: Token, options: object): Promise<Map<Token, number>> {
    const at = this.sequence.nextTokenIndex;
    const [result] = await this.sequence.controlledEvaluate([[token, { generateNext: { probabilities: true, options } }]], { evaluationPriority: 5 });
    await this.sequence.eraseContextTokenRanges([{ start: at, end: this.sequence.nextTokenIndex }]);
    return result?.next?.probabilities ?? new Map();
  }
}

type Predictor = (reading: Reading) => Label;
const logs = (xs: number[]) => xs.map((x) => Math.log(Math.max(x, FLOOR)));
const classSums = (words: number[]) => {
  const sums: number[] = [];
  let i = 0;
  for (const label of SENTIMENT_LABELS) sums.push(ENSEMBLE_WORDS[label].reduce((sum) => sum + words[i++]!, 0));
  return sums;
};
const argmax = (scores: Record<SentimentLabel, number>): Label => SENTIMENT_LABELS.reduce((best, label) => (scores[label] > scores[best] ? label : best), 'neutral' as SentimentLabel);

function regression(fitSet: LabeledText[], readings: Map<string, Reading>, features: (r: Reading) => number[]): Predictor {
  const fitted = fitLogisticRegression(fitSet.map((item) => features(readings.get(item.text)!)), fitSet.map((item) => SENTIMENT_LABELS.indexOf(item.label)));
  return (r) => argmax(regressionScores(fitted, features(r)));
}

/** KL(anchor || query) over the two truncated distributions, missing tokens at a floor. */
function divergence(anchor: Map<number, number>, query: Map<number, number>): number {
  let kl = 0;
  for (const [token, p] of anchor) kl += p * Math.log(p / Math.max(query.get(token) ?? 0, FLOOR));
  return kl;
}

/** kNN prompting (Xu et al. 2023): the labels of the k anchors whose answer distributions are nearest. */
function knn(fitSet: LabeledText[], readings: Map<string, Reading>, k?: number): Predictor & { k: number } {
  const anchors = fitSet.map((item) => ({ label: item.label, dist: new Map(readings.get(item.text)!.dist[0].map((t, i) => [t, readings.get(item.text)!.dist[1][i]!])) }));
  const vote = (query: Map<number, number>, kk: number, skip = -1): Label => {
    const nearest = anchors
      .map((anchor, index) => ({ index, label: anchor.label, d: divergence(anchor.dist, query) }))
      .filter((a) => a.index !== skip)
      .sort((a, b) => a.d - b.d)
      .slice(0, kk);
    const counts = { positive: 0, neutral: 0, negative: 0 };
    for (const a of nearest) counts[a.label] += 1;
    return argmax(counts);
  };
  // k by leave-one-out on the anchors themselves, never on an eval split.
  let chosen = k ?? 0;
  if (!k) {
    let best = -1;
    for (const kk of [1, 3, 5, 9, 15, 25]) {
      const predicted = anchors.map((anchor, index) => vote(anchor.dist, kk, index));
      const f1 = scoreLabels(anchors.map((a) => a.label), predicted).macroF1;
      if (f1 > best) [best, chosen] = [f1, kk];
    }
  }
  const predictor = ((r: Reading) => vote(new Map(r.dist[0].map((t, i) => [t, r.dist[1][i]!])), chosen)) as Predictor & { k: number };
  predictor.k = chosen;
  return predictor;
}

/** A learned neutral band: below this calibrated confidence the answer is neutral; the margin is chosen on the fit set. */
function neutralBand(fitSet: LabeledText[], readings: Map<string, Reading>): Predictor & { band: number } {
  const calibration = fitCalibration(fitSet.map((item) => ({ probabilities: readings.get(item.text)!.p3, label: item.label })));
  const withBand = (band: number) => (r: Reading) => {
    const { label, confidence } = pickLabel(r.p3, calibration);
    return confidence < band ? 'neutral' : label;
  };
  let best = -1;
  let chosen = 0;
  for (let band = 0; band <= 0.8; band += 0.025) {
    const f1 = scoreLabels(fitSet.map((item) => item.label), fitSet.map((item) => withBand(band)(readings.get(item.text)!))).macroF1;
    if (f1 > best + 1e-9) [best, chosen] = [f1, band];
  }
  const predictor = withBand(chosen) as Predictor & { band: number };
  predictor.band = chosen;
  return predictor;
}

async function main(): Promise<void> {
  if (args.includes('--cached-only') && cachePath) {
    // A look at a run still under way: only what it has read so far.
    const cached = JSON.parse(readFileSync(cachePath, 'utf8')) as Record<string, unknown>;
    for (const name of Object.keys(splits)) splits[name] = splits[name]!.filter((item) => cached[item.text]);
  }
  const texts = [...base, ...tweetsForCalibration, ...Object.values(splits).flat()].map((item) => item.text);
  const peek = args.includes('--cached-only');
  const readings = await readAll(peek ? texts : [...texts, ...CONTENT_FREE_INPUTS]);
  const uniform: Reading = { p3: { positive: 1 / 3, neutral: 1 / 3, negative: 1 / 3 }, words: [], dist: [[], []] };
  for (const text of CONTENT_FREE_INPUTS) if (!readings.has(text)) readings.set(text, uniform);
  const withChat = [...base, ...tweetsForCalibration];
  const contentFree = meanPrior(CONTENT_FREE_INPUTS.map((text) => readings.get(text)!.p3));
  const learned = (fitSet: LabeledText[]): Predictor => {
    const calibration = fitCalibration(fitSet.map((item) => ({ probabilities: readings.get(item.text)!.p3, label: item.label })));
    return (r) => pickLabel(r.p3, calibration).label;
  };
  const knnBase = knn(base, readings);
  const knnChat = knn(withChat, readings);
  const bandChat = neutralBand(withChat, readings);
  const bandBase = neutralBand(base, readings);
  const p3Logs = (r: Reading) => logs(SENTIMENT_LABELS.map((l) => r.p3[l]));
  const variants: Array<[string, Predictor, string]> = [
    ['raw', (r) => argmax(r.p3), 'largest label probability'],
    ['content-free', (r) => pickLabel(r.p3, contentFree).label, 'Zhao 2021'],
    ['learned', learned(base), 'today: LR on log p(label), fitted on the shipped set'],
    ['learned+chat', learned(withChat), `the same, fitted with ${tweetsForCalibration.length} more VADER tweets (not the eval ones)`],
    ['learned swap', learned(swapped), `fitted on ${swapped.length}: half the VADER review/NYT lines swapped for the chat tweets`],
    ['ens-sum', regression(base, readings, (r) => logs(classSums(r.words))), 'LR on log of each label\'s summed ensemble words'],
    ['ens-sum+chat', regression(withChat, readings, (r) => logs(classSums(r.words))), 'the same, with the chat fit set'],
    ['ens-words', regression(base, readings, (r) => logs(r.words)), `LR on log p of each of ${Object.values(ENSEMBLE_WORDS).flat().length} words`],
    ['ens-words+chat', regression(withChat, readings, (r) => logs(r.words)), 'the same, with the chat fit set'],
    ['ens-words swap', regression(swapped, readings, (r) => logs(r.words)), 'ens-words on the swapped set'],
    ['label+ens+chat', regression(withChat, readings, (r) => [...p3Logs(r), ...logs(classSums(r.words))]), 'LR on the labels and the summed words, chat fit set'],
    [`band(${bandBase.band.toFixed(3)})`, bandBase, 'learned + neutral below this confidence (chosen on the fit set)'],
    [`band+chat(${bandChat.band.toFixed(3)})`, bandChat, 'the same on learned+chat'],
    [`knn k=${knnBase.k}`, knnBase, `kNN over the top-${DIST_TOP_K} next-token distribution, anchors: the shipped set (k by leave-one-out)`],
    [`knn+chat k=${knnChat.k}`, knnChat, 'the same, anchors with the chat tweets'],
  ];
  const splitNames = Object.keys(splits);
  const header = `| variant | ${splitNames.join(' | ')} | chat both | note |`;
  const lines = [header, `|${'---|'.repeat(splitNames.length + 3)}`];
  const scored: Record<string, Record<string, ScoreReport>> = {};
  const chatItems = CHAT_SPLITS.flatMap((name) => splits[name]!);
  for (const [name, predict, note] of variants) {
    scored[name] = {};
    for (const split of splitNames) scored[name][split] = scoreLabels(splits[split]!.map((i) => i.label), splits[split]!.map((i) => predict(readings.get(i.text)!)));
    const chat = scoreLabels(chatItems.map((i) => i.label), chatItems.map((i) => predict(readings.get(i.text)!)));
    scored[name]['chat both'] = chat;
    lines.push(`| ${name} | ${splitNames.map((s) => f1(scored[name]![s]!)).join(' | ')} | ${f1(chat)} | ${note} |`);
  }
  const afinn = (items: EvalItem[]) => {
    const english = items.filter((i) => i.lang === 'en');
    return `${f1(scoreLabels(english.map((i) => i.label), english.map((i) => lexiconBaseline(i.text))))}${english.length < items.length ? ' (en only)' : ''}`;
  };
  lines.push(`| AFINN word list | ${splitNames.map((s) => afinn(splits[s]!)).join(' | ')} | ${afinn(chatItems)} | eval only, never in the product |`);
  lines.push(`| majority class | ${splitNames.map((s) => f1(majorityBaseline(splits[s]!.map((i) => i.label)))).join(' | ')} | ${f1(majorityBaseline(chatItems.map((i) => i.label)))} | |`);
  const out = [`${modelPath}`, `macro-F1 (items: ${splitNames.map((s) => `${s} ${splits[s]!.length}`).join(', ')}; fit set ${base.length}, +chat ${withChat.length})`, '', ...lines, ''];
  for (const name of [variants[2]![0], ...(arg('--show') ?? '').split(',').filter(Boolean)]) {
    for (const split of CHAT_SPLITS) out.push(`Confusion, ${name}, ${split} (rows gold pos/neu/neg, columns predicted):`, ...scored[name]![split]!.confusion.map((row) => `  ${row.map((n) => String(n).padStart(4)).join('')}`));
  }
  process.stdout.write(out.join('\n') + '\n');
}

const f1 = (s: ScoreReport) => (s.macroF1 * 100).toFixed(1);

main().catch((error: unknown) => {
  process.stderr.write(`chat study failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
