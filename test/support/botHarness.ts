import path from 'node:path';
import { commands } from '../../commands/index.js';
import { parseConfig, type Config } from '../../src/config.js';
import { DiscordBot, createDiscordClient } from '../../src/discord/DiscordBot.js';
import type { ModelEngine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { createLogger } from '../../src/logger.js';
import { ChannelSessions } from '../../src/sessions/ChannelSessions.js';
import type { DiscordEmulator } from './DiscordEmulator.js';

export interface RunningBot {
  bot: DiscordBot;
  sessions: ChannelSessions;
  store: KeyvHistoryStore;
  queue: GenerationQueue;
  config: Config;
  /** Every log line the bot wrote (JSON). */
  logs: string[];
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
}

/**
 * The bot exactly as src/index.ts wires it (real discord.js client, real queue, sessions and SQLite
 * store), pointed at the emulator. The engine is passed in so a test file loads its model once.
 */
export async function startBot({ emulator, engine, databaseFile, env = {}, editIntervalMs = 100 }: StartBotOptions): Promise<RunningBot> {
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
  const store = await KeyvHistoryStore.open({ url: config.DATABASE_URL });
  const queue = new GenerationQueue({ maxPending: config.QUEUE_MAX });
  const sessions = new ChannelSessions({ engine, queue, store, logger, messageMaxChars: config.MESSAGE_MAX_CHARS });
  const client = createDiscordClient(config);
  const bot = new DiscordBot(client, { commands, sessions, queue, config, logger, editIntervalMs });
  await bot.start(config.DISCORD_TOKEN!);
  await emulator.whenReady();
  return {
    bot,
    sessions,
    store,
    queue,
    config,
    logs,
    async stop() {
      await bot.stop();
      await store.dispose();
    },
  };
}
