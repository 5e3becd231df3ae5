/**
 * Load through the real discord.js client and the Discord emulator, on the tiny model: channels ×
 * messages sent as fast as the emulator can, against a small bounded queue. Every message is either
 * answered exactly once or told "busy" exactly once; none is lost, none answered twice, and each
 * channel's answered messages keep their order. A second identical burst does not grow memory.
 *
 * Defaults are small for `npm test` (10 channels × 5 messages). The full run:
 *   LOAD_CHANNELS=50 LOAD_MESSAGES=20 npx vitest run test/e2e/load.test.ts
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/Engine.js';
import { QueueFullError } from '../../src/errors.js';
import { answeredCount, repliesTo, whenAnswered, type RunningBot } from '../support/botHarness.js';
import type { DiscordEmulator } from '../support/DiscordEmulator.js';
import { createTinyEngine, useBotFixture } from '../support/e2eFixture.js';

const CHANNELS = Number(process.env.LOAD_CHANNELS ?? 10);
const MESSAGES = Number(process.env.LOAD_MESSAGES ?? 5);
const QUEUE_MAX = 16;
/** RSS may grow this much from the first burst to the second: caches warming up, not a leak. */
const RSS_ALLOWANCE = 40 * 1024 * 1024;
const BUSY = new QueueFullError(0).message;

let engine: Engine | undefined;
const { boot } = useBotFixture({ tempPrefix: 'bot-load-' });

afterAll(async () => {
  await engine?.dispose();
});

/**
 * RSS once garbage is collected, so the number is what the process holds on to, not what a
 * collection happened not to free yet (the same gc() that `node --expose-gc` gives).
 */
function retainedRss(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().rss;
}

interface Sent {
  channelId: string;
  id: string;
  content: string;
}

/** Sends every message of a burst at once, message by message across the channels. */
function burst(emu: DiscordEmulator, round: number): Sent[] {
  const sent: Sent[] = [];
  for (let m = 0; m < MESSAGES; m++) {
    for (const channelId of emu.channelIds) {
      const content = `burst ${round} message ${m}`;
      sent.push({ channelId, id: emu.sendUserMessage({ channelId, content }).id, content });
    }
  }
  return sent;
}

/** Waits until every message got its reply or its "busy" notice and the queue is idle. */
async function settled(emu: DiscordEmulator, bot: RunningBot, sent: Sent[]): Promise<void> {
  await emu.waitFor(
    () =>
      bot.queue.pending('reply') === 0 &&
      bot.queue.pending('sentiment') === 0 &&
      sent.every(({ channelId, id }) => answeredCount(bot, id) > 0 || repliesTo(emu, channelId, id).some((reply) => reply.content === BUSY)),
    { timeoutMs: 60_000 + CHANNELS * MESSAGES * 200, intervalMs: 50, description: 'every message answered or refused' },
  );
}

/** Checks one burst: each message answered once or refused once, order kept per channel. Returns the counts. */
async function checkBurst(emu: DiscordEmulator, bot: RunningBot, sent: Sent[]): Promise<{ answered: number; busy: number }> {
  let answered = 0;
  let busy = 0;
  for (const message of sent) {
    const replies = repliesTo(emu, message.channelId, message.id);
    expect(replies, `message ${message.content} in ${message.channelId}`).toHaveLength(1);
    if (replies[0]!.content === BUSY) {
      busy++;
      expect(answeredCount(bot, message.id)).toBe(0);
    } else {
      answered++;
      expect(answeredCount(bot, message.id)).toBe(1);
    }
  }
  for (const channelId of emu.channelIds) {
    const inChannel = sent.filter((message) => message.channelId === channelId);
    const answeredHere = inChannel.filter((message) => answeredCount(bot, message.id) === 1);
    // The history holds the answered ones, each once, in the order they were sent.
    const stored = (await bot.store.load(channelId)).map((turn) => turn.userText).filter((text) => inChannel.some((message) => message.content === text));
    expect(stored).toEqual(answeredHere.map((message) => message.content));
    // And the replies were posted in that order too.
    const replyOrder = emu
      .botMessages(channelId)
      .filter((reply) => reply.content !== BUSY && answeredHere.some((message) => message.id === reply.replyTo))
      // By when each reply was complete: a waiting message posts its placeholder early.
      .sort((a, b) => a.history.at(-1)!.time - b.history.at(-1)!.time)
      .map((reply) => reply.replyTo);
    expect(replyOrder).toEqual(answeredHere.map((message) => message.id));
  }
  return { answered, busy };
}

describe(`load: ${CHANNELS} channels × ${MESSAGES} messages, QUEUE_MAX ${QUEUE_MAX}`, () => {
  it('answers or refuses each message exactly once, keeps per-channel order, and does not grow memory on a second burst', async () => {
    engine = await createTinyEngine({ replyMaxTokens: 8 });
    const { bot, emu } = await boot({
      engine,
      channels: Array.from({ length: CHANNELS }, (_, i) => `load-${i}`),
      env: { QUEUE_MAX: String(QUEUE_MAX), RATE_LIMIT_MESSAGES: '0', REPLY_MAX_TOKENS: '8' },
    });
    await emu.waitFor(() => emu.channelIds.every((id) => bot.bot.client.channels.cache.has(id)));

    const first = burst(emu, 1);
    await settled(emu, bot, first);
    const firstCounts = await checkBurst(emu, bot, first);
    const rssAfterFirst = retainedRss();

    const second = burst(emu, 2);
    await settled(emu, bot, second);
    const secondCounts = await checkBurst(emu, bot, second);
    const rssAfterSecond = retainedRss();

    for (const counts of [firstCounts, secondCounts]) {
      expect(counts.answered + counts.busy).toBe(CHANNELS * MESSAGES);
      expect(counts.answered).toBeGreaterThan(0);
      if (CHANNELS * MESSAGES > 2 * QUEUE_MAX) expect(counts.busy).toBeGreaterThan(0);
    }
    expect(rssAfterSecond - rssAfterFirst).toBeLessThan(RSS_ALLOWANCE);

    const after = emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'are you still with us?' });
    await whenAnswered(emu, bot, after.id);
    expect(repliesTo(emu, emu.defaultChannelId, after.id)).toHaveLength(1);
    console.log(
      `load ${CHANNELS}×${MESSAGES}: answered ${firstCounts.answered}+${secondCounts.answered}, busy ${firstCounts.busy}+${secondCounts.busy}, ` +
        `RSS ${(rssAfterFirst / 1e6).toFixed(0)} -> ${(rssAfterSecond / 1e6).toFixed(0)} MB`,
    );
  }, 600_000);
});
