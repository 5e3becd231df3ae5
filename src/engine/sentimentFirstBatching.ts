import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from 'node-llama-cpp';

/** The evaluation priority of sentiment calls; replies use a lower one. */
export const SENTIMENT_EVALUATION_PRIORITY = 5;
/** The evaluation priority of replies. */
export const REPLY_EVALUATION_PRIORITY = 3;

/**
 * How the one context fills a decode batch from the evaluations pending on its sequences. Without a
 * sentiment call pending, every sequence gets an even share of the batch (the rest goes to those
 * with more to read, higher priority first), as node-llama-cpp's `maximumParallelism` does. With
 * one pending, it goes in whole and the others get at most `sideTokens` each: a batch costs about
 * its token count, so the reaction never waits for several replies' prompts being read at once
 * (a burst of cold channels), while each running reply still takes its decode step.
 */
export function sentimentFirstBatching(sideTokens = 16): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    const urgent = items.filter((item) => item.evaluationPriority >= SENTIMENT_EVALUATION_PRIORITY);
    if (urgent.length === 0) return evenShares(items, size);
    const chosen: PrioritizedBatchItem[] = [];
    let left = size;
    for (const item of urgent) {
      const processAmount = Math.min(item.tokens.length, left);
      if (processAmount <= 0) break;
      chosen.push({ item, processAmount });
      left -= processAmount;
    }
    for (const item of items) {
      if (left <= 0) break;
      if (item.evaluationPriority >= SENTIMENT_EVALUATION_PRIORITY) continue;
      const processAmount = Math.min(item.tokens.length, sideTokens, left);
      chosen.push({ item, processAmount });
      left -= processAmount;
    }
    return chosen;
  };
}

/** An even share each, then what is left to the items with more tokens, higher priority first. */
function evenShares(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
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
