import { MessageFlags, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { replyInTime } from '../src/discord/replyInTime.js';
import { PERSONA_MAX_CHARS } from '../src/sessions/ChannelSettings.js';

/** `/persona set text:`, `/persona show`, `/persona clear`: this channel's system prompt. Changing it needs Manage Messages. */
export const personaCommand = {
  data: new SlashCommandBuilder()
    .setName('persona')
    .setDescription("My persona in this channel (the system prompt of my replies).")
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages)
    .addSubcommand((sub) =>
      sub
        .setName('set')
        .setDescription('Set how I talk in this channel, from my next reply on.')
        .addStringOption((option) => option.setName('text').setDescription(`The persona, up to ${PERSONA_MAX_CHARS} characters`).setRequired(true)),
    )
    .addSubcommand((sub) => sub.setName('show').setDescription("Show this channel's persona."))
    .addSubcommand((sub) => sub.setName('clear').setDescription('Go back to the default persona in this channel.')),

  async execute(interaction, { sessions, logger }) {
    const { channelId } = interaction;
    const subcommand = interaction.options.getSubcommand();
    // Each reads or writes the store, which may be slow or locked: deferred when not quick.
    if (subcommand === 'show') {
      await replyInTime(interaction, { ephemeral: true }, async () => {
        const persona = await sessions.settings.persona(channelId);
        return persona ? `My persona here:\n>>> ${persona}` : 'This channel uses my default persona.';
      });
      return;
    }
    if (interaction.inGuild() && !interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages)) {
      await interaction.reply({ content: "You need the Manage Messages permission in this channel to change my persona.", flags: MessageFlags.Ephemeral });
      return;
    }
    // A refused text throws a UserError, which the edge answers privately; nothing is stored then.
    const text = subcommand === 'set' ? interaction.options.getString('text', true) : undefined;
    await replyInTime(interaction, { ephemeral: true }, async () => {
      await sessions.setPersona(channelId, text);
      logger.info(text === undefined ? 'persona cleared' : 'persona set', { channelId, chars: text?.length, userId: interaction.user.id });
      return text === undefined ? 'Back to my default persona here, from my next reply on.' : 'Persona set for this channel; it applies from my next reply on.';
    });
  },
} satisfies Command;
