/** One entry's place in its key's line (see {@link TurnLine}). */
export interface LinePlace {
  /** Settles once every earlier entry of the key is done. */
  readonly previous: Promise<void>;
  /** Settles once this entry and every earlier one are done. */
  readonly ended: Promise<void>;
  /** Marks this entry done; idempotent. It counts as ended only once the earlier ones are too. */
  done(): void;
}

/**
 * Per key (a channel), entries in arrival order, each ended only once the ones before it have
 * ended: one that finishes early (stopped, failed, nothing to post) never lets a later entry
 * overtake an earlier one. The channel sessions line up turns with it, the Discord edge first posts.
 */
export class TurnLine {
  /** Per key, settles when every entry so far has ended; gone once nothing waits. */
  private readonly last = new Map<string, Promise<void>>();

  /** Puts an entry last in the key's line; call it on arrival, before anything is awaited. */
  enter(key: string): LinePlace {
    const previous = this.last.get(key) ?? Promise.resolve();
    let done!: () => void;
    const own = new Promise<void>((resolve) => (done = resolve));
    const ended = Promise.all([previous, own]).then(() => undefined);
    this.last.set(key, ended);
    void ended.then(() => {
      if (this.last.get(key) === ended) this.last.delete(key);
    });
    return { previous, ended, done };
  }

  /** Settles once every entry of the key so far has ended; undefined when none is waiting. */
  tail(key: string): Promise<void> | undefined {
    return this.last.get(key);
  }
}
