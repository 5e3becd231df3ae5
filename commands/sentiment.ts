import { MessageFlags, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { hasReadableText } from '../src/text.js';

/** `/sentiment text:` classifies a text on demand; no history is read or written. */
export const sentimentCommand = {
  data: new SlashCommandBuilder()
    .setName('sentiment')
    .setDescription('Classify the sentiment of a text (positive, neutral or negative).')
    .addStringOption((option) => option.setName('text').setDescription('The text to classify').setRequired(true).setMaxLength(2000)),

  async execute(interaction, { sessions, queue, config }) {
    const text = interaction.options.getString('text', true);
    if (!hasReadableText(text)) {
      await interaction.reply({ content: 'Give me some text to classify, for example `/sentiment text: I love this!`', flags: MessageFlags.Ephemeral });
      return;
    }
    // Discord wants an answer within 3 s; when others are ahead in the queue, say we are on it first.
    const deferred = queue.isBusy('sentiment');
    if (deferred) await interaction.deferReply();
    const { label, confidence } = await sessions.classify(interaction.channelId, text);
    const content = `${config.SENTIMENT_EMOJIS[label]} **${label}** (confidence ${Math.round(confidence * 100)}%)`;
    if (deferred) await interaction.editReply({ content });
    else await interaction.reply({ content });
  },
} satisfies Command;
