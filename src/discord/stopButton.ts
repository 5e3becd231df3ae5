import { ActionRowBuilder, ButtonBuilder, ButtonStyle, MessageFlags, PermissionFlagsBits, type ButtonInteraction } from 'discord.js';
import type { Logger } from '../logger.js';

const STOP_PREFIX = 'stop:';

/** The Stop button of the reply to `messageId`. */
export function stopButtonRow(messageId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(`${STOP_PREFIX}${messageId}`).setLabel('Stop').setEmoji('⏹️').setStyle(ButtonStyle.Secondary),
  );
}

export function isStopButton(customId: string): boolean {
  return customId.startsWith(STOP_PREFIX);
}

interface ActiveReply {
  authorId: string;
  stop: AbortController;
}

/** The replies that can be stopped now (queued or streaming), by the id of the message they answer. */
export class ActiveReplies {
  private readonly replies = new Map<string, ActiveReply>();

  /** Registers a reply; the returned signal fires when someone allowed clicks Stop. Call `done()` when it ends. */
  start(messageId: string, authorId: string): { signal: AbortSignal; done(): void } {
    const entry = { authorId, stop: new AbortController() };
    this.replies.set(messageId, entry);
    return {
      signal: entry.stop.signal,
      done: () => {
        if (this.replies.get(messageId) === entry) this.replies.delete(messageId);
      },
    };
  }

  /**
   * A click on a Stop button. The message's author or anyone with Manage Messages stops the reply (the
   * click is acknowledged without a message: the reply itself shows it stopped); anyone else, or a
   * click on a reply that has ended, gets a short private answer.
   */
  async click(interaction: ButtonInteraction, logger: Logger): Promise<void> {
    const messageId = interaction.customId.slice(STOP_PREFIX.length);
    const entry = this.replies.get(messageId);
    if (!entry || entry.stop.signal.aborted) {
      await interaction.reply({ content: 'That reply has already ended.', flags: MessageFlags.Ephemeral });
      return;
    }
    const allowed = interaction.user.id === entry.authorId || interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) === true;
    if (!allowed) {
      await interaction.reply({ content: 'Only the author or a moderator can stop this.', flags: MessageFlags.Ephemeral });
      return;
    }
    entry.stop.abort();
    logger.info('reply stopped', { channelId: interaction.channelId, messageId, userId: interaction.user.id });
    await interaction.deferUpdate();
  }
}
