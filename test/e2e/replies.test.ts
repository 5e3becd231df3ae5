/**
 * How replies look in Discord when things go wrong or pile up, through the real discord.js client
 * and the emulator: shutdown with messages waiting, a reply failing mid-stream, code blocks split
 * over two messages, the per-channel edit budget, duplicate deliveries, discord.js's message cache.
 */
import type { GatewayMessageCreateDispatchData, TextChannel } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { FAILED_MARKER, RESTART_NOTICE } from '../../src/discord/answerMessage.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { USERS_CACHED } from '../../src/discord/discordClient.js';
import { ScriptedEngine, answeredCount, logEntries, repliesTo, whenAnswered } from '../support/botHarness.js';
import type { DiscordEmulator } from '../support/DiscordEmulator.js';
import { useBotFixture } from '../support/e2eFixture.js';

const { boot, restart } = useBotFixture({ tempPrefix: 'bot-replies-' });

function lastAuthorId(emu: DiscordEmulator, channelId: string): string {
  return emu.channelMessages(channelId).at(-1)!.author.id;
}
const MESSAGE_PATH = /^\/channels\/\d+\/messages\/\d+$/;

describe('replies at the Discord edge', () => {
  it('on shutdown, answers every message still waiting exactly once, takes its ⏳ back, and records none', async () => {
    const scripted = new ScriptedEngine();
    // One reply at a time, so the other channel's message waits too (several running: parallelReplies.test.ts).
    const { bot, emu, channelId } = await boot({ engine: scripted, channels: ['general', 'other'], env: { PARALLEL_REPLIES: '1' } });
    const other = emu.channelIds[1]!;
    scripted.hold();
    const running = emu.sendUserMessage({ channelId, content: 'the running one' });
    await emu.waitFor(() => scripted.replied.length === 1);
    const waiting = [
      emu.sendUserMessage({ channelId, content: 'waiting 1' }),
      emu.sendUserMessage({ channelId: other, content: 'waiting 2' }),
      emu.sendUserMessage({ channelId, content: 'waiting 3' }),
    ];
    await emu.waitFor(() => waiting.every((m) => emu.reactions(m.channel_id, m.id).some((reaction) => reaction.emoji === '⏳')));

    await bot.stop(); // what SIGTERM does

    for (const message of [running, ...waiting]) {
      expect(repliesTo(emu, message.channel_id, message.id).map((reply) => reply.content)).toEqual([RESTART_NOTICE]);
      expect(emu.reactions(message.channel_id, message.id).filter((reaction) => reaction.emoji === '⏳' && !reaction.removed)).toEqual([]);
    }
    expect(scripted.replied).toEqual(['the running one']);
    const store = await KeyvHistoryStore.open({ url: bot.config.DATABASE_URL });
    for (const id of [channelId, other]) expect(await store.load(id)).toEqual([]);
    await store.dispose();
  });

  it('marks a reply that fails mid-stream as failed in the message itself, with no separate notice', async () => {
    const failing = new ScriptedEngine({ script: () => ['first part ', 'second part '], pauseMs: 150 });
    const streamThenFail = failing.reply.bind(failing);
    failing.reply = async (request) => {
      await streamThenFail(request);
      throw new Error('llama_decode failed mid-stream (detail for the log only)');
    };
    const { bot, emu, channelId } = await boot({ engine: failing });
    const message = emu.sendUserMessage({ channelId, content: 'start and break' });
    await emu.waitFor(() => logEntries(bot, 'reply failed').length === 1);
    const [reply] = await emu.waitFor(() => {
      const replies = repliesTo(emu, channelId, message.id);
      return replies[0]?.content.endsWith(FAILED_MARKER.trim()) && replies;
    });
    expect(reply!.content).toBe(('first part second part ' + FAILED_MARKER).trim());
    await new Promise((resolve) => setTimeout(resolve, 200)); // room for a stray "Sorry" to show up
    expect(emu.botMessages(channelId)).toHaveLength(1);
    expect(await bot.store.load(channelId)).toEqual([]);
  });

  it('keeps a code block opened mid-line a code block in both messages of a long reply', async () => {
    const code = Array.from({ length: 150 }, (_, i) => `console.log("line ${i}");`).join('\n');
    const text = 'Here it is: ```js\n' + code + '\n``` and that is all.';
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => [text] }) });
    const message = emu.sendUserMessage({ channelId, content: 'show me code' });
    await whenAnswered(emu, bot, message.id);
    const shown = emu.botMessages(channelId).map((reply) => reply.content);
    expect(shown).toHaveLength(2);
    for (const content of shown) expect((content.match(/```/g) ?? []).length % 2).toBe(0);
    expect(shown[0]!.startsWith('Here it is: ```js\n')).toBe(true);
    expect(shown[1]!.startsWith('```js\n')).toBe(true);
    expect(shown[1]!.endsWith('``` and that is all.')).toBe(true);
  });

  it('keeps one edit budget per channel: three replies in a row never make more than 5 edits in any 5 s', async () => {
    const pieces = Array.from({ length: 8 }, (_, i) => `word${i} `);
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => pieces, pauseMs: 150 }), editIntervalMs: 300 });
    const messages = ['one', 'two', 'three'].map((content) => emu.sendUserMessage({ channelId, content }));
    for (const message of messages) await whenAnswered(emu, bot, message.id, 40_000);
    const edits = emu.requests.filter((request) => request.method === 'PATCH' && MESSAGE_PATH.test(request.path)).map((request) => request.time);
    const busiest = Math.max(...edits.map((start) => edits.filter((time) => time >= start && time - start < 5000).length));
    expect(edits.length).toBeGreaterThan(5);
    expect(busiest).toBeLessThanOrEqual(5);
    for (const message of messages) expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([pieces.join('').trim()]);
  }, 60_000);

  it('answers a message delivered twice once, whether the copy comes at once or is replayed on a resume', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await boot({ engine: scripted });
    const first = emu.sendUserMessage({ channelId, content: 'hello twice' });
    emu.redeliverMessage(first.id);
    await whenAnswered(emu, bot, first.id);
    const resumes = emu.resumeCount;
    emu.dropGateway();
    emu.redeliverMessage(first.id);
    const second = emu.sendUserMessage({ channelId, content: 'sent while disconnected' });
    emu.redeliverMessage(second.id);
    await whenAnswered(emu, bot, second.id);
    await emu.waitFor(() => emu.resumeCount > resumes);
    const third = emu.sendUserMessage({ channelId, content: 'after the resume' });
    await whenAnswered(emu, bot, third.id);

    const deliveries = emu.gatewayLog.filter((entry) => entry.direction === 'out' && entry.t === 'MESSAGE_CREATE').length;
    expect(deliveries).toBeGreaterThanOrEqual(6); // three messages, three copies, and the bot's own replies
    expect(scripted.replied).toEqual(['hello twice', 'sent while disconnected', 'after the resume']);
    for (const message of [first, second, third]) {
      expect(answeredCount(bot, message.id)).toBe(1);
      expect(repliesTo(emu, channelId, message.id)).toHaveLength(1);
    }
  });

  it('remembers only the newest seenMessagesKept message ids: a copy of an older message is taken as new, one of a newer is not', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await boot({ engine: scripted, seenMessagesKept: 3 });
    const messages: GatewayMessageCreateDispatchData[] = [];
    for (const content of ['one', 'two', 'three', 'four']) {
      const message = emu.sendUserMessage({ channelId, content });
      await whenAnswered(emu, bot, message.id);
      messages.push(message);
    }
    emu.redeliverMessage(messages[3]!.id);
    emu.redeliverMessage(messages[0]!.id);
    await emu.waitFor(() => answeredCount(bot, messages[0]!.id) === 2);
    const last = emu.sendUserMessage({ channelId, content: 'five' });
    await whenAnswered(emu, bot, last.id);

    expect(scripted.replied).toEqual(['one', 'two', 'three', 'four', 'one', 'five']);
    expect(answeredCount(bot, messages[3]!.id)).toBe(1);
  });

  it('keeps no messages in discord.js’s cache, however many pass through', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine() });
    for (let i = 0; i < 5; i++) await whenAnswered(emu, bot, emu.sendUserMessage({ channelId, content: `message ${i}` }).id);
    const channel = bot.bot.client.channels.cache.get(channelId) as TextChannel;
    expect(emu.channelMessages(channelId)).toHaveLength(10);
    expect(channel.messages.cache.size).toBe(0);
  });

  it('keeps at most USERS_CACHED users and members in discord.js’s caches however many authors pass, its own user and member always', async () => {
    const { emu } = await boot({ engine: new ScriptedEngine(), channels: ['general', 'quiet'] });
    const [busy, quiet] = emu.channelIds as [string, string];
    // Messages in an unlisted channel are not answered, but discord.js caches their authors all the same.
    const bot = await restart({ env: { CHANNEL_IDS: quiet } });
    const { client } = bot.bot;
    for (let i = 0; i < USERS_CACHED + 200; i++) emu.sendUserMessage({ channelId: busy, content: `hello ${i}`, author: { username: `author${i}` } });
    const guild = client.guilds.cache.get(emu.guildId)!;
    await emu.waitFor(() => client.users.cache.has(lastAuthorId(emu, busy)), { timeoutMs: 30_000, description: 'the last author seen' });

    expect(client.users.cache.size).toBeLessThanOrEqual(USERS_CACHED);
    expect(guild.members.cache.size).toBeLessThanOrEqual(USERS_CACHED);
    expect(client.users.cache.has(emu.botUser.id)).toBe(true);
    expect(guild.members.me?.id).toBe(emu.botUser.id);
    // Still answering, its permissions read from its own cached member.
    const question = emu.sendUserMessage({ channelId: quiet, content: 'still there?' });
    await whenAnswered(emu, bot, question.id);
    expect(repliesTo(emu, quiet, question.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo('still there?')]);
  }, 60_000);
});
