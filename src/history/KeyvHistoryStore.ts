import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { UserError } from '../errors.js';
import type { HistoryStore, HistoryTurn } from './HistoryStore.js';
import { appendTurn, clearTurns, loadTurns, type PageStore } from './pagedHistory.js';
import { checkDatabaseFile, describeSqliteError } from './sqliteFile.js';

export interface KeyvHistoryStoreOptions {
  /** Keyv SQLite URI, e.g. `sqlite://data/history.sqlite` (relative paths are from the working directory). */
  url: string;
  /** Turns kept per channel in the store; older ones are dropped on append. Default 500. */
  maxTurns?: number;
  /** How long a write waits for another process's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/**
 * Channel histories in one SQLite file through Keyv, stored as pages (see pagedHistory.ts). Each
 * operation is one SQLite transaction, so two processes appending to one channel keep every turn:
 * an append holds the write lock (BEGIN IMMEDIATE) from reading the head to writing it.
 */
export class KeyvHistoryStore implements HistoryStore {
  /** The adapter has one connection, and a connection has one transaction at a time: they queue here. */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly pages: PageStore;

  private constructor(
    keyv: Keyv,
    private readonly adapter: KeyvSqlite,
    readonly maxTurns: number,
    readonly filePath: string,
  ) {
    this.pages = {
      get: (key) => keyv.get(key),
      getMany: (keys) => keyv.getMany(keys),
      set: async (key, value) => void (await keyv.set(key, value)),
      deleteMany: async (keys) => void (await keyv.deleteMany(keys)),
    };
  }

  /**
   * Opens (creating if needed) the database and proves it is usable: a missing folder is created,
   * while a file that is not SQLite, is corrupt, is read-only or is locked fails here with an error
   * naming the file. The user's file is never overwritten.
   */
  static async open({ url, maxTurns = 500, busyTimeoutMs = 5000 }: KeyvHistoryStoreOptions): Promise<KeyvHistoryStore> {
    const filePath = url.replace(/^sqlite:\/\//, '');
    if (filePath !== ':memory:') checkDatabaseFile(filePath);
    const adapter = new KeyvSqlite({ uri: url, busyTimeout: busyTimeoutMs });
    // The adapter also emits its connection error; the awaited probe below is where we report it.
    adapter.on('error', () => {});
    const keyv = new Keyv({ store: adapter, namespace: 'history', throwOnErrors: true });
    keyv.on('error', () => {});
    try {
      // WAL keeps the file consistent if the process is killed mid-write.
      await adapter.query('PRAGMA journal_mode = WAL');
      await adapter.query('SELECT count(*) FROM keyv');
      await adapter.query('BEGIN IMMEDIATE');
      await adapter.query('ROLLBACK');
    } catch (error) {
      await adapter.close().catch(() => {});
      throw new UserError(`Cannot use the history database ${filePath}: ${describeSqliteError(error)}`);
    }
    return new KeyvHistoryStore(keyv, adapter, maxTurns, filePath);
  }

  /** Waits for writes issued before it (not for their outcome: their callers get their errors). */
  load(channelId: string): Promise<HistoryTurn[]> {
    // A read transaction: head and pages come from one snapshot, even while another process trims.
    return this.transaction('DEFERRED', () => loadTurns(this.pages, channelId, this.maxTurns));
  }

  append(channelId: string, turn: HistoryTurn): Promise<void> {
    return this.transaction('IMMEDIATE', () => appendTurn(this.pages, channelId, turn, this.maxTurns));
  }

  clear(channelId: string): Promise<void> {
    return this.transaction('IMMEDIATE', () => clearTurns(this.pages, channelId));
  }

  async getSetting(channelId: string, key: string): Promise<string | undefined> {
    const value = await this.transaction('DEFERRED', () => this.pages.get(settingKey(channelId, key)));
    return typeof value === 'string' ? value : undefined;
  }

  setSetting(channelId: string, key: string, value: string | undefined): Promise<void> {
    const stored = settingKey(channelId, key);
    return this.transaction('IMMEDIATE', () => (value === undefined ? this.pages.deleteMany([stored]) : this.pages.set(stored, value)));
  }

  async dispose(): Promise<void> {
    await this.tail;
    await this.adapter.close();
  }

  private transaction<T>(mode: 'DEFERRED' | 'IMMEDIATE', work: () => Promise<T>): Promise<T> {
    const run = async () => {
      // IMMEDIATE takes the write lock before the first read, so no other process writes in between;
      // waiting for it is SQLite's busy timeout.
      await this.adapter.query(`BEGIN ${mode}`);
      try {
        const result = await work();
        await this.adapter.query('COMMIT');
        return result;
      } catch (error) {
        await this.adapter.query('ROLLBACK').catch(() => {});
        throw error;
      }
    };
    const next = this.tail.then(run);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** Beside the channel's history keys (`<channel>` and `<channel>/page/<n>`), never one of them. */
const settingKey = (channelId: string, key: string): string => `${channelId}/setting/${key}`;
