import { PermissionFlagsBits, type Message, type PermissionsBitField, type User } from 'discord.js';
import type { ReplyTarget } from './ReplyStreamer.js';
import { stopButtonRow } from './stopButton.js';

/** What the bot may do in a message's channel, from its real permissions there. */
export interface ChannelAccess {
  /** Send Messages (Send Messages in Threads in a thread). */
  send: boolean;
  /** Add Reactions; Discord also wants Read Message History for a reaction. */
  react: boolean;
  /** Read Message History: needed to post a reply that references the message. */
  reference: boolean;
}

const EVERYTHING: ChannelAccess = { send: true, react: true, reference: true };

/** The access the permissions give; null (not computable, as in DMs) means the channel's own rules apply. */
export function accessFrom(permissions: Readonly<PermissionsBitField> | null, inThread: boolean): ChannelAccess {
  if (!permissions) return EVERYTHING;
  const history = permissions.has(PermissionFlagsBits.ReadMessageHistory);
  return {
    send: permissions.has(inThread ? PermissionFlagsBits.SendMessagesInThreads : PermissionFlagsBits.SendMessages),
    react: permissions.has(PermissionFlagsBits.AddReactions) && history,
    reference: history,
  };
}

/** The bot's access in the channel of `message`, checked before any work is queued for it. */
export function channelAccess(message: Message, me: User): ChannelAccess {
  const channel = message.channel;
  if (!channel.isSendable()) return { send: false, react: false, reference: false };
  if (channel.isDMBased()) return EVERYTHING;
  return accessFrom(channel.permissionsFor(me), channel.isThread());
}

/**
 * Replies to the message (if it was deleted meanwhile, the reply still goes to the channel). With
 * `stopButton`, a first message posted with controls carries the reply's Stop button.
 */
export function replyTarget(message: Message, access: ChannelAccess, { stopButton = false } = {}): ReplyTarget {
  const channel = message.channel;
  if (!channel.isSendable()) throw new Error(`Channel ${message.channelId} does not accept messages.`);
  return {
    reply: (content, withControls) =>
      channel.send({
        content,
        components: stopButton && withControls ? [stopButtonRow(message.id)] : [],
        // Without Read Message History Discord refuses a reply that references the message: send it plainly.
        ...(access.reference ? { reply: { messageReference: message.id, failIfNotExists: false } } : {}),
      }),
    send: (content) => channel.send({ content }),
    typing: () => channel.sendTyping(),
  };
}
