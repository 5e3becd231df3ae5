import type { ModelEngine } from '../engine/Engine.js';
import type { GenerationQueue } from '../engine/GenerationQueue.js';
import type { SentimentResult } from '../engine/SentimentClassifier.js';
import { UserError } from '../errors.js';
import type { HistoryStore, HistoryTurn } from '../history/HistoryStore.js';
import { silentLogger, type Logger } from '../logger.js';
import { hasReadableText } from '../text.js';

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
  private readonly cache = new Map<string, HistoryTurn[]>();
  private readonly unsaved = new Map<string, HistoryTurn[]>();
  /** Per channel, the latest turn's completion: the next reply reads the history only after it. */
  private readonly lastTurn = new Map<string, Promise<void>>();
  /** Bumped by reset, so a reply that was running during a reset is not written back. */
  private readonly epochs = new Map<string, number>();
  private readonly logger: Logger;
  private readonly messageMaxChars: number;
  private readonly cachedChannels: number;

  constructor(private readonly options: ChannelSessionsOptions) {
    this.logger = options.logger ?? silentLogger;
    this.messageMaxChars = options.messageMaxChars ?? 2000;
    this.cachedChannels = options.cachedChannels ?? 256;
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
          const epoch = this.epochs.get(channelId) ?? 0;
          Promise.resolve(hooks.onReplyStart?.()).catch((error: unknown) => this.logger.warn('onReplyStart failed', { channelId, error }));
          const turns = await this.turns(channelId);
          const started = performance.now();
          const result = await engine.reply({ channelId, turns, userName: message.userName, userText: text, signal, onText: hooks.onText });
          this.logger.debug('reply done', { channelId, ms: Math.round(performance.now() - started), evaluatedTokens: result.evaluatedTokens, chars: result.text.length });
          return { result, epoch };
        });
        await hooks.deliver?.(result.text);
        const turn: HistoryTurn = { userName: message.userName, userText: text, reply: result.text, at: Date.now() };
        const saved = epoch === (this.epochs.get(channelId) ?? 0) ? await this.record(channelId, turn) : true;
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
    return [...(await this.turns(channelId))];
  }

  /** Clears one channel's history: store, memory and the model's warm cache. */
  async reset(channelId: string): Promise<void> {
    this.epochs.set(channelId, (this.epochs.get(channelId) ?? 0) + 1);
    this.cache.delete(channelId);
    this.unsaved.delete(channelId);
    this.options.engine.forget(channelId);
    await this.options.store.clear(channelId);
  }

  /** Stops taking work, aborts the running generation and makes a last try at unsaved turns. */
  async close(): Promise<void> {
    await this.options.queue.close();
    for (const channelId of [...this.unsaved.keys()]) await this.flush(channelId);
    for (const [channelId, turns] of this.unsaved) {
      this.logger.error('turns could not be saved before shutdown', { channelId, turns: turns.length });
    }
  }

  private async turns(channelId: string): Promise<HistoryTurn[]> {
    let turns = this.cache.get(channelId);
    if (turns) {
      this.cache.delete(channelId);
    } else {
      // Turns whose write failed are not in the store yet; they still belong to the history.
      turns = [...(await this.options.store.load(channelId)), ...(this.unsaved.get(channelId) ?? [])];
      if (this.cache.size >= this.cachedChannels) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(channelId, turns);
    return turns;
  }

  /** Keeps the turn in memory at once (the next reply needs it) and writes it; a failed write is retried later. */
  private async record(channelId: string, turn: HistoryTurn): Promise<boolean> {
    (await this.turns(channelId)).push(turn);
    const pending = this.unsaved.get(channelId) ?? [];
    pending.push(turn);
    this.unsaved.set(channelId, pending);
    return this.flush(channelId);
  }

  private async flush(channelId: string): Promise<boolean> {
    const pending = this.unsaved.get(channelId) ?? [];
    while (pending.length > 0) {
      try {
        await this.options.store.append(channelId, pending[0]!);
        pending.shift();
      } catch (error) {
        this.logger.error('history write failed; the turn is kept and retried with the next one', { channelId, pending: pending.length, error });
        return false;
      }
    }
    this.unsaved.delete(channelId);
    return true;
  }
}

/** Cuts text to `max` characters without splitting a surrogate pair. */
export function clampText(text: string, max: number): { text: string; truncated: boolean } {
  const chars = Array.from(text);
  if (chars.length <= max) return { text, truncated: false };
  return { text: chars.slice(0, max).join(''), truncated: true };
}
