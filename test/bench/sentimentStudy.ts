// The classifier's quality, every calibration variant side by side on data none of them was fitted
// to, beside the majority class and the AFINN word list; and the seed article's bug measured: how
// often a naive classifier that sees an earlier chat turn in front of the same prompt changes its
// label. Used by `npm run eval` and the real-model test tier.
//
// Each message is read by the model ONCE (its three label probabilities); every variant is then a
// different way of turning those probabilities into a label, so the comparison is exact.
import { resolveChatWrapper } from 'node-llama-cpp';
import { SENTIMENT_LABELS, type SentimentLabel } from '../../src/domain.js';
import type { Engine } from '../../src/engine/Engine.js';
import { pickLabel, SentimentClassifier, type SentimentResult } from '../../src/engine/SentimentClassifier.js';
import { calibratedScores, meanPrior, type Calibration, type ContentFreeCalibration, type LabelProbabilities } from '../../src/engine/sentimentCalibration.js';
import { lexiconBaseline, majorityBaseline, runEval, scoreLabels, type EvalItem, type EvalReport, type Label, type ScoreReport } from './evalHarness.js';

/** A strongly worded earlier turn, of the opposite mood to the message that follows it. */
export const EARLIER_TURNS: Record<'en' | 'zh', Record<'happy' | 'sad', string>> = {
  en: { happy: "I'm so happy today, everything went right!", sad: 'worst day ever, I lost my wallet and missed the bus' },
  zh: { happy: '我很开心', sad: '今天太倒霉了，钱包丢了，车也没赶上' },
};

/**
 * The project's labeled set is split once, by id: a third (ids divisible by 3) was used to choose
 * the classifier's instruction and examples; the other two thirds are held out, never looked at
 * while choosing, and every number the README reports comes from them.
 */
export function heldOutSplit(items: EvalItem[]): { dev: EvalItem[]; heldOut: EvalItem[] } {
  const isDev = (item: EvalItem) => Number(item.id.replace(/\D+/g, '')) % 3 === 0;
  return { dev: items.filter(isDev), heldOut: items.filter((item) => !isDev(item)) };
}

export const VARIANTS = ['raw', 'content-free', 'batch', 'learned', 'learned+batch'] as const;
export type Variant = (typeof VARIANTS)[number];
export const VARIANT_NOTES: Record<Variant, string> = {
  raw: 'largest label probability',
  'content-free': "prior on 'N/A'-like inputs divided out (Zhao 2021)",
  batch: "mean over the split's own inputs divided out (Zhou 2024)",
  learned: 'logistic regression on the label words, fitted at start on the shipped set (the default)',
  'learned+batch': 'learned, then batch',
};

export interface InterferenceReport {
  pairs: number;
  /** Messages whose label changed when an earlier turn of the opposite mood stood in front of them. */
  naiveChanged: number;
  naiveChangeRate: number;
  examples: Array<{ earlier: string; text: string; alone: Label; naive: Label }>;
}

export interface SplitStudy {
  items: number;
  variants: Record<Variant, ScoreReport>;
  majority: ScoreReport & { label: Label };
  /** AFINN on the English items, and the default variant on exactly those items. */
  afinn: ScoreReport & { items: number; productOnSameItems: ScoreReport };
}

export interface SentimentStudy {
  /** The product's (learned) label for each item of every split, by id. */
  labels: Map<string, Label>;
  heldOut: SplitStudy;
  /** Human-rated review and editorial snippets that are not in the calibration set (another domain). */
  outside?: SplitStudy;
  /** The default run through the real harness: latency per message and the mistakes. */
  report: EvalReport;
  contentFreePrior: Record<SentimentLabel, number>;
  interference: InterferenceReport;
}

/** The classifier a study reads: in process (engine.classifier) or through an inference server (ServerEngine). */
export interface StudiedClassifier {
  readonly calibration: Calibration | undefined;
  contentFreeCalibration(): Promise<ContentFreeCalibration>;
  classifyWithScores(text: string): Promise<{ result: SentimentResult; raw: LabelProbabilities }>;
  labelProbabilities(text: string): Promise<LabelProbabilities>;
}

