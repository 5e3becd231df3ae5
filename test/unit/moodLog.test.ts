import { describe, expect, it } from 'vitest';
import type { MoodRecord } from '../../src/history/HistoryStore.js';
import { MOOD_PAGE_RECORDS, appendMood, loadMood, moodPageKey } from '../../src/history/moodLog.js';
import type { PageStore } from '../../src/history/pagedHistory.js';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

/** A key-value store in memory that counts the mood pages each read asks for. */
function countingStore(): PageStore & { pagesRead: number } {
  const values = new Map<string, unknown>();
  const counted = (key: string) => {
    if (key.includes('/mood/page/')) store.pagesRead++;
    return structuredClone(values.get(key));
  };
  const store = {
    pagesRead: 0,
    get: async (key: string) => counted(key),
    getMany: async (keys: string[]) => keys.map(counted),
    set: async (key: string, value: unknown) => void values.set(key, structuredClone(value)),
    deleteMany: async (keys: string[]) => keys.forEach((key) => values.delete(key)),
  };
  return store;
}

describe('the mood log', () => {
  it('reads only the newest pages a range needs, however long the log: the last day of 100 days reads 2 pages, not 100', async () => {
    const kv = countingStore();
    // One page a day: 100 days of 64 records, each day's first record at its start.
    const records: MoodRecord[] = [];
    for (let day = 99; day >= 0; day--) {
      for (let i = 0; i < MOOD_PAGE_RECORDS; i++) records.push({ at: NOW - day * DAY - DAY + 1 + i * 1000, label: 'neutral', confidence: 0.5 });
    }
    for (const record of records) await appendMood(kv, 'c', record, NOW - 365 * DAY);
    kv.pagesRead = 0;

    const lastDay = await loadMood(kv, 'c', NOW - DAY, NOW - 365 * DAY);

    expect(lastDay).toEqual(records.slice(-MOOD_PAGE_RECORDS));
    expect(kv.pagesRead).toBeLessThanOrEqual(3);
    kv.pagesRead = 0;
    expect(await loadMood(kv, 'c', NOW - 10 * DAY, NOW - 365 * DAY)).toEqual(records.slice(-10 * MOOD_PAGE_RECORDS));
    expect(kv.pagesRead).toBeLessThanOrEqual(2 * 11);
    expect(await loadMood(kv, 'c', 0, NOW - 365 * DAY)).toEqual(records);
  });

  it('still finds a range that starts inside a page, and returns nothing before it', async () => {
    const kv = countingStore();
    const records: MoodRecord[] = Array.from({ length: 3 * MOOD_PAGE_RECORDS + 5 }, (_, i) => ({ at: NOW - 1_000_000 + i * 1000, label: 'positive', confidence: 0.9 }));
    for (const record of records) await appendMood(kv, 'c', record, 0);

    const since = records[MOOD_PAGE_RECORDS + 10]!.at;

    expect(await loadMood(kv, 'c', since, 0)).toEqual(records.slice(MOOD_PAGE_RECORDS + 10));
    expect(await kv.get(moodPageKey('c', 0))).toBeDefined();
  });
});
