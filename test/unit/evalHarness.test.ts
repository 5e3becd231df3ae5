import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  LABELS,
  type EvalItem,
  type Label,
  formatReport,
  lexiconBaseline,
  loadEvalSet,
  runEval,
  scoreLabels,
} from '../bench/evalHarness.js';

const DATA = fileURLToPath(new URL('../fixtures/sentiment-eval.jsonl', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

describe('the chat-like splits (issue 26)', () => {
  const own = loadEvalSet(fixture('sentiment-chat-own.jsonl'));
  const tweets = loadEvalSet(fixture('sentiment-vader-tweets.jsonl'));
  const calibrationTexts = new Set(
    readFileSync(fileURLToPath(new URL('../../src/engine/calibration-set.jsonl', import.meta.url)), 'utf8')
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('//'))
      .map((line) => (JSON.parse(line) as { text: string }).text),
  );

  it('are balanced across the three labels', () => {
    for (const label of LABELS) {
      expect(own.filter((it) => it.label === label)).toHaveLength(30);
      expect(tweets.filter((it) => it.label === label)).toHaveLength(100);
    }
  });

  it('are held out: no text is in the calibration set, the other fixtures or the other split', () => {
    const others = new Set([...loadEvalSet(DATA), ...loadEvalSet(fixture('sentiment-vader-heldout.jsonl'))].map((it) => it.text));
    for (const item of [...own, ...tweets]) {
      expect(calibrationTexts.has(item.text), item.id).toBe(false);
      expect(others.has(item.text), item.id).toBe(false);
    }
    expect(new Set([...own, ...tweets].map((it) => it.text)).size).toBe(own.length + tweets.length);
  });

  it('keep the rule the own split was written to at the top of its file, as comment lines the loader skips', () => {
    const head = readFileSync(fixture('sentiment-chat-own.jsonl'), 'utf8').split('\n')[0]!;
    expect(head).toMatch(/^\/\/ Chat split/);
    expect(own.every((it) => it.text.split(/\s+/).length <= 15)).toBe(true);
  });
});

describe('sentiment-eval.jsonl', () => {
  const items = loadEvalSet(DATA);
  const share = (pred: (it: EvalItem) => boolean) => items.filter(pred).length / items.length;
  const withTag = (tag: string) => items.filter((it) => it.tags.includes(tag));

  it('is large enough and balanced across languages and labels', () => {
    expect(items.length).toBeGreaterThanOrEqual(160);
    expect(share((it) => it.lang === 'en')).toBeGreaterThanOrEqual(0.4);
    expect(share((it) => it.lang === 'zh')).toBeGreaterThanOrEqual(0.4);
    for (const label of LABELS) expect(share((it) => it.label === label)).toBeGreaterThanOrEqual(0.25);
  });

  it('has unique ids and texts', () => {
    expect(new Set(items.map((it) => it.id)).size).toBe(items.length);
    expect(new Set(items.map((it) => it.text)).size).toBe(items.length);
  });

  it('contains the seed article flip pair as two separate items', () => {
    const happy = items.find((it) => it.text === '我很开心');
    const wallet = items.find((it) => it.text === '但我丢了钱包');
    expect(happy).toMatchObject({ lang: 'zh', label: 'positive' });
    expect(wallet).toMatchObject({ lang: 'zh', label: 'negative' });
    expect(happy?.tags).toContain('flip');
    expect(wallet?.tags).toContain('flip');
  });

  it('covers sarcasm, mixed feelings and emoji-only messages', () => {
    expect(withTag('sarcasm').length).toBeGreaterThanOrEqual(5);
    expect(withTag('sarcasm').every((it) => it.label === 'negative')).toBe(true);
    expect(items.find((it) => it.text === 'oh great, another Monday 🙃')?.label).toBe('negative');
    expect(withTag('mixed').length).toBeGreaterThanOrEqual(5);
    const emojiOnly = withTag('emoji-only');
    expect(emojiOnly.length).toBeGreaterThanOrEqual(5);
    // The tag must be honest: nothing but pictographs, variation selectors, joiners, spaces.
    for (const it of emojiOnly) expect(it.text).toMatch(/^[\p{Extended_Pictographic}\uFE0F\u200D\s]+$/u);
    for (const text of ['😭😭', '🎉🎉🎉', '👍']) expect(emojiOnly.map((it) => it.text)).toContain(text);
  });
});

describe('scoreLabels', () => {
  it('matches a hand-computed 3x3 case', () => {
    // gold → predicted, 10 items:
    //   pos→pos ×2, pos→neu, pos→neg, neu→neu, neu→neg, neg→neg ×3, neg→pos
    // confusion rows (gold) pos [2,1,1]  neu [0,1,1]  neg [1,0,3]; correct 6/10
    //   pos: P 2/3 (col 2+0+1), R 2/4, F1 2·(1/3)/(7/6) = 4/7
    //   neu: P 1/2 (col 1+1+0), R 1/2, F1 1/2
    //   neg: P 3/5 (col 1+1+3), R 3/4, F1 (9/10)/(27/20) = 2/3
    //   macro-F1 (4/7 + 1/2 + 2/3) / 3 = 73/126
    const gold: Label[] = ['positive', 'positive', 'positive', 'positive', 'neutral', 'neutral', 'negative', 'negative', 'negative', 'negative'];
    const pred: Label[] = ['positive', 'positive', 'neutral', 'negative', 'neutral', 'negative', 'negative', 'negative', 'negative', 'positive'];
    const s = scoreLabels(gold, pred);
    expect(s.confusion).toEqual([
      [2, 1, 1],
      [0, 1, 1],
      [1, 0, 3],
    ]);
    expect(s.accuracy).toBeCloseTo(0.6, 10);
    expect(s.perClass.positive.precision).toBeCloseTo(2 / 3, 10);
    expect(s.perClass.positive.recall).toBeCloseTo(0.5, 10);
    expect(s.perClass.positive.f1).toBeCloseTo(4 / 7, 10);
    expect(s.perClass.positive.support).toBe(4);
    expect(s.perClass.neutral).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(s.perClass.negative.precision).toBeCloseTo(0.6, 10);
    expect(s.perClass.negative.recall).toBeCloseTo(0.75, 10);
    expect(s.perClass.negative.f1).toBeCloseTo(2 / 3, 10);
    expect(s.perClass.negative.support).toBe(4);
    expect(s.macroF1).toBeCloseTo(73 / 126, 10);
  });

  it('gives 0, not NaN, for classes never predicted', () => {
    // Everything called neutral: neutral P 1/3, R 1, F1 (2/3)/(4/3) = 1/2; the others 0.
    const s = scoreLabels(['positive', 'neutral', 'negative'], ['neutral', 'neutral', 'neutral']);
    expect(s.accuracy).toBeCloseTo(1 / 3, 10);
    expect(s.perClass.positive).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(s.perClass.negative).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(s.perClass.neutral.f1).toBeCloseTo(0.5, 10);
    expect(s.macroF1).toBeCloseTo(1 / 6, 10);
  });

  it('handles empty input and a perfect score', () => {
    const empty = scoreLabels([], []);
    expect(empty.accuracy).toBe(0);
    expect(empty.macroF1).toBe(0);
    expect(empty.confusion).toEqual([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
    const perfect = scoreLabels(['positive', 'neutral', 'negative'], ['positive', 'neutral', 'negative']);
    expect(perfect.accuracy).toBe(1);
    expect(perfect.macroF1).toBe(1);
  });

  it('rejects mismatched lengths', () => {
    expect(() => scoreLabels(['positive'], [])).toThrow(/1 gold labels but 0 predictions/);
  });
});

describe('lexiconBaseline', () => {
  it('labels clear English cases', () => {
    expect(lexiconBaseline('I love this, it is great')).toBe('positive');
    expect(lexiconBaseline('this is terrible and I hate it')).toBe('negative');
    expect(lexiconBaseline('the meeting is at 3pm')).toBe('neutral');
  });

  it('knows no Chinese, which is why it is scored on the English half only', () => {
    expect(lexiconBaseline('我很开心')).toBe('neutral');
  });
});

describe('runEval', () => {
  afterEach(() => vi.restoreAllMocks());

  const small: EvalItem[] = [
    { id: 'en-1', lang: 'en', text: 'I love this', label: 'positive', tags: ['plain'] },
    { id: 'en-2', lang: 'en', text: 'what time is it', label: 'neutral', tags: ['question'] },
    { id: 'zh-1', lang: 'zh', text: '我很开心', label: 'positive', tags: ['flip'] },
    { id: 'zh-2', lang: 'zh', text: '但我丢了钱包', label: 'negative', tags: ['flip'] },
  ];

  it('scores an always-neutral classifier exactly', async () => {
    const report = await runEval({ items: small, classify: async () => ({ label: 'neutral', confidence: 0.5 }) });
    expect(report.items).toBe(4);
    expect(report.model.accuracy).toBe(0.25);
    expect(report.byTag).toEqual({ flip: 0, plain: 0, question: 1 });
    expect(report.tagCounts).toEqual({ flip: 2, plain: 1, question: 1 });
    expect(report.mistakes.map((m) => m.id)).toEqual(['en-1', 'zh-1', 'zh-2']);
    expect(report.mistakes[0]).toMatchObject({ gold: 'positive', predicted: 'neutral', confidence: 0.5 });
    // English comparison: 2 items; the lexicon gets both right, the model only the neutral one.
    expect(report.baseline.items).toBe(2);
    expect(report.baseline.accuracy).toBe(1);
    expect(report.baseline.modelOnSameItems.accuracy).toBe(0.5);
  });

  it('gives exact accuracies on the real set for perfect and always-neutral fakes', async () => {
    const items = loadEvalSet(DATA);
    const gold = new Map(items.map((it) => [it.text, it.label]));
    const perfect = await runEval({ items, classify: async (t) => ({ label: gold.get(t)!, confidence: 1 }) });
    expect(perfect.model.accuracy).toBe(1);
    expect(perfect.model.macroF1).toBe(1);
    expect(perfect.baseline.modelOnSameItems.accuracy).toBe(1);
    expect(perfect.mistakes).toEqual([]);
    expect(Object.values(perfect.byTag).every((a) => a === 1)).toBe(true);

    const neutral = await runEval({ items, classify: async () => ({ label: 'neutral', confidence: 0.9 }) });
    const neutralCount = items.filter((it) => it.label === 'neutral').length;
    expect(neutral.model.accuracy).toBe(neutralCount / items.length);
    expect(neutral.mistakes.length).toBe(items.length - neutralCount);
  });

  it('calls the classifier one at a time, reports progress and times each call', async () => {
    // Fake clock: each call "takes" 10, 20, 30, 40 ms.
    let clock = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    let inFlight = 0;
    let maxInFlight = 0;
    const progress: number[] = [];
    const report = await runEval({
      items: small,
      classify: async (text) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        clock += 10 * (small.findIndex((it) => it.text === text) + 1);
        inFlight--;
        return { label: 'positive', confidence: 0.7 };
      },
      onProgress: (done, total) => progress.push(done * 10 + total),
    });
    expect(maxInFlight).toBe(1);
    expect(progress).toEqual([14, 24, 34, 44]);
    // Nearest rank over [10, 20, 30, 40]: p50 = 2nd value, p95 = 4th value.
    expect(report.latencyMs).toEqual({ p50: 20, p95: 40, mean: 25 });
  });

  it('names the item when the classifier fails or returns a bad label', async () => {
    await expect(runEval({ items: small, classify: async () => Promise.reject(new Error('boom')) })).rejects.toThrow(
      /en-1: boom/,
    );
    await expect(
      runEval({ items: small, classify: async () => ({ label: 'happy' as Label, confidence: 1 }) }),
    ).rejects.toThrow(/"happy" for en-1/);
  });

  it('formats a readable report', async () => {
    const report = await runEval({ items: small, classify: async () => ({ label: 'neutral', confidence: 0.5 }) });
    const text = formatReport(report);
    for (const part of ['accuracy 25.0%', 'macro-F1', 'Per class', 'Confusion', 'Latency', 'Accuracy by tag', 'lexicon', 'Mistakes: 3']) {
      expect(text).toContain(part);
    }
    expect(text).toContain('但我丢了钱包');
  });
});

describe('loadEvalSet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evalset-'));
  const write = (name: string, lines: string[]) => {
    const path = join(dir, name);
    writeFileSync(path, lines.join('\n'));
    return path;
  };
  const good = JSON.stringify({ id: 'a', lang: 'en', text: 'hi', label: 'neutral', tags: [] });

  it('loads valid lines and skips blank ones', () => {
    expect(loadEvalSet(write('ok.jsonl', [good, '', '']))).toHaveLength(1);
  });

  it('names the line and the problem', () => {
    const badLabel = JSON.stringify({ id: 'b', lang: 'en', text: 'yo', label: 'happy', tags: [] });
    expect(() => loadEvalSet(write('label.jsonl', [good, '', badLabel]))).toThrow(/line 3: "label" must be one of/);
    expect(() => loadEvalSet(write('json.jsonl', [good, '{"id": "c",']))).toThrow(/line 2: invalid JSON/);
    expect(() => loadEvalSet(write('lang.jsonl', [good.replace('"en"', '"fr"')]))).toThrow(/line 1: "lang"/);
    expect(() => loadEvalSet(write('dup.jsonl', [good, good]))).toThrow(/line 2: duplicate id "a"/);
  });
});
