import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { UserError } from '../errors.js';
import type { HistoryBackend, PageStore } from './pagedHistory.js';
import { checkDatabaseFile, describeSqliteError } from './sqliteFile.js';

/**
 * Opens (creating if needed) the SQLite file and proves it is usable: a missing folder is created,
 * while a file that is not SQLite, is corrupt, is read-only or is locked fails here with an error
 * naming the file. The user's file is never overwritten.
 */
export async function openSqliteBackend(url: string, busyTimeoutMs: number): Promise<HistoryBackend> {
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
  const kv = keyvPages(keyv);
  return {
    where: filePath,
    // The adapter has one connection, and a connection has one transaction at a time (the store
    // issues one call at a time). IMMEDIATE takes the write lock before the first read, so no other
    // process writes in between; waiting for it is SQLite's busy timeout. A read is one snapshot.
    run: (_channelId, mode, work) => inTransaction(adapter.query, `BEGIN ${mode === 'write' ? 'IMMEDIATE' : 'DEFERRED'}`, () => work(kv)),
    moodChannels: async () => moodChannelsOf((await adapter.query(MOOD_HEADS_SQL)) as Array<{ key: string }>),
    close: () => adapter.close(),
  };
}

/** `begin`, the work, COMMIT; ROLLBACK when anything fails. `query` runs on the one connection the transaction lives on. */
export async function inTransaction<T>(query: (sql: string) => Promise<unknown>, begin: string, work: () => Promise<T>): Promise<T> {
  await query(begin);
  try {
    const result = await work();
    await query('COMMIT');
    return result;
  } catch (error) {
    await query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** Keyv's rows (SQLite, PostgreSQL) of mood-log heads: `history:<channel>/mood`. */
export const MOOD_HEADS_SQL = "SELECT key FROM keyv WHERE key LIKE 'history:%/mood'";

/** Channel ids from Keyv keys of mood-log heads (`<prefix><channel>/mood`); a setting named mood is none. */
export function moodChannelsOf(rows: Array<{ key: string }>, prefix = 'history:'): string[] {
  return rows
    .map(({ key }) => key.slice(prefix.length, -'/mood'.length))
    .filter((channelId) => channelId.length > 0 && !channelId.includes('/setting/'));
}

/** The layout's key-value operations straight through Keyv (keys and values in Keyv's own format). */
export function keyvPages(keyv: Keyv): PageStore {
  return {
    get: (key) => keyv.get(key),
    getMany: (keys) => keyv.getMany(keys),
    set: async (key, value) => void (await keyv.set(key, value)),
    deleteMany: async (keys) => void (await keyv.deleteMany(keys)),
  };
}
