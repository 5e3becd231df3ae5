import type { Command } from '../src/discord/Command.js';
import { modeCommand } from './mode.js';
import { moodCommand } from './mood.js';
import { personaCommand } from './persona.js';
import { resetCommand } from './reset.js';
import { sentimentCommand } from './sentiment.js';
import { statusCommand } from './status.js';

/** Every slash command the bot registers, by name. */
export const commands: ReadonlyMap<string, Command> = new Map([sentimentCommand, resetCommand, modeCommand, personaCommand, statusCommand, moodCommand].map((command) => [command.data.name, command]));
