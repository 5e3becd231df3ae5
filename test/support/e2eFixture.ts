import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { Engine, type EngineOptions, type ModelEngine } from '../../src/engine/Engine.js';
import { startBot, type RunningBot, type StartBotOptions } from './botHarness.js';
import { DiscordEmulator, type EmulatorOptions } from './DiscordEmulator.js';
import { tempDirs } from './tempDir.js';
import { TEST_THREADS, ensureTinyModel } from './testModels.js';

/** The e2e tests' standard engine on the tiny model; `overrides` change single options (e.g. `replyMaxTokens`). */
export async function createTinyEngine(overrides: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.create({
    modelPath: await ensureTinyModel(),
    threads: TEST_THREADS,
    contextSize: 1024,
    warmChannels: 4,
    historyMaxTokens: 400,
    replyMaxTokens: 24,
    systemPrompt: 'You are a kind assistant.',
    seed: 7,
    ...overrides,
  });
}

export interface BootOptions {
  /** The bot's engine. Default: the file's tiny engine (`useBotFixture({ tinyEngine: true })`). */
  engine?: ModelEngine;
  /** Extra config keys (strings, as in .env). */
  env?: Record<string, string>;
  /** Default: startBot's (100 ms). */
  editIntervalMs?: number;
  /** How long the bot waits for one text attachment. Default: the bot's (10 s). */
  attachmentTimeoutMs?: number;
  /** The emulated guild's text channels. Default: the emulator's (one, `general`). */
  channels?: string[];
  /** Further emulator options (for example `botPermissions`). */
  emulator?: EmulatorOptions;
  /** Message ids the bot remembers. Default: the bot's (10000). */
  seenMessagesKept?: number;
  /** A store in front of the SQLite one, for store faults (see startBot). */
  wrapStore?: StartBotOptions['wrapStore'];
}

export interface BootedBot {
  bot: RunningBot;
  emu: DiscordEmulator;
  /** The emulator's default channel. */
  channelId: string;
}

export interface BotFixture {
  /** A fresh temp folder, a Discord emulator and the bot (SQLite history in the folder) pointed at it. */
  boot(options?: BootOptions): Promise<BootedBot>;
  /**
   * Stops the test's running bot (unless the test already did) and starts a new one on the same
   * emulator and SQLite file. Options default to the ones the test booted with.
   */
  restart(options?: Omit<BootOptions, 'channels' | 'emulator'>): Promise<RunningBot>;
  /** An emulator without an in-process bot (for a bot run as a child process); stopped after the test. */
  startEmulator(options?: EmulatorOptions): Promise<DiscordEmulator>;
  /** A fresh temp folder, removed after the test. */
  tempFolder(): string;
  /** The test's current emulator; throws when none is running. */
  readonly emulator: DiscordEmulator;
  /** The test's current bot; throws when none is running. */
  readonly bot: RunningBot;
}

export interface BotFixtureOptions {
  /** Prefix of the temp folders' names. */
  tempPrefix?: string;
  /** Load the standard tiny engine once for the file (before its tests, disposed after): boot()'s default engine. */
  tinyEngine?: boolean;
}

/**
 * The in-process bot of an e2e test file. Call it at the top level of the file: it registers the
 * hooks that, after each test, stop every bot and emulator the test started, check that no bot
 * ever wrote the emulator's token to its log, and remove the test's temp folders.
 */
export function useBotFixture({ tempPrefix = 'bot-e2e-', tinyEngine = false }: BotFixtureOptions = {}): BotFixture {
  const folders = tempDirs(tempPrefix);
  let engine: Engine | undefined;
  /** What the current test started, in order. */
  let emulators: DiscordEmulator[] = [];
  let bots: RunningBot[] = [];
  let current: { databaseFile: string; options: BootOptions } | undefined;

  if (tinyEngine) {
    beforeAll(async () => {
      engine = await createTinyEngine();
    });
    afterAll(async () => {
      await engine?.dispose();
    });
  }

  afterEach(async () => {
    const stoppedBots = bots.reverse();
    const stoppedEmulators = emulators.reverse();
    bots = [];
    emulators = [];
    current = undefined;
    try {
      for (const bot of stoppedBots) await bot.stop();
    } finally {
      try {
        for (const emulator of stoppedEmulators) await emulator.stop();
      } finally {
        folders.removeAll();
      }
    }
    // Whatever went wrong in a test, the bot never writes its token to the log.
    for (const { token } of stoppedEmulators) {
      for (const bot of stoppedBots) expect(bot.logs.join('\n')).not.toContain(token);
    }
  });

  async function launch(emulator: DiscordEmulator, databaseFile: string, options: BootOptions): Promise<RunningBot> {
    const botEngine = options.engine ?? engine;
    if (!botEngine) throw new Error('boot() needs an engine: pass one, or use useBotFixture({ tinyEngine: true })');
    const bot = await startBot({ emulator, engine: botEngine, databaseFile, env: options.env, editIntervalMs: options.editIntervalMs, attachmentTimeoutMs: options.attachmentTimeoutMs, seenMessagesKept: options.seenMessagesKept, wrapStore: options.wrapStore });
    bots.push(bot);
    current = { databaseFile, options };
    return bot;
  }

  const fixture: BotFixture = {
    async boot(options = {}) {
      const databaseFile = path.join(folders.make(), 'history.sqlite');
      const emu = await fixture.startEmulator({ ...options.emulator, ...(options.channels ? { channels: options.channels } : {}) });
      const bot = await launch(emu, databaseFile, options);
      return { bot, emu, channelId: emu.defaultChannelId };
    },

    async restart(options) {
      if (!current) throw new Error('restart() needs a bot booted in this test');
      await fixture.bot.stop();
      return launch(fixture.emulator, current.databaseFile, { ...current.options, ...options });
    },

    async startEmulator(options = {}) {
      const emulator = await DiscordEmulator.start(options);
      emulators.push(emulator);
      return emulator;
    },

    tempFolder: () => folders.make(),

    get emulator() {
      const emulator = emulators.at(-1);
      if (!emulator) throw new Error('no emulator is running in this test');
      return emulator;
    },

    get bot() {
      const bot = bots.at(-1);
      if (!bot) throw new Error('no bot is running in this test');
      return bot;
    },
  };
  return fixture;
}
