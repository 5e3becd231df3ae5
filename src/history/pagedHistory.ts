import type { HistoryTurn } from '../domain.js';

/**
 * A channel's history as pages of turns plus a small head record, over any key-value store.
 * An append rewrites one page and the head, so its cost does not grow with the history. The
 * writes are ordered so that, even without a transaction, a process killed between two of them
 * loses no stored turn and shows none twice: the head is the commit point, and a page slot at or
 * past `head.next` is never read.
 *
 * Keys: the head lives under the channel's own key (where the older single-value format lived);
 * page `n` holds turns `n * PAGE_TURNS` .. `n * PAGE_TURNS + PAGE_TURNS - 1`.
 */
export const PAGE_TURNS = 32;

/** Turns `first` .. `next - 1` are the channel's history. */
export interface HistoryHead {
  v: 2;
  first: number;
  next: number;
}

/** The format before pages: the whole history in one value. Read as is, converted on the first append. */
export interface LegacyHistory {
  v: 1;
  turns: HistoryTurn[];
}

interface HistoryPage {
  turns: HistoryTurn[];
}

/** The key-value operations the layout needs. The caller makes each whole operation atomic (a transaction). */
export interface PageStore {
  get(key: string): Promise<unknown>;
  getMany(keys: string[]): Promise<unknown[]>;
  set(key: string, value: unknown): Promise<void>;
  deleteMany(keys: string[]): Promise<void>;
}

export const pageKey = (channelId: string, page: number): string => `${channelId}/page/${page}`;
const pageOf = (index: number) => Math.floor(index / PAGE_TURNS);

export async function loadTurns(kv: PageStore, channelId: string, maxTurns: number): Promise<HistoryTurn[]> {
  const head = await readHead(kv, channelId);
  if (!head) return [];
  if (head.v === 1) return head.turns.slice(-maxTurns);
  const first = Math.max(head.first, head.next - maxTurns);
  if (first >= head.next) return [];
  const pages = range(pageOf(first), pageOf(head.next - 1));
  const values = await kv.getMany(pages.map((page) => pageKey(channelId, page)));
  const turns: HistoryTurn[] = [];
  pages.forEach((page, i) => {
    const value = values[i];
    if (!isPage(value)) throw new Error(`History page ${page} of channel ${channelId} is missing or has an unknown format.`);
    const base = page * PAGE_TURNS;
    for (let index = Math.max(first, base); index < Math.min(head.next, base + value.turns.length); index++) turns.push(value.turns[index - base]!);
  });
  if (turns.length !== head.next - first) throw new Error(`History of channel ${channelId} has a gap in its pages.`);
  return turns;
}

export async function appendTurn(kv: PageStore, channelId: string, turn: HistoryTurn, maxTurns: number): Promise<void> {
  let head = await readHead(kv, channelId);
  if (head?.v === 1) head = await convertLegacy(kv, channelId, head.turns.slice(-maxTurns));
  const { first, next } = head ?? { first: 0, next: 0 };
  const page = pageOf(next);
  const offset = next - page * PAGE_TURNS;
  // Slots at or past `next` belong to an append that was killed before its head write: never counted.
  const kept = offset === 0 ? [] : await pageTurns(kv, channelId, page);
  if (kept.length < offset) throw new Error(`History page ${page} of channel ${channelId} is missing turns.`);
  await kv.set(pageKey(channelId, page), { turns: [...kept.slice(0, offset), turn] } satisfies HistoryPage);
  const newFirst = Math.max(first, next + 1 - maxTurns);
  await kv.set(channelId, { v: 2, first: newFirst, next: next + 1 } satisfies HistoryHead);
  // Pages wholly before the first kept turn go last: a kill before this leaves them unread, not lost.
  const dropped = range(pageOf(first), pageOf(newFirst) - 1);
  if (dropped.length > 0) await kv.deleteMany(dropped.map((p) => pageKey(channelId, p)));
}

export async function clearTurns(kv: PageStore, channelId: string): Promise<void> {
  const head = await readHead(kv, channelId);
  if (!head) return;
  // The head goes first: once it is gone the channel is empty, whatever pages a kill leaves behind.
  await kv.deleteMany([channelId]);
  if (head.v === 2 && head.next > head.first) {
    await kv.deleteMany(range(pageOf(head.first), pageOf(head.next - 1)).map((p) => pageKey(channelId, p)));
  }
}

async function convertLegacy(kv: PageStore, channelId: string, turns: HistoryTurn[]): Promise<HistoryHead> {
  for (let page = 0; page * PAGE_TURNS < turns.length; page++) {
    await kv.set(pageKey(channelId, page), { turns: turns.slice(page * PAGE_TURNS, (page + 1) * PAGE_TURNS) } satisfies HistoryPage);
  }
  const head: HistoryHead = { v: 2, first: 0, next: turns.length };
  await kv.set(channelId, head);
  return head;
}

async function pageTurns(kv: PageStore, channelId: string, page: number): Promise<HistoryTurn[]> {
  const value = await kv.get(pageKey(channelId, page));
  return isPage(value) ? value.turns : [];
}

async function readHead(kv: PageStore, channelId: string): Promise<HistoryHead | LegacyHistory | undefined> {
  const value = (await kv.get(channelId)) as { v?: unknown; turns?: unknown; first?: unknown; next?: unknown } | undefined | null;
  if (value === undefined || value === null) return undefined;
  if (value.v === 1 && Array.isArray(value.turns)) return value as unknown as LegacyHistory;
  if (value.v === 2 && Number.isInteger(value.first) && Number.isInteger(value.next)) return value as unknown as HistoryHead;
  throw new Error(`History for channel ${channelId} has an unknown format; it was left untouched.`);
}

function isPage(value: unknown): value is HistoryPage {
  return typeof value === 'object' && value !== null && Array.isArray((value as HistoryPage).turns);
}

/** `from` .. `to`, both included; empty when `to < from`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/**
 * One backend (SQLite, Redis, PostgreSQL) under the paged layout. `run` makes one whole operation
 * atomic for its channel: a `write` excludes every other writer of that channel, in any process,
 * and commits all its writes or none; a `read` sees one consistent state. Calls come one at a time.
 */
export interface HistoryBackend {
  /** Where the history lives, for messages: a file path or a host, never a password. */
  readonly where: string;
  /** `channelId` is the key of the head the operation rewrites: a channel's, or its mood log's (`<channel>/mood`). */
  run<T>(channelId: string, mode: 'read' | 'write', work: (kv: PageStore) => Promise<T>): Promise<T>;
  /** The channels that have a mood log (a head under `<channel>/mood`), for the retention sweep. */
  moodChannels(): Promise<string[]>;
  close(): Promise<void>;
}
