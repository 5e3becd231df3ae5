import { SENTIMENT_LABELS, type SentimentLabel } from '../domain.js';
import type { MoodRecord } from '../history/HistoryStore.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Ranges up to this many days are shown per hour; longer ones per day. */
export const HOURLY_UP_TO_DAYS = 2;

export type LabelCounts = Record<SentimentLabel, number>;

/** One bar of the chart: the messages of one hour or one day (UTC). */
export interface MoodBucket {
  /** Epoch ms of the bucket's first moment. */
  start: number;
  counts: LabelCounts;
}

export interface MoodSummary {
  unit: 'hour' | 'day';
  /** Epoch ms: the first bucket's start (what to load from), and the moment the summary was made. */
  from: number;
  to: number;
  /** Every bucket of the range, oldest first, empty ones included. */
  buckets: MoodBucket[];
  total: number;
  counts: LabelCounts;
  /** Each label's share of `total`, 0..1 (all 0 when there are no messages). */
  shares: Record<SentimentLabel, number>;
  /** The hour (UTC) with the most messages, the earliest on a tie; undefined when there are none. */
  busiestHour?: { start: number; count: number };
}

/**
 * Where a range of `days` starts: per hour, the last `days * 24` hours up to the current one; per
 * day, today (UTC) and the `days - 1` days before it. Whole buckets, so every bar covers its full span.
 */
export function moodRangeStart(days: number, now: number): { unit: MoodSummary['unit']; from: number; size: number; count: number } {
  if (days <= HOURLY_UP_TO_DAYS) {
    const count = days * 24;
    return { unit: 'hour', from: floorTo(now, HOUR_MS) - (count - 1) * HOUR_MS, size: HOUR_MS, count };
  }
  return { unit: 'day', from: floorTo(now, DAY_MS) - (days - 1) * DAY_MS, size: DAY_MS, count: days };
}

/** Counts `records` into the range's buckets; records outside the range are left out. */
export function summarizeMood(records: readonly MoodRecord[], { days, now }: { days: number; now: number }): MoodSummary {
  const { unit, from, size, count } = moodRangeStart(days, now);
  const buckets: MoodBucket[] = Array.from({ length: count }, (_, i) => ({ start: from + i * size, counts: zeroCounts() }));
  const counts = zeroCounts();
  const perHour = new Map<number, number>();
  let total = 0;
  for (const record of records) {
    if (record.at < from || record.at > now) continue;
    buckets[Math.floor((record.at - from) / size)]!.counts[record.label]++;
    counts[record.label]++;
    total++;
    const hour = floorTo(record.at, HOUR_MS);
    perHour.set(hour, (perHour.get(hour) ?? 0) + 1);
  }
  let busiestHour: MoodSummary['busiestHour'];
  for (const [start, hourCount] of perHour) {
    if (!busiestHour || hourCount > busiestHour.count || (hourCount === busiestHour.count && start < busiestHour.start)) busiestHour = { start, count: hourCount };
  }
  const shares = Object.fromEntries(SENTIMENT_LABELS.map((label) => [label, total === 0 ? 0 : counts[label] / total])) as MoodSummary['shares'];
  return { unit, from, to: now, buckets, total, counts, shares, ...(busiestHour ? { busiestHour } : {}) };
}

/** Shares as whole percents that add up to 100 (largest remainder), in label order. */
export function percentShares(counts: LabelCounts): LabelCounts {
  const total = SENTIMENT_LABELS.reduce((sum, label) => sum + counts[label], 0);
  if (total === 0) return zeroCounts();
  const exact = SENTIMENT_LABELS.map((label) => (counts[label] * 100) / total);
  const whole = exact.map(Math.floor);
  const order = exact.map((value, i) => ({ i, rest: value - whole[i]! })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  const missing = 100 - whole.reduce((a, b) => a + b, 0);
  for (let k = 0; k < missing; k++) whole[order[k]!.i]!++;
  return Object.fromEntries(SENTIMENT_LABELS.map((label, i) => [label, whole[i]!])) as LabelCounts;
}

function zeroCounts(): LabelCounts {
  return { positive: 0, neutral: 0, negative: 0 };
}

function floorTo(at: number, size: number): number {
  return Math.floor(at / size) * size;
}
