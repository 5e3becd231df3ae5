import fs from 'node:fs';
import path from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { UserError } from '../errors.js';
import type { HistoryStore, HistoryTurn } from './HistoryStore.js';

export interface KeyvHistoryStoreOptions {
  /** Keyv SQLite URI, e.g. `sqlite://data/history.sqlite` (relative paths are from the working directory). */
  url: string;
  /** Turns kept per channel in the store; older ones are dropped on append. Default 500. */
  maxTurns?: number;
  /** How long a write waits for another process's lock before failing, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

interface StoredHistory {
  v: 1;
  turns: HistoryTurn[];
}

const SQLITE_HEADER = 'SQLite format 3\0';

/** Channel histories in one SQLite file through Keyv; one key per channel, written as a whole. */
export class KeyvHistoryStore implements HistoryStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  private constructor(
    private readonly keyv: Keyv<StoredHistory>,
    private readonly adapter: KeyvSqlite,
    private readonly maxTurns: number,
    readonly filePath: string,
  ) {}

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
    const keyv = new Keyv<StoredHistory>({ store: adapter, namespace: 'history', throwOnErrors: true });
    keyv.on('error', () => {});
    const store = new KeyvHistoryStore(keyv, adapter, maxTurns, filePath);
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
    return store;
  }

  async load(channelId: string): Promise<HistoryTurn[]> {
    // Wait for a write in progress, but not for its outcome: its caller gets its error.
    await this.locks.get(channelId)?.catch(() => {});
    return this.read(channelId);
  }

  append(channelId: string, turn: HistoryTurn): Promise<void> {
    return this.withLock(channelId, async () => {
      const turns = await this.read(channelId);
      turns.push(turn);
      await this.keyv.set(channelId, { v: 1, turns: turns.slice(-this.maxTurns) });
    });
  }

  clear(channelId: string): Promise<void> {
    return this.withLock(channelId, async () => {
      await this.keyv.delete(channelId);
    });
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.locks.values());
    await this.adapter.close();
  }

  private async read(channelId: string): Promise<HistoryTurn[]> {
    const stored = await this.keyv.get(channelId);
    if (stored === undefined) return [];
    if (stored?.v !== 1 || !Array.isArray(stored.turns)) {
      throw new Error(`History for channel ${channelId} in ${this.filePath} has an unknown format; it was left untouched.`);
    }
    return stored.turns;
  }

  /** Serializes writes per channel, so two appends never read the same old list. */
  private withLock(channelId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.locks.get(channelId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(work);
    this.locks.set(channelId, next);
    void next.finally(() => {
      if (this.locks.get(channelId) === next) this.locks.delete(channelId);
    }).catch(() => {});
    return next;
  }
}

function checkDatabaseFile(filePath: string): void {
  const folder = path.dirname(path.resolve(filePath));
  fs.mkdirSync(folder, { recursive: true });
  if (!fs.existsSync(filePath)) {
    assertAccess(folder, `the folder ${folder} is not writable; fix its permissions or point DATABASE_URL elsewhere`);
    return;
  }
  if (!fs.statSync(filePath).isFile()) {
    throw new UserError(`Cannot use the history database ${filePath}: it is not a file; point DATABASE_URL at a .sqlite file.`);
  }
  const header = Buffer.alloc(16);
  const fd = fs.openSync(filePath, 'r');
  const bytesRead = fs.readSync(fd, header, 0, 16, 0);
  fs.closeSync(fd);
  if (bytesRead > 0 && header.toString('latin1', 0, bytesRead) !== SQLITE_HEADER.slice(0, bytesRead)) {
    throw new UserError(
      `Cannot use the history database ${filePath}: it is not a SQLite database (left untouched). ` +
        'Move it away or point DATABASE_URL at another file.',
    );
  }
  assertAccess(filePath, `the file ${filePath} is not writable; fix its permissions or point DATABASE_URL elsewhere`);
}

function assertAccess(target: string, message: string): void {
  try {
    fs.accessSync(target, fs.constants.W_OK);
  } catch {
    throw new UserError(`Cannot use the history database: ${message}.`);
  }
}

function describeSqliteError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/SQLITE_BUSY|locked/i.test(message)) return `it is locked by another process (${message}); stop the other process or use another file.`;
  if (/SQLITE_NOTADB|SQLITE_CORRUPT|malformed/i.test(message)) return `it is corrupt (${message}); it was left untouched. Restore a backup or point DATABASE_URL at another file.`;
  if (/SQLITE_READONLY|SQLITE_CANTOPEN|EACCES/i.test(message)) return `it cannot be opened for writing (${message}); fix its permissions or point DATABASE_URL elsewhere.`;
  return message;
}
