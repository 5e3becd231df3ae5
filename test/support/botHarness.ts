import path from 'node:path';
import { commands } from '../../commands/index.js';
import { parseConfig, type Config } from '../../src/config.js';
import { DiscordBot, createDiscordClient } from '../../src/discord/DiscordBot.js';
import { gatewayConnected } from '../../src/discord/discordClient.js';
import { BotMetrics } from '../../src/metrics/BotMetrics.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/metricsServer.js';
import type { ReplyRequest, ReplyResult } from '../../src/engine/ChatReplies.js';
import { Engine, type EngineStatus, type ModelEngine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import type { HistoryStore } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { createLogger } from '../../src/logger.js';
import type { SentimentResult } from '../../src/engine/SentimentClassifier.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import type { BotMessageRecord, DiscordEmulator } from './DiscordEmulator.js';

export interface RunningBot {
  bot: DiscordBot;
  sessions: ChannelSessions;
  store: KeyvHistoryStore;
  queue: GenerationQueue;
  config: Config;
  metrics: BotMetrics;
  /** Running when METRICS_PORT is set (0: any free port). */
  metricsServer?: MetricsServer;
  /** Every log line the bot wrote (JSON). */
  logs: string[];
  /** Stops the bot and closes its store; calling it again waits for the same stop. */
  stop(): Promise<void>;
}

export interface StartBotOptions {
  emulator: DiscordEmulator;
  engine: ModelEngine;
  /** SQLite file for the history. */
  databaseFile: string;
  /** Extra config keys (strings, as in .env). */
  env?: Record<string, string>;
  editIntervalMs?: number;
  attachmentTimeoutMs?: number;
  /** Message ids the bot remembers (see DiscordBotOptions). */
  seenMessagesKept?: number;
  /** Puts a store in front of the SQLite one (a {@link FaultyStore}); the bot gets it through its deps, `RunningBot.store` stays the SQLite one. */
  wrapStore?: (store: HistoryStore) => HistoryStore;
}

/**
 * The bot exactly as src/index.ts wires it (real discord.js client, real queue, sessions and SQLite
 * store), pointed at the emulator. The engine is passed in so a test file loads its model once.
 */
export async function startBot({ emulator, engine, databaseFile, env = {}, editIntervalMs = 100, attachmentTimeoutMs, seenMessagesKept, wrapStore }: StartBotOptions): Promise<RunningBot> {
  const config = parseConfig({
    DISCORD_TOKEN: emulator.token,
    DISCORD_API_URL: emulator.apiUrl,
    DATABASE_URL: `sqlite://${path.resolve(databaseFile)}`,
    THREADS: '1',
    RATE_LIMIT_MESSAGES: '0',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs: string[] = [];
  const logger = createLogger(config.LOG_LEVEL, (line) => logs.push(line));
  const store = await KeyvHistoryStore.open({ url: config.DATABASE_URL, moodRetentionDays: config.MOOD_RETENTION_DAYS });
  const botStore = wrapStore?.(store) ?? store;
  const queue = new GenerationQueue({ maxPending: config.QUEUE_MAX, parallelReplies: config.PARALLEL_REPLIES });
  const metrics = new BotMetrics({ queueDepth: (lane) => queue.pending(lane), runningReplies: () => queue.running('reply'), warmChannels: engine instanceof Engine ? () => engine.replies.warmCount : undefined });
  const sessions = new ChannelSessions({ engine, queue, store: botStore, logger, messageMaxChars: config.MESSAGE_MAX_CHARS, defaultReplyMode: config.REPLY_MODE, observer: metrics });
  const client = createDiscordClient(config);
  const metricsServer =
    config.METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer({ metrics, port: config.METRICS_PORT, host: config.METRICS_HOST, healthy: () => gatewayConnected(client), logger });
  const model = engine instanceof Engine ? () => engine.status() : undefined;
  const bot = new DiscordBot(client, { commands, sessions, queue, config, logger, editIntervalMs, attachmentTimeoutMs, seenMessagesKept, metrics, store: botStore, model });
  await bot.start(config.DISCORD_TOKEN!);
  await emulator.whenReady();
  let stopped: Promise<void> | undefined;
  return {
    bot,
    sessions,
    store,
    queue,
    config,
    metrics,
    metricsServer,
    logs,
    stop() {
      stopped ??= (async () => {
        await bot.stop();
        await metricsServer?.dispose();
        await store.dispose();
      })();
      return stopped;
    },
  };
}

/** Resolves once the bot logged that it answered this message (its last edit is done then). */
export function whenAnswered(emulator: DiscordEmulator, bot: RunningBot, messageId: string, timeoutMs = 20_000): Promise<unknown> {
  return emulator.waitFor(() => answeredCount(bot, messageId) > 0, { timeoutMs, description: `message ${messageId} answered` });
}

/** How often the bot logged "message answered" for this message. */
export function answeredCount(bot: RunningBot, messageId: string): number {
  return bot.logs.filter((line) => line.includes('"message answered"') && line.includes(`"messageId":"${messageId}"`)).length;
}

/** The bot's messages that reply to (reference) this message, oldest first, deleted ones included. */
export function repliesTo(emulator: DiscordEmulator, channelId: string, messageId: string): BotMessageRecord[] {
  return emulator.botMessages(channelId).filter((message) => message.replyTo === messageId);
}

/** The parsed log entries with this message text. */
export function logEntries(bot: RunningBot, message: string): Record<string, unknown>[] {
  return bot.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.message === message);
}

export interface ScriptedEngineOptions {
  /** The pieces a reply streams, from the user's text. Default: one piece, `reply to <text>`. */
  script?: (userText: string) => string[];
  /** Pause after each streamed piece, in ms. Default 0. */
  pauseMs?: number;
  /** The sentiment of a text. Default neutral, 0.6. */
  label?: (text: string) => SentimentResult;
  /** How long classifying takes, in ms (a long text on a small CPU model). Default 0. */
  classifyMs?: number;
}

/**
 * A ModelEngine with no model, for the Discord-side behaviour that needs a specific reply: text
 * with mentions, a blank reply, a slow reply. `hold()` keeps replies waiting (so messages queue up
 * behind them) until `release()`; waiting and pauses end at once when the reply is aborted.
 */
export class ScriptedEngine implements ModelEngine {
  /** The userText of every reply call, in call order. */
  readonly replied: string[] = [];
  /** For every reply call, the userText of each history turn it was given. */
  readonly historySeen: string[][] = [];
  private held?: { promise: Promise<void>; release(): void };

  constructor(private readonly options: ScriptedEngineOptions = {}) {}

  /** What the default script answers to `userText`. */
  static replyTo(userText: string): string {
    return `reply to ${userText}`;
  }

  async classify(text: string): Promise<SentimentResult> {
    if (this.options.classifyMs) await new Promise((resolve) => setTimeout(resolve, this.options.classifyMs));
    return this.options.label?.(text) ?? { label: 'neutral', confidence: 0.6 };
  }

  async reply({ userText, turns, signal, onText }: ReplyRequest): Promise<ReplyResult> {
    this.replied.push(userText);
    this.historySeen.push(turns.map((turn) => turn.userText));
    if (this.held) await abortable(this.held.promise, signal);
    const pieces = this.options.script?.(userText) ?? [ScriptedEngine.replyTo(userText)];
    for (const piece of pieces) {
      signal?.throwIfAborted();
      onText?.(piece);
      if (this.options.pauseMs) await abortable(new Promise((resolve) => setTimeout(resolve, this.options.pauseMs)), signal);
    }
    return { text: pieces.join('').trim(), evaluatedTokens: 0, turnsInPrompt: 0, messageTruncated: false };
  }

  /** Replies from now on wait until release(). */
  hold(): void {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { promise, release };
  }

  /** Lets every waiting reply go on, and stops holding new ones. */
  release(): void {
    this.held?.release();
    this.held = undefined;
  }

  fitMessage(_userName: string, userText: string): { userText: string; truncated: boolean } {
    return { userText, truncated: false };
  }

  forget(): void {}
  status(): EngineStatus {
    return { model: 'scripted', runsOn: 'this process', contextSize: 2048, ready: true, warmChannels: 0 };
  }

  async dispose(): Promise<void> {}
}

function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
