/**
 * The bot's real permissions in a channel, through the real discord.js client and the emulator's
 * permission model (roles and channel overwrites; a refused request is 403 50013): where it may not
 * send it never generates a reply, where it may only react it only reacts.
 */
import { OverwriteType, PermissionFlagsBits, type TextChannel } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const { boot } = useBotFixture({ tempPrefix: 'bot-perms-' });

describe('channel permissions', () => {
  it('reacts only where it may not send, does nothing where it may neither send nor react, and never gets a 403', async () => {
    const scripted = new ScriptedEngine();
    // The bot's role adds nothing to @everyone's defaults, so channel overwrites decide.
    const { bot, emu } = await boot({ engine: scripted, channels: ['open', 'read-only', 'closed', 'no-reactions'], emulator: { botPermissions: 0n } });
    const [open, readOnly, closed, noReactions] = emu.channelIds as [string, string, string, string];
    const deny = (channelId: string, bits: bigint) => emu.setPermissionOverwrite(channelId, { id: emu.botRoleId, type: OverwriteType.Role, allow: '0', deny: bits.toString() });
    deny(readOnly, PermissionFlagsBits.SendMessages);
    deny(closed, PermissionFlagsBits.SendMessages | PermissionFlagsBits.AddReactions);
    deny(noReactions, PermissionFlagsBits.AddReactions);
    const client = bot.bot.client;
    await emu.waitFor(() => (client.channels.cache.get(noReactions) as TextChannel | undefined)?.permissionOverwrites.cache.size === 1);
    expect(emu.botPermissionsIn(readOnly) & PermissionFlagsBits.SendMessages).toBe(0n);

    const inReadOnly = emu.sendUserMessage({ channelId: readOnly, content: 'can you hear me?' });
    const inClosed = emu.sendUserMessage({ channelId: closed, content: 'anyone here?' });
    const inNoReactions = emu.sendUserMessage({ channelId: noReactions, content: 'no emoji please' });
    const inOpen = emu.sendUserMessage({ channelId: open, content: 'hello in the open' });
    await whenAnswered(emu, bot, inNoReactions.id);
    await whenAnswered(emu, bot, inOpen.id);
    await emu.waitFor(() => emu.reactions(readOnly, inReadOnly.id).length > 0);

    // The model replied only where the reply can be posted.
    expect(scripted.replied.sort()).toEqual(['hello in the open', 'no emoji please']);
    expect(emu.reactions(readOnly, inReadOnly.id).map((reaction) => reaction.emoji)).toEqual(['😐']);
    expect(repliesTo(emu, readOnly, inReadOnly.id)).toEqual([]);
    expect(emu.reactions(closed, inClosed.id)).toEqual([]);
    expect(repliesTo(emu, closed, inClosed.id)).toEqual([]);
    expect(emu.reactions(noReactions, inNoReactions.id)).toEqual([]);
    expect(repliesTo(emu, noReactions, inNoReactions.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo('no emoji please')]);
    expect(emu.reactions(open, inOpen.id).map((reaction) => reaction.emoji)).toContain('😐');
    // Nothing was even tried where it is not allowed (typing included).
    expect(emu.requests.filter((request) => request.status === 403)).toEqual([]);
    for (const channelId of [readOnly, closed]) {
      expect(emu.requests.filter((request) => request.path.startsWith(`/channels/${channelId}/`) && request.method !== 'PUT')).toEqual([]);
      expect(await bot.store.load(channelId)).toEqual([]);
    }
  });

  it('the emulator refuses a send without Send Messages with 403 50013, as Discord does', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine(), emulator: { botPermissions: 0n } });
    emu.setPermissionOverwrite(channelId, { id: emu.guildId, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.SendMessages.toString() });
    const channel = bot.bot.client.channels.cache.get(channelId) as TextChannel;
    await expect(channel.send('hello')).rejects.toMatchObject({ status: 403, code: 50013 });
  });
});
