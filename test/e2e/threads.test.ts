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

  it('with CHANNEL_IDS, answers in the listed channel, its threads and the posts of a listed forum, and nowhere else', async () => {
    const scripted = new ScriptedEngine();
    const { emu } = await fixture.boot({ engine: scripted, channels: ['help', 'offtopic'] });
    const [help, offtopic] = emu.channelIds as [string, string];
    const forum = emu.addForumChannel('questions');
    // The ids are known once the guild exists: the bot that reads CHANNEL_IDS starts then.
    const listed = await fixture.restart({ env: { CHANNEL_IDS: `${help},${forum}` } });
    const helpThread = emu.addThread(help, { name: 'install trouble' });
    const post = emu.addThread(forum, { name: 'how do I start?', kind: 'forum' });
    const offtopicThread = emu.addThread(offtopic, { name: 'memes' });
    await emu.waitFor(() => [helpThread, post, offtopicThread].every((id) => listed.bot.client.channels.cache.get(id)?.isThread()));

    // The shut-out ones go first: the sentiment lane is one queue, so had they been taken, they would be answered first.
    const shutOut = [emu.sendUserMessage({ channelId: offtopic, content: 'not here' }), emu.sendUserMessage({ channelId: offtopicThread, content: 'nor here' })];
    const answered = [
      emu.sendUserMessage({ channelId: help, content: 'in help' }),
      emu.sendUserMessage({ channelId: helpThread, content: 'in a help thread' }),
      emu.sendUserMessage({ channelId: post, content: 'in a forum post' }),
    ];
    for (const message of answered) await whenAnswered(emu, listed, message.id);

    expect(answered.map((message) => repliesTo(emu, message.channel_id, message.id).map((reply) => reply.content))).toEqual([
      [ScriptedEngine.replyTo('in help')],
      [ScriptedEngine.replyTo('in a help thread')],
      [ScriptedEngine.replyTo('in a forum post')],
    ]);
    expect(scripted.replied).toEqual(['in help', 'in a help thread', 'in a forum post']);
    for (const message of shutOut) {
      expect(repliesTo(emu, message.channel_id, message.id)).toEqual([]);
      expect(emu.reactions(message.channel_id, message.id)).toEqual([]);
    }
  });
});
