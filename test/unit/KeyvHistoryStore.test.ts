import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { tempDirs } from '../support/tempDir.js';

const dirs = tempDirs('history-store-');
const openStores: KeyvHistoryStore[] = [];

/** Opens a store and remembers it, so every test's stores are closed even when an assertion fails. */
async function openStore(file: string, options: { maxTurns?: number; busyTimeoutMs?: number } = {}): Promise<KeyvHistoryStore> {
  const store = await KeyvHistoryStore.open({ url: `sqlite://${file}`, ...options });
  openStores.push(store);
  return store;
}

async function closeStore(store: KeyvHistoryStore): Promise<void> {
  openStores.splice(openStores.indexOf(store), 1);
  await store.dispose();
}

function turn(n: number, extra: Partial<HistoryTurn> = {}): HistoryTurn {
  return { userName: `user${n}`, userText: `message ${n}`, reply: `reply ${n}`, at: 1_700_000_000_000 + n, ...extra };
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject');
}

function sqliteRun(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.run(sql, (error) => (error ? reject(error) : resolve())));
}

afterEach(async () => {
  for (const store of openStores.splice(0)) await store.dispose().catch(() => {});
});
afterAll(() => dirs.removeAll());

describe('KeyvHistoryStore', () => {
  it('loads the turns it appended, field for field, from a real SQLite file', async () => {
    const file = join(dirs.make(), 'h.sqlite');
    const store = await openStore(file);
    const first = turn(1, { userName: 'Zoë 🌸', userText: '你好, "quotes" and \n newlines', reply: 'Héllo <|im_end|>' });

    await store.append('channel-1', first);
    await store.append('channel-1', turn(2));

    expect(await store.load('channel-1')).toEqual([first, turn(2)]);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
  });

  it('returns an empty history for a channel it has never seen', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'));

    expect(await store.load('never-used')).toEqual([]);
  });

  it('keeps histories after closing and reopening the file', async () => {
    const file = join(dirs.make(), 'h.sqlite');
    const store = await openStore(file);
    await store.append('a', turn(1));
    await store.append('b', turn(2));
    await closeStore(store);

    const reopened = await openStore(file);

    expect(await reopened.load('a')).toEqual([turn(1)]);
    expect(await reopened.load('b')).toEqual([turn(2)]);
    await reopened.append('a', turn(3));
    expect(await reopened.load('a')).toEqual([turn(1), turn(3)]);
  });

  it('clears one channel and leaves every other channel untouched', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'));
    await store.append('a', turn(1));
    await store.append('b', turn(2));
    await store.append('c', turn(3));

    await store.clear('a');

    expect(await store.load('a')).toEqual([]);
    expect(await store.load('b')).toEqual([turn(2)]);
    expect(await store.load('c')).toEqual([turn(3)]);
  });

  it('keeps every one of many concurrent appends to one channel, in call order', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'));
    const turns = Array.from({ length: 20 }, (_, i) => turn(i + 1));

    await Promise.all(turns.map((t) => store.append('busy', t)));

    expect(await store.load('busy')).toEqual(turns);
  });

  it('lets a load issued right after appends see all of them', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'));

    void store.append('a', turn(1));
    void store.append('a', turn(2));
    const loaded = await store.load('a');

    expect(loaded).toEqual([turn(1), turn(2)]);
  });

  it('keeps only the newest maxTurns turns of a channel', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'), { maxTurns: 3 });

    for (let n = 1; n <= 5; n++) await store.append('a', turn(n));

    expect(await store.load('a')).toEqual([turn(3), turn(4), turn(5)]);
  });

  it('creates a missing folder for the database', async () => {
    const file = join(dirs.make(), 'not', 'yet', 'there', 'h.sqlite');

    const store = await openStore(file);
    await store.append('a', turn(1));

    expect(existsSync(file)).toBe(true);
    expect(await store.load('a')).toEqual([turn(1)]);
  });

  it('uses an empty file as a new database', async () => {
    const file = join(dirs.make(), 'empty.sqlite');
    writeFileSync(file, '');

    const store = await openStore(file);
    await store.append('a', turn(1));

    expect(await store.load('a')).toEqual([turn(1)]);
  });

  it('refuses a file that is not SQLite with a UserError naming it, and leaves its bytes unchanged', async () => {
    const file = join(dirs.make(), 'notes.sqlite');
    const content = 'My shopping list:\n- milk\n- bread\n';
    writeFileSync(file, content);

    const error = await rejection(openStore(file));

    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(file);
    expect(error.message).toContain('not a SQLite database');
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('refuses a corrupt SQLite file (valid header, garbage after) with a clear error, and does not overwrite it', async () => {
    const file = join(dirs.make(), 'garbled.sqlite');
    const garbage = Buffer.alloc(8192, 0xab);
    Buffer.from('SQLite format 3\0', 'latin1').copy(garbage, 0);
    writeFileSync(file, garbage);

    const error = await rejection(openStore(file));

    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/: it is corrupt \(.*\); it was left untouched/);
    expect(readFileSync(file).equals(garbage)).toBe(true);
  });

  it('refuses a folder in place of the file', async () => {
    const folder = dirs.make();

    const error = await rejection(openStore(folder));

    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`${folder}: it is not a file`);
  });

  it('reports a database locked by another connection as a UserError that says so', async () => {
    const file = join(dirs.make(), 'shared.sqlite');
    await closeStore(await openStore(file));
    const other = new sqlite3.Database(file);
    try {
      await sqliteRun(other, 'BEGIN EXCLUSIVE');

      const error = await rejection(openStore(file, { busyTimeoutMs: 50 }));

      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toContain(file);
      expect(error.message).toMatch(/: it is locked by another process/);
    } finally {
      await sqliteRun(other, 'ROLLBACK').catch(() => {});
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
    // Once the other connection lets go, the same file opens fine.
    const store = await openStore(file);
    expect(await store.load('a')).toEqual([]);
  });
});
