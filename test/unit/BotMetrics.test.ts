import { describe, expect, it } from 'vitest';
import { BotMetrics } from '../../src/metrics/BotMetrics.js';

describe('BotMetrics', () => {
  it("counts each channel message's label on /metrics for good, and in the last hour's shares for an hour", async () => {
    let now = Date.UTC(2026, 11, 3, 15, 0);
    const metrics = new BotMetrics({ queueDepth: () => 0, now: () => now });

    metrics.sentimentLabelled('negative');
    now += 30 * 60_000;
    metrics.sentimentLabelled('positive');
    metrics.sentimentLabelled('positive');
    expect(metrics.snapshot().lastHourLabels).toEqual({ positive: 2, neutral: 0, negative: 1 });
    now += 31 * 60_000;

    expect(metrics.snapshot().lastHourLabels).toEqual({ positive: 2, neutral: 0, negative: 0 });
    const body = await metrics.registry.metrics();
    expect(body).toContain('moodbot_sentiment_total{label="positive"} 2');
    expect(body).toContain('moodbot_sentiment_total{label="neutral"} 0');
    expect(body).toContain('moodbot_sentiment_total{label="negative"} 1');
  });
});
