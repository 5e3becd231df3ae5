/**
 * REPLY_MODE and /mode through the real discord.js client: when the bot answers, what it keeps as
 * context when it does not, and who may change it.
 */
import { PermissionFlagsBits } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, logEntries, repliesTo, whenAnswered, type RunningBot } from '../support/botHarness.js';
import type { DiscordEmulator } from '../support/DiscordEmulator.js';
import { createTinyEngine, useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-mode-' });

/** Resolves once the bot logged that it kept this message as context without answering. */
function whenKept(emu: DiscordEmulator, bot: RunningBot, messageId: string): Promise<unknown> {
  return emu.waitFor(() => bot.logs.some((line) => line.includes('"message kept as context, not answered"') && line.includes(messageId)), {
    timeoutMs: 20_000,
    description: `message ${messageId} kept`,
  });
}

/** The ephemeral answer to a slash command. */
function answerTo(emu: DiscordEmulator, interactionId: string): Promise<string> {
  return emu.waitFor(() => emu.interactionResponses(interactionId)[0]?.content ?? undefined);
}

describe('reply mode', () => {
  it('in mentions mode (set with /mode), reacts to every message, answers a mention or a reply to the bot, and a later mention sees what others said', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted });
    const set = emu.sendSlashCommand({ name: 'mode', subcommand: 'set', options: { mode: 'mentions' }, permissions: PermissionFlagsBits.ManageChannels });
    expect(await answerTo(emu, set.id)).toContain('now **mentions**');

    const aside = emu.sendUserMessage({ content: 'I lost my keys again', author: { username: 'bo' } });
    await whenKept(emu, bot, aside.id);
    const mention = emu.sendUserMessage({ content: `<@${emu.botUser.id}> what did bo lose?` });
    await whenAnswered(emu, bot, mention.id);
    const [botReply] = repliesTo(emu, channelId, mention.id);
    const followUp = emu.sendUserMessage({ content: 'and where could they be?', replyTo: botReply!.id });
    await whenAnswered(emu, bot, followUp.id);

    expect(emu.reactions(channelId, aside.id).map((reaction) => reaction.emoji)).toEqual(['😐']);
    expect(repliesTo(emu, channelId, aside.id)).toEqual([]);
    // The model read its own mention as its name, with bo's message before it as a user turn.
    expect(scripted.replied).toEqual([`@${emu.botUser.username} what did bo lose?`, 'and where could they be?']);
    expect(scripted.historySeen[0]).toEqual(['I lost my keys again']);
    const stored = await bot.store.load(channelId);
    expect(stored.map((turn) => [turn.userName, turn.reply === undefined])).toEqual([
      ['bo', true],
      ['Alice', false],
      ['Alice', false],
    ]);
  });

  it('keeps a channel mode across a restart, shows it with /mode show, and leaves other channels on the default', async () => {
    const { emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), channels: ['quiet', 'busy'] });
    const other = emu.channelIds[1]!;
    await answerTo(emu, emu.sendSlashCommand({ name: 'mode', subcommand: 'set', options: { mode: 'react' } }).id);

    const bot = await fixture.restart();
    const quiet = emu.sendUserMessage({ channelId, content: 'just reacting here' });
    const busy = emu.sendUserMessage({ channelId: other, content: 'answer me here' });
    await whenAnswered(emu, bot, busy.id);
    await emu.waitFor(() => emu.reactions(channelId, quiet.id).length > 0);

    expect(repliesTo(emu, channelId, quiet.id)).toEqual([]);
    expect(await bot.store.load(channelId)).toEqual([]);
    expect(await answerTo(emu, emu.sendSlashCommand({ name: 'mode', subcommand: 'show' }).id)).toContain('**react** (set for this channel)');
    expect(await answerTo(emu, emu.sendSlashCommand({ channelId: other, name: 'mode', subcommand: 'show' }).id)).toContain('**all** (the default)');
  });

  it('refuses /mode set to a member without Manage Channels, and changes nothing', async () => {
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine() });
    const refused = emu.sendSlashCommand({ name: 'mode', subcommand: 'set', options: { mode: 'react' }, permissions: PermissionFlagsBits.SendMessages, user: { username: 'mallory' } });

    expect(await answerTo(emu, refused.id)).toContain('You need the Manage Channels permission');
    expect(emu.interactionResponses(refused.id)[0]!.ephemeral).toBe(true);
    expect(await bot.store.getSetting(channelId, 'mode')).toBeUndefined();
    const message = emu.sendUserMessage({ content: 'still answered?' });
    await whenAnswered(emu, bot, message.id);
    expect(repliesTo(emu, channelId, message.id)).toHaveLength(1);
  });

  it('with REPLY_MODE=mentions answers a DM without a mention', async () => {
    const { bot, emu } = await fixture.boot({ engine: new ScriptedEngine(), env: { REPLY_MODE: 'mentions' } });
    const dm = emu.sendUserMessage({ content: 'hello in private', dm: true });
    await whenAnswered(emu, bot, dm.id);
    expect(repliesTo(emu, dm.channel_id, dm.id)).toHaveLength(1);
  });

  it('costs each unanswered message about its own tokens in the next reply on the tiny model (measured)', async () => {
    const engine = await createTinyEngine({ replyMaxTokens: 4 });
    try {
      const { bot, emu } = await fixture.boot({ engine, env: { REPLY_MODE: 'mentions' }, channels: ['quiet', 'chatty'] });
      const [quiet, chatty] = emu.channelIds as [string, string];
      const mention = `<@${emu.botUser.id}> how is everyone doing today?`;
      const asides = ['the weather is lovely this morning', 'my train was late again', 'has anyone seen the new film?'];
      for (const channelId of [quiet, chatty]) await whenAnswered(emu, bot, emu.sendUserMessage({ channelId, content: mention }).id);
      for (const content of asides) await whenKept(emu, bot, emu.sendUserMessage({ channelId: chatty, content, author: { username: 'bo' } }).id);
      for (const channelId of [quiet, chatty]) await whenAnswered(emu, bot, emu.sendUserMessage({ channelId, content: mention }).id);

      const evaluated = (channelId: string) => logEntries(bot, 'reply done').filter((entry) => entry.channelId === channelId).map((entry) => entry.evaluatedTokens as number);
      const perAside = (evaluated(chatty)[1]! - evaluated(quiet)[1]!) / asides.length;
      const ownTokens = asides.map((text) => engine.model.tokenize(`bo: ${text}`).length);
      console.log(`mentions mode: ${perAside.toFixed(1)} tokens evaluated per unanswered message (its text: ${ownTokens.join(', ')} tokens)`);
      // Its "bo: text" line plus the user-turn template (<|im_start|>user\n … <|im_end|>\n), nothing more.
      expect(perAside).toBeGreaterThanOrEqual(Math.min(...ownTokens));
      expect(perAside).toBeLessThanOrEqual(Math.max(...ownTokens) + 8);
    } finally {
      await fixture.bot.stop();
      await engine.dispose();
    }
  });
});
