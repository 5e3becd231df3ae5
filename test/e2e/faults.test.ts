/**
 * Discord misbehaving under the real discord.js client: scripted 429s and 5xx answers, the bot's
 * message deleted mid-stream, the gateway dropped mid-stream. Each is survived with nothing lost
 * and nothing duplicated.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, answeredCount, logEntries, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const { boot } = useBotFixture({ tempPrefix: 'bot-faults-' });

/** Twelve pieces, 60 ms apart: a reply that is posted early and then edited several times. */
const PIECES = Array.from({ length: 12 }, (_, i) => `part${i} `);
const FULL_TEXT = PIECES.join('').trim();

const MESSAGES_PATH = /^\/channels\/\d+\/messages$/;
const MESSAGE_PATH = /^\/channels\/\d+\/messages\/\d+$/;

describe('Discord faults', () => {
  it('lands the reaction, the reply and its edits when each is first answered with 429 Retry-After', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => PIECES, pauseMs: 60 }) });
    const faults = [
      emu.failNext({ method: 'PUT', path: /\/reactions\//, status: 429, retryAfter: 0.2 }),
      emu.failNext({ method: 'POST', path: MESSAGES_PATH, status: 429, retryAfter: 0.2 }),
      emu.failNext({ method: 'PATCH', path: MESSAGE_PATH, status: 429, retryAfter: 0.2 }),
    ];
    const message = emu.sendUserMessage({ channelId, content: 'rate limits everywhere' });
    await whenAnswered(emu, bot, message.id);
    expect(faults.map((fault) => fault.hits)).toEqual([1, 1, 1]);
    expect(emu.reactions(channelId, message.id).map((reaction) => reaction.emoji)).toEqual(['😐']);
    const replies = repliesTo(emu, channelId, message.id);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.content).toBe(FULL_TEXT);
    expect(replies[0]!.history.length).toBeGreaterThan(1);
    expect((await bot.store.load(channelId)).map((turn) => turn.reply)).toEqual([FULL_TEXT]);
  });

  it('sends the text that streamed during a rate-limited edit in one edit, not one edit per piece', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => PIECES, pauseMs: 60 }) });
    const message = emu.sendUserMessage({ channelId, content: 'slow discord' });
    await emu.waitFor(() => repliesTo(emu, channelId, message.id)[0]);
    const fault = emu.failNext({ method: 'PATCH', path: MESSAGE_PATH, status: 429, retryAfter: 1 }); // all pieces arrive while it waits
    await whenAnswered(emu, bot, message.id);
    expect(fault.hits).toBe(1);
    const [reply] = repliesTo(emu, channelId, message.id);
    expect(reply!.content).toBe(FULL_TEXT);
    // The first post, the rate-limited edit, then the rest at once: a handful of versions, not twelve.
    expect(reply!.history.length).toBeLessThanOrEqual(5);
  });

  it('retries a send answered with 500 and then 502, and the reply lands once', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine() });
    const faults = [emu.failNext({ method: 'POST', path: MESSAGES_PATH, status: 500 }), emu.failNext({ method: 'POST', path: MESSAGES_PATH, status: 502 })];
    const message = emu.sendUserMessage({ channelId, content: 'flaky server' });
    await whenAnswered(emu, bot, message.id);
    expect(faults.map((fault) => fault.hits)).toEqual([1, 1]);
    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo('flaky server')]);
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['flaky server']);
  });

  it('does not record a turn whose reply could not be sent after the retries, logs it, and answers the next message', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await boot({ engine: scripted });
    const outage = emu.failNext({ method: 'POST', path: MESSAGES_PATH, status: 502, times: 1000 });
    const lost = emu.sendUserMessage({ channelId, content: 'during the outage' });
    await emu.waitFor(() => logEntries(bot, 'reply failed').length === 1 && logEntries(bot, 'sending a notice failed').length === 1);
    expect(outage.hits).toBeGreaterThanOrEqual(4); // the first try and discord.js's 3 retries, at least
    expect(answeredCount(bot, lost.id)).toBe(0);
    expect(emu.botMessages(channelId)).toEqual([]);
    expect(await bot.store.load(channelId)).toEqual([]);
    expect(await bot.sessions.history(channelId)).toEqual([]);

    emu.clearFaults();
    const next = emu.sendUserMessage({ channelId, content: 'after the outage' });
    await whenAnswered(emu, bot, next.id);
    expect(repliesTo(emu, channelId, next.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo('after the outage')]);
    expect(scripted.historySeen.at(-1)).toEqual([]); // the model never saw the undelivered turn
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['after the outage']);
  });

  it('posts the reply anew when its message is deleted mid-stream: nothing is lost', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => PIECES, pauseMs: 60 }) });
    const message = emu.sendUserMessage({ channelId, content: 'tell me a story' });
    const first = await emu.waitFor(() => repliesTo(emu, channelId, message.id)[0]);
    emu.deleteUserMessage(channelId, first.id); // a moderator deletes the bot's half-written reply
    await whenAnswered(emu, bot, message.id);
    expect(emu.requests.some((request) => request.method === 'PATCH' && request.error?.code === 10008)).toBe(true);
    const shown = repliesTo(emu, channelId, message.id).filter((reply) => !reply.deleted);
    expect(shown.map((reply) => reply.content)).toEqual([FULL_TEXT]);
  });

  it('does not post a second copy when an edit fails with 500 even after the retries', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => PIECES, pauseMs: 60 }) });
    const message = emu.sendUserMessage({ channelId, content: 'tell me a story' });
    await emu.waitFor(() => repliesTo(emu, channelId, message.id)[0]);
    const fault = emu.failNext({ method: 'PATCH', path: MESSAGE_PATH, status: 500, times: 4 }); // one edit: the try and 3 retries
    await whenAnswered(emu, bot, message.id);
    expect(fault.hits).toBe(4);
    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([FULL_TEXT]);
  });

  it('resumes after the gateway drops mid-stream: the message sent meanwhile is answered once, none twice', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine({ script: () => PIECES, pauseMs: 60 }) });
    const before = emu.sendUserMessage({ channelId, content: 'before the drop' });
    await emu.waitFor(() => repliesTo(emu, channelId, before.id)[0]);
    const resumesBefore = emu.resumeCount;
    emu.dropGateway();
    const meanwhile = emu.sendUserMessage({ channelId, content: 'while disconnected' });
    await whenAnswered(emu, bot, before.id);
    await whenAnswered(emu, bot, meanwhile.id);
    const after = emu.sendUserMessage({ channelId, content: 'after the resume' });
    await whenAnswered(emu, bot, after.id);

    expect(emu.resumeCount).toBe(resumesBefore + 1);
    expect(logEntries(bot, 'gateway resumed')).toHaveLength(1);
    for (const message of [before, meanwhile, after]) {
      expect(answeredCount(bot, message.id)).toBe(1);
      expect(repliesTo(emu, channelId, message.id)).toHaveLength(1);
    }
    expect(repliesTo(emu, channelId, before.id)[0]!.content).toBe(FULL_TEXT);
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['before the drop', 'while disconnected', 'after the resume']);
  });

  it('never writes its token to the log, even when requests fail', async () => {
    const { bot, emu, channelId } = await boot({ engine: new ScriptedEngine() });
    emu.failNext({ method: 'PUT', path: /\/reactions\//, status: 403, body: { code: 50013, message: 'Missing Permissions' } });
    emu.failNext({ method: 'POST', path: MESSAGES_PATH, status: 500, times: 12 });
    const message = emu.sendUserMessage({ channelId, content: 'break things' });
    await emu.waitFor(() => logEntries(bot, 'sending a notice failed').length === 1);
    expect(answeredCount(bot, message.id)).toBe(0);
    const warnings = bot.logs.filter((line) => /"level":"(warn|error)"/.test(line));
    expect(warnings.length).toBeGreaterThanOrEqual(3);
    expect(bot.logs.join('\n')).not.toContain(emu.token);
  });
});
