import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HistoryTurn, MoodRecord } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore, openHistoryBackend } from '../../src/history/KeyvHistoryStore.js';
import { MOOD_PAGE_RECORDS } from '../../src/history/moodLog.js';
import { PAGE_TURNS, appendTurn, loadTurns, type PageStore } from '../../src/history/pagedHistory.js';
import { appenderProcess, freshChannel, removeStoreDirs, storeBackends } from '../support/storeBackends.js';

// One contract, every backend: SQLite always, Redis and PostgreSQL when their test servers run.
const opened: Array<{ dispose(): Promise<void> } | { close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of opened.splice(0)) await ('dispose' in item ? item.dispose() : item.close()).catch(() => {});
});
afterAll(() => removeStoreDirs());

/** Opens a store that afterEach disposes. */
async function openStore(options: Parameters<typeof KeyvHistoryStore.open>[0]): Promise<KeyvHistoryStore> {
  const store = await KeyvHistoryStore.open(options);
  opened.push(store);
  return store;
}

function turn(n: number, extra: Partial<HistoryTurn> = {}): HistoryTurn {
  return { userName: `user${n}`, userText: `message ${n}`, reply: `reply ${n}`, at: 1_700_000_000_000 + n, ...extra };
}

/** Stops writing after `writesLeft` writes, as a process killed between the page and head writes would. */
function dyingAfter(kv: PageStore, writesLeft: number): PageStore {
  const write = () => {
    if (writesLeft-- <= 0) throw new Error('killed');
  };
  return { ...kv, set: async (k, v) => (write(), kv.set(k, v)), deleteMany: async (k) => (write(), kv.deleteMany(k)) };
}

