import type { Command } from '../src/discord/Command.js';
import { resetCommand } from './reset.js';
import { sentimentCommand } from './sentiment.js';

/** Every slash command the bot registers, by name. */
export const commands: ReadonlyMap<string, Command> = new Map([sentimentCommand, resetCommand].map((command) => [command.data.name, command]));
