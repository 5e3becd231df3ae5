import type { HistoryTurn } from '../domain.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import type { Logger } from '../logger.js';

export interface ChannelHistoryOptions {
  store: HistoryStore;
  logger: Logger;
  /** Channels whose history stays in memory (least recently used ones are dropped). */
  cachedChannels: number;
}

/**
 * Each channel's history in memory and in the store, kept equal to what the store would return
 * after a restart. Three rules keep it so:
 * - a channel's store work (load, write, clear) runs one job at a time, in call order, so a load
 *   never sees a turn half written and two flushes never write the same turn;
 * - a reset bumps the channel's epoch, and nothing read or kept before the reset is published or
 *   written after it;
 * - memory holds at most the store's `maxTurns` newest turns.
 */
export class ChannelHistory {
  private readonly cache = new Map<string, HistoryTurn[]>();
  /** Turns whose write failed, oldest first; they are part of the history and retried with the next write. */
  private readonly unsaved = new Map<string, HistoryTurn[]>();
  private readonly epochs = new Map<string, number>();
  private readonly storeWork = new Map<string, Promise<void>>();

  constructor(private readonly options: ChannelHistoryOptions) {}

  /** Changes on every reset of the channel. */
  epoch(channelId: string): number {
    return this.epochs.get(channelId) ?? 0;
  }

  /** The channel's turns, oldest first: the stored ones plus any not yet saved. The caller must not change it. */
  async turns(channelId: string): Promise<HistoryTurn[]> {
    for (;;) {
      const cached = this.cache.get(channelId);
      if (cached) {
        this.cache.delete(channelId); // re-insert: Map order is the LRU order
        this.cache.set(channelId, cached);
        return cached;
      }
      const epoch = this.epoch(channelId);
      // In the channel's store order no write runs meanwhile, so store + unsaved is the whole history.
      const loaded = await this.inOrder(channelId, async () => [...(await this.options.store.load(channelId)), ...(this.unsaved.get(channelId) ?? [])]);
      // A reset while this loaded may have cleared what it read, and someone else may have loaded it: look again.
      if (epoch !== this.epoch(channelId) || this.cache.has(channelId)) continue;
      this.cap(loaded);
      if (this.cache.size >= this.options.cachedChannels) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(channelId, loaded);
    }
  }

  /**
   * Adds a finished turn, unless the channel was reset since `epoch` (when its reply started).
   * It is in memory at once (the next reply needs it); false when writing it failed: it is kept
   * and written with the next turn.
   */
  async record(channelId: string, turn: HistoryTurn, epoch: number): Promise<boolean> {
    if (epoch !== this.epoch(channelId)) return true;
    const turns = await this.turns(channelId);
    if (epoch !== this.epoch(channelId)) return true;
    turns.push(turn);
    this.cap(turns);
    const pending = this.unsaved.get(channelId) ?? [];
    pending.push(turn);
    this.cap(pending); // older ones would fall out of the store's window anyway
    this.unsaved.set(channelId, pending);
    return this.flush(channelId);
  }

  /** Forgets the channel at once in memory; the store is cleared after the store work already queued. */
  async reset(channelId: string): Promise<void> {
    this.epochs.set(channelId, this.epoch(channelId) + 1);
    this.cache.delete(channelId);
    this.unsaved.delete(channelId);
    await this.inOrder(channelId, () => this.options.store.clear(channelId));
  }

  /** Waits for store work in flight, makes a last try at unsaved turns, and returns what is still unsaved per channel. */
  async close(): Promise<Map<string, number>> {
    await Promise.all(this.storeWork.values());
    for (const channelId of [...this.unsaved.keys()]) await this.flush(channelId);
    return new Map([...this.unsaved].map(([channelId, turns]) => [channelId, turns.length]));
  }

  /** Writes the unsaved turns in order. It runs in the channel's store order: one flush at a time. */
  private flush(channelId: string): Promise<boolean> {
    return this.inOrder(channelId, async () => {
      const pending = this.unsaved.get(channelId);
      // A reset replaces the list; what is left of the old one must not be written after the reset's clear.
      while (pending && pending.length > 0 && this.unsaved.get(channelId) === pending) {
        try {
          await this.options.store.append(channelId, pending[0]!);
          pending.shift();
        } catch (error) {
          this.options.logger.error('history write failed; the turn is kept and retried with the next one', { channelId, pending: pending.length, error });
          return false;
        }
      }
      if (pending && this.unsaved.get(channelId) === pending) this.unsaved.delete(channelId);
      return true;
    });
  }

  private cap(turns: HistoryTurn[]): void {
    // Exact, so memory equals the store. The prompt window finds its first turn by identity, and
    // that turn is among the newest, so cutting the oldest never moves the window.
    const extra = turns.length - this.options.store.maxTurns;
    if (extra > 0) turns.splice(0, extra);
  }

  private inOrder<T>(channelId: string, work: () => Promise<T>): Promise<T> {
    const next = (this.storeWork.get(channelId) ?? Promise.resolve()).then(work);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.storeWork.set(channelId, settled);
    void settled.then(() => {
      if (this.storeWork.get(channelId) === settled) this.storeWork.delete(channelId);
    });
    return next;
  }
}
