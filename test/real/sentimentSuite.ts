// The real-model tier's sentiment part, on one model per test file: the learned calibration against
// the raw label and the baselines on data it was not fitted to, floors measured on each fetched
// model, short informal posts against the AFINN word list, and a message's label unchanged by the
// history in front of it (the seed article's bug), with the naive in-chat classifier for contrast.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type EngineOptions } from '../../src/engine/Engine.js';
import { guardOutputOrder } from '../../src/engine/outputOrderGuard.js';
import { SentimentClassifier } from '../../src/engine/SentimentClassifier.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import { SENTIMENT_LABELS } from '../../src/domain.js';
import { lexiconBaseline, loadEvalSet, majorityBaseline, scoreLabels } from '../bench/evalHarness.js';
import { heldOutSplit, studySentiment, type SentimentStudy } from '../bench/sentimentStudy.js';
import { limitUnderLoad, threadsUnderLoad } from '../support/limitUnderLoad.js';
import { HOW_TO_GET_A_REAL_MODEL, writeTierReport } from '../support/realModel.js';
import { oneStartAtATime, runCalibrationDir } from '../support/runCalibrationDir.js';
import { tempDirs } from '../support/tempDir.js';

// Its share of the cores beside the suite's other files.
const THREADS = threadsUnderLoad();
/**
 * Hundreds of classifications a model: minutes on a quiet 2-core machine; the limits stretch with the
 * load. The Qwen-class start (its fit learned, then 520 texts classified) took 340-400 s on 1 thread
 * beside two other files; its limit is three times that.
 */
const SLOW = limitUnderLoad(300_000);
const ENGINE_OPTIONS: Omit<EngineOptions, 'modelPath' | 'threads'> = {
  contextSize: 1024,
  warmChannels: 1,
  historyMaxTokens: 512,
  // The sessions here reply to each message (a turn needs one), but only its label is looked at.
  replyMaxTokens: 4,
  systemPrompt: 'You are a friendly assistant in a Discord channel. Answer briefly.',
};

/**
 * Floors per fetched model, from one measured run with margin (`npm run eval:chat`, 1 thread, 2
 * shared cores, AMD EPYC, 2026-12-07; the default since issue 26 reads the label words): Qwen2.5-
 * Coder-0.5B held-out macro-F1 81.4% (79.7% with the labels alone, 69.7% raw), neutral recall 97%,
 * 81.6% on the chat items below (AFINN 69.7%); SmolLM2-135M 66.6% held-out (59.3% labels alone),
 * neutral recall 85%, 58.5% on the chat items. A REAL_MODEL of unknown kind gets the comparisons only.
 */
const FLOORS: Record<string, { macroF1: number; neutralRecall: number; chatMacroF1: number }> = {
  qwen: { macroF1: 0.74, neutralRecall: 0.8, chatMacroF1: 0.72 },
  smollm2: { macroF1: 0.55, neutralRecall: 0.6, chatMacroF1: 0.48 },
};
/** Short informal posts the method never saw (issue 26): our own 90 and every third of the 300 VADER tweets. */
const chat = [...loadEvalSet('test/fixtures/sentiment-chat-own.jsonl'), ...loadEvalSet('test/fixtures/sentiment-vader-tweets.jsonl').filter((_, i) => i % 3 === 0)];

const { heldOut } = heldOutSplit(loadEvalSet('test/fixtures/sentiment-eval.jsonl'));
const outside = loadEvalSet('test/fixtures/sentiment-vader-heldout.jsonl');

/**
 * The real tier's sentiment tests on one model (a file per model: sentimentQwen, sentimentSmolLM2),
 * through the engine, the learned fit and the sessions; its measured rates go to the tier's report.
 */
