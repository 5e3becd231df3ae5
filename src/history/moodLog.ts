import type { MoodRecord } from './HistoryStore.js';
import { range, type PageStore } from './pagedHistory.js';

/**
 * A channel's sentiment log as pages of records plus a small head, over any key-value store, laid
 * out like the history (pagedHistory.ts): an append rewrites one page and the head, and drops at
 * most one expired page, so its cost does not grow with the log. The head is the commit point: a
 * slot at or past `head.next` is never read, so a process killed between two writes loses nothing.
 *
 * Retention: records older than the cutoff are never returned, and each append deletes the oldest
 * page once its newest record has expired. One page per append removes 64 records for every one
 * added, so a log catches up with a shortened retention within a few appends.
 *
 * Keys: the head under `<channel>/mood`, page `n` under `<channel>/mood/page/<n>`.
 */
export const MOOD_PAGE_RECORDS = 64;

/** Records `first` .. `next - 1` are the channel's log. */
interface MoodHead {
  v: 1;
  first: number;
  next: number;
  /**
   * The newest time in the oldest page, once that page is full: retention compares it with the
   * cutoff without reading the page, so an append reads one page, not two. Absent: the page is read.
   */
  oldestEnd?: number;
}

interface MoodPage {
  records: MoodRecord[];
}

/** The key the log's head lives under, which every write rewrites (backends lock or watch it). */
export const moodHeadKey = (channelId: string): string => `${channelId}/mood`;
export const moodPageKey = (channelId: string, page: number): string => `${channelId}/mood/page/${page}`;
const pageOf = (index: number) => Math.floor(index / MOOD_PAGE_RECORDS);

/** Appends one record; `cutoff` (epoch ms) is the oldest time retention keeps. */
export async function appendMood(kv: PageStore, channelId: string, record: MoodRecord, cutoff: number): Promise<void> {
  const head = (await readHead(kv, channelId)) ?? { v: 1, first: 0, next: 0 };
  const { first, next } = head;
  const page = pageOf(next);
  const offset = next - page * MOOD_PAGE_RECORDS;
  const kept = offset === 0 ? [] : await pageRecords(kv, channelId, page);
  if (kept.length < offset) throw new Error(`Mood page ${page} of channel ${channelId} is missing records.`);
  // Only the three fields: whatever else a caller's object carries (text, author) never reaches the store.
  const stored: MoodRecord = { at: record.at, label: record.label, confidence: record.confidence };
  const records = [...kept.slice(0, offset), stored];
  await kv.set(moodPageKey(channelId, page), { records } satisfies MoodPage);
  const oldest = pageOf(first);
  let newHead: MoodHead = { v: 1, first, next: next + 1, ...(head.oldestEnd === undefined ? {} : { oldestEnd: head.oldestEnd }) };
  if (oldest < page && (head.oldestEnd ?? newest(await pageRecords(kv, channelId, oldest))) < cutoff) {
    // The oldest page has expired. The next one's end is read once, when it becomes the oldest (every 64 appends at most).
    const nextOldest = oldest + 1;
    newHead = { v: 1, first: nextOldest * MOOD_PAGE_RECORDS, next: next + 1 };
    if (nextOldest < page) newHead.oldestEnd = newest(await pageRecords(kv, channelId, nextOldest));
  }
  if (newHead.oldestEnd === undefined && pageOf(newHead.first) === page && records.length === MOOD_PAGE_RECORDS) newHead.oldestEnd = newest(records);
  await kv.set(moodHeadKey(channelId), newHead);
  // After the head: a kill before this leaves the page unread, not a gap.
  if (newHead.first > first && pageOf(newHead.first) > oldest) await kv.deleteMany([moodPageKey(channelId, oldest)]);
}

/** The channel's records from `since` on (and not older than `cutoff`), oldest first as appended. */
export async function loadMood(kv: PageStore, channelId: string, since: number, cutoff: number): Promise<MoodRecord[]> {
  const head = await readHead(kv, channelId);
  if (!head || head.first >= head.next) return [];
  const pages = range(pageOf(head.first), pageOf(head.next - 1));
  const values = await kv.getMany(pages.map((page) => moodPageKey(channelId, page)));
  const from = Math.max(since, cutoff);
  const records: MoodRecord[] = [];
  pages.forEach((page, i) => {
    const value = values[i];
    if (!isPage(value)) throw new Error(`Mood page ${page} of channel ${channelId} is missing or has an unknown format.`);
    const base = page * MOOD_PAGE_RECORDS;
    for (let index = Math.max(head.first, base); index < Math.min(head.next, base + value.records.length); index++) {
      const record = value.records[index - base]!;
      if (record.at >= from) records.push(record);
    }
  });
  return records;
}

export async function clearMood(kv: PageStore, channelId: string): Promise<void> {
  const head = await readHead(kv, channelId);
  if (!head) return;
  // The head goes first: once it is gone the log is empty, whatever pages a kill leaves behind.
  await kv.deleteMany([moodHeadKey(channelId)]);
  if (head.next > head.first) await kv.deleteMany(range(pageOf(head.first), pageOf(head.next - 1)).map((p) => moodPageKey(channelId, p)));
}

async function readHead(kv: PageStore, channelId: string): Promise<MoodHead | undefined> {
  const value = (await kv.get(moodHeadKey(channelId))) as Partial<MoodHead> | undefined | null;
  if (value === undefined || value === null) return undefined;
  if (value.v === 1 && Number.isInteger(value.first) && Number.isInteger(value.next)) return value as MoodHead;
  throw new Error(`Mood log of channel ${channelId} has an unknown format; it was left untouched.`);
}

async function pageRecords(kv: PageStore, channelId: string, page: number): Promise<MoodRecord[]> {
  const value = await kv.get(moodPageKey(channelId, page));
  return isPage(value) ? value.records : [];
}

function isPage(value: unknown): value is MoodPage {
  return typeof value === 'object' && value !== null && Array.isArray((value as MoodPage).records);
}

function newest(records: MoodRecord[]): number {
  return records.reduce((latest, record) => Math.max(latest, record.at), -Infinity);
}