for (const backend of storeBackends()) {
  const { name, url: makeUrl } = backend;
  if (!makeUrl) {
    it.skip(`${name} store contract: skipped, ${backend.missing}`, () => {});
    continue;
  }
  const open = (url: string, maxTurns?: number) => openStore({ url, maxTurns });

  describe(`${name} history store`, () => {
    it('loads what it appended, field for field, also after closing and reopening', async () => {
      const url = makeUrl();
      const channel = freshChannel('round');
      const odd = turn(1, { userName: 'Zoë 🌸', userText: ':starts with a colon, "quotes", 你好 \n', reply: 'Héllo <|im_end|>' });
      const unanswered = turn(2, { reply: undefined });
      const first = await open(url);
      await first.append(channel, odd);
      await first.append(channel, unanswered);
      await first.dispose();

      const again = await open(url);

      expect(await again.load(channel)).toEqual([odd, { userName: 'user2', userText: 'message 2', at: 1_700_000_000_002 }]);
      expect(await again.load(freshChannel('never'))).toEqual([]);
    });

    it('clears one channel and leaves the others, and the cleared channel its settings', async () => {
      const store = await open(makeUrl());
      const [a, b] = [freshChannel('a'), freshChannel('b')];
      await store.append(a, turn(1));
      await store.append(b, turn(2));
      await store.setSetting(a, 'persona', 'pirate');

      await store.clear(a);

      expect(await store.load(a)).toEqual([]);
      expect(await store.load(b)).toEqual([turn(2)]);
      expect(await store.getSetting(a, 'persona')).toBe('pirate');
      await store.append(a, turn(3));
      expect(await store.load(a)).toEqual([turn(3)]);
    });

    it('keeps only the newest maxTurns turns across pages', async () => {
      const store = await open(makeUrl(), 40);
      const channel = freshChannel('trim');

      for (let n = 1; n <= 100; n++) await store.append(channel, turn(n));

      expect(await store.load(channel)).toEqual(Array.from({ length: 40 }, (_, i) => turn(61 + i)));
    });

    it('keeps all 200 turns, each process in its own order, when two processes append 100 each to one channel', async () => {
      const url = makeUrl();
      const channel = freshChannel('shared');
      await (await open(url)).load(channel); // creates the SQLite file before the children race for it
      const children = [appenderProcess(url, channel, 'p1', 100), appenderProcess(url, channel, 'p2', 100)];
      await Promise.all(children.map((child) => child.ready));

      for (const child of children) child.go();
      expect(await Promise.all(children.map((child) => child.exited))).toEqual([0, 0]);

      const texts = (await (await open(url)).load(channel)).map((t) => t.userText);
      expect(texts).toHaveLength(200);
      for (const p of ['p1', 'p2']) expect(texts.filter((text) => text.startsWith(`${p}-`))).toEqual(Array.from({ length: 100 }, (_, i) => `${p}-${i}`));
      // The two really overlapped: their turns interleave.
      expect(new Set(texts.slice(0, 100).map((text) => text.slice(0, 2)))).toEqual(new Set(['p1', 'p2']));
    }, 120_000);

    it('loses no stored turn and shows none twice when an append dies after its page write, before its head write', async () => {
      const backendUnderTest = await openHistoryBackend({ url: makeUrl() });
      opened.push(backendUnderTest);
      const channel = freshChannel('kill');
      const maxTurns = 40;
      // 64 stored: the next append starts page 2 and is the one whose trim drops page 0 later.
      for (let n = 1; n <= 2 * PAGE_TURNS; n++) await backendUnderTest.run(channel, 'write', (kv) => appendTurn(kv, channel, turn(n), maxTurns));
      const load = () => backendUnderTest.run(channel, 'read', (kv) => loadTurns(kv, channel, maxTurns));
      const before = await load();

      const outcome = await backendUnderTest
        .run(channel, 'write', (kv) => appendTurn(dyingAfter(kv, 1), channel, turn(65), maxTurns))
        .catch((error: Error) => error.message);

      expect(outcome).toBe('killed');
      expect(await load()).toEqual(before);
      await backendUnderTest.run(channel, 'write', (kv) => appendTurn(kv, channel, turn(66), maxTurns));
      expect(await load()).toEqual([...before, turn(66)].slice(-maxTurns));
    });

    it('keeps a whole-turn prefix, with no gap or repeat, when an appending process is SIGKILLed', async () => {
      const url = makeUrl();
      const channel = freshChannel('sigkill');
      await (await open(url)).load(channel);
      const child = appenderProcess(url, channel, 'k', 10_000);
      await child.ready;
      child.go();
      while (child.appended() < 50) await new Promise((r) => setTimeout(r, 10));

      child.kill();
      await child.exited;

      const store = await open(url);
      const texts = (await store.load(channel)).map((t) => t.userText);
      expect(texts.length).toBeGreaterThanOrEqual(50);
      expect(texts).toEqual(Array.from({ length: texts.length }, (_, i) => `k-${i}`).slice(-500));
      await store.append(channel, turn(1));
      expect((await store.load(channel)).at(-1)).toEqual(turn(1));
    }, 60_000);

    it('reads a history in the older single-value format, and converts it to pages on the first append', async () => {
      const url = makeUrl();
      const legacyBackend = await openHistoryBackend({ url });
      opened.push(legacyBackend);
      const channel = freshChannel('legacy');
      const legacyTurns = Array.from({ length: 40 }, (_, i) => turn(i + 1));
      await legacyBackend.run(channel, 'write', (kv) => kv.set(channel, { v: 1, turns: legacyTurns }));
      const store = await open(url);

      expect(await store.load(channel)).toEqual(legacyTurns);
      await store.append(channel, turn(41));

      expect(await store.load(channel)).toEqual([...legacyTurns, turn(41)]);
      expect(await legacyBackend.run(channel, 'read', (kv) => kv.get(channel))).toEqual({ v: 2, first: 0, next: 41 });
      const pages = await legacyBackend.run(channel, 'read', (kv) => kv.getMany([`${channel}/page/0`, `${channel}/page/1`]));
      expect(pages.map((page) => (page as { turns: unknown[] }).turns.length)).toEqual([32, 9]);
    });
  });
}

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
const mood = (at: number, label: MoodRecord['label'] = 'positive', confidence = 0.75): MoodRecord => ({ at, label, confidence });

