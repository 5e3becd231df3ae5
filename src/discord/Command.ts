import type { ChatInputCommandInteraction, SlashCommandOptionsOnlyBuilder } from 'discord.js';
import type { Config } from '../config.js';
import type { GenerationQueue } from '../engine/GenerationQueue.js';
import type { Logger } from '../logger.js';
import type { ChannelSessions } from '../sessions/ChannelSessions.js';

/** What a slash command gets to work with; passed in, never imported as globals. */
export interface CommandDeps {
  sessions: ChannelSessions;
  queue: GenerationQueue;
  config: Config;
  logger: Logger;
}

/** One slash command: its definition and what it does. */
export interface Command {
  data: SlashCommandOptionsOnlyBuilder;
  execute(interaction: ChatInputCommandInteraction, deps: CommandDeps): Promise<void>;
}
