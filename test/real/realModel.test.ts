// The real-model tier: real weights from `npm run fetch-test-model` (or REAL_MODEL), through the
// real sessions, queue, engine and SQLite files. Replies run on SmolLM2-135M-Instruct (fast enough
// for dozens of real generations); the sentiment part runs on every fetched model, SmolLM2 and the
// Qwen2.5-class 0.5B. A real model samples, so every claim here is a rate over many messages,
// compared with its baseline.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveChatWrapper } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SENTIMENT_INSTRUCTION } from '../../src/engine/SentimentClassifier.js';
import { Engine, type EngineOptions } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import { lexiconBaseline, loadEvalSet, majorityBaseline, scoreLabels } from '../bench/evalHarness.js';
import { heldOutSplit, studySentiment, type SentimentStudy } from '../bench/sentimentStudy.js';
import { limitUnderLoad, threadsUnderLoad } from '../support/limitUnderLoad.js';
import { HOW_TO_GET_A_REAL_MODEL, realModelPath, realModelPaths } from '../support/realModel.js';
import { runCalibrationDir } from '../support/runCalibrationDir.js';
import { tempDirs } from '../support/tempDir.js';

const modelPath = realModelPath();
if (!modelPath) console.warn(HOW_TO_GET_A_REAL_MODEL);

// Test files run one after another, so this tier may use both cores, unless other work keeps them busy.
const THREADS = threadsUnderLoad();
const SEEDS = [11, 22];
/**
 * Each test here runs dozens of real generations (recall: ~130 replies and 4 model loads; short
 * replies: 10 of up to 128 tokens), minutes on a quiet 2-core machine; on a busy one (load 6-14)
 * they timed out at 600 s and 300 s by time alone, so the limits stretch with the load.
 */
const SLOW = limitUnderLoad(300_000);
const SYSTEM_PROMPT = 'You are a friendly assistant in a Discord channel. Answer briefly.';
/** Where the measured rates go, for the README and the closing note. */
const REPORT_DIR = 'data/bench';
const SYSTEM_INSTRUCTION_START = SENTIMENT_INSTRUCTION.slice(0, 40);

const FACTS: Array<{ fact: string; question: string; answer: string }> = [
  { fact: 'My cat is called Biscuit.', question: 'What is my cat called?', answer: 'biscuit' },
  { fact: 'My sister is called Priya.', question: "What is my sister's name?", answer: 'priya' },
  { fact: 'I live in Lisbon.', question: 'Which city do I live in?', answer: 'lisbon' },
  { fact: 'My favourite colour is teal.', question: 'What is my favourite colour?', answer: 'teal' },
  { fact: 'My dog is named Rocket.', question: "What is my dog's name?", answer: 'rocket' },
  { fact: 'I work as a baker.', question: 'What is my job?', answer: 'baker' },
  { fact: 'My best friend is Tomasz.', question: "What is my best friend's name?", answer: 'tomasz' },
  { fact: 'My car is a red Volvo.', question: 'What car do I drive?', answer: 'volvo' },
  { fact: 'My brother is called Mateo.', question: "What is my brother's name?", answer: 'mateo' },
  { fact: 'I was born in Nairobi.', question: 'Where was I born?', answer: 'nairobi' },
  { fact: 'My favourite food is ramen.', question: 'What is my favourite food?', answer: 'ramen' },
  { fact: 'My parrot is called Kiwi.', question: "What is my parrot's name?", answer: 'kiwi' },
];

const dirs = tempDirs('real-');
const report: Record<string, unknown> = { model: modelPath };
const replies: string[] = [];

function engineOptions(overrides: Partial<EngineOptions> = {}): EngineOptions {
  return {
    modelPath: modelPath!,
    threads: THREADS,
    contextSize: 1024,
    warmChannels: 4,
    historyMaxTokens: 512,
    // Long enough for a name or a place; a real model says it early if it says it at all.
    replyMaxTokens: 24,
    systemPrompt: SYSTEM_PROMPT,
    sentimentCalibration: 'off',
    ...overrides,
  };
}

