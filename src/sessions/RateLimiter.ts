export interface RateLimiterOptions {
  /** Messages allowed per window; 0 turns the limit off. */
  limit: number;
  windowMs: number;
  now?: () => number;
}

export type RateDecision = 'allowed' | 'limited' | 'limited-notified';

/**
 * A sliding-window limit per key (a user). The first refusal in a window says "limited" so the
 * caller can send one gentle notice; later refusals in the same window say "limited-notified".
 */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();
  private readonly notified = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimiterOptions) {
    this.now = options.now ?? Date.now;
  }

  check(key: string): RateDecision {
    if (this.options.limit <= 0) return 'allowed';
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((at) => now - at < this.options.windowMs);
    if (recent.length < this.options.limit) {
      recent.push(now);
      this.hits.set(key, recent);
      this.notified.delete(key);
      return 'allowed';
    }
    this.hits.set(key, recent);
    if (this.notified.has(key)) return 'limited-notified';
    this.notified.set(key, now);
    return 'limited';
  }

  /** How many keys (users) it holds on to. */
  get size(): number {
    return this.hits.size;
  }

  /** Forgets keys with no recent hits, so the map does not grow with every user ever seen. */
  prune(): void {
    const now = this.now();
    for (const [key, hits] of this.hits) {
      if (hits.every((at) => now - at >= this.options.windowMs)) {
        this.hits.delete(key);
        this.notified.delete(key);
      }
    }
  }
}
