import type { MoodRecord } from './HistoryStore.js';
import { range, type PageStore } from './pagedHistory.js';

/**
 * A channel's sentiment log as pages of records plus a small head, over any key-value store, laid
 * out like the history (pagedHistory.ts): an append rewrites one page and the head, and drops at
 * most one expired page, so its cost does not grow with the log. The head is the commit point: a
 * slot at or past `head.next` is never read, so a process killed between two writes loses nothing.
 *
 * Retention (MOOD_RETENTION_DAYS): records older than the cutoff are never returned, and are
 * deleted from the store: an append drops the oldest page once its newest record has expired (64
 * records removed for every one added, so a log catches up with a shortened retention within a few
 * appends) and the expired records of the page it writes (a slot before `head.first` is stored as
 * null); {@link sweepMood} does the rest for channels that went quiet (KeyvHistoryStore runs it at
 * start and daily).
 *
 * Reads go from the newest page backwards and stop at the first page that starts before the range,
 * so `/mood days:1` reads a page or two whatever the retention.
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

/** Slots before the log's first record hold null once dropped: a slot's index never moves. */
interface MoodPage {
  records: Array<MoodRecord | null>;
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
  const base = page * MOOD_PAGE_RECORDS;
  const offset = next - base;
  const kept = offset === 0 ? [] : await pageRecords(kv, channelId, page);
  if (kept.length < offset) throw new Error(`Mood page ${page} of channel ${channelId} is missing records.`);
  // Only the three fields: whatever else a caller's object carries (text, author) never reaches the store.
  const stored: MoodRecord = { at: record.at, label: record.label, confidence: record.confidence };
  const records = [...kept.slice(0, offset), stored];
  const oldest = pageOf(first);
  let newHead: MoodHead = { v: 1, first, next: next + 1, ...(head.oldestEnd === undefined ? {} : { oldestEnd: head.oldestEnd }) };
  if (oldest < page && (head.oldestEnd ?? newest(await pageRecords(kv, channelId, oldest))) < cutoff) {
    // The oldest page has expired. The next one's end is read once, when it becomes the oldest (every 64 appends at most).
    const nextOldest = oldest + 1;
    newHead = { v: 1, first: nextOldest * MOOD_PAGE_RECORDS, next: next + 1 };
    if (nextOldest < page) newHead.oldestEnd = newest(await pageRecords(kv, channelId, nextOldest));
  }
  if (pageOf(newHead.first) === page) {
    // The page written is the oldest: its expired records go now (a small or quiet log has no older page to drop).
    let index = Math.max(newHead.first, base);
    while (index < next + 1 && isExpired(records[index - base], cutoff)) index++;
    if (index > newHead.first) newHead = { v: 1, first: index, next: next + 1 };
    for (let slot = 0; slot < index - base; slot++) records[slot] = null;
  }
  if (newHead.oldestEnd === undefined && pageOf(newHead.first) === page && records.length === MOOD_PAGE_RECORDS) newHead.oldestEnd = newest(records);
  await kv.set(moodPageKey(channelId, page), { records } satisfies MoodPage);
  await kv.set(moodHeadKey(channelId), newHead);
  // After the head: a kill before this leaves the pages unread, not a gap.
  const dropped = range(oldest, pageOf(newHead.first) - 1);
  if (dropped.length > 0) await kv.deleteMany(dropped.map((p) => moodPageKey(channelId, p)));
}

/**
 * Deletes a channel's expired records however long it has been quiet: every expired page, and the
 * expired records of the oldest page kept; a log left empty is deleted with its head. Returns how
 * many records were dropped.
 */
