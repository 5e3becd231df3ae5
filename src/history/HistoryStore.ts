/** One finished exchange in a channel: what a user said and what the bot answered. */
export interface HistoryTurn {
  /** The speaker's display name, as shown to the model. */
  userName: string;
  userText: string;
  reply: string;
  /** Epoch milliseconds when the turn was written. */
  at: number;
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
  clear(channelId: string): Promise<void>;
  dispose(): Promise<void>;
}