for (const backend of storeBackends()) {
  const { name, url: makeUrl } = backend;
  if (!makeUrl) {
    it.skip(`${name} sentiment log contract: skipped, ${backend.missing}`, () => {});
    continue;
  }
  const open = (url: string, options: { now?: () => number; moodRetentionDays?: number; moodSweepIntervalMs?: number } = {}) => openStore({ url, now: () => NOW, ...options });
  const rawRead = async (url: string, channel: string, keys: string[]) => {
    const raw = await openHistoryBackend({ url });
    opened.push(raw);
    return raw.run(channel, 'read', (kv) => kv.getMany(keys));
  };

  describe(`${name} sentiment log`, () => {
    it('loads the records appended since a time, across pages and after reopening, and stores nothing but time, label and confidence', async () => {
      const url = makeUrl();
      const channel = freshChannel('mood');
      const first = await open(url);
      const records = Array.from({ length: 150 }, (_, i) => mood(NOW - 150_000 + i * 1000, (['positive', 'neutral', 'negative'] as const)[i % 3], i / 150));
      // A caller's object carrying more than the record: the extra fields must not be stored.
      await first.appendMood(channel, { ...records[0]!, text: 'secret words', author: 'Zoë' } as MoodRecord);
      for (const record of records.slice(1)) await first.appendMood(channel, record);
      await first.dispose();

      const again = await open(url);

      expect(await again.loadMood(channel, 0)).toEqual(records);
      expect(await again.loadMood(channel, NOW - 10_000)).toEqual(records.slice(140));
      expect(await again.loadMood(freshChannel('silent'), 0)).toEqual([]);
      const raw = await openHistoryBackend({ url });
      opened.push(raw);
      const page0 = (await raw.run(channel, 'read', (kv) => kv.get(`${channel}/mood/page/0`))) as { records: object[] };
      expect(page0.records).toHaveLength(MOOD_PAGE_RECORDS);
      expect(page0.records[0]).toEqual({ at: NOW - 150_000, label: 'positive', confidence: 0 });
      expect(JSON.stringify(page0)).not.toMatch(/secret|Zoë|author|text/);
    });

    it('drops records older than the retention: never loaded, and their page deleted by the next appends', async () => {
      const url = makeUrl();
      const channel = freshChannel('retain');
      const store = await open(url, { moodRetentionDays: 30 });
      // 70 records 40 days old fill page 0 and start page 1; 2 fresh ones follow.
      for (let i = 0; i < 70; i++) await store.appendMood(channel, mood(NOW - 40 * DAY + i, 'negative'));
      await store.appendMood(channel, mood(NOW - 29 * DAY, 'neutral'));
      await store.appendMood(channel, mood(NOW - 1000, 'positive'));

      expect(await store.loadMood(channel, 0)).toEqual([mood(NOW - 29 * DAY, 'neutral'), mood(NOW - 1000, 'positive')]);
      const raw = await openHistoryBackend({ url });
      opened.push(raw);
      const pages = await raw.run(channel, 'read', (kv) => kv.getMany([`${channel}/mood/page/0`, `${channel}/mood/page/1`]));
      expect(pages[0]).toBeUndefined();
      expect((pages[1] as { records: unknown[] }).records).toHaveLength(8);
      // The 6 old records on page 1 are dropped from it as it is written.
      expect(await raw.run(channel, 'read', (kv) => kv.get(`${channel}/mood`))).toEqual({ v: 1, first: 70, next: 72 });
    });

    it('drops the expired records of a channel with fewer than 64 records from the page it writes', async () => {
      const url = makeUrl();
      const channel = freshChannel('retainsmall');
      let now = NOW - 40 * DAY;
      const store = await open(url, { now: () => now, moodRetentionDays: 30, moodSweepIntervalMs: 0 });
      for (let i = 0; i < 10; i++) await store.appendMood(channel, mood(now + i, 'negative'));
      now = NOW;

      await store.appendMood(channel, mood(NOW - 1000, 'positive'));

      expect(await store.loadMood(channel, 0)).toEqual([mood(NOW - 1000, 'positive')]);
      const [head, page0] = await rawRead(url, channel, [`${channel}/mood`, `${channel}/mood/page/0`]);
      expect(head).toEqual({ v: 1, first: 10, next: 11 });
      expect(JSON.stringify(page0)).not.toContain('negative');
      expect((page0 as { records: unknown[] }).records.filter(Boolean)).toEqual([mood(NOW - 1000, 'positive')]);
    });

    it('sweeps a quiet channel when the store opens: its expired records are deleted, pages and head, and a live channel is kept', async () => {
      const url = makeUrl();
      const [quiet, live] = [freshChannel('quiet'), freshChannel('live')];
      const writer = await open(url, { now: () => NOW - 40 * DAY, moodSweepIntervalMs: 0 });
      for (let i = 0; i < 70; i++) await writer.appendMood(quiet, mood(NOW - 40 * DAY + i, 'negative'));
      for (let i = 0; i < 3; i++) await writer.appendMood(live, mood(NOW - 40 * DAY + i, 'negative'));
      await writer.appendMood(live, mood(NOW - 1000, 'positive'));
      await writer.dispose();

      const store = await open(url, { moodRetentionDays: 30 });
      await store.moodSwept();

      expect(await rawRead(url, quiet, [`${quiet}/mood`, `${quiet}/mood/page/0`, `${quiet}/mood/page/1`])).toEqual([undefined, undefined, undefined]);
      const [liveHead, livePage] = await rawRead(url, live, [`${live}/mood`, `${live}/mood/page/0`]);
      expect(liveHead).toEqual({ v: 1, first: 3, next: 4 });
      expect(JSON.stringify(livePage)).not.toContain('negative');
      expect(await store.loadMood(live, 0)).toEqual([mood(NOW - 1000, 'positive')]);
      expect(await store.loadMood(quiet, 0)).toEqual([]);
      await store.appendMood(quiet, mood(NOW - 5, 'neutral'));
      expect(await store.loadMood(quiet, 0)).toEqual([mood(NOW - 5, 'neutral')]);
    });

    it('sweeps again on its interval (daily by default): a channel that went quiet while the store ran loses its expired records', async () => {
      const url = makeUrl();
      const channel = freshChannel('quietlater');
      let now = NOW;
      const store = await open(url, { now: () => now, moodRetentionDays: 30, moodSweepIntervalMs: 50 });
      for (let i = 0; i < 5; i++) await store.appendMood(channel, mood(NOW + i, 'negative'));
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(await store.loadMood(channel, 0)).toHaveLength(5);

      now = NOW + 31 * DAY;
      const deadline = Date.now() + 10_000;
      while ((await rawRead(url, channel, [`${channel}/mood`]))[0] !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));

      expect(await rawRead(url, channel, [`${channel}/mood`, `${channel}/mood/page/0`])).toEqual([undefined, undefined]);
    });

    it('clears the log only when asked: clearing the history keeps it, clearing the log keeps the history', async () => {
      const store = await open(makeUrl());
      const channel = freshChannel('moodclear');
      await store.append(channel, turn(1));
      await store.appendMood(channel, mood(NOW - 5));

      await store.clear(channel);
      expect(await store.loadMood(channel, 0)).toEqual([mood(NOW - 5)]);
      await store.append(channel, turn(2));
      await store.clearMood(channel);

      expect(await store.loadMood(channel, 0)).toEqual([]);
      expect(await store.load(channel)).toEqual([turn(2)]);
      await store.appendMood(channel, mood(NOW - 1, 'negative'));
      expect(await store.loadMood(channel, 0)).toEqual([mood(NOW - 1, 'negative')]);
    });

    it('keeps all 200 records when two processes append 100 each to one channel', async () => {
      const url = makeUrl();
      const channel = freshChannel('moodshared');
      await (await open(url)).loadMood(channel, 0);
      const children = [appenderProcess(url, channel, 'p1', 100, 'mood'), appenderProcess(url, channel, 'p2', 100, 'mood')];
      await Promise.all(children.map((child) => child.ready));

      for (const child of children) child.go();
      expect(await Promise.all(children.map((child) => child.exited))).toEqual([0, 0]);

      const store = await openStore({ url });
      const records = await store.loadMood(channel, 0);
      expect(records).toHaveLength(200);
      for (const confidence of [0.1, 0.2]) {
        const times = records.filter((r) => r.confidence === confidence).map((r) => r.at);
        expect(times).toHaveLength(100);
        expect(times).toEqual([...times].sort((a, b) => a - b));
      }
      expect(new Set(records.slice(0, 100).map((r) => r.confidence))).toEqual(new Set([0.1, 0.2]));
    }, 120_000);
  });
}

