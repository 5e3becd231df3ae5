import type { ChatInputCommandInteraction, RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import type { Config } from '../config.js';
import type { CalibrationStatus, EngineStatus } from '../engine/Engine.js';
import type { GenerationQueue } from '../engine/GenerationQueue.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import type { Logger } from '../logger.js';
import type { BotMetrics } from '../metrics/BotMetrics.js';
import type { ChannelSessions } from '../sessions/ChannelSessions.js';

/** What a slash command gets to work with; passed in, never imported as globals. */
export interface CommandDeps {
  sessions: ChannelSessions;
  queue: GenerationQueue;
  config: Config;
  logger: Logger;
  metrics: BotMetrics;
  /** The history store, for /status to check it answers. */
  store: HistoryStore;
  /** What the model is, where it runs and whether it answers, for /status; absent when there is none (a scripted engine). */
  model?: () => EngineStatus;
  /** Which sentiment calibration is in use and how far learning one is, for /status; absent with a scripted engine. */
  calibration?: () => CalibrationStatus;
}

/** One slash command: its definition and what it does. */
export interface Command {
  /** A SlashCommandBuilder, with or without subcommands. */
  data: { readonly name: string; toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
  execute(interaction: ChatInputCommandInteraction, deps: CommandDeps): Promise<void>;
}