export function describeSentimentOn(file: string, model: { name: string; path: string } | undefined): void {
  if (!model) console.warn(`sentiment on ${file}: ${process.env.REAL_MODEL ? 'skipped, REAL_MODEL runs in the Qwen-class file' : HOW_TO_GET_A_REAL_MODEL}`);
  const { name, path } = model ?? { name: file, path: '' };
  const dirs = tempDirs('real-sentiment-');
  const report: Record<string, unknown> = {};
  afterAll(() => {
    dirs.removeAll();
    if (model) writeTierReport(`sentiment-${name}`, report);
  });

  describe.skipIf(!model)(`sentiment on the real model ${name}`, () => {
    let engine: Engine;
    let study: SentimentStudy;
    const floor = FLOORS[name];

    beforeAll(async () => {
      // The learned calibration is fitted on the shipped set at start, in a folder of this test run: really
      // fitted in every run, but once per model (the e2e tier's start on the real model shares it).
      engine = await oneStartAtATime(path, () =>
        Engine.create({ ...ENGINE_OPTIONS, modelPath: path, threads: THREADS, sentimentCalibration: 'learned', calibrationCacheDir: runCalibrationDir() }),
      );
      // The naive in-chat classifier on every third message: enough to measure, at a third of the cost.
      study = await studySentiment(engine, { heldOut, outside }, THREADS, heldOut.filter((_, i) => i % 3 === 0));
      const summary = (split: NonNullable<SentimentStudy['outside']>) => ({
        items: split.items,
        ...Object.fromEntries(Object.entries(split.variants).map(([variant, s]) => [variant, { accuracy: s.accuracy, macroF1: s.macroF1, recall: Object.fromEntries(Object.entries(s.perClass).map(([l, c]) => [l, c.recall])) }])),
        majority: { label: split.majority.label, macroF1: split.majority.macroF1 },
        afinnEnglish: { items: split.afinn.items, macroF1: split.afinn.macroF1, productMacroF1: split.afinn.productOnSameItems.macroF1 },
      });
      report[`sentiment:${name}`] = {
        model: path,
        heldOut: summary(study.heldOut),
        outside: summary(study.outside!),
        latencyMs: study.report.latencyMs,
        naiveInChatChangeRate: { pairs: study.interference.pairs, rate: study.interference.naiveChangeRate },
      };
    }, 4 * SLOW);
    afterAll(async () => {
      await engine?.dispose();
    });

    it('the learned calibration is not worse than the raw label on the held-out split or outside the calibration set, and beats the majority class clearly', () => {
      const { variants, majority } = study.heldOut;
      expect(variants.learned.macroF1).toBeGreaterThanOrEqual(variants.raw.macroF1 - 0.02);
      expect(study.outside!.variants.learned.macroF1).toBeGreaterThanOrEqual(study.outside!.variants.raw.macroF1 - 0.02);
      expect(variants.learned.macroF1).toBeGreaterThan(majority.macroF1 + 0.1);
    });

    it.skipIf(!floor)('stays above the floors measured on this model (held-out macro-F1 and neutral recall)', () => {
      expect(study.heldOut.variants.learned.macroF1).toBeGreaterThanOrEqual(floor!.macroF1);
      expect(study.heldOut.variants.learned.perClass.neutral.recall).toBeGreaterThanOrEqual(floor!.neutralRecall);
    });

    it.skipIf(!floor)('on short informal posts it stays above the floor measured on this model, and the Qwen-class model stays above the AFINN word list', async () => {
      const predicted: Array<(typeof chat)[number]['label']> = [];
      for (const item of chat) predicted.push((await engine.classifier.classify(item.text)).label);
      const gold = chat.map((item) => item.label);
      const product = scoreLabels(gold, predicted);
      const afinn = scoreLabels(gold, chat.map((item) => lexiconBaseline(item.text)));
      report[`chat:${name}`] = { items: chat.length, macroF1: product.macroF1, afinnMacroF1: afinn.macroF1, confusion: product.confusion };
      expect(product.macroF1).toBeGreaterThanOrEqual(floor!.chatMacroF1);
      if (name === 'qwen') expect(product.macroF1).toBeGreaterThan(afinn.macroF1);
    }, SLOW);

    it('beats the majority class on the clear-cut part of the held-out split (no sarcasm, mixed feelings or negation)', () => {
      const hard = ['sarcasm', 'mixed', 'negation', 'flip'];
      const clear = heldOut.filter((item) => !item.tags.some((tag) => hard.includes(tag)));
      const predicted = clear.map((item) => study.labels.get(item.id)!);
      const gold = clear.map((item) => item.label);
      const product = scoreLabels(gold, predicted);
      const majority = majorityBaseline(gold);
      report[`clearCut:${name}`] = { items: clear.length, accuracy: product.accuracy, macroF1: product.macroF1, majorityAccuracy: majority.accuracy, majorityMacroF1: majority.macroF1 };
      expect(product.accuracy).toBeGreaterThan(majority.accuracy);
      expect(product.macroF1).toBeGreaterThan(majority.macroF1 + 0.1);
    });

    it('gives each of two messages decoded in one batch its own label probabilities, as alone (the outputs guard)', async () => {
      // Two classifiers on two sequences of one guarded context. Without the guard, on the Qwen-class
      // model, 4 and 5 of these 12 rounds (two runs) read a row that was the other message's, or a mix of
      // both (worst 0.91 off); with it, none (worst 0.012).
      const context = await engine.model.createContext({ sequences: 2, contextSize: 1024, threads: THREADS });
      try {
        guardOutputOrder(context);
        // The engine's classifier's prompt (its wrapper: reasoning is off here), on two sequences of their own.
        const newLane = () => SentimentClassifier.create({ model: engine.model, sequence: context.getSequence(), chatWrapper: engine.chatWrapper });
        const lanes = [await newLane(), await newLane()];
        const texts = outside.slice(0, 12).map((item) => item.text);
        const worst = { diff: 0, pair: [] as string[] };
        for (let round = 0; round < 12; round++) {
          const pair = [texts[(2 * round) % 12]!, texts[(2 * round + 1) % 12]!];
          const alone = [await lanes[0]!.labelProbabilities(pair[0]!), await lanes[1]!.labelProbabilities(pair[1]!)];
          const together = await Promise.all(pair.map((text, lane) => lanes[lane]!.labelProbabilities(text)));
          for (const i of [0, 1]) {
            for (const label of SENTIMENT_LABELS) {
              const diff = Math.abs(together[i]![label] - alone[i]![label]);
              if (diff > worst.diff) Object.assign(worst, { diff, pair });
            }
          }
        }
        report[`decodedTogether:${name}`] = { rounds: 12, maxDiff: worst.diff };
        // Batched arithmetic moves a probability by a few thousandths; another message's row, by tenths.
        expect(worst.diff, `worst pair: ${JSON.stringify(worst.pair)}`).toBeLessThan(0.05);
      } finally {
        await context.dispose();
      }
    }, SLOW);

    it("gives the seed's flip message and similar ones the same label after a message of the opposite mood as alone, through the sessions", async () => {
      const pairs = [
        ['我很开心', '但我丢了钱包'],
        ['今天考试通过了，太棒了', '可是回家路上手机摔坏了'],
        ['I finally passed my driving test!!', 'but my car got towed on the way home'],
        ['worst day ever, I lost my wallet', 'oh wait, someone found it and brought it back!'],
      ];
      const store = await KeyvHistoryStore.open({ url: `sqlite://${join(dirs.make(), 'h.sqlite')}` });
      const sessions = new ChannelSessions({ engine, queue: new GenerationQueue(), store });
      try {
        for (const [i, [earlier, later]] of pairs.entries()) {
          await sessions.handleMessage({ channelId: `pair-${i}`, userName: 'ming', text: earlier! });
          const inHistory = await sessions.handleMessage({ channelId: `pair-${i}`, userName: 'ming', text: later! });
          const alone = await sessions.handleMessage({ channelId: `alone-${i}`, userName: 'ming', text: later! });
          expect((await store.load(`pair-${i}`)).map((turn) => turn.userText)).toEqual([earlier, later]);
          expect(inHistory.sentiment.label).toBe(alone.sentiment.label);
          expect(inHistory.sentiment.confidence).toBeCloseTo(alone.sentiment.confidence, 3);
        }
      } finally {
        await sessions.close();
        await store.dispose();
      }
      // The naive method, measured for contrast: it does change labels.
      expect(study.interference.naiveChanged).toBeGreaterThan(0);
    }, SLOW);
  });
}
