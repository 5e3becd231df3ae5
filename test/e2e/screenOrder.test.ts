/**
 * What a channel shows, seen from outside through the real discord.js client: the replies stand
 * in the order of the messages they answer, whatever waits behind what.
 */
import { describe, expect, it } from 'vitest';
import { WAITING_PLACEHOLDER } from '../../src/discord/answerMessage.js';
import { ScriptedEngine, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-screen-order-' });

describe('replies on screen', () => {
  it('three channels of two messages each: in every channel the answers stand in message order, the second waiting under ⏳ until the first has posted', async () => {
    const scripted = new ScriptedEngine({ script: (text) => [`reply to ${text}`, ' (done)'], pauseMs: 30 });
    // One reply at a time: the first channel's held reply keeps the other channels' first replies waiting too.
    const { bot, emu } = await fixture.boot({ engine: scripted, channels: ['a', 'b', 'c'], env: { PARALLEL_REPLIES: '1' } });
    const channels = emu.channelIds;
    scripted.hold();
    const firsts = channels.map((channelId) => emu.sendUserMessage({ channelId, content: `first in ${channelId}` }));
    const seconds = channels.map((channelId) => emu.sendUserMessage({ channelId, content: `second in ${channelId}` }));
    // Every second message waits (⏳) while the first reply of the first channel is held.
    await emu.waitFor(() => seconds.every((message) => emu.reactions(message.channel_id, message.id).some((reaction) => reaction.emoji === '⏳')));
    await emu.waitFor(() => emu.botMessages().filter((posted) => posted.content === WAITING_PLACEHOLDER).length >= 2);
    scripted.release();
    for (const message of [...firsts, ...seconds]) await whenAnswered(emu, bot, message.id);

    for (const [index, channelId] of channels.entries()) {
      const shown = emu.botMessages(channelId).filter((posted) => !posted.deleted);
      expect(shown.map((posted) => posted.replyTo)).toEqual([firsts[index]!.id, seconds[index]!.id]);
      expect(shown.map((posted) => posted.content)).toEqual([`reply to first in ${channelId} (done)`, `reply to second in ${channelId} (done)`]);
    }
  });
});
