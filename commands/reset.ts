import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { replyInTime } from '../src/discord/replyInTime.js';

/** `/reset` clears this channel's history. Needs Manage Messages in the channel. */
export const resetCommand = {
  data: new SlashCommandBuilder()
    .setName('reset')
    .setDescription("Clear this channel's conversation history with the bot.")
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages),

  async execute(interaction, { sessions, logger }) {
    // Discord hides the command from others by default, but server admins can change that: check anyway.
    if (interaction.inGuild() && !interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages)) {
      await interaction.reply({ content: 'You need the Manage Messages permission in this channel to reset its history.', flags: MessageFlags.Ephemeral });
      return;
    }
    // A slow or locked store must not cost the answer: deferred when not quick.
    await replyInTime(interaction, { ephemeral: true }, async () => {
      await sessions.reset(interaction.channelId);
      logger.info('history reset', { channelId: interaction.channelId, userId: interaction.user.id });
      return "This channel's history is cleared. I start fresh from here.";
    });
  },
} satisfies Command;
