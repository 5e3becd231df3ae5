import type { BatchItem, Token } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';
import { REPLY_EVALUATION_PRIORITY, SENTIMENT_EVALUATION_PRIORITY, sentimentFirstBatching } from '../../src/engine/sentimentFirstBatching.js';

/** A pending evaluation of `count` tokens. */
function item(count: number, evaluationPriority: number): BatchItem {
  return { tokens: Array.from({ length: count }, (_, i) => i as Token), logits: Array.from({ length: count }, (_, i) => i === count - 1), evaluationPriority } as BatchItem;
}

describe('sentimentFirstBatching', () => {
  const strategy = sentimentFirstBatching(16);

  it('puts a pending sentiment call in whole and gives each reply at most a small slice, so the batch stays small', () => {
    const coldA = item(480, REPLY_EVALUATION_PRIORITY);
    const coldB = item(480, REPLY_EVALUATION_PRIORITY);
    const decoding = item(1, REPLY_EVALUATION_PRIORITY);
    const sentiment = item(40, SENTIMENT_EVALUATION_PRIORITY);

    const batch = strategy({ items: [coldA, coldB, decoding, sentiment], size: 512 });

    expect(batch.map((entry) => [entry.item, entry.processAmount])).toEqual([
      [sentiment, 40],
      [coldA, 16],
      [coldB, 16],
      [decoding, 1],
    ]);
  });

  it('without a sentiment call, shares the batch evenly and gives what is left to the replies still reading their prompt', () => {
    const coldA = item(480, REPLY_EVALUATION_PRIORITY);
    const coldB = item(300, REPLY_EVALUATION_PRIORITY);
    const decoding = item(1, REPLY_EVALUATION_PRIORITY);

    const batch = strategy({ items: [coldA, coldB, decoding], size: 512 });

    const amounts = batch.map((entry) => entry.processAmount);
    expect(amounts.reduce((sum, amount) => sum + amount, 0)).toBe(512);
    expect(amounts[2]).toBe(1);
    expect(amounts[0]).toBeGreaterThanOrEqual(170);
    expect(amounts[1]).toBeGreaterThanOrEqual(170);
  });

  it('never puts more than the batch size in, even for a sentiment call longer than the batch', () => {
    const sentiment = item(600, SENTIMENT_EVALUATION_PRIORITY);
    const reply = item(1, REPLY_EVALUATION_PRIORITY);

    const batch = strategy({ items: [reply, sentiment], size: 512 });

    expect(batch.map((entry) => [entry.item, entry.processAmount])).toEqual([[sentiment, 512]]);
  });

  it('takes every token of a lone reply, up to the batch size', () => {
    const reply = item(700, REPLY_EVALUATION_PRIORITY);

    expect(strategy({ items: [reply], size: 512 }).map((entry) => entry.processAmount)).toEqual([512]);
  });
});
