import { MessageFlags, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/Command.js';
import { replyInTime } from '../src/discord/replyInTime.js';
import { hasReadableText } from '../src/text.js';

/** `/sentiment text:` classifies a text on demand; no history is read or written. */
export const sentimentCommand = {
  data: new SlashCommandBuilder()
    .setName('sentiment')
    .setDescription('Classify the sentiment of a text (positive, neutral or negative).')
    .addStringOption((option) => option.setName('text').setDescription('The text to classify').setRequired(true).setMaxLength(2000)),

  async execute(interaction, { sessions, config }) {
    const text = interaction.options.getString('text', true);
    if (!hasReadableText(text)) {
      await interaction.reply({ content: 'Give me some text to classify, for example `/sentiment text: I love this!`', flags: MessageFlags.Ephemeral });
      return;
    }
    // A long text can take the model over Discord's 3 s even on an idle queue: deferred when not quick.
    await replyInTime(interaction, { ephemeral: false }, async () => {
      const { label, confidence } = await sessions.classify(interaction.channelId, text);
      return `${config.SENTIMENT_EMOJIS[label]} **${label}** (confidence ${Math.round(confidence * 100)}%)`;
    });
  },
} satisfies Command;
