// Sentiment quality harness: loads the labeled chat set, scores any classifier against it,
// and compares the model with a plain AFINN lexicon on the English half. Nothing in here
// knows about the model, so the scoring logic can be unit-tested with fake classifiers.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Sentiment from 'sentiment';

// Fixed order: rows/columns of the confusion matrix and the per-class table follow it.
export const LABELS = ['positive', 'neutral', 'negative'] as const;
export type Label = (typeof LABELS)[number];
export type Lang = 'en' | 'zh';

export interface EvalItem {
  id: string;
  lang: Lang;
  text: string;
  label: Label;
  tags: string[];
}

export interface ClassScore {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ScoreReport {
  accuracy: number;
  macroF1: number;
  perClass: Record<Label, ClassScore>;
  /** confusion[gold][predicted], both indexed in LABELS order. */
  confusion: number[][];
}

export interface Classification {
  label: Label;
  confidence: number;
}

export interface Mistake {
  id: string;
  lang: Lang;
  text: string;
  gold: Label;
  predicted: Label;
  confidence: number;
  tags: string[];
}

export interface EvalReport {
  items: number;
  model: ScoreReport;
  /** Lexicon on the English items, plus the model's score on exactly those items. */
  baseline: ScoreReport & { items: number; modelOnSameItems: ScoreReport };
  latencyMs: { p50: number; p95: number; mean: number };
  byTag: Record<string, number>;
  /** How many items carry each tag, so a 100% on 3 items is not read as a 100% on 60. */
  tagCounts: Record<string, number>;
  mistakes: Mistake[];
}

export interface RunEvalOptions {
  items: EvalItem[];
  classify: (text: string) => Promise<Classification>;
  onProgress?: (done: number, total: number, item: EvalItem, result: Classification) => void;
}

function isLabel(value: unknown): value is Label {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value);
}

/** Parses JSONL text; `source` only appears in error messages. Blank lines and `//` comment lines (a split's rule) are skipped. */
export function parseEvalSet(text: string, source = '<input>'): EvalItem[] {
  const items: EvalItem[] = [];
  const seenIds = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]?.trim() ?? '';
    if (line === '' || line.startsWith('//')) continue;
    const where = `${source} line ${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: invalid JSON (${(err as Error).message})`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new Error(`${where}: expected a JSON object`);
    }
    const o = raw as Record<string, unknown>;
    if (typeof o.id !== 'string' || o.id === '') throw new Error(`${where}: "id" must be a non-empty string`);
    if (seenIds.has(o.id)) throw new Error(`${where}: duplicate id "${o.id}"`);
    if (o.lang !== 'en' && o.lang !== 'zh') throw new Error(`${where}: "lang" must be "en" or "zh", got ${JSON.stringify(o.lang)}`);
    if (typeof o.text !== 'string' || o.text.trim() === '') throw new Error(`${where}: "text" must be a non-empty string`);
    if (!isLabel(o.label)) throw new Error(`${where}: "label" must be one of ${LABELS.join('/')}, got ${JSON.stringify(o.label)}`);
    if (!Array.isArray(o.tags) || !o.tags.every((t) => typeof t === 'string')) {
      throw new Error(`${where}: "tags" must be an array of strings`);
    }
    seenIds.add(o.id);
    items.push({ id: o.id, lang: o.lang, text: o.text, label: o.label, tags: o.tags as string[] });
  }
  return items;
}

export function loadEvalSet(path: string): EvalItem[] {
  return parseEvalSet(readFileSync(path, 'utf8'), path);
}

// 0 instead of NaN when a class has no predictions or no gold items.
const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);

