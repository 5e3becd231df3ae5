import { PermissionFlagsBits, PermissionsBitField } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { accessFrom } from '../../src/discord/channelAccess.js';

const { SendMessages, SendMessagesInThreads, AddReactions, ReadMessageHistory, ViewChannel } = PermissionFlagsBits;
const bits = (...flags: bigint[]) => new PermissionsBitField(flags);

describe('accessFrom', () => {
  it('needs Send Messages in a channel, and Send Messages in Threads in a thread', () => {
    const threadsOnly = bits(ViewChannel, SendMessagesInThreads, ReadMessageHistory);
    expect(accessFrom(threadsOnly, false).send).toBe(false);
    expect(accessFrom(threadsOnly, true).send).toBe(true);
    const channelOnly = bits(ViewChannel, SendMessages, ReadMessageHistory);
    expect(accessFrom(channelOnly, false).send).toBe(true);
    expect(accessFrom(channelOnly, true).send).toBe(false);
  });

  it('reacts only with Add Reactions and Read Message History, and replies by reference only with the latter', () => {
    expect(accessFrom(bits(ViewChannel, AddReactions), false)).toEqual({ send: false, react: false, reference: false });
    expect(accessFrom(bits(ViewChannel, AddReactions, ReadMessageHistory), false)).toEqual({ send: false, react: true, reference: true });
    expect(accessFrom(bits(ViewChannel, SendMessages), false)).toEqual({ send: true, react: false, reference: false });
  });
});