/**
 * `engine` must be created with sentimentCalibration: 'learned'. A ServerEngine is studied as its
 * classifier (`{ classifier }`); the naive in-chat comparison then is not measured (it needs the model in process).
 */
export async function studySentiment(
  engine: Engine | { classifier: StudiedClassifier },
  splits: { heldOut: EvalItem[]; outside?: EvalItem[] },
  threads: number,
  interferenceItems = splits.heldOut,
): Promise<SentimentStudy> {
  const learned = engine.classifier.calibration;
  if (learned?.kind !== 'learned') throw new Error("studySentiment needs an engine created with sentimentCalibration: 'learned'");
  const contentFree = await engine.classifier.contentFreeCalibration();
  const raw = new Map<string, LabelProbabilities>();
  const labels = new Map<string, Label>();
  const report = await runEval({
    items: splits.heldOut,
    classify: async (text) => {
      const { result, raw: scores } = await engine.classifier.classifyWithScores(text);
      raw.set(text, scores);
      return result;
    },
  });
  for (const item of splits.outside ?? []) raw.set(item.text, await engine.classifier.labelProbabilities(item.text));
  const study = (items: EvalItem[]): SplitStudy => {
    const probabilities = items.map((item) => raw.get(item.text)!);
    const batch = meanPrior(probabilities);
    const batchAfterLearned = meanPrior(probabilities.map((p) => calibratedScores(p, learned)));
    const predict: Record<Variant, (p: LabelProbabilities) => Label> = {
      raw: (p) => pickLabel(p).label,
      'content-free': (p) => pickLabel(p, contentFree).label,
      batch: (p) => pickLabel(p, batch).label,
      learned: (p) => pickLabel(p, learned).label,
      'learned+batch': (p) => pickLabel(calibratedScores(p, learned), batchAfterLearned).label,
    };
    const gold = items.map((item) => item.label);
    const variants = Object.fromEntries(VARIANTS.map((variant) => [variant, scoreLabels(gold, probabilities.map(predict[variant]))])) as Record<Variant, ScoreReport>;
    items.forEach((item, i) => labels.set(item.id, predict.learned(probabilities[i]!)));
    const english = items.flatMap((item, i) => (item.lang === 'en' ? [i] : []));
    const englishGold = english.map((i) => gold[i]!);
    const afinn = {
      ...scoreLabels(englishGold, english.map((i) => lexiconBaseline(items[i]!.text))),
      items: english.length,
      productOnSameItems: scoreLabels(englishGold, english.map((i) => predict.learned(probabilities[i]!))),
    };
    return { items: items.length, variants, majority: majorityBaseline(gold), afinn };
  };
  const interference =
    'model' in engine
      ? await measureInterference(engine, interferenceItems, threads, (text) => pickLabel(raw.get(text)!, learned).label, learned)
      : { pairs: 0, naiveChanged: 0, naiveChangeRate: 0, examples: [] };
  return {
    labels,
    heldOut: study(splits.heldOut),
    ...(splits.outside ? { outside: study(splits.outside) } : {}),
    report,
    contentFreePrior: contentFree.prior,
    interference,
  };
}

/**
 * The naive method: the same instruction and examples, with an earlier turn of the opposite mood
 * (and the label the model gave it) in front of the message, as a classifier inside the chat would.
 */
