import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import sqlite3 from 'sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { appendTurn, loadTurns, PAGE_TURNS, type PageStore } from '../../src/history/pagedHistory.js';
import { appenderProcess } from '../support/storeBackends.js';
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

function sqliteAll(file: string, sql: string): Promise<Array<{ key: string; value: string }>> {
  const db = new sqlite3.Database(file);
  return new Promise((resolve, reject) =>
    db.all(sql, (error, rows) => db.close(() => (error ? reject(error) : resolve(rows as Array<{ key: string; value: string }>)))),
  );
}

/** An in-memory PageStore whose writes can be made to stop after `writesLeft`, as a killed process would. */
class MemoryPages implements PageStore {
  readonly data = new Map<string, unknown>();
  writesLeft = Infinity;
  async get(key: string) {
    return structuredClone(this.data.get(key));
  }
  async getMany(keys: string[]) {
    return keys.map((key) => structuredClone(this.data.get(key)));
  }
  async set(key: string, value: unknown) {
    this.write();
    this.data.set(key, structuredClone(value));
  }
  async deleteMany(keys: string[]) {
    this.write();
    for (const key of keys) this.data.delete(key);
  }
  private write() {
    if (this.writesLeft-- <= 0) throw new Error('killed');
  }
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

  it('keeps an entry without a reply (a message the bot did not answer) as it is', async () => {
    const store = await openStore(join(dirs.make(), 'h.sqlite'));
    const unanswered: HistoryTurn = { userName: 'bo', userText: 'just chatting', at: 1_700_000_000_000 };

    await store.append('a', unanswered);
    await store.append('a', turn(2));

    expect(await store.load('a')).toEqual([unanswered, turn(2)]);
  });

  it('keeps per-channel settings across a reopen, apart from the history: clear leaves them, undefined deletes one', async () => {
    const file = join(dirs.make(), 'h.sqlite');
    const store = await openStore(file);
    await store.append('a', turn(1));
    await store.setSetting('a', 'mode', 'mentions');
    await store.setSetting('a', 'persona', 'You are a pirate.');
    await store.setSetting('b', 'mode', 'react');
    await store.clear('a');
    await closeStore(store);

    const reopened = await openStore(file);

    expect(await reopened.load('a')).toEqual([]);
    expect(await reopened.getSetting('a', 'mode')).toBe('mentions');
    expect(await reopened.getSetting('a', 'persona')).toBe('You are a pirate.');
    expect(await reopened.getSetting('b', 'mode')).toBe('react');
    expect(await reopened.getSetting('b', 'persona')).toBeUndefined();
    await reopened.setSetting('a', 'persona', undefined);
    expect(await reopened.getSetting('a', 'persona')).toBeUndefined();
    expect(await reopened.getSetting('a', 'mode')).toBe('mentions');
    await reopened.append('a', turn(3));
    expect(await reopened.load('a')).toEqual([turn(3)]);
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

  it('keeps all 200 turns, each process in its own order, when two processes append 100 each to one channel', async () => {
    const file = join(dirs.make(), 'shared.sqlite');
    await closeStore(await openStore(file));
    const children = [appenderProcess(`sqlite://${file}`, 'shared', 'p1', 100), appenderProcess(`sqlite://${file}`, 'shared', 'p2', 100)];
    await Promise.all(children.map((child) => child.ready));

    for (const child of children) child.go();
    expect(await Promise.all(children.map((child) => child.exited))).toEqual([0, 0]);

    const texts = (await (await openStore(file)).load('shared')).map((t) => t.userText);
    expect(texts).toHaveLength(200);
    for (const name of ['p1', 'p2']) {
      expect(texts.filter((text) => text.startsWith(`${name}-`))).toEqual(Array.from({ length: 100 }, (_, i) => `${name}-${i}`));
    }
    // The two really overlapped: their turns interleave.
    expect(new Set(texts.slice(0, 100).map((text) => text.slice(0, 2)))).toEqual(new Set(['p1', 'p2']));
  }, 120_000);

  it('stores a long history as pages of 32 turns and a head, and deletes pages that fall out of maxTurns', async () => {
    const file = join(dirs.make(), 'h.sqlite');
    const store = await openStore(file, { maxTurns: 40 });

    for (let n = 1; n <= 100; n++) await store.append('a', turn(n));

    expect(await store.load('a')).toEqual(Array.from({ length: 40 }, (_, i) => turn(61 + i)));
    const keys = (await sqliteAll(file, 'SELECT key FROM keyv ORDER BY key')).map((row) => row.key);
    // Turns 61..100 (indexes 60..99) live on pages 1..3.
    expect(keys).toEqual(['history:a', 'history:a/page/1', 'history:a/page/2', 'history:a/page/3']);
    const head = JSON.parse((await sqliteAll(file, "SELECT value FROM keyv WHERE key = 'history:a'"))[0]!.value);
    expect(head.value).toEqual({ v: 2, first: 60, next: 100 });
  });

  it('reads a history in the older single-value format, and converts it to pages on the first append', async () => {
    const file = join(dirs.make(), 'legacy.sqlite');
    const legacyTurns = Array.from({ length: 40 }, (_, i) => turn(i + 1));
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}` });
    await new Keyv({ store: adapter, namespace: 'history' }).set('old', { v: 1, turns: legacyTurns });
    await adapter.close();
    const store = await openStore(file);

    expect(await store.load('old')).toEqual(legacyTurns);
    await store.append('old', turn(41));

    expect(await store.load('old')).toEqual([...legacyTurns, turn(41)]);
    const keys = (await sqliteAll(file, 'SELECT key FROM keyv ORDER BY key')).map((row) => row.key);
    expect(keys).toEqual(['history:old', 'history:old/page/0', 'history:old/page/1']);
  });

  it.each([
    ['starts a new page', 64, 2],
    ['drops the oldest page', 71, 3],
  ])('loses no stored turn and shows none twice when an append that %s is killed between any two of its writes', async (_name, stored, writes) => {
    const maxTurns = 40;
    expect(stored % PAGE_TURNS === 0 || Math.floor((stored + 1 - maxTurns) / PAGE_TURNS) > Math.floor((stored - maxTurns) / PAGE_TURNS)).toBe(true);
    for (let killAfter = 0; killAfter <= writes; killAfter++) {
      const kv = new MemoryPages();
      for (let n = 1; n <= stored; n++) await appendTurn(kv, 'c', turn(n), maxTurns);
      const before = await loadTurns(kv, 'c', maxTurns);
      kv.writesLeft = killAfter;

      const outcome = await appendTurn(kv, 'c', turn(stored + 1), maxTurns).then(
        () => 'finished',
        () => 'killed',
      );
      kv.writesLeft = Infinity;

      expect(outcome).toBe(killAfter >= writes ? 'finished' : 'killed');
      // The head is the second write: the turn counts once it is written, and never before.
      const after = await loadTurns(kv, 'c', maxTurns);
      expect(after).toEqual(killAfter >= 2 ? [...before, turn(stored + 1)].slice(-maxTurns) : before);
      await appendTurn(kv, 'c', turn(100), maxTurns);
      expect(await loadTurns(kv, 'c', maxTurns)).toEqual([...after, turn(100)].slice(-maxTurns));
    }
  });
});
