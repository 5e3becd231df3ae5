import { ChannelType, MessageFlags, PermissionFlagsBits, SlashCommandBuilder, type GuildMember } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { MOOD_DEFAULT_DAYS, MOOD_MAX_DAYS, moodReport } from '../src/mood/moodReport.js';

/**
 * `/mood [days] [channel] [private]`: a chart of a channel's mood over the last days, public unless
 * `private:true`. Any member may ask, about a channel they can read; only counts are shown, never a
 * message or its author.
 */
export const moodCommand = {
  data: new SlashCommandBuilder()
    .setName('mood')
    .setDescription("A chart of a channel's mood over the last days.")
    .addIntegerOption((option) =>
      option.setName('days').setDescription(`How many days back, 1 to ${MOOD_MAX_DAYS} (default ${MOOD_DEFAULT_DAYS})`).setMinValue(1).setMaxValue(MOOD_MAX_DAYS),
    )
    .addChannelOption((option) =>
      option
        .setName('channel')
        .setDescription('Which channel (default: this one)')
        .addChannelTypes(ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.PublicThread, ChannelType.PrivateThread),
    )
    .addBooleanOption((option) => option.setName('private').setDescription('Show the answer to you alone (default: to everyone here)')),

  async execute(interaction, { store, config, logger }) {
    const days = interaction.options.getInteger('days') ?? MOOD_DEFAULT_DAYS;
    const picked = interaction.options.getChannel('channel');
    const flags = interaction.options.getBoolean('private') ? MessageFlags.Ephemeral : undefined;
    const channel = picked ? interaction.client.channels.cache.get(picked.id) : interaction.channel;
    if (picked) {
      // A picker shows channels the member cannot read too: their mood is not theirs to see.
      const member = interaction.member as GuildMember | null;
      const permissions = channel && 'permissionsFor' in channel && member ? channel.permissionsFor(member) : null;
      if (!permissions?.has(PermissionFlagsBits.ViewChannel | PermissionFlagsBits.ReadMessageHistory)) {
        await interaction.reply({ content: `You cannot read <#${picked.id}>, so I cannot show you its mood.`, flags: MessageFlags.Ephemeral });
        return;
      }
    }
    const channelId = picked?.id ?? interaction.channelId;
    const channelName = channel && 'name' in channel && channel.name ? channel.name : channelId;
    // The store read and the drawing can outlast Discord's 3 s on a busy store: acknowledge first.
    await interaction.deferReply({ flags });
    const started = performance.now();
    const report = await moodReport({ store, channelId, channelName, days, emojis: config.SENTIMENT_EMOJIS });
    logger.info('mood shown', { channelId, days, messages: report.summary.total, ms: Math.round(performance.now() - started) });
    await interaction.editReply({ content: report.text, files: report.png ? [{ attachment: report.png, name: `mood-${days}d.png`, description: report.alt }] : [] });
  },
} satisfies Command;
