import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { replyInTime } from '../src/discord/replyInTime.js';
import { REPLY_MODES, type ReplyMode } from '../src/domain.js';

const DESCRIBED: Record<ReplyMode, string> = {
  all: 'I react to every message and answer every message.',
  mentions: 'I react to every message and answer only when mentioned, replied to, or in a DM; the rest is context I remember.',
  react: 'I only react to messages; I do not answer.',
};

/** `/mode set mode:` and `/mode show`: when the bot answers in this channel. Needs Manage Channels. */
export const modeCommand = {
  data: new SlashCommandBuilder()
    .setName('mode')
    .setDescription('When I answer in this channel.')
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageChannels)
    .addSubcommand((sub) =>
      sub
        .setName('set')
        .setDescription('Set when I answer in this channel.')
        .addStringOption((option) =>
          option
            .setName('mode')
            .setDescription('all: every message; mentions: when mentioned or replied to; react: reactions only')
            .setRequired(true)
            .addChoices(...REPLY_MODES.map((mode) => ({ name: mode, value: mode }))),
        ),
    )
    .addSubcommand((sub) => sub.setName('show').setDescription('Show when I answer in this channel.')),

  async execute(interaction, { sessions, logger, config }) {
    const { channelId } = interaction;
    // Discord hides the command from others by default, but server admins can change that: check anyway.
    if (interaction.inGuild() && !interaction.memberPermissions?.has(PermissionFlagsBits.ManageChannels)) {
      await interaction.reply({ content: 'You need the Manage Channels permission in this channel to change or see my reply mode.', flags: MessageFlags.Ephemeral });
      return;
    }
    // Both read or write the store, which may be slow or locked: deferred when not quick.
    if (interaction.options.getSubcommand() === 'show') {
      await replyInTime(interaction, { ephemeral: true }, async () => {
        const own = await sessions.settings.ownReplyMode(channelId);
        const mode = own ?? config.REPLY_MODE;
        return `Reply mode here: **${mode}** (${own ? 'set for this channel' : 'the default'}). ${DESCRIBED[mode]}`;
      });
      return;
    }
    const mode = REPLY_MODES.find((known) => known === interaction.options.getString('mode', true));
    if (!mode) {
      await interaction.reply({ content: `The mode must be one of ${REPLY_MODES.join(', ')}.`, flags: MessageFlags.Ephemeral });
      return;
    }
    await replyInTime(interaction, { ephemeral: true }, async () => {
      await sessions.settings.setReplyMode(channelId, mode);
      logger.info('reply mode set', { channelId, mode, userId: interaction.user.id });
      return `Reply mode here is now **${mode}**. ${DESCRIBED[mode]}`;
    });
  },
} satisfies Command;
