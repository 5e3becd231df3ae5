import { describe, expect, it } from 'vitest';
import type { MoodRecord } from '../../src/history/HistoryStore.js';
import { percentShares, summarizeMood } from '../../src/mood/moodSummary.js';

// Thursday 3 December 2026, 15:40 UTC.
const NOW = Date.UTC(2026, 11, 3, 15, 40);
const at = (day: number, hour: number, minute = 0) => Date.UTC(2026, 11, day, hour, minute);
const r = (time: number, label: MoodRecord['label']): MoodRecord => ({ at: time, label, confidence: 0.9 });

// A hand-counted log: 1 Dec 2 positive, 1 negative; 2 Dec 09:xx 3 negative, 1 neutral; 3 Dec 15:xx 2 positive, 1 neutral.
const LOG: MoodRecord[] = [
  r(at(24, 12), 'positive'), // 24 Nov: outside a 7-day range
  r(at(1, 8, 5), 'positive'),
  r(at(1, 8, 50), 'positive'),
  r(at(1, 22), 'negative'),
  r(at(2, 9, 1), 'negative'),
  r(at(2, 9, 2), 'negative'),
  r(at(2, 9, 3), 'negative'),
  r(at(2, 9, 59), 'neutral'),
  r(at(3, 15), 'positive'),
  r(at(3, 15, 30), 'positive'),
  r(at(3, 15, 39), 'neutral'),
];

describe('summarizeMood', () => {
  it('counts a 7-day range per UTC day, today and the six days before, and leaves older records out', () => {
    const summary = summarizeMood(LOG, { days: 7, now: NOW });

    expect(summary.unit).toBe('day');
    expect(summary.from).toBe(Date.UTC(2026, 10, 27));
    expect(summary.buckets.map((b) => new Date(b.start).toISOString().slice(0, 10))).toEqual([
      '2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30', '2026-12-01', '2026-12-02', '2026-12-03',
    ]);
    expect(summary.buckets.map((b) => b.counts)).toEqual([
      { positive: 0, neutral: 0, negative: 0 },
      { positive: 0, neutral: 0, negative: 0 },
      { positive: 0, neutral: 0, negative: 0 },
      { positive: 0, neutral: 0, negative: 0 },
      { positive: 2, neutral: 0, negative: 1 },
      { positive: 0, neutral: 1, negative: 3 },
      { positive: 2, neutral: 1, negative: 0 },
    ]);
    expect(summary.total).toBe(10);
    expect(summary.counts).toEqual({ positive: 4, neutral: 2, negative: 4 });
    expect(summary.shares).toEqual({ positive: 0.4, neutral: 0.2, negative: 0.4 });
    expect(summary.busiestHour).toEqual({ start: at(2, 9), count: 4 });
  });

  it('counts a 2-day range per hour, ending with the current hour', () => {
    const summary = summarizeMood(LOG, { days: 2, now: NOW });

    expect(summary.unit).toBe('hour');
    expect(summary.buckets).toHaveLength(48);
    expect(summary.from).toBe(at(1, 16));
    expect(summary.buckets.at(-1)!.start).toBe(at(3, 15));
    const nonEmpty = summary.buckets.filter((b) => b.counts.positive + b.counts.neutral + b.counts.negative > 0);
    expect(nonEmpty).toEqual([
      { start: at(1, 22), counts: { positive: 0, neutral: 0, negative: 1 } },
      { start: at(2, 9), counts: { positive: 0, neutral: 1, negative: 3 } },
      { start: at(3, 15), counts: { positive: 2, neutral: 1, negative: 0 } },
    ]);
    expect(summary.total).toBe(8);
  });

  it('picks the earliest of two equally busy hours, and has none for an empty range', () => {
    const tie = [r(at(3, 10), 'neutral'), r(at(3, 10, 5), 'neutral'), r(at(3, 8), 'positive'), r(at(3, 8, 1), 'negative')];

    expect(summarizeMood(tie, { days: 1, now: NOW }).busiestHour).toEqual({ start: at(3, 8), count: 2 });
    const empty = summarizeMood([], { days: 30, now: NOW });
    expect(empty.total).toBe(0);
    expect(empty.buckets).toHaveLength(30);
    expect(empty.busiestHour).toBeUndefined();
    expect(empty.shares).toEqual({ positive: 0, neutral: 0, negative: 0 });
  });
});

describe('percentShares', () => {
  it('rounds shares to whole percents that add up to 100', () => {
    expect(percentShares({ positive: 1, neutral: 1, negative: 1 })).toEqual({ positive: 34, neutral: 33, negative: 33 });
    expect(percentShares({ positive: 4, neutral: 2, negative: 4 })).toEqual({ positive: 40, neutral: 20, negative: 40 });
    expect(percentShares({ positive: 2, neutral: 1, negative: 0 })).toEqual({ positive: 67, neutral: 33, negative: 0 });
    // 66.67 / 12.5 / 20.83: two points to hand out, to the two largest remainders.
    expect(percentShares({ positive: 32, neutral: 6, negative: 10 })).toEqual({ positive: 67, neutral: 12, negative: 21 });
    expect(percentShares({ positive: 0, neutral: 0, negative: 0 })).toEqual({ positive: 0, neutral: 0, negative: 0 });
  });
});
