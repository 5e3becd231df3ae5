import type { HistoryTurn } from '../domain.js';

export type { HistoryTurn } from '../domain.js';

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
  dispose(): Promise<void>;
}
