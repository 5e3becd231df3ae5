/** The values a turn of a channel session takes and gives, shared by the sessions and their front ends. */
import type { SentimentResult } from '../engine/SentimentClassifier.js';

/** Ends the text of a reply stopped with the Stop button, on Discord and in the history. */
export const STOPPED_MARKER = ' …(stopped)';

export interface IncomingMessage {
  channelId: string;
  userName: string;
  text: string;
  /**
   * Reads the message's text attachments, inside the turn (after its queue places are taken, so a
   * slow file never lets a later message overtake it). The result is read after `text` and not
   * counted against `messageMaxChars`; the token cap still applies. It never throws: a file it
   * cannot read is left out (the front end tells the user itself). Empty or undefined: nothing attached.
   */
  readAttachments?: () => Promise<string | undefined>;
  /** The bot's own name as users see it: a reply starting "<botName>:" loses that prefix. */
  botName?: string;
  /** Names of people seen recently where it was sent (its server): a reply starting "<name>:" loses that prefix too. */
  otherNames?: readonly string[];
}

/** Callbacks a front end (Discord, terminal) gets while a message is handled. */
export interface TurnHooks {
  /**
   * The sentiment is known. Not awaited: the reply starts generating at once. A front end that must
   * show the sentiment before the reply (Discord's reaction) holds its first post until it has.
   */
  onSentiment?(result: SentimentResult): Promise<void> | void;
  /** The reply has to wait for other replies (called once, after onSentiment; not awaited). */
  onWaiting?(): Promise<void> | void;
  /** The reply starts generating now. Not awaited: the model is not held up by the front end. */
  onReplyStart?(): Promise<void> | void;
  /** A new piece of reply text. */
  onText?(delta: string): void;
  /** The model started reasoning (THINKING on): no text comes until its thought ends. */
  onThinking?(): void;
  /**
   * Shows the finished reply to the user. Awaited before the turn is recorded: a reply the user
   * never got is not history. It runs outside the model's queue, so other channels go on meanwhile.
   */
  deliver?(reply: string): Promise<void>;
  /**
   * Aborting it stops this reply (the Stop button): a queued reply never starts and handleMessage
   * rejects with StoppedError; a running one ends with the text so far plus STOPPED_MARKER, which is
   * delivered and recorded.
   */
  stopSignal?: AbortSignal;
}

export interface TurnOutcome {
  sentiment: SentimentResult;
  reply: string;
  /** False when the store failed; the turn is kept in memory and written on a later try. */
  saved: boolean;
  /** The message was longer than the model may read and was cut. */
  truncated: boolean;
  /** The reply was stopped part way (the Stop button). */
  stopped?: boolean;
}

/** Cuts text to `max` characters without splitting a surrogate pair. */
export function clampText(text: string, max: number): { text: string; truncated: boolean } {
  const chars = Array.from(text);
  if (chars.length <= max) return { text, truncated: false };
  return { text: chars.slice(0, max).join(''), truncated: true };
}
