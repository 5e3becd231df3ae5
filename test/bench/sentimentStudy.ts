// The classifier's quality on the labeled set with and without calibration, beside the majority
// class, and the seed article's bug measured: how often a naive classifier that sees an earlier
// chat turn in front of the same prompt changes its label. Used by `npm run eval` and the
// real-model test tier.
import { resolveChatWrapper } from 'node-llama-cpp';
import { SENTIMENT_LABELS, type SentimentLabel } from '../../src/config.js';
import type { Engine } from '../../src/engine/Engine.js';
import { pickLabel, SentimentClassifier } from '../../src/engine/SentimentClassifier.js';
import { majorityBaseline, runEval, type EvalItem, type EvalReport, type Label, type ScoreReport } from './evalHarness.js';

/** A strongly worded earlier turn, of the opposite mood to the message that follows it. */
export const EARLIER_TURNS: Record<'en' | 'zh', Record<'happy' | 'sad', string>> = {
  en: { happy: "I'm so happy today, everything went right!", sad: 'worst day ever, I lost my wallet and missed the bus' },
  zh: { happy: '我很开心', sad: '今天太倒霉了，钱包丢了，车也没赶上' },
};

export interface InterferenceReport {
  pairs: number;
  /** Messages whose label changed when an earlier turn of the opposite mood stood in front of them. */
  naiveChanged: number;
  naiveChangeRate: number;
  examples: Array<{ earlier: string; text: string; alone: Label; naive: Label }>;
}

export interface SentimentStudy {
  /** The product's (calibrated) label for each item, by id. */
  labels: Map<string, Label>;
  calibrated: EvalReport;
  uncalibrated: EvalReport;
  /** Always answering the set's most common label. */
  majority: ScoreReport & { label: Label };
  prior: Record<SentimentLabel, number>;
  interference: InterferenceReport;
}

/** `engine` must be created with calibrateSentiment: true (its prior is read; raw scores give the uncalibrated run). */
export async function studySentiment(engine: Engine, items: EvalItem[], threads: number, interferenceItems = items): Promise<SentimentStudy> {
  const prior = engine.classifier.calibrationPrior;
  if (!prior) throw new Error('studySentiment needs an engine created with calibrateSentiment: true');
  const raw = new Map<string, Record<SentimentLabel, number>>();
  const alone = new Map<string, Label>();
  const calibrated = await runEval({
    items,
    classify: async (text) => {
      const { result, raw: scores } = await engine.classifier.classifyWithScores(text);
      raw.set(text, scores);
      alone.set(text, result.label);
      return result;
    },
  });
  const uncalibrated = await runEval({
    items,
    classify: async (text) => pickLabel(raw.get(text)!),
  });
  const majority = majorityBaseline(items.map((item) => item.label));
  const interference = await measureInterference(engine, interferenceItems, threads, (text) => alone.get(text)!, prior);
  const labels = new Map(items.map((item) => [item.id, alone.get(item.text)!]));
  return { labels, calibrated, uncalibrated, majority, prior, interference };
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
  prior: Record<SentimentLabel, number>,
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
      const naiveLabel = pickLabel(scores, prior).label;
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

export function formatStudy(study: SentimentStudy): string {
  const { calibrated, uncalibrated, majority, prior, interference } = study;
  const row = (name: string, accuracy: number, macroF1: number) => `  ${name.padEnd(30)} ${pct(accuracy).padStart(8)}  ${pct(macroF1).padStart(8)}`;
  return [
    `Calibration prior (content-free inputs): ${SENTIMENT_LABELS.map((label) => `${label} ${prior[label].toFixed(3)}`).join(', ')}`,
    '                                 accuracy  macro-F1',
    row('product, calibrated', calibrated.model.accuracy, calibrated.model.macroF1),
    row('product, not calibrated', uncalibrated.model.accuracy, uncalibrated.model.macroF1),
    row(`majority class (${majority.label})`, majority.accuracy, majority.macroF1),
    row(`AFINN lexicon (English, ${calibrated.baseline.items})`, calibrated.baseline.accuracy, calibrated.baseline.macroF1),
    row('product on the same English', calibrated.baseline.modelOnSameItems.accuracy, calibrated.baseline.modelOnSameItems.macroF1),
    '',
    `Context interference: an earlier turn of the opposite mood in front of the prompt (the naive in-chat classifier)`,
    `  changed the label of ${interference.naiveChanged} of ${interference.pairs} messages (${pct(interference.naiveChangeRate)}); the product never shows a message any history.`,
    ...interference.examples.map((e) => `  after ${JSON.stringify(e.earlier)}: ${JSON.stringify(e.text)} ${e.alone} -> ${e.naive}`),
  ].join('\n');
}
