import type { ModelEngine } from '../engine/Engine.js';
import type { GenerationQueue } from '../engine/GenerationQueue.js';
import type { SentimentResult } from '../engine/SentimentClassifier.js';
import { StoppedError, UserError } from '../errors.js';
import type { HistoryStore, HistoryTurn } from '../history/HistoryStore.js';
import { silentLogger, type Logger } from '../logger.js';
import { hasReadableText } from '../text.js';
import { ChannelHistory } from './ChannelHistory.js';
import { ChannelSettings, type ReplyMode } from './ChannelSettings.js';
import type { SessionObserver } from './SessionObserver.js';
import { STOPPED_MARKER, clampText, type IncomingMessage, type TurnHooks, type TurnOutcome } from './turn.js';

export { STOPPED_MARKER, clampText, type IncomingMessage, type TurnHooks, type TurnOutcome } from './turn.js';

export interface ChannelSessionsOptions {
  engine: ModelEngine;
  queue: GenerationQueue;
  store: HistoryStore;
  logger?: Logger;
  /** Characters of a message the model reads; the rest is cut. Default 2000. */
  messageMaxChars?: number;
  /** Channels whose history stays in memory. Default 256. */
  cachedChannels?: number;
  /** The reply mode of a channel that never set one. Default `all`. */
  defaultReplyMode?: ReplyMode;
  /** Told about timings and store failures (metrics). */
  observer?: SessionObserver;
}

/**
 * Per-channel sessions: each message gets an isolated sentiment call, then a reply that knows the
 * channel's history, in arrival order within the channel. Turns are recorded only when the reply
 * completes.
 */
export class ChannelSessions {
  /** Per channel, the latest turn's completion: the next reply reads the history only after it. */
  private readonly lastTurn = new Map<string, Promise<void>>();
  /** Per channel, the latest mood record's write (see recordMood). */
  private readonly moodWrites = new Map<string, Promise<void>>();
  private readonly histories: ChannelHistory;
  private readonly logger: Logger;
  private readonly messageMaxChars: number;
  private readonly observer: SessionObserver;
  /** Per-channel reply mode and persona. */
  readonly settings: ChannelSettings;

  constructor(private readonly options: ChannelSessionsOptions) {
    this.logger = options.logger ?? silentLogger;
    this.messageMaxChars = options.messageMaxChars ?? 2000;
    this.observer = options.observer ?? {};
    this.histories = new ChannelHistory({ store: options.store, logger: this.logger, cachedChannels: options.cachedChannels ?? 256 });
    this.settings = new ChannelSettings({ store: options.store, defaultMode: options.defaultReplyMode ?? 'all' });
  }

  /**
   * Takes the message's places in the queue at once (so order within the channel is fixed by
   * arrival) and throws QueueFullError right away when the queue is full: nothing is recorded then.
   */
  handleMessage(message: IncomingMessage, hooks: TurnHooks = {}): Promise<TurnOutcome> {
    const { queue, engine } = this.options;
    const { channelId } = message;
    const { text, truncated } = this.readable(message);
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
    let stopNow!: (error: StoppedError) => void;
    const stopRequested = new Promise<never>((_, reject) => (stopNow = reject));
    stopRequested.catch(() => {});
    const onStop = () => {
      replyTicket.abort(new StoppedError());
      stopNow(new StoppedError());
    };
    if (hooks.stopSignal?.aborted) onStop();
    hooks.stopSignal?.addEventListener('abort', onStop, { once: true });
    return (async () => {
      try {
        let sentiment: SentimentResult;
        try {
          sentiment = await sentimentTicket.run(() => this.classifyTimed(text));
          this.recordMood(channelId, sentiment);
          // Not awaited: the reply generates while the front end shows the sentiment (a network
          // round trip on Discord); the front end holds its own first post until that has landed.
          this.notify(channelId, 'onSentiment', () => hooks.onSentiment?.(sentiment));
          if (waits) this.notify(channelId, 'onWaiting', () => hooks.onWaiting?.());
          // The previous turn of this channel must be delivered and recorded before this reply reads the
          // history. Meanwhile this channel's place is not ready, so the queue serves other channels.
          // A stop ends the wait at once (the turns behind still wait for the previous one, see below).
          await Promise.race([previousTurn, stopRequested]);
        } catch (error) {
          replyTicket.cancel();
          throw error;
        }
        let streamed = '';
        let started = false;
        let epoch = 0;
        let result: Awaited<ReturnType<ModelEngine['reply']>> | undefined;
        try {
          result = await replyTicket.run(async (signal) => {
            started = true;
            // A reset from here on means this reply's turn is not recorded.
            epoch = this.histories.epoch(channelId);
            this.notify(channelId, 'onReplyStart', () => hooks.onReplyStart?.());
            const turns = await this.histories.turns(channelId);
            const systemPrompt = await this.settings.persona(channelId);
            const begun = performance.now();
            let firstTextMs: number | undefined;
            const onText = (delta: string) => {
              firstTextMs ??= performance.now() - begun;
              streamed += delta;
              hooks.onText?.(delta);
            };
            const reply = await engine.reply({ channelId, turns, userName: message.userName, userText: text, systemPrompt, signal, onText });
            const ms = performance.now() - begun;
            this.observer.replyDone?.({ ttftMs: firstTextMs, ms, generatedTokens: reply.generatedTokens });
            this.logger.debug('reply done', { channelId, ms: Math.round(ms), evaluatedTokens: reply.evaluatedTokens, chars: reply.text.length });
            return reply;
          });
        } catch (error) {
          // Stopped part way: what was shown is the reply. Stopped before it started: nothing to keep.
          if (!(hooks.stopSignal?.aborted && started)) throw hooks.stopSignal?.aborted ? new StoppedError() : error;
        }
        const stopped = result === undefined;
        const reply = stopped ? streamed.trim() + STOPPED_MARKER : result!.text;
        await hooks.deliver?.(reply);
        // The history keeps the message as the model read it (cut to its token cap), so it is counted at that size.
        const turn: HistoryTurn = { userName: message.userName, userText: result?.userText ?? text, reply, at: Date.now() };
        const saved = await this.record(channelId, turn, epoch);
        return { sentiment, reply, saved, truncated: truncated || (result?.messageTruncated ?? false), ...(stopped ? { stopped } : {}) };
      } finally {
        hooks.stopSignal?.removeEventListener('abort', onStop);
        // A turn stopped while waiting ends early; the next one must still follow the one before it.
        void Promise.resolve(previousTurn).then(() => {
          turnDone();
          if (this.lastTurn.get(channelId) === thisTurn) this.lastTurn.delete(channelId);
        });
      }
    })();
  }

