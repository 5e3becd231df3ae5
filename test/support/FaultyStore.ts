import type { HistoryStore, HistoryTurn, MoodRecord } from '../../src/history/HistoryStore.js';

/** Which calls of a {@link FaultyStore} fail or wait. */
export type StoreCalls = 'settings' | 'reads' | 'all';

/**
 * A HistoryStore in front of a real one whose calls can be made to fail (as a stopped Redis
 * answers) or to wait (a slow or locked store), switched on and off while the bot runs. It comes
 * in through the bot's deps like any store.
 */
export class FaultyStore implements HistoryStore {
  /** Calls that throw `failure`; undefined: none. */
  failing?: StoreCalls;
  /** Calls that wait `delayMs` first; undefined: none. */
  slow?: StoreCalls;
  delayMs = 0;
  /** What a failing call throws: what the Redis client says when the server is gone. */
  failure = new Error('connect ECONNREFUSED 127.0.0.1:6379 (redis://:s3cret-pw@127.0.0.1:6379)');

  constructor(private readonly inner: HistoryStore) {}

  get maxTurns(): number {
    return this.inner.maxTurns;
  }

  load(channelId: string): Promise<HistoryTurn[]> {
    return this.call('load', () => this.inner.load(channelId));
  }

  append(channelId: string, turn: HistoryTurn): Promise<void> {
    return this.call('append', () => this.inner.append(channelId, turn));
  }

  clear(channelId: string): Promise<void> {
    return this.call('clear', () => this.inner.clear(channelId));
  }

  getSetting(channelId: string, key: string): Promise<string | undefined> {
    return this.call('getSetting', () => this.inner.getSetting(channelId, key));
  }

  setSetting(channelId: string, key: string, value: string | undefined): Promise<void> {
    return this.call('setSetting', () => this.inner.setSetting(channelId, key, value));
  }

  appendMood(channelId: string, record: MoodRecord): Promise<void> {
    return this.call('appendMood', () => this.inner.appendMood(channelId, record));
  }

  loadMood(channelId: string, since: number): Promise<MoodRecord[]> {
    return this.call('loadMood', () => this.inner.loadMood(channelId, since));
  }

  clearMood(channelId: string): Promise<void> {
    return this.call('clearMood', () => this.inner.clearMood(channelId));
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  private async call<T>(name: keyof HistoryStore, work: () => Promise<T>): Promise<T> {
    if (this.slow && affects(this.slow, name)) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failing && affects(this.failing, name)) throw this.failure;
    return work();
  }
}

function affects(calls: StoreCalls, name: keyof HistoryStore): boolean {
  if (calls === 'all') return true;
  if (calls === 'reads') return name === 'load' || name === 'getSetting' || name === 'loadMood';
  return name === 'getSetting' || name === 'setSetting';
}