export function scoreLabels(gold: Label[], predicted: Label[]): ScoreReport {
  if (gold.length !== predicted.length) {
    throw new Error(`scoreLabels: ${gold.length} gold labels but ${predicted.length} predictions`);
  }
  const confusion = LABELS.map(() => LABELS.map(() => 0));
  gold.forEach((g, i) => {
    const p = predicted[i] as Label;
    confusion[LABELS.indexOf(g)]![LABELS.indexOf(p)]! += 1;
  });

  let correct = 0;
  const perClass = {} as Record<Label, ClassScore>;
  LABELS.forEach((label, k) => {
    const tp = confusion[k]![k]!;
    const support = confusion[k]!.reduce((a, b) => a + b, 0); // row = gold
    const predictedCount = confusion.reduce((a, row) => a + row[k]!, 0); // column = predicted
    const precision = ratio(tp, predictedCount);
    const recall = ratio(tp, support);
    perClass[label] = { precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
    correct += tp;
  });

  return {
    accuracy: ratio(correct, gold.length),
    // Averaged over all three classes, always: a class the classifier never predicts
    // should drag the score down, not silently drop out of the average.
    macroF1: LABELS.reduce((sum, l) => sum + perClass[l].f1, 0) / LABELS.length,
    perClass,
    confusion,
  };
}

/** Always answering the most common gold label: the floor any classifier must beat. */
export function majorityBaseline(gold: Label[]): ScoreReport & { label: Label } {
  const counts = LABELS.map((label) => gold.filter((g) => g === label).length);
  const label = LABELS[counts.indexOf(Math.max(...counts))]!;
  return { ...scoreLabels(gold, gold.map(() => label)), label };
}

const analyzer = new Sentiment();

/** AFINN word-list baseline. English only: the lexicon has no Chinese words or emoji. */
export function lexiconBaseline(text: string): Label {
  const { score } = analyzer.analyze(text);
  return score > 0 ? 'positive' : score < 0 ? 'negative' : 'neutral';
}

// Nearest-rank percentile: always an observed latency, no interpolation.
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export async function runEval({ items, classify, onProgress }: RunEvalOptions): Promise<EvalReport> {
  const predicted: Label[] = [];
  const latencies: number[] = [];
  const mistakes: Mistake[] = [];

  // Strictly one call at a time: the model shares a few CPU cores, so overlapping calls
  // would distort both the latency numbers and each other.
  for (const [i, item] of items.entries()) {
    const start = performance.now();
    let result: Classification;
    try {
      result = await classify(item.text);
    } catch (err) {
      throw new Error(`classify failed on ${item.id}: ${(err as Error).message}`, { cause: err });
    }
    latencies.push(performance.now() - start);
    if (!isLabel(result.label)) {
      throw new Error(`classify returned invalid label ${JSON.stringify(result.label)} for ${item.id}`);
    }
    predicted.push(result.label);
    if (result.label !== item.label) {
      mistakes.push({
        id: item.id,
        lang: item.lang,
        text: item.text,
        gold: item.label,
        predicted: result.label,
        confidence: result.confidence,
        tags: item.tags,
      });
    }
    onProgress?.(i + 1, items.length, item, result);
  }

  const gold = items.map((it) => it.label);

  // Fair comparison: lexicon and model scored on the very same English items.
  const enIdx = items.flatMap((it, i) => (it.lang === 'en' ? [i] : []));
  const enGold = enIdx.map((i) => gold[i]!);
  const baseline = {
    ...scoreLabels(enGold, enIdx.map((i) => lexiconBaseline(items[i]!.text))),
    items: enIdx.length,
    modelOnSameItems: scoreLabels(enGold, enIdx.map((i) => predicted[i]!)),
  };

  const tagCorrect: Record<string, number> = {};
  const tagCounts: Record<string, number> = {};
  items.forEach((it, i) => {
    for (const tag of it.tags) {
      tagCounts[tag] = (tagCounts[tag] ?? 0) + 1;
      tagCorrect[tag] = (tagCorrect[tag] ?? 0) + (predicted[i] === it.label ? 1 : 0);
    }
  });
  const byTag: Record<string, number> = {};
  for (const tag of Object.keys(tagCounts).sort()) byTag[tag] = ratio(tagCorrect[tag]!, tagCounts[tag]!);

  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    items: items.length,
    model: scoreLabels(gold, predicted),
    baseline,
    latencyMs: {
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      mean: ratio(latencies.reduce((a, b) => a + b, 0), latencies.length),
    },
    byTag,
    tagCounts,
    mistakes,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const SHORT: Record<Label, string> = { positive: 'pos', neutral: 'neu', negative: 'neg' };

function classTable(s: ScoreReport): string[] {
  const lines = ['  class      precision  recall     f1  support'];
  for (const l of LABELS) {
    const c = s.perClass[l];
    lines.push(
      `  ${l.padEnd(9)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}  ${pct(c.f1).padStart(6)}  ${String(c.support).padStart(7)}`,
    );
  }
  return lines;
}

function confusionTable(s: ScoreReport): string[] {
  const lines = [`  gold \\ pred ${LABELS.map((l) => SHORT[l].padStart(5)).join('')}`];
  LABELS.forEach((l, k) => {
    lines.push(`  ${l.padEnd(11)} ${s.confusion[k]!.map((n) => String(n).padStart(5)).join('')}`);
  });
  return lines;
}

export function formatReport(report: EvalReport): string {
  const { model, baseline, latencyMs } = report;
  const out: string[] = [];
  out.push(`Sentiment eval: ${report.items} items`);
  out.push(`  accuracy ${pct(model.accuracy)}   macro-F1 ${pct(model.macroF1)}`);
  out.push('', 'Per class:', ...classTable(model));
  out.push('', 'Confusion (rows gold, columns predicted):', ...confusionTable(model));
  out.push(
    '',
    `Latency per message: p50 ${latencyMs.p50.toFixed(1)} ms   p95 ${latencyMs.p95.toFixed(1)} ms   mean ${latencyMs.mean.toFixed(1)} ms`,
  );
  out.push('', 'Accuracy by tag:');
  for (const [tag, acc] of Object.entries(report.byTag)) {
    out.push(`  ${tag.padEnd(12)} ${pct(acc).padStart(6)}  (n=${report.tagCounts[tag] ?? 0})`);
  }
  out.push('', `English only (${baseline.items} items), model vs AFINN lexicon:`);
  out.push('               accuracy  macro-F1');
  out.push(`  model        ${pct(baseline.modelOnSameItems.accuracy).padStart(8)}  ${pct(baseline.modelOnSameItems.macroF1).padStart(8)}`);
  out.push(`  lexicon      ${pct(baseline.accuracy).padStart(8)}  ${pct(baseline.macroF1).padStart(8)}`);
  // The most confident mistakes first: those are the ones a threshold cannot filter out.
  const worst = [...report.mistakes].sort((a, b) => b.confidence - a.confidence).slice(0, 10);
  out.push('', `Mistakes: ${report.mistakes.length}${report.mistakes.length > worst.length ? ` (showing ${worst.length} most confident)` : ''}`);
  for (const m of worst) {
    out.push(`  ${m.id}  gold ${SHORT[m.gold]}  got ${SHORT[m.predicted]} (${m.confidence.toFixed(2)})  [${m.tags.join(',')}]  ${JSON.stringify(m.text)}`);
  }
  return out.join('\n');
}