  /**
   * A message the bot reads but does not answer (`mentions` mode): its sentiment, then an entry
   * without a reply, in the channel's order, so a later mention can ask about it.
   */
  handleUnanswered(message: IncomingMessage, hooks: Pick<TurnHooks, 'onSentiment'> = {}): Promise<TurnOutcome> {
    const { channelId } = message;
    const { text, truncated } = this.readable(message);
    const sentimentTicket = this.options.queue.reserve('sentiment', channelId);
    const previousTurn = this.lastTurn.get(channelId);
    const thisTurn = (async () => {
      const sentiment = await sentimentTicket.run(() => this.classifyTimed(text));
      this.recordMood(channelId, sentiment);
      this.notify(channelId, 'onSentiment', () => hooks.onSentiment?.(sentiment));
      await previousTurn;
      const saved = await this.record(channelId, { userName: message.userName, userText: text, at: Date.now() }, this.histories.epoch(channelId));
      return { sentiment, reply: '', saved, truncated };
    })();
    const settled = thisTurn.then(
      () => {},
      () => {},
    );
    this.lastTurn.set(channelId, settled);
    void settled.then(() => {
      if (this.lastTurn.get(channelId) === settled) this.lastTurn.delete(channelId);
    });
    return thisTurn;
  }

  /** Sets (undefined: clears) the channel's persona; its warm cache is dropped so the next reply is built on it. */
  async setPersona(channelId: string, text: string | undefined): Promise<void> {
    await this.settings.setPersona(channelId, text);
    this.options.engine.forget(channelId);
  }

  /** Calls a front end's hook without waiting for it: the model is never held up by the front end. */
  private notify(channelId: string, hook: string, call: () => Promise<void> | void): void {
    Promise.resolve()
      .then(call)
      .catch((error: unknown) => this.logger.warn(`${hook} failed`, { channelId, error }));
  }

  /** Classifies text on demand (the /sentiment command): no history is read or written, nor the mood log. */
  classify(channelId: string, text: string): Promise<SentimentResult> {
    const { text: clamped } = clampText(text, this.messageMaxChars);
    if (!hasReadableText(clamped)) throw new UserError('Give me some text to classify.');
    return this.options.queue.run('sentiment', channelId, () => this.classifyTimed(clamped));
  }

  /** A channel message classified for its reaction alone (no reply, no history); it counts in the channel's mood log. */
  async classifyMessage(channelId: string, text: string): Promise<SentimentResult> {
    const sentiment = await this.classify(channelId, text);
    this.recordMood(channelId, sentiment);
    return sentiment;
  }

  /**
   * Adds a channel message's label to the channel's mood log: time, label and confidence only.
   * Written once the channel's current turn has ended: the store does one operation at a time, and a
   * log write queued before a cold channel's history read would hold up the reply (a locked SQLite
   * file: for the whole busy timeout). A failed write is logged and counted, never thrown.
   */
  private recordMood(channelId: string, { label, confidence }: SentimentResult): void {
    this.observer.sentimentLabelled?.(label);
    const record = { at: Date.now(), label, confidence };
    const written = Promise.resolve(this.lastTurn.get(channelId))
      .then(() => this.options.store.appendMood(channelId, record))
      .catch((error: unknown) => {
        this.observer.storeFailed?.();
        this.logger.warn('mood record failed', { channelId, error });
      });
    this.moodWrites.set(channelId, written);
    void written.then(() => {
      if (this.moodWrites.get(channelId) === written) this.moodWrites.delete(channelId);
    });
  }

  /**
   * Resolves once the channel's mood records issued so far are written (or failed). It waits for the
   * channel's running turn, so only a front end that runs one turn at a time (the terminal) asks for it.
   */
  async moodWritten(channelId: string): Promise<void> {
    await this.moodWrites.get(channelId);
  }

  private async classifyTimed(text: string): Promise<SentimentResult> {
    const started = performance.now();
    const result = await this.options.engine.classify(text);
    this.observer.sentimentDone?.(performance.now() - started);
    return result;
  }

  /** The message as the model reads it: typed text cut to `messageMaxChars`, then any attached text. */
  private readable(message: IncomingMessage): { text: string; truncated: boolean } {
    const { text, truncated } = clampText(message.text, this.messageMaxChars);
    const full = message.attachedText ? `${text}\n\n${message.attachedText}` : text;
    if (!hasReadableText(full)) throw new UserError('There is no text in that message for me to read.');
    return { text: full, truncated };
  }

  private async record(channelId: string, turn: HistoryTurn, epoch: number): Promise<boolean> {
    const saved = await this.histories.record(channelId, turn, epoch);
    if (!saved) this.observer.storeFailed?.();
    return saved;
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
