/**
 * PARALLEL_REPLIES through the real discord.js client and the emulator: replies of different
 * channels generate at the same time, a Stop ends only its own, a channel's answers stay in
 * message order, and a reply waits (⏳) only when every slot is taken.
 */
import { ComponentType, type APIButtonComponentWithCustomId } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { RESTART_NOTICE, WAITING_PLACEHOLDER } from '../../src/discord/answerMessage.js';
import type { ReplyRequest, ReplyResult } from '../../src/engine/ChatReplies.js';
import type { ModelEngine } from '../../src/engine/Engine.js';
import type { SentimentResult } from '../../src/engine/SentimentClassifier.js';
import { STOPPED_MARKER } from '../../src/sessions/ChannelSessions.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ScriptedEngine, repliesTo, whenAnswered } from '../support/botHarness.js';
import type { BotMessageRecord } from '../support/DiscordEmulator.js';
import { createTinyEngine, useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-parallel-' });

/** The real engine, counting the replies generating inside it at the same time. */
class OverlapCounter implements ModelEngine {
  running = 0;
  mostAtOnce = 0;
  constructor(private readonly inner: ModelEngine) {}
  classify(text: string): Promise<SentimentResult> {
    return this.inner.classify(text);
  }
  async reply(request: ReplyRequest): Promise<ReplyResult> {
    this.running++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    try {
      return await this.inner.reply(request);
    } finally {
      this.running--;
    }
  }
  fitMessage(userName: string, userText: string) {
    return this.inner.fitMessage(userName, userText);
  }
  forget(channelId: string): void {
    this.inner.forget(channelId);
  }
  status() {
    return this.inner.status();
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

function stopButtonOf(message: BotMessageRecord | undefined): string | undefined {
  const row = message?.components[0];
  if (row?.type !== ComponentType.ActionRow) return undefined;
  return (row.components[0] as APIButtonComponentWithCustomId | undefined)?.custom_id;
}

describe('PARALLEL_REPLIES=2', () => {
  it("generates two channels' replies at the same time on the tiny model, and keeps each channel's answers in message order", async () => {
    const tiny = await createTinyEngine({ replyMaxTokens: 64 });
    const engine = new OverlapCounter(tiny);
    try {
      const { bot, emu } = await fixture.boot({ engine, channels: ['a', 'b'], env: { PARALLEL_REPLIES: '2' } });
      const [a, b] = emu.channelIds as [string, string];
      const messages = [
        emu.sendUserMessage({ channelId: a, content: 'first in a' }),
        emu.sendUserMessage({ channelId: b, content: 'first in b' }),
        emu.sendUserMessage({ channelId: a, content: 'second in a' }),
        emu.sendUserMessage({ channelId: b, content: 'second in b' }),
      ];
      for (const message of messages) await whenAnswered(emu, bot, message.id, 120_000);

      expect(engine.mostAtOnce).toBe(2);
      for (const [channelId, index] of [[a, 0], [b, 1]] as const) {
        const stored = await bot.store.load(channelId);
        expect(stored.map((turn) => turn.userText)).toEqual([messages[index]!.content, messages[index + 2]!.content]);
        const shown = emu.botMessages(channelId).filter((posted) => !posted.deleted);
        expect(shown.map((posted) => posted.replyTo)).toEqual([messages[index]!.id, messages[index + 2]!.id]);
        expect(shown.map((posted) => posted.content)).toEqual(stored.map((turn) => turn.reply));
      }
    } finally {
      await tiny.dispose();
    }
  });

  it('streams two replies at once without a waiting notice, stops one while the other runs to its end, and makes a third channel wait for a slot', async () => {
    const pieces = Array.from({ length: 30 }, (_, i) => `word${i} `);
    const scripted = new ScriptedEngine({ script: () => pieces, pauseMs: 60 });
    const { bot, emu } = await fixture.boot({ engine: scripted, channels: ['a', 'b', 'c'], env: { PARALLEL_REPLIES: '2' } });
    const [a, b, c] = emu.channelIds as [string, string, string];
    const inA = emu.sendUserMessage({ channelId: a, content: 'a long one in a' });
    const inB = emu.sendUserMessage({ channelId: b, content: 'a long one in b' });
    // Both on screen and streaming before either has ended.
    const [replyA, replyB] = await emu.waitFor(() => {
      const shown = [repliesTo(emu, a, inA.id)[0], repliesTo(emu, b, inB.id)[0]];
      return shown.every((posted) => posted?.content.startsWith('word')) && shown;
    });
    expect(bot.queue.running('reply')).toBe(2);
    const inC = emu.sendUserMessage({ channelId: c, content: 'and one in c' });
    const placeholderC = await emu.waitFor(() => repliesTo(emu, c, inC.id)[0]);
    expect(placeholderC.content).toBe(WAITING_PLACEHOLDER);

    emu.clickButton({ messageId: replyA!.id, customId: stopButtonOf(replyA)! });
    await whenAnswered(emu, bot, inA.id);
    expect(bot.queue.running('reply')).toBe(2); // b still runs, c took a's slot
    await whenAnswered(emu, bot, inB.id);
    await whenAnswered(emu, bot, inC.id);

    const full = pieces.join('').trim();
    const stoppedA = repliesTo(emu, a, inA.id)[0]!;
    expect(stoppedA.content.endsWith(STOPPED_MARKER.trim())).toBe(true);
    expect(stoppedA.content.length).toBeLessThan(full.length);
    for (const posted of [replyA!, replyB!]) expect(posted.history.map((edit) => edit.content)).not.toContain(WAITING_PLACEHOLDER);
    expect(repliesTo(emu, b, inB.id)[0]!.content).toBe(full);
    expect(repliesTo(emu, c, inC.id)[0]!.content).toBe(full);
    expect((await bot.store.load(a)).map((turn) => turn.reply)).toEqual([stoppedA.content]);
    expect((await bot.store.load(b)).map((turn) => turn.reply)).toEqual([full]);
    expect((await bot.store.load(c)).map((turn) => turn.reply)).toEqual([full]);
  });

  it('on shutdown with two replies running and one waiting, answers each message exactly once with the restart notice and records none', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu } = await fixture.boot({ engine: scripted, channels: ['a', 'b', 'c'], env: { PARALLEL_REPLIES: '2' } });
    const [a, b, c] = emu.channelIds as [string, string, string];
    scripted.hold();
    const running = [emu.sendUserMessage({ channelId: a, content: 'running in a' }), emu.sendUserMessage({ channelId: b, content: 'running in b' })];
    await emu.waitFor(() => scripted.replied.length === 2);
    const waiting = emu.sendUserMessage({ channelId: c, content: 'waiting in c' });
    await emu.waitFor(() => emu.reactions(c, waiting.id).some((reaction) => reaction.emoji === '⏳'));
    expect(bot.queue.running('reply')).toBe(2);

    await bot.stop(); // what SIGTERM does

    for (const message of [...running, waiting]) {
      expect(repliesTo(emu, message.channel_id, message.id).map((reply) => reply.content)).toEqual([RESTART_NOTICE]);
    }
    expect(scripted.replied).toEqual(['running in a', 'running in b']);
    const store = await KeyvHistoryStore.open({ url: bot.config.DATABASE_URL });
    for (const id of [a, b, c]) expect(await store.load(id)).toEqual([]);
    await store.dispose();
  });
});
