import type { ModelEngine } from '../engine/Engine.js';
import type { GenerationQueue } from '../engine/GenerationQueue.js';
import type { SentimentResult } from '../engine/SentimentClassifier.js';
import { UserError } from '../errors.js';
import type { HistoryStore, HistoryTurn } from '../history/HistoryStore.js';
import { silentLogger, type Logger } from '../logger.js';
import { hasReadableText } from '../text.js';
import { ChannelHistory } from './ChannelHistory.js';

export interface IncomingMessage {
  channelId: string;
  userName: string;
  text: string;
}

/** Callbacks a front end (Discord, terminal) gets while a message is handled. */
export interface TurnHooks {
  /** The sentiment is known; awaited before the reply starts, so a reaction lands first. */
  onSentiment?(result: SentimentResult): Promise<void> | void;
  /** The reply has to wait for other replies (called once, after onSentiment). */
  onWaiting?(): Promise<void> | void;
  /** The reply starts generating now. Not awaited: the model is not held up by the front end. */
  onReplyStart?(): Promise<void> | void;
  /** A new piece of reply text. */
  onText?(delta: string): void;
  /**
   * Shows the finished reply to the user. Awaited before the turn is recorded: a reply the user
   * never got is not history. It runs outside the model's queue, so other channels go on meanwhile.
   */
  deliver?(reply: string): Promise<void>;
}

export interface TurnOutcome {
  sentiment: SentimentResult;
  reply: string;
  /** False when the store failed; the turn is kept in memory and written on a later try. */
  saved: boolean;
  /** The message was longer than the model may read and was cut. */
  truncated: boolean;
}

export interface ChannelSessionsOptions {
  engine: ModelEngine;
  queue: GenerationQueue;
  store: HistoryStore;
  logger?: Logger;
  /** Characters of a message the model reads; the rest is cut. Default 2000. */
  messageMaxChars?: number;
  /** Channels whose history stays in memory. Default 256. */
  cachedChannels?: number;
}

/**
 * Per-channel sessions: each message gets an isolated sentiment call, then a reply that knows the
 * channel's history, in arrival order within the channel. Turns are recorded only when the reply
 * completes.
 */
export class ChannelSessions {
  /** Per channel, the latest turn's completion: the next reply reads the history only after it. */
  private readonly lastTurn = new Map<string, Promise<void>>();
  private readonly histories: ChannelHistory;
  private readonly logger: Logger;
  private readonly messageMaxChars: number;

  constructor(private readonly options: ChannelSessionsOptions) {
    this.logger = options.logger ?? silentLogger;
    this.messageMaxChars = options.messageMaxChars ?? 2000;
    this.histories = new ChannelHistory({ store: options.store, logger: this.logger, cachedChannels: options.cachedChannels ?? 256 });
  }

  /**
   * Takes the message's places in the queue at once (so order within the channel is fixed by
   * arrival) and throws QueueFullError right away when the queue is full: nothing is recorded then.
   */
  handleMessage(message: IncomingMessage, hooks: TurnHooks = {}): Promise<TurnOutcome> {
    const { queue, engine } = this.options;
    const { channelId } = message;
    const { text, truncated } = clampText(message.text, this.messageMaxChars);
    if (!hasReadableText(text)) throw new UserError('There is no text in that message for me to read.');
    const waits = queue.isBusy('reply');
    const replyTicket = queue.reserve('reply', channelId);
    let sentimentTicket;
    try {
      sentimentTicket = queue.reserve('sentiment', channelId);
    } catch (error) {
      replyTicket.cancel();
      throw error;
    }
    const previousTurn = this.lastTurn.get(channelId);
    let turnDone!: () => void;
    const thisTurn = new Promise<void>((resolve) => (turnDone = resolve));
    this.lastTurn.set(channelId, thisTurn);
    return (async () => {
      try {
        let sentiment: SentimentResult;
        try {
          sentiment = await sentimentTicket.run(() => engine.classify(text));
          await hooks.onSentiment?.(sentiment);
          if (waits) await hooks.onWaiting?.();
          // The previous turn of this channel must be delivered and recorded before this reply reads the
          // history. Meanwhile this channel's place is not ready, so the queue serves other channels.
          await previousTurn;
        } catch (error) {
          replyTicket.cancel();
          throw error;
        }
        const { result, epoch } = await replyTicket.run(async (signal) => {
          // A reset from here on means this reply's turn is not recorded.
          const epoch = this.histories.epoch(channelId);
          Promise.resolve(hooks.onReplyStart?.()).catch((error: unknown) => this.logger.warn('onReplyStart failed', { channelId, error }));
          const turns = await this.histories.turns(channelId);
          const started = performance.now();
          const result = await engine.reply({ channelId, turns, userName: message.userName, userText: text, signal, onText: hooks.onText });
          this.logger.debug('reply done', { channelId, ms: Math.round(performance.now() - started), evaluatedTokens: result.evaluatedTokens, chars: result.text.length });
          return { result, epoch };
        });
        await hooks.deliver?.(result.text);
        // The history keeps the message as the model read it (cut to its token cap), so it is counted at that size.
        const turn: HistoryTurn = { userName: message.userName, userText: result.userText ?? text, reply: result.text, at: Date.now() };
        const saved = await this.histories.record(channelId, turn, epoch);
        return { sentiment, reply: result.text, saved, truncated: truncated || result.messageTruncated };
      } finally {
        turnDone();
        if (this.lastTurn.get(channelId) === thisTurn) this.lastTurn.delete(channelId);
      }
    })();
  }

  /** Classifies text on demand (the /sentiment command): no history is read or written. */
  classify(channelId: string, text: string): Promise<SentimentResult> {
    const { text: clamped } = clampText(text, this.messageMaxChars);
    if (!hasReadableText(clamped)) throw new UserError('Give me some text to classify.');
    return this.options.queue.run('sentiment', channelId, () => this.options.engine.classify(clamped));
  }

  /** The channel's history as the model will see it next (stored turns plus any not yet saved). */
  async history(channelId: string): Promise<readonly HistoryTurn[]> {
    return [...(await this.histories.turns(channelId))];
  }

  /**
   * Clears one channel's history: store, memory and the model's warm cache. A reply running in the
   * channel finishes (the engine drops its warm state once it ends) and is not recorded.
   */
  async reset(channelId: string): Promise<void> {
    this.options.engine.forget(channelId);
    await this.histories.reset(channelId);
  }

  /** Stops taking work, aborts the running generation and makes a last try at unsaved turns. */
  async close(): Promise<void> {
    await this.options.queue.close();
    for (const [channelId, turns] of await this.histories.close()) {
      this.logger.error('turns could not be saved before shutdown', { channelId, turns });
    }
  }
}

/** Cuts text to `max` characters without splitting a surrogate pair. */
export function clampText(text: string, max: number): { text: string; truncated: boolean } {
  const chars = Array.from(text);
  if (chars.length <= max) return { text, truncated: false };
  return { text: chars.slice(0, max).join(''), truncated: true };
}
