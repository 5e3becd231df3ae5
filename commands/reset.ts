import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { replyInTime } from '../src/discord/replyInTime.js';

/** `/reset [mood]` clears this channel's history, and its mood log only when asked. Needs Manage Messages in the channel. */
export const resetCommand = {
  data: new SlashCommandBuilder()
    .setName('reset')
    .setDescription("Clear this channel's conversation history with the bot.")
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages)
    .addBooleanOption((option) => option.setName('mood').setDescription("Also clear the channel's mood log (what /mood charts). Default: keep it.")),

  async execute(interaction, { sessions, logger }) {
    // Discord hides the command from others by default, but server admins can change that: check anyway.
    if (interaction.inGuild() && !interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages)) {
      await interaction.reply({ content: 'You need the Manage Messages permission in this channel to reset its history.', flags: MessageFlags.Ephemeral });
      return;
    }
    const mood = interaction.options.getBoolean('mood') ?? false;
    // A slow or locked store must not cost the answer: deferred when not quick.
    await replyInTime(interaction, { ephemeral: true }, async () => {
      await sessions.reset(interaction.channelId, { mood });
      logger.info('history reset', { channelId: interaction.channelId, userId: interaction.user.id, mood });
      return mood
        ? "This channel's history and its mood log are cleared. I start fresh from here."
        : "This channel's history is cleared. I start fresh from here. Its mood log is kept (`/reset mood:true` clears it too).";
    });
  },
} satisfies Command;
