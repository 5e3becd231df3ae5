import type { BatchItem, Token } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';
import { REPLY_EVALUATION_PRIORITY, SENTIMENT_EVALUATION_PRIORITY, sentimentFirstBatching } from '../../src/engine/sentimentFirstBatching.js';

/** A pending evaluation of `count` tokens. */
function item(count: number, evaluationPriority: number): BatchItem {
  return { tokens: Array.from({ length: count }, (_, i) => i as Token), logits: Array.from({ length: count }, (_, i) => i === count - 1), evaluationPriority } as BatchItem;
}

describe('sentimentFirstBatching', () => {
  const strategy = sentimentFirstBatching(128);
  const amounts = (batch: ReturnType<typeof strategy>) => batch.map((entry) => entry.processAmount);

  it('puts a pending sentiment call in whole, first, and lets the replies share at most 128 tokens beside it', () => {
    const coldA = item(480, REPLY_EVALUATION_PRIORITY);
    const coldB = item(480, REPLY_EVALUATION_PRIORITY);
    const decoding = item(1, REPLY_EVALUATION_PRIORITY);
    const sentiment = item(40, SENTIMENT_EVALUATION_PRIORITY);

    const batch = strategy({ items: [coldA, coldB, decoding, sentiment], size: 512 });

    expect(batch.map((entry) => entry.item)).toEqual([sentiment, coldA, coldB, decoding]);
    expect(amounts(batch)).toEqual([40, 85, 42, 1]);
  });

  it('gives every running reply its decode step in each batch, however many prompts are being read', () => {
    const cold = [item(480, REPLY_EVALUATION_PRIORITY), item(480, REPLY_EVALUATION_PRIORITY), item(480, REPLY_EVALUATION_PRIORITY)];
    const decoding = [item(1, REPLY_EVALUATION_PRIORITY), item(1, REPLY_EVALUATION_PRIORITY)];

    const batch = strategy({ items: [...cold, ...decoding], size: 512 });

    expect(batch).toHaveLength(5);
    expect(amounts(batch).slice(3)).toEqual([1, 1]);
    expect(amounts(batch).reduce((sum, amount) => sum + amount, 0)).toBe(128);
  });

  it('reads a lone prompt 128 tokens a batch, so a sentiment call arriving meanwhile waits for no more than that', () => {
    const reply = item(700, REPLY_EVALUATION_PRIORITY);

    expect(amounts(strategy({ items: [reply], size: 512 }))).toEqual([128]);
    expect(amounts(strategy({ items: [item(20, REPLY_EVALUATION_PRIORITY)], size: 512 }))).toEqual([20]);
  });

  it('never puts more than the batch size in, even for a sentiment call longer than the batch', () => {
    const sentiment = item(600, SENTIMENT_EVALUATION_PRIORITY);
    const reply = item(1, REPLY_EVALUATION_PRIORITY);

    const batch = strategy({ items: [reply, sentiment], size: 512 });

    expect(batch.map((entry) => [entry.item, entry.processAmount])).toEqual([[sentiment, 512]]);
  });
});