/** Engine, queue, SQLite store and sessions, as the bot wires them. */
async function openBot(databaseFile: string, overrides: Partial<EngineOptions> = {}) {
  const engine = await Engine.create(engineOptions(overrides));
  const store = await KeyvHistoryStore.open({ url: `sqlite://${databaseFile}` });
  const sessions = new ChannelSessions({ engine, queue: new GenerationQueue(), store });
  const say = async (channelId: string, text: string) => {
    const outcome = await sessions.handleMessage({ channelId, userName: 'sam', text });
    replies.push(outcome.reply);
    return outcome;
  };
  const close = async () => {
    await sessions.close();
    await store.dispose();
    await engine.dispose();
  };
  return { engine, sessions, say, close };
}

const recalls = (reply: string, answer: string) => reply.toLowerCase().includes(answer);
const rate = (hits: number, total: number) => Math.round((hits / total) * 1000) / 1000;

afterAll(() => {
  dirs.removeAll();
  if (!modelPath) return;
  mkdirSync(REPORT_DIR, { recursive: true });
  writeFileSync(join(REPORT_DIR, 'real-model.json'), JSON.stringify(report, null, 2));
  console.log('real-model tier:', JSON.stringify(report));
});

describe.skipIf(!modelPath)('the real model', () => {
  it("renders the classifier's prompt and the replies through the model's own chat template", async () => {
    const engine = await Engine.create(engineOptions());
    try {
      const wrapper = engine.chatWrapper;
      report.chatWrapper = wrapper.wrapperName;
      // SmolLM2's template is ChatML without a BOS token (its BOS is <|im_start|>): node-llama-cpp's
      // ChatML wrapper would start every prompt with <|im_start|> twice, so the file's own template renders.
      const own = resolveChatWrapper(engine.model, { type: 'jinjaTemplate' });
      const probe = [{ type: 'system' as const, text: 'S' }, { type: 'user' as const, text: 'hi' }, { type: 'model' as const, response: [] }];
      const render = (w: typeof own) => engine.model.detokenize(w.generateContextState({ chatHistory: probe }).contextText.tokenize(engine.model.tokenizer), true);
      expect(render(wrapper)).toBe(render(own));
      expect(render(wrapper).startsWith('<|im_start|><|im_start|>')).toBe(false);
      // The classifier's prompt ends as the template opens the model's turn after a user message.
      const prompt = engine.model.detokenize(engine.classifier.promptTokens('hello'), true);
      const { contextText } = wrapper.generateContextState({ chatHistory: [{ type: 'user', text: 'hello' }, { type: 'model', response: [] }] });
      const modelTurnOpening = contextText.toString().split('hello').at(-1)!;
      expect(modelTurnOpening).toContain('assistant');
      expect(prompt.endsWith(`hello${modelTurnOpening}`)).toBe(true);
      expect(prompt).toContain(SYSTEM_INSTRUCTION_START);
    } finally {
      await engine.dispose();
    }
  });

  it('recalls a fact stated earlier in a channel far more often than without that history: warm, cold after a restart, and not after /reset', async () => {
    const hits = { warm: 0, noHistory: 0, afterRestart: 0, afterReset: 0 };
    for (const seed of SEEDS) {
      const databaseFile = join(dirs.make(), 'history.sqlite');
      const first = await openBot(databaseFile, { seed });
      try {
        for (const [i, { fact, question, answer }] of FACTS.entries()) {
          await first.say(`told-${i}`, fact);
          if (recalls((await first.say(`told-${i}`, question)).reply, answer)) hits.warm++;
          if (recalls((await first.say(`never-told-${i}`, question)).reply, answer)) hits.noHistory++;
          await first.say(`restart-${i}`, fact);
          // /reset is the control (it should bring recall down to the no-history rate): one seed is enough.
          if (seed === SEEDS[0]) {
            await first.say(`reset-${i}`, fact);
            await first.sessions.reset(`reset-${i}`);
          }
        }
      } finally {
        await first.close();
      }
      // A new process's engine and store on the same file: every channel is cold, rebuilt from SQLite.
      const second = await openBot(databaseFile, { seed });
      try {
        for (const [i, { question, answer }] of FACTS.entries()) {
          if (recalls((await second.say(`restart-${i}`, question)).reply, answer)) hits.afterRestart++;
          if (seed === SEEDS[0] && recalls((await second.say(`reset-${i}`, question)).reply, answer)) hits.afterReset++;
        }
      } finally {
        await second.close();
      }
    }
    const asked = FACTS.length * SEEDS.length;
    const rates = { warm: hits.warm / asked, noHistory: hits.noHistory / asked, afterRestart: hits.afterRestart / asked, afterReset: hits.afterReset / FACTS.length };
    report.recall = { asked, ...Object.fromEntries(Object.entries(rates).map(([key, value]) => [key, rate(value, 1)])) };
    // SmolLM2-135M recalled about a third of the facts (0 without the history) on 2026-12-02; the
    // floors sit at half that, so a different CPU build's sampling cannot fail them by chance.
    expect(rates.warm).toBeGreaterThanOrEqual(1 / 6);
    expect(rates.warm - rates.noHistory).toBeGreaterThanOrEqual(1 / 8);
    expect(rates.afterRestart).toBeGreaterThanOrEqual(1 / 6);
    expect(rates.afterRestart - rates.afterReset).toBeGreaterThanOrEqual(1 / 8);
  }, 2 * SLOW);

  it('ends most short replies with its own end-of-turn token, and no template token or speaker prefix reaches the user', async () => {
    const engine = await Engine.create(engineOptions({ replyMaxTokens: 128, seed: SEEDS[0] }));
    const prompts = ['hi!', 'thanks for the help', 'how are you today?', 'good morning everyone', 'what is 2 + 2?', 'I passed my exam!', 'tell me a fun fact about cats', 'bye, see you tomorrow', 'can you recommend a movie?', 'what colour is the sky?'];
    let ended = 0;
    try {
      for (const [i, text] of prompts.entries()) {
        const result = await engine.reply({ channelId: `short-${i}`, turns: [], userName: 'sam', userText: text });
        replies.push(result.text);
        if (result.endedByModel) ended++;
      }
    } finally {
      await engine.dispose();
    }
    report.endOfTurn = { prompts: prompts.length, endedByModel: rate(ended, prompts.length), replyMaxTokens: 128 };
    expect(ended / prompts.length).toBeGreaterThanOrEqual(0.6);

    // Every reply of this tier so far, from the sessions too.
    expect(replies.length).toBeGreaterThan(50);
    for (const reply of replies) {
      expect(reply).not.toMatch(/<\|im_(start|end)\|>|<\|endoftext\|>/);
      // Only speakers are stripped: a reply may open with "Answer:" or "Step 1:" (issue 16, defect 7).
      expect(reply).not.toMatch(/^(assistant|user|system|bot|model|sam)\s*:/i);
    }
  }, SLOW);

});

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

const sentimentModels = realModelPaths();
const { heldOut } = heldOutSplit(loadEvalSet('test/fixtures/sentiment-eval.jsonl'));
const outside = loadEvalSet('test/fixtures/sentiment-vader-heldout.jsonl');

describe.skipIf(sentimentModels.length === 0).each(sentimentModels)('sentiment on the real model $name', ({ name, path }) => {
  let engine: Engine;
  let study: SentimentStudy;
  const floor = FLOORS[name];

  beforeAll(async () => {
    // The learned calibration is fitted on the shipped set at start, in a folder of this test run: really
    // fitted in every run, but once per model (the e2e tier's start on the real model shares it).
    engine = await Engine.create(engineOptions({ modelPath: path, warmChannels: 1, sentimentCalibration: 'learned', calibrationCacheDir: runCalibrationDir() }));
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
  }, 2 * SLOW);
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