async function measureInterference(
  engine: Engine,
  items: EvalItem[],
  threads: number,
  isolated: (text: string) => Label,
  calibration: Calibration,
): Promise<InterferenceReport> {
  const context = await engine.model.createContext({ contextSize: 1024, sequences: 4, threads });
  try {
    const chatWrapper = resolveChatWrapper(engine.model);
    const naive = new Map<string, SentimentClassifier>();
    for (const lang of ['en', 'zh'] as const) {
      for (const mood of ['happy', 'sad'] as const) {
        const label = mood === 'happy' ? 'positive' : 'negative';
        const classifier = await SentimentClassifier.create({ model: engine.model, sequence: context.getSequence(), chatWrapper, precedingTurns: [{ text: EARLIER_TURNS[lang][mood], label }] });
        naive.set(`${lang}/${mood}`, classifier);
      }
    }
    const examples: InterferenceReport['examples'] = [];
    let changed = 0;
    for (const item of items) {
      const mood = item.label === 'positive' ? 'sad' : 'happy';
      const scores = await naive.get(`${item.lang}/${mood}`)!.labelProbabilities(item.text);
      // Same calibration as the product, so only the earlier turn differs.
      const naiveLabel = pickLabel(scores, calibration).label;
      const alone = isolated(item.text);
      if (naiveLabel !== alone) {
        changed++;
        if (examples.length < 8) examples.push({ earlier: EARLIER_TURNS[item.lang][mood], text: item.text, alone, naive: naiveLabel });
      }
    }
    return { pairs: items.length, naiveChanged: changed, naiveChangeRate: changed / items.length, examples };
  } finally {
    await context.dispose();
  }
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** The variants table of one split: accuracy, macro-F1 and per-class precision/recall, then the baselines. */
export function formatSplit(title: string, split: SplitStudy): string {
  const header = `  ${'variant'.padEnd(15)} ${'acc'.padStart(6)} ${'macroF1'.padStart(8)}   ${SENTIMENT_LABELS.map((l) => `${l.slice(0, 3)} P/R`.padStart(13)).join('')}`;
  const row = (name: string, s: ScoreReport, note = '') =>
    `  ${name.padEnd(15)} ${pct(s.accuracy).padStart(6)} ${pct(s.macroF1).padStart(8)}   ${SENTIMENT_LABELS.map((l) => `${(s.perClass[l].precision * 100).toFixed(0)}/${(s.perClass[l].recall * 100).toFixed(0)}`.padStart(13)).join('')}${note ? `   ${note}` : ''}`;
  return [
    `${title} (${split.items} items)`,
    header,
    ...VARIANTS.map((variant) => row(variant, split.variants[variant], VARIANT_NOTES[variant])),
    row(`majority (${split.majority.label.slice(0, 3)})`, split.majority),
    row(`AFINN, en ${split.afinn.items}`, split.afinn, 'word list, English items only'),
    row('learned, en', split.afinn.productOnSameItems, 'the default on the same English items'),
  ].join('\n');
}

export function formatStudy(study: SentimentStudy): string {
  const { interference, contentFreePrior } = study;
  return [
    formatSplit("Held-out split of the project's labeled set", study.heldOut),
    ...(study.outside ? ['', formatSplit('Outside the calibration set: human-rated review and editorial snippets (VADER, not fitted on)', study.outside)] : []),
    '',
    `Content-free prior: ${SENTIMENT_LABELS.map((label) => `${label} ${contentFreePrior[label].toFixed(3)}`).join(', ')}`,
    `Reaction latency (held-out split, one message at a time): p50 ${study.report.latencyMs.p50.toFixed(1)} ms, p95 ${study.report.latencyMs.p95.toFixed(1)} ms`,
    '',
    ...(interference.pairs === 0
      ? ['Context interference: not measured through an inference server (the naive in-chat classifier runs in process).']
      : [
          `Context interference: an earlier turn of the opposite mood in front of the prompt (the naive in-chat classifier)`,
          `  changed the label of ${interference.naiveChanged} of ${interference.pairs} messages (${pct(interference.naiveChangeRate)}); the product never shows a message any history.`,
        ]),
    ...interference.examples.map((e) => `  after ${JSON.stringify(e.earlier)}: ${JSON.stringify(e.text)} ${e.alone} -> ${e.naive}`),
  ].join('\n');
}
