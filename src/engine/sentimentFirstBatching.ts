import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from 'node-llama-cpp';

/** The evaluation priority of sentiment calls; replies use a lower one. */
export const SENTIMENT_EVALUATION_PRIORITY = 5;
/** The evaluation priority of replies. */
export const REPLY_EVALUATION_PRIORITY = 3;

/**
 * How the one context fills a decode batch from the evaluations pending on its sequences: a
 * sentiment call goes in whole, and the replies share at most `replyTokens` of the batch (an even
 * share each, the rest to those still reading their prompt). A batch takes about as long as its
 * token count, and a sentiment call that arrives while one runs waits for it: capped, a reaction
 * never waits for several cold channels' prompts read in one 512-token batch (a burst with
 * PARALLEL_REPLIES), while every running reply still gets its decode step in each batch.
 */
export function sentimentFirstBatching(replyTokens = 128): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    const chosen: PrioritizedBatchItem[] = [];
    let left = size;
    for (const item of items) {
      if (item.evaluationPriority < SENTIMENT_EVALUATION_PRIORITY || left <= 0) continue;
      const processAmount = Math.min(item.tokens.length, left);
      chosen.push({ item, processAmount });
      left -= processAmount;
    }
    const replies = items.filter((item) => item.evaluationPriority < SENTIMENT_EVALUATION_PRIORITY);
    return [...chosen, ...evenShares(replies, Math.min(left, replyTokens))];
  };
}

/** An even share each, then what is left to the items with more tokens, higher priority first. */
function evenShares(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  if (items.length === 0 || size <= 0) return [];
  const share = Math.max(1, Math.floor(size / items.length));
  let left = size;
  const chosen: PrioritizedBatchItem[] = [];
  for (const item of items) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    chosen.push({ item, processAmount });
    left -= processAmount;
  }
  const wanting = chosen.filter((entry) => entry.processAmount < entry.item.tokens.length).sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority);
  for (const entry of wanting) {
    if (left <= 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return chosen;
}
