import type { SentimentLabel } from '../domain.js';

/** What the sessions report as they work (metrics and /status listen); every method is optional. */
export interface SessionObserver {
  /** One sentiment call took `ms`. */
  sentimentDone?(ms: number): void;
  /** A message of `channelId` got `label` (and went into the mood log); /sentiment's on-demand texts do not count. */
  sentimentLabelled?(label: SentimentLabel, channelId: string): void;
  /** One reply ended: time to its first text, its whole time, and the tokens it generated. */
  replyDone?(stats: { ttftMs?: number; ms: number; generatedTokens?: number }): void;
  /** A turn could not be written to the history store (it is kept and retried). */
  storeFailed?(): void;
}
