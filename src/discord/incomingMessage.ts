import type { Message, User } from 'discord.js';
import type { IncomingMessage } from '../sessions/ChannelSessions.js';
import { isTextAttachment, readTextAttachments } from './attachments.js';

export interface IncomingOptions {
  /** Largest text attachment read, in KB; 0 reads none (`ATTACHMENT_MAX_KB`). */
  attachmentMaxKb: number;
  /** How long one attachment's fetch may take, in ms. */
  attachmentTimeoutMs: number;
  /** Told, inside the turn, which text files could not be read; it must not throw. */
  onUnread?(files: string[]): Promise<void>;
  /** Names of people seen recently in the message's server (see RecentSpeakers). */
  otherNames?: readonly string[];
}

/**
 * The message as the sessions take it: the speaker's display name, the text with the bot's own
 * mention read as its name, and a reader for its text attachments, which the turn calls once the
 * message's queue places are taken (so a slow file never lets a later message overtake it).
 */
export function incomingMessage(message: Message, botUser: User, options: IncomingOptions): IncomingMessage {
  const files =
    options.attachmentMaxKb > 0
      ? message.attachments.filter((attachment) => isTextAttachment(attachment.name)).map((attachment) => ({ name: attachment.name, url: attachment.url, size: attachment.size }))
      : [];
  const readAttachments = async () => {
    const read = await readTextAttachments(files, { maxBytes: options.attachmentMaxKb * 1024, timeoutMs: options.attachmentTimeoutMs });
    if (read.unread.length > 0) await options.onUnread?.(read.unread);
    return read.text;
  };
  return {
    channelId: message.channelId,
    userName: message.member?.displayName ?? message.author.displayName,
    text: message.content.replace(new RegExp(`<@!?${botUser.id}>`, 'g'), `@${botUser.displayName}`),
    botName: message.guild?.members.me?.displayName ?? botUser.displayName,
    ...(options.otherNames && options.otherNames.length > 0 ? { otherNames: options.otherNames } : {}),
    ...(files.length > 0 ? { readAttachments } : {}),
  };
}

/** Whether the message has a file the bot may read as text (so a message without typed text still counts). */
export function hasTextAttachment(message: Message): boolean {
  return message.attachments.some((attachment) => isTextAttachment(attachment.name));
}

/** In `mentions` mode the bot answers when addressed: a mention of it (not @everyone or a role), a reply to one of its messages, or a DM. */
export function isAddressed(message: Message, botUserId: string): boolean {
  return message.channel.isDMBased() || message.mentions.users.has(botUserId) || message.mentions.repliedUser?.id === botUserId;
}
