import type { ModelEngine } from '../engine/Engine.js';
import type { GenerationQueue, Ticket } from '../engine/GenerationQueue.js';
import type { SentimentResult } from '../engine/SentimentClassifier.js';
import type { HistoryTurn, ReplyMode } from '../domain.js';
import { ChannelResetError, ModelUnavailableError, StoppedError, UserError } from '../errors.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import { silentLogger, type Logger } from '../logger.js';
import { hasReadableText } from '../text.js';
import { TurnLine } from '../turnLine.js';
import { ChannelHistory } from './ChannelHistory.js';
import { ChannelSettings } from './ChannelSettings.js';
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
  /** Per channel, the turns in arrival order: the next reply reads the history only after the one before it. */
  private readonly turnLine = new TurnLine();
  /** Per channel, the latest mood record's write (see recordMood). */
  private readonly moodWrites = new Map<string, Promise<void>>();
  /** Per channel, changes on every clear of its mood log: a record of a message that arrived before it is not written. */
  private readonly moodEpochs = new Map<string, number>();
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
   * The turn then reads the message (attachments included), classifies it, waits for the channel's
   * previous turn, replies, delivers and records; each step has one method below.
   */
  handleMessage(message: IncomingMessage, hooks: TurnHooks = {}): Promise<TurnOutcome> {
    const { queue } = this.options;
    const { channelId } = message;
    if (!message.readAttachments) this.readable(message.text);
    const waits = queue.isBusy('reply', channelId);
    const reply = queue.reserve('reply', channelId);
    let sentiment: Ticket;
    try {
      sentiment = queue.reserve('sentiment', channelId);
    } catch (error) {
      reply.cancel();
      throw error;
    }
    // A /reset after this moment drops the turn, even one that had to wait for its reply.
    const epoch = this.histories.epoch(channelId);
    const moodEpoch = this.moodEpoch(channelId);
    const order = this.turnLine.enter(channelId);
    const stop = stopRequest(hooks.stopSignal, reply);
    return this.answer(message, hooks, { sentiment, reply, waits, previous: order.previous, ended: order.ended, stop: stop.requested, epoch, moodEpoch }).finally(() => {
      stop.dispose();
      order.done();
    });
  }

  /** One answered turn, from reading the message to recording it. */
  private async answer(message: IncomingMessage, hooks: TurnHooks, turn: TurnPlaces): Promise<TurnOutcome> {
    const { channelId } = message;
    let read: { text: string; truncated: boolean };
    let sentiment: SentimentResult;
    let readText: string | undefined;
    try {
      read = await this.read(message);
      readText = read.text;
      sentiment = await turn.sentiment.run(() => this.classifyTimed(read.text));
      this.recordMood(channelId, sentiment, turn.ended, turn.moodEpoch);
      // Not awaited: the reply generates while the front end shows the sentiment (a network
      // round trip on Discord); the front end holds its own first post until that has landed.
      this.notify(channelId, 'onSentiment', () => hooks.onSentiment?.(sentiment));
      if (turn.waits) this.notify(channelId, 'onWaiting', () => hooks.onWaiting?.());
      // The previous turn of this channel must be delivered and recorded before this reply reads the
      // history. Meanwhile this channel's place is not ready, so the queue serves other channels.
      // A stop ends the wait at once (the turns behind still wait for the previous one: see TurnLine).
      await Promise.race([turn.previous, turn.stop]);
    } catch (error) {
      turn.sentiment.cancel();
      turn.reply.cancel();
      // The model server is down (the sentiment call failed): the message waits its turn in the channel, then is kept.
      if (error instanceof ModelUnavailableError && readText !== undefined) {
        await turn.previous;
        await this.keepUnanswered(message, readText, turn.epoch);
      }
      throw error;
    }
    let generated;
    try {
      generated = await this.generate(message, read.text, hooks, turn.reply);
    } catch (error) {
      if (error instanceof ModelUnavailableError) await this.keepUnanswered(message, read.text, turn.epoch);
      throw error;
    }
    await hooks.deliver?.(generated.reply);
    const saved = await this.record(channelId, { userName: message.userName, userText: generated.userText, reply: generated.reply, at: Date.now() }, turn.epoch);
    return { sentiment, reply: generated.reply, saved, truncated: read.truncated || generated.truncated, ...(generated.stopped ? { stopped: true } : {}) };
  }

  /**
   * The reply, run on the message's reply place. Stopped part way, what was shown is the reply;
   * stopped before it started, the turn ends with StoppedError. `userText` is the message as the
   * model read it (cut to its token cap), which the history keeps, so it is counted at that size.
   */
  private async generate(message: IncomingMessage, text: string, hooks: TurnHooks, place: Ticket): Promise<{ reply: string; userText: string; truncated: boolean; stopped: boolean }> {
    const { channelId, userName } = message;
    let streamed = '';
    let started = false;
    let jobSignal: AbortSignal | undefined;
    try {
      const result = await place.run(async (signal) => {
        started = true;
        jobSignal = signal;
        this.notify(channelId, 'onReplyStart', () => hooks.onReplyStart?.());
        const turns = await this.histories.turns(channelId);
        const systemPrompt = await this.personaOrDefault(channelId);
        const begun = performance.now();
        let firstTextMs: number | undefined;
        const onText = (delta: string) => {
          firstTextMs ??= performance.now() - begun;
          streamed += delta;
          hooks.onText?.(delta);
        };
        const reply = await this.options.engine.reply({
          channelId,
          turns,
          userName,
          userText: text,
          botName: message.botName,
          otherNames: message.otherNames,
          systemPrompt,
          signal,
          onText,
          onThinking: () => hooks.onThinking?.(),
        });
        const ms = performance.now() - begun;
        this.observer.replyDone?.({ ttftMs: firstTextMs, ms, generatedTokens: reply.generatedTokens });
        this.logger.debug('reply done', { channelId, ms: Math.round(ms), evaluatedTokens: reply.evaluatedTokens, chars: reply.text.length });
        return reply;
      });
      return { reply: result.text, userText: result.userText ?? text, truncated: result.messageTruncated, stopped: false };
    } catch (error) {
      // A Stop or a /reset ends the reply where it was; the reset's epoch then keeps the turn out of the history.
      if (!hooks.stopSignal?.aborted && !(jobSignal?.reason instanceof ChannelResetError)) throw error;
      if (!started) throw new StoppedError();
      const fitted = await this.options.engine.fitMessage(userName, text);
      return { reply: streamed.trim() + STOPPED_MARKER, userText: fitted.userText, truncated: fitted.truncated, stopped: true };
    }
  }

  /**
   * A message the bot reads but does not answer (`mentions` mode): its sentiment, then an entry
   * without a reply, in the channel's order, so a later mention can ask about it. The entry keeps
   * the message as the model would read it (cut to its token cap), like an answered one.
   */
  handleUnanswered(message: IncomingMessage, hooks: Pick<TurnHooks, 'onSentiment'> = {}): Promise<TurnOutcome> {
    const { channelId, userName } = message;
    if (!message.readAttachments) this.readable(message.text);
    const place = this.options.queue.reserve('sentiment', channelId);
    const epoch = this.histories.epoch(channelId);
    const moodEpoch = this.moodEpoch(channelId);
    const order = this.turnLine.enter(channelId);
    const turn = (async () => {
      let read: { text: string; truncated: boolean };
      try {
        read = await this.read(message);
      } catch (error) {
        place.cancel();
        throw error;
      }
      const sentiment = await place.run(() => this.classifyTimed(read.text));
      this.recordMood(channelId, sentiment, order.ended, moodEpoch);
      this.notify(channelId, 'onSentiment', () => hooks.onSentiment?.(sentiment));
      await order.previous;
      const fitted = await this.options.engine.fitMessage(userName, read.text);
      const saved = await this.record(channelId, { userName, userText: fitted.userText, at: Date.now() }, epoch);
      return { sentiment, reply: '', saved, truncated: read.truncated || fitted.truncated };
    })();
    return turn.finally(order.done);
  }

  /**
   * The model server went away (before or during the reply): the message is kept as context without
   * a reply, as the model would have read it, so nothing the user said is lost and a later reply
   * knows it. The part of a reply shown before the server died is not history (see answerMessage).
   */
  private async keepUnanswered(message: IncomingMessage, text: string, epoch: number): Promise<void> {
    try {
      const fitted = await this.options.engine.fitMessage(message.userName, text);
      await this.record(message.channelId, { userName: message.userName, userText: fitted.userText, at: Date.now() }, epoch);
    } catch (error) {
      this.logger.warn('keeping a message the model server could not answer failed', { channelId: message.channelId, error });
    }
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
    const moodEpoch = this.moodEpoch(channelId);
    const sentiment = await this.classify(channelId, text);
    this.recordMood(channelId, sentiment, this.turnLine.tail(channelId), moodEpoch);
    return sentiment;
  }

  /**
   * Adds a channel message's label to the channel's mood log: time, label and confidence only. It is
   * the one place a record is written, and only once `after` (the message's own turn, or for a
   * reaction alone the channel's running turn) has ended: the store does one operation at a time, and
   * a log write queued before a cold channel's history read would hold up the reply (a locked SQLite
   * file: for the whole busy timeout). A failed write is logged and counted, never thrown. A clear of
   * the log since the message arrived (`moodEpoch`) drops the record, as a reset drops the turn.
   */
  private recordMood(channelId: string, { label, confidence }: SentimentResult, after: Promise<void> | undefined, moodEpoch: number): void {
    this.observer.sentimentLabelled?.(label, channelId);
    const record = { at: Date.now(), label, confidence };
    const written = Promise.resolve(after)
      .then(() => (moodEpoch === this.moodEpoch(channelId) ? this.options.store.appendMood(channelId, record) : undefined))
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

  /** The channel's persona; when the store cannot say (Redis stopped), the default one: the reply still goes out. */
  private async personaOrDefault(channelId: string): Promise<string | undefined> {
    try {
      return await this.settings.persona(channelId);
    } catch (error) {
      this.logger.warn('reading the persona failed; replying with the default persona', { channelId, error });
      return undefined;
    }
  }

  private async classifyTimed(text: string): Promise<SentimentResult> {
    const started = performance.now();
    const result = await this.options.engine.classify(text);
    this.observer.sentimentDone?.(performance.now() - started);
    return result;
  }

  /**
   * The message as the model reads it: typed text cut to `messageMaxChars`, then any attached text
   * (read here, inside the turn, so a slow file never lets a later message overtake this one).
   */
  private async read(message: IncomingMessage): Promise<{ text: string; truncated: boolean }> {
    const { text, truncated } = clampText(message.text, this.messageMaxChars);
    const attached = message.readAttachments ? await message.readAttachments() : undefined;
    return { text: this.readable(attached ? `${text}\n\n${attached}` : text), truncated };
  }

  /** The text, or a UserError when there is nothing in it to read. */
  private readable(text: string): string {
    if (!hasReadableText(text)) throw new UserError('There is no text in that message for me to read.');
    return text;
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
   * channel stops where it is (its text so far stays on screen, marked stopped) and is not recorded. With `mood`
   * its mood log is cleared too, and no message that arrived before adds a record to it afterwards.
   */
  async reset(channelId: string, { mood = false }: { mood?: boolean } = {}): Promise<void> {
    // A reply running in the channel stops now (in process: its decoding; on a server: its request).
    this.options.queue.abortRunning('reply', channelId, new ChannelResetError());
    this.options.engine.forget(channelId);
    if (mood) this.moodEpochs.set(channelId, this.moodEpoch(channelId) + 1);
    await this.histories.reset(channelId);
    // A record already being written is ahead of this in the store's queue, so the clear follows it.
    if (mood) await this.options.store.clearMood(channelId);
  }

  private moodEpoch(channelId: string): number {
    return this.moodEpochs.get(channelId) ?? 0;
  }

  /** Stops taking work, aborts the running generation and makes a last try at unsaved turns. */
  async close(): Promise<void> {
    await this.options.queue.close();
    for (const [channelId, turns] of await this.histories.close()) {
      this.logger.error('turns could not be saved before shutdown', { channelId, turns });
    }
  }
}

/** What handleMessage took for a turn when the message arrived. */
interface TurnPlaces {
  sentiment: Ticket;
  reply: Ticket;
  /** The reply slots were full, or this channel already had a reply there: the front end shows that this one waits. */
  waits: boolean;
  /** The channel's previous turn; this reply reads the history only once it is done. */
  previous: Promise<void>;
  /** Settles when this turn is done (and every one before it): its mood record is written then. */
  ended: Promise<void>;
  /** Rejects with StoppedError when the Stop button is pressed. */
  stop: Promise<never>;
  /** The channel's reset epoch at arrival: a reset since then drops the turn. */
  epoch: number;
  /** The channel's mood-log epoch at arrival: a clear of the log since then drops the turn's record. */
  moodEpoch: number;
}

/**
 * The Stop button's effect on one turn: the reply place is aborted (a waiting reply never starts,
 * a running one gets the signal), and `requested` rejects, ending a wait for the previous turn.
 */
function stopRequest(signal: AbortSignal | undefined, reply: Ticket): { requested: Promise<never>; dispose(): void } {
  let reject!: (error: StoppedError) => void;
  const requested = new Promise<never>((_, fail) => (reject = fail));
  requested.catch(() => {});
  const onStop = () => {
    reply.abort(new StoppedError());
    reject(new StoppedError());
  };
  if (signal?.aborted) onStop();
  signal?.addEventListener('abort', onStop, { once: true });
  return { requested, dispose: () => signal?.removeEventListener('abort', onStop) };
}
