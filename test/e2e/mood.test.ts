/**
 * /mood through the real discord.js client: the chart is a PNG the emulator receives as a multipart
 * upload and keeps; the test decodes it and reads its pixels.
 */
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { MessageFlags, OverwriteType, PermissionFlagsBits, type TextChannel } from 'discord.js';
import { describe, expect, it } from 'vitest';
import type { MoodRecord } from '../../src/history/HistoryStore.js';
import { MOOD_COLOURS } from '../../src/mood/moodChart.js';
import { ScriptedEngine, whenAnswered, type RunningBot } from '../support/botHarness.js';
import type { DiscordEmulator } from '../support/DiscordEmulator.js';
import { useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-mood-' });
const DAY = 86_400_000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Noon (UTC) of the day `daysAgo` days before today, plus `minute` minutes. */
function noon(daysAgo: number, minute = 0): number {
  return Math.floor(Date.now() / DAY) * DAY - daysAgo * DAY + 12 * 3_600_000 + minute * 60_000;
}

/**
 * The scripted sequence, by days ago: 6: 2 😄 1 😐 · 5: 1 😄 2 😐 · 4: 3 😄 · 3: 10 😢 (all negative,
 * the busiest hour) · 2: 2 😐 · 1: 1 😄 1 😐 · today: 2 😄 (two real messages) · 7 to 29: 1 😄 each.
 */
const SCRIPT: Array<[daysAgo: number, labels: MoodRecord['label'][]]> = [
  [6, ['positive', 'positive', 'neutral']],
  [5, ['positive', 'neutral', 'neutral']],
  [4, ['positive', 'positive', 'positive']],
  [3, Array(10).fill('negative')],
  [2, ['neutral', 'neutral']],
  [1, ['positive', 'neutral']],
  ...Array.from({ length: 23 }, (_, i): [number, MoodRecord['label'][]] => [7 + i, ['positive']]),
];

async function bootWithLog(): Promise<{ bot: RunningBot; emu: DiscordEmulator; channelId: string }> {
  const engine = new ScriptedEngine({ label: (text) => (/love/.test(text) ? { label: 'positive', confidence: 0.9 } : { label: 'neutral', confidence: 0.6 }) });
  const booted = await fixture.boot({ engine });
  const { bot, emu, channelId } = booted;
  for (const [daysAgo, labels] of SCRIPT) {
    for (const [minute, label] of labels.entries()) await bot.store.appendMood(channelId, { at: noon(daysAgo, minute), label, confidence: 0.8 });
  }
  // Today's two come from real messages: the bot classifies them and records their labels.
  for (const content of ['I love this', 'love it too']) await whenAnswered(emu, bot, emu.sendUserMessage({ channelId, content }).id);
  for (let waited = 0; (await bot.store.loadMood(channelId, noon(0) - 12 * 3_600_000)).length < 2 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return booted;
}

/** The bot's last answer to an interaction (its message, with edits applied) once it has one with content. */
async function answerTo(emu: DiscordEmulator, interactionId: string) {
  const response = await emu.waitFor(() => emu.interactionResponses(interactionId).find((r) => r.kind !== 'callback' || r.callbackType === 4 ? r.content : undefined));
  return emu.waitFor(() => emu.botMessages().find((m) => m.id === response.messageId));
}

interface Bar {
  from: number;
  to: number;
  /** Of the bar's pixels in each label's colour. */
  share: Record<MoodRecord['label'], number>;
}

/**
 * The chart's bars, left to right: runs of pixel columns with at least 20 pixels in a label colour,
 * counted between the title and the legend (rows 12% to 88% of the height), so the legend's swatches are not bars.
 */
async function barsOf(png: Buffer): Promise<{ width: number; height: number; bars: Bar[] }> {
  const image = await loadImage(png);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const { data } = ctx.getImageData(0, 0, image.width, image.height);
  const colours = Object.entries(MOOD_COLOURS).map(([label, hex]) => ({ label: label as MoodRecord['label'], rgb: [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) }));
  const labelAt = (x: number, y: number) => {
    const p = (y * image.width + x) * 4;
    return colours.find(({ rgb }) => rgb.every((value, i) => Math.abs(value - data[p + i]!) <= 6))?.label;
  };
  const columns = Array.from({ length: image.width }, (_, x) => {
    const counts = { positive: 0, neutral: 0, negative: 0 };
    for (let y = Math.round(image.height * 0.12); y < Math.round(image.height * 0.88); y++) {
      const label = labelAt(x, y);
      if (label) counts[label]++;
    }
    return counts;
  });
  const bars: Bar[] = [];
  let run: { from: number; counts: Record<MoodRecord['label'], number> } | undefined;
  columns.forEach((counts, x) => {
    const total = counts.positive + counts.neutral + counts.negative;
    if (total >= 20) {
      run ??= { from: x, counts: { positive: 0, neutral: 0, negative: 0 } };
      for (const label of ['positive', 'neutral', 'negative'] as const) run.counts[label] += counts[label];
    }
    if ((total < 20 || x === image.width - 1) && run) {
      const sum = run.counts.positive + run.counts.neutral + run.counts.negative;
      bars.push({ from: run.from, to: x - 1, share: { positive: run.counts.positive / sum, neutral: run.counts.neutral / sum, negative: run.counts.negative / sum } });
      run = undefined;
    }
  });
  return { width: image.width, height: image.height, bars };
}

const dayHour = (at: number) => `${new Date(at).getUTCDate()} ${MONTHS[new Date(at).getUTCMonth()]} 12:00`;

describe('/mood', () => {
  it('posts a 7-day PNG chart, publicly: one bar a day, the all-negative day in the negative colour, and the shares, count and busiest hour in words', async () => {
    const { emu, channelId } = await bootWithLog();

    const asked = emu.sendSlashCommand({ channelId, name: 'mood' });
    const answer = await answerTo(emu, asked.id);

    expect(answer.ephemeral).toBe(false);
    expect(answer.content).toBe(`😄 36% · 😐 24% · 😢 40% · 25 messages in #general, last 7 days · busiest hour ${dayHour(noon(3))} UTC (10)`);
    expect(answer.attachments).toHaveLength(1);
    expect(answer.attachments[0]).toMatchObject({ filename: 'mood-7d.png', content_type: 'image/png' });
    const png = emu.attachmentData(answer.attachments[0]!)!;
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(answer.attachments[0]!.size).toBe(png.length);
    const { width, height, bars } = await barsOf(png);
    expect([width, height]).toEqual([1200, 600]);
    expect(bars).toHaveLength(7);
    // Days ago 6..0, left to right: the fourth bar is the all-negative day.
    expect(bars[3]!.share.negative).toBeGreaterThan(0.97);
    expect(bars.filter((_, i) => i !== 3).every((bar) => bar.share.negative === 0)).toBe(true);
    expect(bars[2]!.share.positive).toBeGreaterThan(0.97);
    expect(bars[4]!.share.neutral).toBeGreaterThan(0.97);
    expect(bars[0]!.share.positive).toBeGreaterThan(bars[0]!.share.neutral);
  });

  it('posts a 30-day chart: thirty bars, the all-negative day the fourth from the right', async () => {
    const { emu, channelId } = await bootWithLog();

    const asked = emu.sendSlashCommand({ channelId, name: 'mood', options: { days: 30 } });
    const answer = await answerTo(emu, asked.id);

    expect(answer.content).toBe(`😄 67% · 😐 12% · 😢 21% · 48 messages in #general, last 30 days · busiest hour ${dayHour(noon(3))} UTC (10)`);
    const { width, height, bars } = await barsOf(emu.attachmentData(answer.attachments[0]!)!);
    expect([width, height]).toEqual([1200, 600]);
    expect(bars).toHaveLength(30);
    expect(bars[26]!.share.negative).toBeGreaterThan(0.95);
    expect(bars.filter((_, i) => i !== 26).every((bar) => bar.share.negative === 0)).toBe(true);
    expect(bars.slice(0, 23).every((bar) => bar.share.positive > 0.95)).toBe(true);
  });

  it('answers a channel with no records with one sentence and no chart, and privately when asked', async () => {
    const { emu } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['general', 'quiet'] });
    const quiet = emu.channelIds[1]!;

    const asked = emu.sendSlashCommand({ channelId: quiet, name: 'mood', options: { private: true } });
    const answer = await answerTo(emu, asked.id);

    expect(answer.content).toBe('No message in #quiet has a mood on record for the last 7 days, so there is nothing to chart yet.');
    expect(answer.attachments).toEqual([]);
    expect(answer.ephemeral).toBe(true);
    expect(answer.flags & MessageFlags.Ephemeral).toBe(MessageFlags.Ephemeral);
  });

  it("refuses another channel's mood to a member who cannot read that channel, and shows it to one who can", async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['general', 'staff'] });
    const staff = emu.channelIds[1]!;
    await bot.store.appendMood(staff, { at: Date.now() - 60_000, label: 'negative', confidence: 0.9 });
    emu.setPermissionOverwrite(staff, { id: emu.guildId, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.ViewChannel.toString() });
    emu.setPermissionOverwrite(staff, { id: emu.botRoleId, type: OverwriteType.Role, allow: PermissionFlagsBits.ViewChannel.toString(), deny: '0' });
    await emu.waitFor(() => (bot.bot.client.channels.cache.get(staff) as TextChannel | undefined)?.permissionOverwrites.cache.size === 2);

    const refused = emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: staff }, user: { username: 'bob' } });
    const refusal = await answerTo(emu, refused.id);
    const owner = emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: staff } });
    const shown = await answerTo(emu, owner.id);

    expect(refusal.ephemeral).toBe(true);
    expect(refusal.content).toBe(`You cannot read <#${staff}>, so I cannot show you its mood.`);
    expect(refusal.attachments).toEqual([]);
    expect(shown.content).toMatch(/^😄 0% · 😐 0% · 😢 100% · 1 message in #staff, last 7 days/);
    expect(shown.attachments).toHaveLength(1);
  });

  it("refuses a private thread's mood and name to a member who can read its parent but is not in it, and shows it (privately) to its members and thread managers", async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['general'] });
    const thread = emu.addThread(channelId, { name: 'complaint-about-bob', kind: 'private', owner: { username: 'alice' } });
    await emu.waitFor(() => bot.bot.client.channels.cache.get(thread));
    await bot.store.appendMood(thread, { at: Date.now() - 60_000, label: 'negative', confidence: 0.9 });
    emu.addThreadMember(thread, { username: 'carol' });
    // dave may manage threads in the parent (a moderator): Discord shows him every private thread there.
    const dave = emu.addUser({ username: 'dave' });
    emu.setPermissionOverwrite(channelId, { id: dave.id, type: OverwriteType.Member, allow: PermissionFlagsBits.ManageThreads.toString(), deny: '0' });
    await emu.waitFor(() => (bot.bot.client.channels.cache.get(channelId) as TextChannel | undefined)?.permissionOverwrites.cache.size === 1);

    const answers = [];
    for (const username of ['bob', 'carol', 'dave', 'alice']) {
      answers.push(await answerTo(emu, emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: thread }, user: { username } }).id));
    }
    const [bob, carol, dave2, alice] = answers;

    expect(bob!.content).toBe(`You cannot read <#${thread}>, so I cannot show you its mood.`);
    expect(bob!.ephemeral).toBe(true);
    expect(bob!.attachments).toEqual([]);
    for (const shown of [carol!, dave2!, alice!]) {
      expect(shown.content).toMatch(/^😄 0% · 😐 0% · 😢 100% · 1 message in #complaint-about-bob, last 7 days/);
      expect(shown.attachments).toHaveLength(1);
      // Another channel's mood is answered privately by default: people here may not be able to read it.
      expect(shown.ephemeral).toBe(true);
    }
  });

  it("refuses another channel's mood to a member who may view it but not read its history", async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['general', 'announcements'] });
    const other = emu.channelIds[1]!;
    await bot.store.appendMood(other, { at: Date.now() - 60_000, label: 'positive', confidence: 0.9 });
    emu.setPermissionOverwrite(other, { id: emu.guildId, type: OverwriteType.Role, allow: '0', deny: PermissionFlagsBits.ReadMessageHistory.toString() });
    await emu.waitFor(() => (bot.bot.client.channels.cache.get(other) as TextChannel | undefined)?.permissionOverwrites.cache.size === 1);

    const refusal = await answerTo(emu, emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: other }, user: { username: 'bob' } }).id);

    expect(refusal.content).toBe(`You cannot read <#${other}>, so I cannot show you its mood.`);
    expect(refusal.attachments).toEqual([]);
  });

  it("answers about another channel privately unless private:false is asked, and about this channel publicly", async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['general', 'random'] });
    const other = emu.channelIds[1]!;
    for (const id of [channelId, other]) await bot.store.appendMood(id, { at: Date.now() - 60_000, label: 'positive', confidence: 0.9 });

    const byDefault = await answerTo(emu, emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: other } }).id);
    const asked = await answerTo(emu, emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: other, private: false } }).id);
    const here = await answerTo(emu, emu.sendSlashCommand({ channelId, name: 'mood', options: { channel: channelId } }).id);

    expect(byDefault.content).toMatch(/1 message in #random/);
    expect(byDefault.ephemeral).toBe(true);
    expect(asked.content).toMatch(/1 message in #random/);
    expect(asked.ephemeral).toBe(false);
    expect(here.content).toMatch(/1 message in #general/);
    expect(here.ephemeral).toBe(false);
  });

  it('answers while a reply holds the model: the chart never waits for the generation queue', async () => {
    const engine = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine });
    await bot.store.appendMood(channelId, { at: Date.now() - 60_000, label: 'positive', confidence: 0.9 });
    engine.hold();
    emu.sendUserMessage({ channelId, content: 'a long question' });
    await emu.waitFor(() => engine.replied.length === 1);

    const asked = emu.sendSlashCommand({ channelId, name: 'mood', options: { days: 1 } });
    const answer = await answerTo(emu, asked.id);

    expect(answer.content).toMatch(/^😄 100% · 😐 0% · 😢 0% · 1 message in #general, last 24 hours/);
    expect(answer.attachments).toHaveLength(1);
    expect(engine.replied).toHaveLength(1);
    engine.release();
  });
});
