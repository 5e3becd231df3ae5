// The /mood chart's axis labels and legend markers, as plain values (the drawing itself is checked
// pixel by pixel in test/e2e/mood.test.ts).
import { describe, expect, it } from 'vitest';
import { bucketLabels, faceIcon, MOOD_COLOURS } from '../../src/mood/moodChart.js';
import { DAY_MS, summarizeMood } from '../../src/mood/moodSummary.js';
import { moodReport } from '../../src/mood/moodReport.js';
import type { MoodChartRenderer } from '../../src/mood/MoodChartRenderer.js';

const NOW = Date.parse('2026-12-07T16:20:00Z');
const HOUR = 3_600_000;

describe('the /mood chart', () => {
  it('labels every hour that holds messages and the newest hour, even between the every-third-hour labels', () => {
    const at = [NOW, NOW - HOUR, NOW - 4 * HOUR, NOW - 26 * HOUR];
    const summary = summarizeMood(at.map((time) => ({ at: time, label: 'neutral' as const, confidence: 0.9 })), { days: 2, now: NOW });
    const labels = bucketLabels(summary);
    expect(labels).toHaveLength(summary.buckets.length);
    summary.buckets.forEach((bucket, index) => {
      const held = bucket.counts.positive + bucket.counts.negative + bucket.counts.neutral > 0;
      if (held || index === labels.length - 1) expect(labels[index], `bucket ${index}`).not.toBe('');
    });
    expect(labels.at(-1)).toBe('16');
    expect(labels.at(-2)).toBe('15');
    expect(labels.at(-5)).toBe('12');
    // Empty hours between the third ones stay unlabelled, so the labels never crowd.
    expect(labels.at(-3)).toBe('');
    expect(labels).toContainEqual(['00', '7 Dec']);
  });

  it('labels every day, today included, with the month under the first day and under each 1st', () => {
    const summary = summarizeMood([{ at: NOW - 3 * DAY_MS, label: 'positive', confidence: 1 }], { days: 30, now: NOW });
    const labels = bucketLabels(summary);
    expect(labels).toHaveLength(30);
    expect(labels[0]).toEqual(['8', 'Nov']);
    expect(labels.at(-1)).toBe('7');
    expect(labels).toContainEqual(['1', 'Dec']);
    expect(labels.every((label) => label !== '')).toBe(true);
  });

  it("draws each legend marker as its emoji's face in the label's colour", () => {
    for (const label of ['positive', 'neutral', 'negative'] as const) {
      const icon = faceIcon(label, 22);
      const [r, g, b] = icon.getContext('2d').getImageData(4, 11, 1, 1).data;
      const hex = `#${[r, g, b].map((value) => value!.toString(16).padStart(2, '0')).join('')}`;
      expect(hex).toBe(MOOD_COLOURS[label]);
    }
  });

  it('describes the chart in words for screen readers: the labels as words, not emoji', async () => {
    const records = [
      { at: NOW - HOUR, label: 'positive' as const, confidence: 1 },
      { at: NOW - 2 * HOUR, label: 'negative' as const, confidence: 1 },
    ];
    const report = await moodReport({
      store: { loadMood: async () => records },
      channelId: 'c1',
      channelName: 'general',
      days: 7,
      emojis: { positive: '😄', neutral: '😐', negative: '😢' },
      now: NOW,
      charts: { render: async () => Buffer.from('png') } as unknown as MoodChartRenderer,
    });
    expect(report.alt).toBe('Bar chart of the mood in #general, last 7 days, per day: positive 50%, neutral 0%, negative 50% of 2 messages.');
  });
});
