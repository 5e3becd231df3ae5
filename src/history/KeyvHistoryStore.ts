import { UserError } from '../errors.js';
import type { HistoryTurn } from '../domain.js';
import { silentLogger, type Logger } from '../logger.js';
import type { HistoryStore, MoodRecord } from './HistoryStore.js';
import { appendMood, clearMood, loadMood, moodHeadKey, sweepMood } from './moodLog.js';
import { appendTurn, clearTurns, loadTurns, type HistoryBackend, type PageStore } from './pagedHistory.js';

export interface KeyvHistoryStoreOptions {
  /**
   * Where the history lives: a Keyv SQLite URI (`sqlite://data/history.sqlite`, relative to the
   * working directory), `redis://[:password@]host[:port][/db]` or `postgresql://user:password@host[:port]/database`.
   */
  url: string;
  /** Turns kept per channel in the store; older ones are dropped on append. Default 500. */
  maxTurns?: number;
  /** Days a sentiment record is kept (MOOD_RETENTION_DAYS). Default 30. */
  moodRetentionDays?: number;
  /** The clock retention reads, in epoch ms. Default Date.now. */
  now?: () => number;
  /** SQLite and PostgreSQL: how long a write waits for another process's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * PostgreSQL: how long one statement may run before the server cancels it, in ms: a stalled
   * statement fails its operation instead of holding the store's queue (every channel) up. Default 15000.
   */
  statementTimeoutMs?: number;
  /** Redis and PostgreSQL: how long connecting may take before the start fails, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * How often every channel's mood log is swept of expired records (a quiet channel has no append
   * to do it), in ms; the first sweep runs right after opening. 0: never. Default one day.
   */
  moodSweepIntervalMs?: number;
  /** Where a failed sweep is reported (it never throws). Default: nowhere. */
  logger?: Logger;
}

/** What one sweep of the mood logs did. */
export interface MoodSweep {
  channels: number;
  /** Expired records deleted. */
  records: number;
}

/**
 * Channel histories through Keyv, on SQLite, Redis or PostgreSQL, stored as pages (see
 * pagedHistory.ts). Each operation is atomic in its backend, so processes appending to one channel
 * keep every turn (SQLite: BEGIN IMMEDIATE; Redis: WATCH/MULTI; PostgreSQL: a transaction holding
 * the channel's advisory lock).
 */
export class KeyvHistoryStore implements HistoryStore {
  /** Each backend has one connection, used by one operation at a time: they queue here. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The running or last sweep of the mood logs. */
  private sweep: Promise<MoodSweep | undefined> = Promise.resolve(undefined);
  private sweepTimer?: NodeJS.Timeout;
  private disposed = false;

