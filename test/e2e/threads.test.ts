/**
 * Threads through the real discord.js client: a thread (public, private, or a forum post) is a
 * session of its own, keyed by the thread's id, and never shares history with its parent channel.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-threads-' });

describe('threads', () => {
  it('answers in a public thread with its own history; the parent channel and the thread never see each other', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted });
    const threadId = emu.addThread(channelId, { name: 'side topic' });
    await emu.waitFor(() => bot.bot.client.channels.cache.get(threadId)?.isThread());

    for (const [where, content] of [
      [channelId, 'parent one'],
      [threadId, 'thread one'],
      [channelId, 'parent two'],
      [threadId, 'thread two'],
    ] as const) {
      const message = emu.sendUserMessage({ channelId: where, content });
      await whenAnswered(emu, bot, message.id);
      expect(repliesTo(emu, where, message.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo(content)]);
    }

    expect(scripted.historySeen).toEqual([[], [], ['parent one'], ['thread one']]);
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['parent one', 'parent two']);
    expect((await bot.store.load(threadId)).map((turn) => turn.userText)).toEqual(['thread one', 'thread two']);
  });

  it('answers in a private thread and in a forum post, each a session of its own', async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine() });
    const privateThread = emu.addThread(channelId, { name: 'secret', kind: 'private' });
    const forum = emu.addForumChannel('help');
    const post = emu.addThread(forum, { name: 'my question', kind: 'forum' });
    await emu.waitFor(() => [privateThread, post].every((id) => bot.bot.client.channels.cache.get(id)?.isThread()));

    const inPrivate = emu.sendUserMessage({ channelId: privateThread, content: 'between us' });
    const inPost = emu.sendUserMessage({ channelId: post, content: 'how do I start?' });
    await whenAnswered(emu, bot, inPrivate.id);
    await whenAnswered(emu, bot, inPost.id);

    expect(repliesTo(emu, privateThread, inPrivate.id)).toHaveLength(1);
    expect(repliesTo(emu, post, inPost.id)).toHaveLength(1);
    expect((await bot.store.load(privateThread)).map((turn) => turn.userText)).toEqual(['between us']);
    expect((await bot.store.load(post)).map((turn) => turn.userText)).toEqual(['how do I start?']);
    expect(await bot.store.load(channelId)).toEqual([]);
    expect(await bot.store.load(forum)).toEqual([]);
  });
});
