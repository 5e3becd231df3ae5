import type { Message, User } from 'discord.js';
import type { IncomingMessage } from '../sessions/ChannelSessions.js';
import { isTextAttachment, readTextAttachments } from './attachments.js';

export interface IncomingOptions {
  /** Largest text attachment read, in KB; 0 reads none (`ATTACHMENT_MAX_KB`). */
  attachmentMaxKb: number;
  /** How long one attachment's fetch may take, in ms. */
  attachmentTimeoutMs: number;
}

/**
 * The message as the sessions take it: the speaker's display name, the text with the bot's own
 * mention read as its name, and its text attachments. `unread` lists the text files that could not be read.
 */
export async function incomingMessage(message: Message, botUser: User, options: IncomingOptions): Promise<{ incoming: IncomingMessage; unread: string[] }> {
  const files =
    options.attachmentMaxKb > 0
      ? await readTextAttachments(
          message.attachments.map((attachment) => ({ name: attachment.name, url: attachment.url, size: attachment.size })),
          { maxBytes: options.attachmentMaxKb * 1024, timeoutMs: options.attachmentTimeoutMs },
        )
      : { unread: [] };
  const incoming: IncomingMessage = {
    channelId: message.channelId,
    userName: message.member?.displayName ?? message.author.displayName,
    text: message.content.replace(new RegExp(`<@!?${botUser.id}>`, 'g'), `@${botUser.displayName}`),
    ...(files.text === undefined ? {} : { attachedText: files.text }),
  };
  return { incoming, unread: files.unread };
}

/** Whether the message has a file the bot may read as text (so a message without typed text still counts). */
export function hasTextAttachment(message: Message): boolean {
  return message.attachments.some((attachment) => isTextAttachment(attachment.name));
}

/** In `mentions` mode the bot answers when addressed: a mention of it (not @everyone or a role), a reply to one of its messages, or a DM. */
export function isAddressed(message: Message, botUserId: string): boolean {
  return message.channel.isDMBased() || message.mentions.users.has(botUserId) || message.mentions.repliedUser?.id === botUserId;
}
