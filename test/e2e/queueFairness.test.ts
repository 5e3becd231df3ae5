/**
 * One busy channel must not shut the others out: QUEUE_MAX bounds a channel's backlog, and a
 * channel with nothing waiting always gets its place (real discord.js client, the emulator).
 */
import { describe, expect, it } from 'vitest';
import { QueueFullError } from '../../src/errors.js';
import { ScriptedEngine, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-fair-' });
const BUSY = new QueueFullError(0).message;

describe('a busy channel and a quiet one, QUEUE_MAX=4', () => {
  it("answers the quiet channel's first message while four messages wait in the busy one, and tells only the busy one it is busy", async () => {
    const scripted = new ScriptedEngine();
    scripted.hold();
    const { bot, emu } = await fixture.boot({ engine: scripted, channels: ['busy', 'quiet'], env: { QUEUE_MAX: '4', RATE_LIMIT_MESSAGES: '0' } });
    const [busyChannel, quietChannel] = emu.channelIds as [string, string];
    const waiting = ['one', 'two', 'three', 'four'].map((content) => emu.sendUserMessage({ channelId: busyChannel, content }));
    await emu.waitFor(() => bot.queue.pending('reply') === 4, { description: 'four replies queued in the busy channel' });
    const refused = emu.sendUserMessage({ channelId: busyChannel, content: 'five' });
    // Messages are handled in arrival order: once the quiet one has its place, the fifth was refused.
    const quiet = emu.sendUserMessage({ channelId: quietChannel, content: 'hello, anyone here?' });
    await emu.waitFor(() => bot.queue.pending('reply') === 5, { description: 'the quiet message queued' });
    scripted.release();
    // The busy notice answers the fifth message, so it posts after the earlier replies' first posts.
    await emu.waitFor(() => repliesTo(emu, busyChannel, refused.id).length === 1, { description: 'the fifth told busy' });
    await whenAnswered(emu, bot, quiet.id);
    for (const message of waiting) await whenAnswered(emu, bot, message.id);

    expect(repliesTo(emu, busyChannel, refused.id).map((reply) => reply.content)).toEqual([BUSY]);
    expect(repliesTo(emu, quietChannel, quiet.id).at(-1)!.content).toBe(ScriptedEngine.replyTo('hello, anyone here?'));
    expect((await bot.store.load(quietChannel)).map((turn) => turn.userText)).toEqual(['hello, anyone here?']);
    expect((await bot.store.load(busyChannel)).map((turn) => turn.userText)).toEqual(['one', 'two', 'three', 'four']);
  });
});