  private constructor(
    private readonly backend: HistoryBackend,
    readonly maxTurns: number,
    private readonly moodRetentionMs: number,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  /** Where the history lives: the SQLite file's path, or the server's host (never a password). */
  get where(): string {
    return this.backend.where;
  }

  /**
   * Opens the store and proves it is usable; any problem (a corrupt or locked file, an unreachable
   * server, a refused password, a missing database) fails here, within seconds, with a UserError
   * naming the file or host.
   */
  static async open(options: KeyvHistoryStoreOptions): Promise<KeyvHistoryStore> {
    const { maxTurns = 500, moodRetentionDays = 30, now = Date.now, moodSweepIntervalMs = 86_400_000, logger = silentLogger } = options;
    const store = new KeyvHistoryStore(await openHistoryBackend(options), maxTurns, moodRetentionDays * 86_400_000, now, logger);
    if (moodSweepIntervalMs > 0) {
      store.startSweep();
      store.sweepTimer = setInterval(() => store.startSweep(), moodSweepIntervalMs);
      store.sweepTimer.unref(); // a pending sweep never keeps the process alive
    }
    return store;
  }

  /** Resolves with the running sweep's result (or the last one's); undefined when none ran or it failed. */
  moodSwept(): Promise<MoodSweep | undefined> {
    return this.sweep;
  }

  /**
   * Deletes the expired records of every channel's mood log, one channel per store operation so the
   * other channels' work is never held up for long. Appends drop expired records of the logs they
   * write; this reaches the logs nobody writes any more.
   */
  async sweepMood(): Promise<MoodSweep> {
    const channels = await this.enqueue(() => this.backend.moodChannels());
    let records = 0;
    for (const channelId of channels) {
      if (this.disposed) break;
      records += await this.queue(moodHeadKey(channelId), 'write', (kv) => sweepMood(kv, channelId, this.moodCutoff()));
    }
    return { channels: channels.length, records };
  }

  private startSweep(): void {
    // One at a time: a sweep still running when the next is due is enough.
    this.sweep = this.sweep.then(async () => {
      if (this.disposed) return undefined;
      const started = performance.now();
      try {
        const result = await this.sweepMood();
        if (result.records > 0) this.logger.info('expired mood records deleted', { ...result, ms: Math.round(performance.now() - started) });
        return result;
      } catch (error) {
        this.logger.warn('sweeping expired mood records failed; the next sweep tries again', { error });
        return undefined;
      }
    });
  }

  /** Waits for writes issued before it (not for their outcome: their callers get their errors). */
  load(channelId: string): Promise<HistoryTurn[]> {
    return this.queue(channelId, 'read', (kv) => loadTurns(kv, channelId, this.maxTurns));
  }

  append(channelId: string, turn: HistoryTurn): Promise<void> {
    return this.queue(channelId, 'write', (kv) => appendTurn(kv, channelId, turn, this.maxTurns));
  }

  clear(channelId: string): Promise<void> {
    return this.queue(channelId, 'write', (kv) => clearTurns(kv, channelId));
  }

  async getSetting(channelId: string, key: string): Promise<string | undefined> {
    const value = await this.queue(channelId, 'read', (kv) => kv.get(settingKey(channelId, key)));
    return typeof value === 'string' ? value : undefined;
  }

  setSetting(channelId: string, key: string, value: string | undefined): Promise<void> {
    const stored = settingKey(channelId, key);
    return this.queue(channelId, 'write', (kv) => (value === undefined ? kv.deleteMany([stored]) : kv.set(stored, value)));
  }

  // The log's own head is the operation's key: backends lock (PostgreSQL) or watch (Redis) it.
  appendMood(channelId: string, record: MoodRecord): Promise<void> {
    return this.queue(moodHeadKey(channelId), 'write', (kv) => appendMood(kv, channelId, record, this.moodCutoff()));
  }

  loadMood(channelId: string, since: number): Promise<MoodRecord[]> {
    return this.queue(moodHeadKey(channelId), 'read', (kv) => loadMood(kv, channelId, since, this.moodCutoff()));
  }

  clearMood(channelId: string): Promise<void> {
    return this.queue(moodHeadKey(channelId), 'write', (kv) => clearMood(kv, channelId));
  }

  private moodCutoff(): number {
    return this.now() - this.moodRetentionMs;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearInterval(this.sweepTimer);
    await this.sweep;
    await this.tail;
    await this.backend.close();
  }

  private queue<T>(channelId: string, mode: 'read' | 'write', work: (kv: PageStore) => Promise<T>): Promise<T> {
    return this.enqueue(() => this.backend.run(channelId, mode, work));
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work);
    this.tail = next.catch(() => {});
    return next;
  }
}

/**
 * The backend a URL names, opened and probed (see KeyvHistoryStore.open). Each backend's module
 * (and its client library) is loaded only when a URL names it: a bot on SQLite never loads the
 * Redis and PostgreSQL clients.
 */
export async function openHistoryBackend({ url, busyTimeoutMs = 5000, connectTimeoutMs = 5000, statementTimeoutMs = 15_000 }: KeyvHistoryStoreOptions): Promise<HistoryBackend> {
  const scheme = /^([a-z]+):\/\//.exec(url)?.[1];
  if (scheme === 'sqlite') return (await import('./sqliteBackend.js')).openSqliteBackend(url, busyTimeoutMs);
  if (scheme === 'redis') return (await import('./redisBackend.js')).openRedisBackend(url, connectTimeoutMs);
  if (scheme === 'postgres' || scheme === 'postgresql') {
    return (await import('./postgresBackend.js')).openPostgresBackend(url, { connectTimeoutMs, lockTimeoutMs: busyTimeoutMs, statementTimeoutMs });
  }
  throw new UserError('DATABASE_URL must start with sqlite://, redis://, postgres:// or postgresql://.');
}

/** Beside the channel's history keys (`<channel>` and `<channel>/page/<n>`), never one of them. */
const settingKey = (channelId: string, key: string): string => `${channelId}/setting/${key}`;