describe('PostgreSQL history store under a stalled server', () => {
  const url = process.env.TEST_POSTGRES_URL;
  if (!url) {
    it.skip('skipped: TEST_POSTGRES_URL is not set; start one with `source .ci/test-servers.sh && start_test_servers`', () => {});
    return;
  }

  /** Another session that holds, until released, the channel's advisory lock or one row's lock: a stalled writer. */
  async function stalledSession(sql: string, params: unknown[]): Promise<{ release(): Promise<void> }> {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('BEGIN');
    await client.query(sql, params);
    return {
      async release() {
        await client.query('ROLLBACK');
        await client.end();
      },
    };
  }

  it("fails a write that waits longer than the lock timeout for another session's channel lock, and serves the next channel", async () => {
    const store = await openStore({ url, busyTimeoutMs: 300, moodSweepIntervalMs: 0 });
    const [stuck, free] = [freshChannel('pglock'), freshChannel('pgfree')];
    const stall = await stalledSession('SELECT pg_advisory_xact_lock(hashtext($1))', [`mood-bot history:${stuck}`]);
    try {
      const started = performance.now();
      await expect(store.append(stuck, turn(1))).rejects.toThrow(/lock timeout/);
      expect(performance.now() - started).toBeLessThan(5000);
      await store.append(free, turn(2));
      expect(await store.load(free)).toEqual([turn(2)]);
    } finally {
      await stall.release();
    }
    await store.append(stuck, turn(3));
    expect(await store.load(stuck)).toEqual([turn(3)]);
  });

  it('fails a statement that runs longer than the statement timeout (a row held by another session), and serves the next channel', async () => {
    const store = await openStore({ url, busyTimeoutMs: 60_000, statementTimeoutMs: 300, moodSweepIntervalMs: 0 });
    const [stuck, free] = [freshChannel('pgrow'), freshChannel('pgfree')];
    await store.append(stuck, turn(1));
    const stall = await stalledSession('SELECT value FROM keyv WHERE key = $1 FOR UPDATE', [`history:${stuck}`]);
    try {
      await expect(store.append(stuck, turn(2))).rejects.toThrow(/statement timeout/);
      await store.append(free, turn(3));
      expect(await store.load(free)).toEqual([turn(3)]);
    } finally {
      await stall.release();
    }
    expect(await store.load(stuck)).toEqual([turn(1)]);
  });
});
