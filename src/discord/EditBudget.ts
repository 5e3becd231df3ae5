export interface EditBudgetOptions {
  /** Edits allowed per window. Default 5 (Discord's limit per channel). */
  edits?: number;
  /** The window, in ms. Default 5000. */
  windowMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The edits one channel may still make: Discord allows about 5 message edits per 5 s per channel,
 * whichever reply they belong to, so every reply streaming in a channel shares one budget. Edits run
 * one at a time; the next waits until it is the 5th within a window counted from the *end* of the
 * edit 5 before it, so even requests that were slow to arrive never make 6 in 5 s at Discord.
 */
export class EditBudget {
  private readonly edits: number;
  private readonly windowMs: number;
  /** When the latest edits (at most `edits` of them) ended. */
  private readonly ends: number[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor({ edits = 5, windowMs = 5000 }: EditBudgetOptions = {}) {
    this.edits = edits;
    this.windowMs = windowMs;
  }

  /** Runs `edit` once the budget allows it; resolves or rejects with its result. */
  run<T>(edit: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.chain.then(async () => {
      for (let wait = this.waitMs(); wait > 0; wait = this.waitMs()) await sleep(wait);
      try {
        return await edit();
      } finally {
        this.ends.push(Date.now());
        if (this.ends.length > this.edits) this.ends.shift();
        this.waiting--;
      }
    });
    this.chain = result.catch(() => {});
    return result;
  }

  /** Nothing waits and the window is empty: the budget can be dropped without losing a count. */
  isIdle(now = Date.now()): boolean {
    return this.waiting === 0 && this.ends.every((end) => now - end >= this.windowMs);
  }

  private waitMs(): number {
    if (this.ends.length < this.edits) return 0;
    return this.ends[0]! + this.windowMs - Date.now();
  }
}
