/**
 * Slash commands whose answer takes longer than Discord's 3 s (a slow classifier, a slow or locked
 * store), through the real discord.js client. The emulator refuses a first answer later than 3 s
 * after the interaction (10062 Unknown interaction), as Discord does.
 */
import { InteractionResponseType, MessageFlags, PermissionFlagsBits } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, logEntries } from '../support/botHarness.js';
import type { DiscordEmulator, InteractionResponseRecord, SlashCommandOptions } from '../support/DiscordEmulator.js';
import { useBotFixture } from '../support/e2eFixture.js';
import { FaultyStore } from '../support/FaultyStore.js';

const fixture = useBotFixture({ tempPrefix: 'bot-slow-commands-' });

interface Answered {
  /** The first answer (the deferral or the reply), ms after the command was sent. */
  firstAfterMs: number;
  first: InteractionResponseRecord;
  /** What the user finally reads. */
  content: string;
}

/** Sends a command and waits until its answer has content. */
async function run(emu: DiscordEmulator, command: SlashCommandOptions): Promise<Answered> {
  const sentAt = Date.now();
  const { id } = emu.sendSlashCommand(command);
  const answer = await emu.waitFor(() => emu.interactionResponses(id).find((response) => response.content), { timeoutMs: 15_000, description: `/${command.name} answered` });
  const first = emu.interactionResponses(id)[0]!;
  return { firstAfterMs: first.time - sentAt, first, content: answer.content! };
}

describe('slash commands slower than 3 s', () => {
  it('/sentiment on a classifier taking 3.5 s (an idle queue) is deferred within 3 s, then its answer edited in', async () => {
    const { emu, bot, channelId } = await fixture.boot({ engine: new ScriptedEngine({ classifyMs: 3500 }) });
    const answered = await run(emu, { channelId, name: 'sentiment', options: { text: 'x'.repeat(2000) } });
    console.log(`/sentiment on a 3.5 s classifier: deferred after ${answered.firstAfterMs} ms`);

    expect(answered.first.callbackType).toBe(InteractionResponseType.DeferredChannelMessageWithSource);
    expect(answered.first.ephemeral).toBe(false);
    expect(answered.firstAfterMs).toBeLessThan(3000);
    expect(answered.content).toBe('😐 **neutral** (confidence 60%)');
    expect(emu.requests.filter((request) => request.error?.code === 10062)).toEqual([]);
    expect(logEntries(bot, 'command failed')).toEqual([]);
  }, 30_000);

  it('/reset mood:true, /mode set and /persona set behind a store taking 3.5 s are each deferred privately within 3 s, then answered', async () => {
    let store: FaultyStore | undefined;
    const { emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), wrapStore: (inner) => (store = new FaultyStore(inner)) });
    await store!.appendMood(channelId, { at: Date.now(), label: 'positive', confidence: 0.9 });
    store!.slow = 'all';
    store!.delayMs = 3500;
    const moderator = PermissionFlagsBits.ManageMessages | PermissionFlagsBits.ManageChannels;
    const answers = await Promise.all([
      run(emu, { channelId, name: 'reset', options: { mood: true }, permissions: moderator }),
      run(emu, { channelId, name: 'mode', subcommand: 'set', options: { mode: 'mentions' }, permissions: moderator }),
      run(emu, { channelId, name: 'persona', subcommand: 'set', options: { text: 'You are a calm librarian.' }, permissions: moderator }),
    ]);

    expect(answers.map(({ first }) => [first.callbackType, first.flags & MessageFlags.Ephemeral])).toEqual([
      [InteractionResponseType.DeferredChannelMessageWithSource, MessageFlags.Ephemeral],
      [InteractionResponseType.DeferredChannelMessageWithSource, MessageFlags.Ephemeral],
      [InteractionResponseType.DeferredChannelMessageWithSource, MessageFlags.Ephemeral],
    ]);
    console.log(`/reset mood:true, /mode set, /persona set on a 3.5 s store: deferred after ${answers.map(({ firstAfterMs }) => firstAfterMs).join(', ')} ms`);
    for (const { firstAfterMs } of answers) expect(firstAfterMs).toBeLessThan(3000);
    expect(answers.map(({ content }) => content)).toEqual([
      "This channel's history and its mood log are cleared. I start fresh from here.",
      expect.stringContaining('Reply mode here is now **mentions**.'),
      'Persona set for this channel; it applies from my next reply on.',
    ]);
    expect(await store!.getSetting(channelId, 'mode')).toBe('mentions');
    expect(await store!.loadMood(channelId, 0)).toEqual([]);
  }, 30_000);

  it('when /sentiment fails after its deferral, the "thinking…" becomes the short failure line, the detail stays in the log', async () => {
    const failing = new ScriptedEngine();
    failing.classify = async () => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      throw new Error('classifier exploded (detail for the log only)');
    };
    const { emu, bot, channelId } = await fixture.boot({ engine: failing });
    const answered = await run(emu, { channelId, name: 'sentiment', options: { text: 'anything' } });

    expect(answered.first.callbackType).toBe(InteractionResponseType.DeferredChannelMessageWithSource);
    expect(answered.content).toBe('Sorry, that command failed. Please try again.');
    expect(logEntries(bot, 'command failed')).toHaveLength(1);
  });

  it('answers a quick command at once, with no deferral', async () => {
    const { emu, channelId } = await fixture.boot({ engine: new ScriptedEngine() });
    const answered = await run(emu, { channelId, name: 'sentiment', options: { text: 'quick one' } });

    expect(answered.first.callbackType).toBe(InteractionResponseType.ChannelMessageWithSource);
    expect(answered.content).toBe('😐 **neutral** (confidence 60%)');
  });
});