export async function sweepMood(kv: PageStore, channelId: string, cutoff: number): Promise<number> {
  const head = await readHead(kv, channelId);
  if (!head) return 0;
  const lastPage = pageOf(Math.max(head.next - 1, head.first));
  let first = head.first;
  let partial: { page: number; records: Array<MoodRecord | null> } | undefined;
  for (let page = pageOf(head.first); page <= lastPage && first < head.next; page++) {
    if (page < lastPage && head.oldestEnd !== undefined && page === pageOf(head.first) && head.oldestEnd < cutoff) {
      first = (page + 1) * MOOD_PAGE_RECORDS; // known expired without reading it
      continue;
    }
    const records = await pageRecords(kv, channelId, page);
    const base = page * MOOD_PAGE_RECORDS;
    const end = Math.min(head.next, base + MOOD_PAGE_RECORDS);
    let index = Math.max(first, base);
    while (index < end && isExpired(records[index - base], cutoff)) index++;
    first = index;
    if (index < end) {
      if (index > base && records.slice(0, index - base).some((record) => record !== null)) partial = { page, records };
      break;
    }
  }
  const dropped = first - head.first;
  if (first >= head.next) {
    if (head.next > head.first || dropped === 0) await clearMood(kv, channelId);
    return dropped;
  }
  if (dropped === 0 && !partial) return 0;
  if (partial) {
    const base = partial.page * MOOD_PAGE_RECORDS;
    const records = partial.records.map((record, slot) => (base + slot < first ? null : record));
    await kv.set(moodPageKey(channelId, partial.page), { records } satisfies MoodPage);
  }
  const newHead: MoodHead = { v: 1, first, next: head.next };
  if (pageOf(first) < pageOf(head.next - 1)) {
    const oldestRecords = partial?.records ?? (await pageRecords(kv, channelId, pageOf(first)));
    newHead.oldestEnd = newest(oldestRecords);
  }
  await kv.set(moodHeadKey(channelId), newHead);
  const gone = range(pageOf(head.first), pageOf(first) - 1);
  if (gone.length > 0) await kv.deleteMany(gone.map((p) => moodPageKey(channelId, p)));
  return dropped;
}

/**
 * The channel's records from `since` on (and not older than `cutoff`), oldest first as appended.
 * Pages are read newest first, in growing batches, until one starts before the range: records are
 * appended in time order, so no older page can hold one of the range.
 */
export async function loadMood(kv: PageStore, channelId: string, since: number, cutoff: number): Promise<MoodRecord[]> {
  const head = await readHead(kv, channelId);
  if (!head || head.first >= head.next) return [];
  const from = Math.max(since, cutoff);
  const firstPage = pageOf(head.first);
  const chunks: MoodRecord[][] = [];
  let page = pageOf(head.next - 1);
  for (let batch = 1; page >= firstPage; batch *= 2) {
    const pages = range(Math.max(firstPage, page - batch + 1), page).reverse();
    const values = await kv.getMany(pages.map((p) => moodPageKey(channelId, p)));
    for (const [i, p] of pages.entries()) {
      const value = values[i];
      if (!isPage(value)) throw new Error(`Mood page ${p} of channel ${channelId} is missing or has an unknown format.`);
      const base = p * MOOD_PAGE_RECORDS;
      const inLog = value.records.slice(Math.max(head.first, base) - base, Math.min(head.next, base + value.records.length) - base);
      const present = inLog.filter((record): record is MoodRecord => record !== null);
      chunks.push(present.filter((record) => record.at >= from));
      if (present.length > 0 && present[0]!.at < from) return chunks.reverse().flat();
    }
    page -= pages.length;
  }
  return chunks.reverse().flat();
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

async function pageRecords(kv: PageStore, channelId: string, page: number): Promise<Array<MoodRecord | null>> {
  const value = await kv.get(moodPageKey(channelId, page));
  return isPage(value) ? value.records : [];
}

function isPage(value: unknown): value is MoodPage {
  return typeof value === 'object' && value !== null && Array.isArray((value as MoodPage).records);
}

function newest(records: Array<MoodRecord | null>): number {
  return records.reduce((latest, record) => (record ? Math.max(latest, record.at) : latest), -Infinity);
}

/** A dropped slot (null) or a record older than the cutoff. */
function isExpired(record: MoodRecord | null | undefined, cutoff: number): boolean {
  return !record || record.at < cutoff;
}
