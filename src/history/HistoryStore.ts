import type { HistoryTurn, SentimentLabel } from '../domain.js';

export type { HistoryTurn } from '../domain.js';

/** One classified message in a channel's sentiment log: never its text, never its author. */
export interface MoodRecord {
  /** Epoch milliseconds when the message was classified. */
  at: number;
  label: SentimentLabel;
  /** 0..1, as the classifier gave it. */
  confidence: number;
}

/**
 * Where channel histories live. Only whole turns are appended, so an aborted or failed reply
 * never leaves half a turn behind.
 */
export interface HistoryStore {
  /** Turns kept per channel: load never returns more, older ones are dropped on append. */
  readonly maxTurns: number;
  load(channelId: string): Promise<HistoryTurn[]>;
  append(channelId: string, turn: HistoryTurn): Promise<void>;
  /** Clears the channel's turns; its settings stay. */
  clear(channelId: string): Promise<void>;
  /** A per-channel setting (reply mode, persona); undefined when never set or deleted. */
  getSetting(channelId: string, key: string): Promise<string | undefined>;
  /** Stores a per-channel setting; undefined deletes it. */
  setSetting(channelId: string, key: string, value: string | undefined): Promise<void>;
  /** Adds one record to the channel's sentiment log (records past the retention are dropped). */
  appendMood(channelId: string, record: MoodRecord): Promise<void>;
  /** The channel's sentiment records from `since` (epoch ms) on, within the retention, oldest first. */
  loadMood(channelId: string, since: number): Promise<MoodRecord[]>;
  /** Clears the channel's sentiment log; its history and settings stay. */
  clearMood(channelId: string): Promise<void>;
  dispose(): Promise<void>;
}
