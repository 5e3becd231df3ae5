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

  it('shows the replies generating right now as a gauge and in the snapshot /status reads', async () => {
    let running = 3;
    const metrics = new BotMetrics({ queueDepth: (lane) => (lane === 'reply' ? 5 : 0), runningReplies: () => running });

    expect(metrics.snapshot().runningReplies).toBe(3);
    expect(await metrics.registry.metrics()).toContain('moodbot_replies_running 3');
    running = 0;
    expect(metrics.snapshot()).toMatchObject({ runningReplies: 0, queue: { reply: 5, sentiment: 0 } });
    expect(await metrics.registry.metrics()).toContain('moodbot_replies_running 0');
  });

  it('leaves the running-replies gauge out when nobody reports it', async () => {
    const metrics = new BotMetrics({ queueDepth: () => 0 });

    expect(metrics.snapshot().runningReplies).toBeUndefined();
    expect(await metrics.registry.metrics()).not.toContain('moodbot_replies_running');
  });
});
