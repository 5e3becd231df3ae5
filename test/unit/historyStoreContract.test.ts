import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore, openHistoryBackend } from '../../src/history/KeyvHistoryStore.js';
import { PAGE_TURNS, appendTurn, loadTurns, type PageStore } from '../../src/history/pagedHistory.js';
import { appenderProcess, freshChannel, removeStoreDirs, storeBackends } from '../support/storeBackends.js';

// One contract, every backend: SQLite always, Redis and PostgreSQL when their test servers run.
const opened: Array<{ dispose(): Promise<void> } | { close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of opened.splice(0)) await ('dispose' in item ? item.dispose() : item.close()).catch(() => {});
});
afterAll(() => removeStoreDirs());

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
  const open = async (url: string, maxTurns?: number) => {
    const store = await KeyvHistoryStore.open({ url, maxTurns });
    opened.push(store);
    return store;
  };

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
