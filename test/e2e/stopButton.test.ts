/**
 * The Stop button through the real discord.js client: who may stop a reply, what a stopped reply
 * shows and records, and a stop while the reply still waits.
 */
import { ComponentType, InteractionResponseType, PermissionFlagsBits, type APIButtonComponentWithCustomId } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { STOPPED_BEFORE_START, WAITING_PLACEHOLDER } from '../../src/discord/answerMessage.js';
import { STOPPED_MARKER } from '../../src/sessions/ChannelSessions.js';
import { ScriptedEngine, repliesTo, whenAnswered } from '../support/botHarness.js';
import type { BotMessageRecord, DiscordEmulator } from '../support/DiscordEmulator.js';
import { createTinyEngine, useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-stop-' });
const pieces = Array.from({ length: 40 }, (_, i) => `word${i} `);

/** The custom id of the Stop button on a bot message, if it has one. */
function stopButtonOf(message: BotMessageRecord | undefined): string | undefined {
  const row = message?.components[0];
  if (row?.type !== ComponentType.ActionRow) return undefined;
  return (row.components[0] as APIButtonComponentWithCustomId | undefined)?.custom_id;
}

function firstResponse(emu: DiscordEmulator, interactionId: string) {
  return emu.waitFor(() => emu.interactionResponses(interactionId)[0]);
}

describe('the Stop button', () => {
  it('is on a streaming reply; the author stops it: the text so far stays, marked, the button goes, and the history records that text', async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine({ script: () => pieces, pauseMs: 50 }) });
    const message = emu.sendUserMessage({ content: 'tell me a long story' });
    const reply = await emu.waitFor(() => repliesTo(emu, channelId, message.id).find((posted) => posted.content.length > 0));
    const customId = stopButtonOf(reply);
    expect(customId).toBeDefined();

    const click = emu.clickButton({ messageId: reply.id, customId: customId! });
    const clickedAt = Date.now();
    await whenAnswered(emu, bot, message.id);

    expect((await firstResponse(emu, click.id)).callbackType).toBe(InteractionResponseType.DeferredMessageUpdate);
    const [stopped] = repliesTo(emu, channelId, message.id);
    expect(stopped!.content.endsWith(STOPPED_MARKER.trim())).toBe(true);
    expect(stopped!.content.length).toBeLessThan(pieces.join('').length);
    expect(stopButtonOf(stopped)).toBeUndefined();
    expect((await bot.store.load(channelId)).map((turn) => turn.reply)).toEqual([stopped!.content]);
    const lastEdit = stopped!.history.at(-1)!.time;
    console.log(`Stop: click to last edit ${lastEdit - clickedAt} ms`);
    expect(lastEdit - clickedAt).toBeLessThan(2000);
  });

  it('lets the author stop their own reply without Manage Messages', async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine({ script: () => pieces, pauseMs: 50 }) });
    const author = { username: 'bea' };
    const message = emu.sendUserMessage({ content: 'a long one please', author });
    const reply = await emu.waitFor(() => repliesTo(emu, channelId, message.id).find((posted) => posted.content.length > 0));

    const click = emu.clickButton({ messageId: reply.id, customId: stopButtonOf(reply)!, user: author, permissions: PermissionFlagsBits.SendMessages });
    await whenAnswered(emu, bot, message.id);

    expect((await firstResponse(emu, click.id)).callbackType).toBe(InteractionResponseType.DeferredMessageUpdate);
    expect(repliesTo(emu, channelId, message.id)[0]!.content.endsWith(STOPPED_MARKER.trim())).toBe(true);
  });

  it('refuses anyone else with a private answer, lets a member with Manage Messages stop it, and answers a click on an ended reply', async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine({ script: () => pieces, pauseMs: 50 }) });
    const message = emu.sendUserMessage({ content: 'go on and on' });
    const reply = await emu.waitFor(() => repliesTo(emu, channelId, message.id).find((posted) => posted.content.length > 0));
    const customId = stopButtonOf(reply)!;

    const stranger = emu.clickButton({ messageId: reply.id, customId, user: { username: 'mallory' }, permissions: PermissionFlagsBits.SendMessages });
    const refusal = await firstResponse(emu, stranger.id);
    expect(refusal).toMatchObject({ ephemeral: true, content: 'Only the author or a moderator can stop this.' });
    const moderator = emu.clickButton({ messageId: reply.id, customId, user: { username: 'mod' }, permissions: PermissionFlagsBits.ManageMessages });
    await whenAnswered(emu, bot, message.id);
    expect((await firstResponse(emu, moderator.id)).callbackType).toBe(InteractionResponseType.DeferredMessageUpdate);
    expect(repliesTo(emu, channelId, message.id)[0]!.content.endsWith(STOPPED_MARKER.trim())).toBe(true);

    const late = emu.clickButton({ messageId: reply.id, customId });
    expect(await firstResponse(emu, late.id)).toMatchObject({ ephemeral: true, content: 'That reply has already ended.' });
    const unknown = emu.clickButton({ messageId: reply.id, customId: 'stop:123456789012345678' });
    expect(await firstResponse(emu, unknown.id)).toMatchObject({ ephemeral: true, content: 'That reply has already ended.' });
  });

  it('stops a reply still waiting: its placeholder says so at once, the model never gets it, and the next message is answered', async () => {
    const scripted = new ScriptedEngine();
    // One reply at a time, so this one waits for another channel's.
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted, channels: ['general', 'busy'], env: { PARALLEL_REPLIES: '1' } });
    // The reply it waits for is in another channel: in its own, a placeholder waits for the earlier reply's first post.
    const busy = emu.channelIds[1]!;
    scripted.hold();
    const first = emu.sendUserMessage({ channelId: busy, content: 'first' });
    await emu.waitFor(() => scripted.replied.length === 1);
    const second = emu.sendUserMessage({ content: 'second' });
    const placeholder = await emu.waitFor(() => repliesTo(emu, channelId, second.id)[0]);
    expect(placeholder.content).toBe(WAITING_PLACEHOLDER);

    emu.clickButton({ messageId: placeholder.id, customId: stopButtonOf(placeholder)! });
    await emu.waitFor(() => repliesTo(emu, channelId, second.id)[0]!.content === STOPPED_BEFORE_START);
    expect(scripted.replied).toEqual(['first']);
    scripted.release();
    await whenAnswered(emu, bot, first.id);
    const third = emu.sendUserMessage({ content: 'third' });
    await whenAnswered(emu, bot, third.id);

    expect(scripted.replied).toEqual(['first', 'third']);
    expect(stopButtonOf(repliesTo(emu, channelId, second.id)[0])).toBeUndefined();
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['third']);
    expect((await bot.store.load(busy)).map((turn) => turn.userText)).toEqual(['first']);
  });

  it('stops the real model mid-reply (tiny model): the shown text is kept, the channel answers its next message from there (measured)', async () => {
    const engine = await createTinyEngine({ replyMaxTokens: 400 });
    try {
      const { bot, emu, channelId } = await fixture.boot({ engine });
      const message = emu.sendUserMessage({ content: 'tell me a very long story' });
      const reply = await emu.waitFor(() => repliesTo(emu, channelId, message.id).find((posted) => posted.content.length > 0), { timeoutMs: 20_000 });
      emu.clickButton({ messageId: reply.id, customId: stopButtonOf(reply)! });
      const clickedAt = Date.now();
      await whenAnswered(emu, bot, message.id);

      const [stopped] = repliesTo(emu, channelId, message.id);
      const lastEdit = stopped!.history.at(-1)!.time;
      console.log(`Stop on the tiny model: click to last edit ${lastEdit - clickedAt} ms`);
      expect(stopped!.content.endsWith(STOPPED_MARKER.trim())).toBe(true);
      expect((await bot.store.load(channelId)).map((turn) => turn.reply)).toEqual([stopped!.content]);
      const next = emu.sendUserMessage({ content: 'ok, shorter please' });
      await whenAnswered(emu, bot, next.id, 60_000);
      expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['tell me a very long story', 'ok, shorter please']);
    } finally {
      await fixture.bot.stop();
      await engine.dispose();
    }
  });
});
