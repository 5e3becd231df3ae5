import { ChannelType, MessageFlags, PermissionFlagsBits, SlashCommandBuilder, type Channel, type GuildMember } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { MOOD_DEFAULT_DAYS, MOOD_MAX_DAYS, moodReport } from '../src/mood/moodReport.js';

/**
 * `/mood [days] [channel] [private]`: a chart of a channel's mood over the last days. Any member may
 * ask, about a channel they can read (a private thread: one they are in, or may manage threads in);
 * only counts are shown, never a message or its author. About this channel the answer is public
 * unless `private:true`; about another channel it is private unless `private:false`, since the people
 * here may not be able to read that channel (its name, its mood).
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
    .addBooleanOption((option) =>
      option.setName('private').setDescription('Show the answer to you alone (default: yes for another channel, no for this one)'),
    ),

  async execute(interaction, { store, config, logger }) {
    const days = interaction.options.getInteger('days') ?? MOOD_DEFAULT_DAYS;
    const picked = interaction.options.getChannel('channel');
    const elsewhere = picked !== null && picked.id !== interaction.channelId;
    // About another channel the answer is private unless asked otherwise: people here may not be able to read that one.
    const ephemeral = interaction.options.getBoolean('private') ?? elsewhere;
    const flags = ephemeral ? MessageFlags.Ephemeral : undefined;
    const channel = picked ? interaction.client.channels.cache.get(picked.id) : interaction.channel;
    if (elsewhere && !(await mayRead(channel ?? undefined, interaction.member as GuildMember | null))) {
      // The picker shows channels the member cannot read too: their mood (and a private thread's name) is not theirs to see.
      await interaction.reply({ content: `You cannot read <#${picked.id}>, so I cannot show you its mood.`, flags: MessageFlags.Ephemeral });
      return;
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

/**
 * Whether the member may read the channel's messages. For a thread discord.js answers `permissionsFor`
 * with the parent's permissions, which is all a public thread needs; a private thread is for its
 * members alone, and for those who may manage threads (Discord shows them every private thread).
 */
async function mayRead(channel: Channel | undefined, member: GuildMember | null): Promise<boolean> {
  if (!channel || !member || !('permissionsFor' in channel)) return false;
  const permissions = channel.permissionsFor(member);
  if (!permissions?.has(PermissionFlagsBits.ViewChannel | PermissionFlagsBits.ReadMessageHistory)) return false;
  if (channel.type !== ChannelType.PrivateThread || permissions.has(PermissionFlagsBits.ManageThreads)) return true;
  // Not cached: a fetch answers 404 Unknown Member for anyone who is not in the thread.
  return channel.members.fetch({ member: member.id, cache: false }).then(
    () => true,
    () => false,
  );
}
