import { spawn } from 'node:child_process';
import { PermissionFlagsBits } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { EMPTY_REPLY_PLACEHOLDER } from '../../src/discord/ReplyStreamer.js';
import { ScriptedEngine, repliesTo, whenAnswered, type RunningBot } from '../support/botHarness.js';
import { NO_BACKGROUND_CALIBRATION } from '../support/botProcess.js';
import type { DiscordEmulator } from '../support/DiscordEmulator.js';
import { useBotFixture, type BootOptions } from '../support/e2eFixture.js';
import { ensureTinyModel } from '../support/testModels.js';

const SENTIMENT_EMOJIS = ['😄', '😐', '😢'];

const fixture = useBotFixture({ tinyEngine: true, tempPrefix: 'bot-e2e-' });
/** The current test's emulator. */
let emulator: DiscordEmulator;

async function boot(options: BootOptions = {}): Promise<RunningBot> {
  const { bot, emu } = await fixture.boot(options);
  emulator = emu;
  return bot;
}

/** Resolves once the bot logged that it answered this message (its last edit is done then). */
function answered(bot: RunningBot, messageId: string): Promise<unknown> {
  return whenAnswered(emulator, bot, messageId);
}

function replyTo(channelId: string, messageId: string) {
  return repliesTo(emulator, channelId, messageId);
}

describe('the bot through the real discord.js client', () => {
  it('registers its slash commands when it comes online', async () => {
    await boot();
    const registered = await emulator.waitFor(() => emulator.registeredCommands().length > 0 && emulator.registeredCommands());
    expect(registered.map((command) => command.name).sort()).toEqual(['mode', 'mood', 'persona', 'reset', 'sentiment', 'status']);
    const sentiment = registered.find((command) => command.name === 'sentiment')!;
    expect(sentiment.options?.[0]).toMatchObject({ name: 'text', required: true });
  });

  it('reacts with one sentiment emoji before replying, and the reply shown is the turn stored', async () => {
    const bot = await boot();
    const channelId = emulator.defaultChannelId;
    const first = emulator.sendUserMessage({ channelId, content: 'I love this server, thanks everyone!' });
    await answered(bot, first.id);
    const second = emulator.sendUserMessage({ channelId, content: 'but my exam went badly today' });
    await answered(bot, second.id);

    const history = await bot.store.load(channelId);
    expect(history.map((turn) => turn.userText)).toEqual(['I love this server, thanks everyone!', 'but my exam went badly today']);
    for (const [index, message] of [first, second].entries()) {
      const reactions = emulator.reactions(channelId, message.id).filter((reaction) => SENTIMENT_EMOJIS.includes(reaction.emoji));
      expect(reactions).toHaveLength(1);
      const replies = replyTo(channelId, message.id);
      expect(replies).toHaveLength(1);
      expect(reactions[0]!.time).toBeLessThanOrEqual(replies[0]!.createdAt);
      expect(replies[0]!.content).toBe(history[index]!.reply || EMPTY_REPLY_PLACEHOLDER);
    }
  });

  it('sends every message with mentions switched off', async () => {
    const bot = await boot({ engine: new ScriptedEngine({ script: () => ['@everyone hello <@&123456789012345678> and <@223456789012345678>'] }) });
    const message = emulator.sendUserMessage({ content: 'ping them all' });
    await answered(bot, message.id);
    const sent = emulator.botMessages();
    expect(sent.length).toBeGreaterThan(0);
    for (const botMessage of sent) expect(botMessage.allowedMentions).toEqual({ parse: [], replied_user: false });
    expect(sent[0]!.content).toContain('@everyone');
  });

  it('streams: posts early, then edits at most about once per interval, ending on the full text', async () => {
    const pieces = Array.from({ length: 12 }, (_, i) => `piece${i} `);
    const bot = await boot({ engine: new ScriptedEngine({ script: () => pieces, pauseMs: 50 }), editIntervalMs: 150 });
    const message = emulator.sendUserMessage({ content: 'tell me a story' });
    await answered(bot, message.id);
    const [reply] = replyTo(emulator.defaultChannelId, message.id);
    const versions = reply!.history.map((version) => version.content);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expect(versions[0]!.length).toBeLessThan(versions.at(-1)!.length);
    for (const version of versions) expect(pieces.join('').trim().startsWith(version)).toBe(true);
    expect(versions.at(-1)).toBe(pieces.join('').trim());
    // 12 pieces over ~600 ms with a 150 ms interval: a handful of edits, never one per piece.
    expect(versions.length).toBeLessThan(pieces.length);
  });

  it('continues a 2500-character reply in a second message, each within 2000 characters', async () => {
    const paragraph = 'This is a long answer sentence that goes on. '.repeat(11).trim(); // ~500 characters
    const text = Array.from({ length: 5 }, () => paragraph).join('\n\n');
    const bot = await boot({ engine: new ScriptedEngine({ script: () => [text] }) });
    const message = emulator.sendUserMessage({ content: 'explain everything' });
    await answered(bot, message.id);
    const sent = emulator.botMessages(emulator.defaultChannelId);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.replyTo).toBe(message.id);
    expect(sent.every((botMessage) => botMessage.content.length <= 2000)).toBe(true);
    expect(sent.map((botMessage) => botMessage.content).join('\n\n')).toBe(text);
  });

  it('ignores bots, webhooks and messages without text; they never reach the model', async () => {
    const bot = await boot();
    const channelId = emulator.defaultChannelId;
    const ignored = [
      emulator.sendUserMessage({ channelId, content: 'I am a bot', author: { username: 'otherbot', bot: true } }),
      emulator.sendUserMessage({ channelId, content: 'from a webhook', webhookId: '999999999999999999' }),
      emulator.sendUserMessage({ channelId, content: '', attachments: [{ filename: 'cat.png' }] }),
      emulator.sendUserMessage({ channelId, content: ' \u200b\u200b ' }),
    ];
    const real = emulator.sendUserMessage({ channelId, content: 'hello bot' });
    await answered(bot, real.id);
    for (const message of ignored) {
      expect(emulator.reactions(channelId, message.id)).toEqual([]);
      expect(replyTo(channelId, message.id)).toEqual([]);
    }
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(['hello bot']);
  });

  it('answers three channels at once, each in its own order', async () => {
    const bot = await boot();
    const channels = [emulator.defaultChannelId, emulator.addChannel('second'), emulator.addChannel('third')];
    await emulator.waitFor(() => channels.every((id) => bot.bot.client.channels.cache.has(id)));
    const sent: { channelId: string; id: string; content: string }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const channelId of channels) {
        const content = `message ${round} in ${channelId.slice(-4)}`;
        sent.push({ channelId, id: emulator.sendUserMessage({ channelId, content }).id, content });
      }
    }
    await Promise.all(sent.map((message) => answered(bot, message.id)));
    for (const channelId of channels) {
      const expected = sent.filter((message) => message.channelId === channelId);
      expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(expected.map((message) => message.content));
      // By when each reply was complete: a waiting message posts its placeholder early.
      const replyOrder = emulator
        .botMessages(channelId)
        .sort((a, b) => a.history.at(-1)!.time - b.history.at(-1)!.time)
        .map((botMessage) => botMessage.replyTo);
      expect(replyOrder).toEqual(expected.map((message) => message.id));
    }
  });

  it('answers /sentiment with emoji, label and confidence, and leaves the history untouched', async () => {
    const bot = await boot();
    const channelId = emulator.defaultChannelId;
    const message = emulator.sendUserMessage({ channelId, content: 'good morning' });
    await answered(bot, message.id);
    const before = await bot.store.load(channelId);
    const interaction = emulator.sendSlashCommand({ channelId, name: 'sentiment', options: { text: 'I lost my wallet' } });
    const responses = await emulator.waitFor(() => {
      const all = emulator.interactionResponses(interaction.id);
      return all.some((response) => response.content) && all;
    });
    const content = responses.find((response) => response.content)!.content!;
    expect(content).toMatch(/^(😄|😐|😢) \*\*(positive|neutral|negative)\*\* \(confidence \d{1,3}%\)$/);
    expect(await bot.store.load(channelId)).toEqual(before);
  });

  /** The channel's mood log once it holds `count` records (written after each turn ends), or as it is after 5 s. */
  async function moodRecords(bot: { store: { loadMood(channelId: string, since: number): Promise<unknown[]> } }, channelId: string, count: number) {
    for (const deadline = Date.now() + 5000; ; await new Promise((resolve) => setTimeout(resolve, 10))) {
      const records = await bot.store.loadMood(channelId, 0);
      if (records.length >= count || Date.now() > deadline) return records;
    }
  }

  it('/reset is refused without Manage Messages, and with it clears this channel only', async () => {
    const bot = await boot();
    const [a, b] = [emulator.defaultChannelId, emulator.addChannel('other')];
    await emulator.waitFor(() => bot.bot.client.channels.cache.has(b));
    await answered(bot, emulator.sendUserMessage({ channelId: a, content: 'hello from a' }).id);
    await answered(bot, emulator.sendUserMessage({ channelId: b, content: 'hello from b' }).id);

    const refused = emulator.sendSlashCommand({ channelId: a, name: 'reset', permissions: PermissionFlagsBits.SendMessages });
    const refusal = await emulator.waitFor(() => emulator.interactionResponses(refused.id)[0]);
    expect(refusal.ephemeral).toBe(true);
    expect(refusal.content).toMatch(/Manage Messages/);
    expect(await bot.store.load(a)).toHaveLength(1);

    const allowed = emulator.sendSlashCommand({ channelId: a, name: 'reset', permissions: PermissionFlagsBits.ManageMessages | PermissionFlagsBits.SendMessages });
    const done = await emulator.waitFor(() => emulator.interactionResponses(allowed.id)[0]);
    expect(done.ephemeral).toBe(true);
    expect(done.content).toBe("This channel's history is cleared. I start fresh from here. Its mood log is kept (`/reset mood:true` clears it too).");
    expect(await bot.store.load(a)).toEqual([]);
    expect((await bot.store.load(b)).map((turn) => turn.userText)).toEqual(['hello from b']);
    expect(await moodRecords(bot, a, 1)).toHaveLength(1);
  });

  it('/reset mood:true clears the mood log too, and says so', async () => {
    const bot = await boot();
    const channelId = emulator.defaultChannelId;
    await answered(bot, emulator.sendUserMessage({ channelId, content: 'hello' }).id);
    expect(await moodRecords(bot, channelId, 1)).toHaveLength(1);

    const reset = emulator.sendSlashCommand({ channelId, name: 'reset', options: { mood: true } });
    const done = await emulator.waitFor(() => emulator.interactionResponses(reset.id)[0]);

    expect(done.content).toBe("This channel's history and its mood log are cleared. I start fresh from here.");
    expect(await bot.store.load(channelId)).toEqual([]);
    expect(await bot.store.loadMood(channelId, 0)).toEqual([]);
  });

  it('/reset mood:true while a message is answered leaves the mood log empty: that message\'s record is not written after the clear', async () => {
    const scripted = new ScriptedEngine();
    const bot = await boot({ engine: scripted });
    const channelId = emulator.defaultChannelId;
    scripted.hold();
    const message = emulator.sendUserMessage({ channelId, content: 'hello while you think' });
    // Classified (its reaction is on) and replying: its mood record waits for its turn to end.
    await emulator.waitFor(() => emulator.reactions(channelId, message.id).length > 0);

    const reset = emulator.sendSlashCommand({ channelId, name: 'reset', options: { mood: true } });
    const done = await emulator.waitFor(() => emulator.interactionResponses(reset.id)[0]);
    scripted.release();
    await answered(bot, message.id);
    await bot.sessions.moodWritten(channelId);

    expect(done.content).toBe("This channel's history and its mood log are cleared. I start fresh from here.");
    expect(await bot.store.loadMood(channelId, 0)).toEqual([]);
    await answered(bot, emulator.sendUserMessage({ channelId, content: 'and after the reset' }).id);
    await bot.sessions.moodWritten(channelId);
    expect(await bot.store.loadMood(channelId, 0)).toHaveLength(1);
  });

  it('keeps the history across a restart of the bot on the same SQLite file', async () => {
    const first = await boot();
    const channelId = emulator.defaultChannelId;
    await answered(first, emulator.sendUserMessage({ channelId, content: 'remember me: I like tea' }).id);
    await first.stop();

    const running = await fixture.restart();
    expect((await running.sessions.history(channelId)).map((turn) => turn.userText)).toEqual(['remember me: I like tea']);
    await answered(running, emulator.sendUserMessage({ channelId, content: 'what do I like?' }).id);
    expect((await running.store.load(channelId)).map((turn) => turn.userText)).toEqual(['remember me: I like tea', 'what do I like?']);
  });

  it('marks a message that waits behind another reply with ⏳, and removes it when its own reply starts', async () => {
    const scripted = new ScriptedEngine();
    // One reply at a time, so a reply in another channel makes this one wait.
    const bot = await boot({ engine: scripted, env: { PARALLEL_REPLIES: '1' } });
    const [a, b] = [emulator.defaultChannelId, emulator.addChannel('waiting')];
    await emulator.waitFor(() => bot.bot.client.channels.cache.has(b));
    scripted.hold();
    const first = emulator.sendUserMessage({ channelId: a, content: 'a long question' });
    await emulator.waitFor(() => scripted.replied.length === 1);
    const second = emulator.sendUserMessage({ channelId: b, content: 'meanwhile, in another channel' });
    const hourglass = await emulator.waitFor(() => emulator.reactions(b, second.id).find((reaction) => reaction.emoji === '⏳'));
    expect(hourglass.removed).toBe(false);
    expect(emulator.reactions(b, second.id).filter((reaction) => SENTIMENT_EMOJIS.includes(reaction.emoji))).toHaveLength(1);
    expect(emulator.reactions(a, first.id).map((reaction) => reaction.emoji)).not.toContain('⏳');
    scripted.release();
    await answered(bot, second.id);
    await emulator.waitFor(() => emulator.reactions(b, second.id).find((reaction) => reaction.emoji === '⏳' && reaction.removed));
    expect(replyTo(b, second.id)).toHaveLength(1);
  });

  it('defers /sentiment while other sentiment calls are queued, then edits in the answer', async () => {
    let releaseClassify!: () => void;
    const slow = new Promise<void>((resolve) => (releaseClassify = resolve));
    const scripted = new ScriptedEngine();
    const classify = scripted.classify.bind(scripted);
    scripted.classify = async (text) => {
      if (text === 'slow one') await slow;
      return classify(text);
    };
    const bot = await boot({ engine: scripted });
    const channelId = emulator.defaultChannelId;
    emulator.sendUserMessage({ channelId, content: 'slow one' });
    await emulator.waitFor(() => bot.queue.isBusy('sentiment'));
    const interaction = emulator.sendSlashCommand({ channelId, name: 'sentiment', options: { text: 'is this deferred?' } });
    const deferred = await emulator.waitFor(() => emulator.interactionResponses(interaction.id)[0]);
    expect(deferred.callbackType).toBe(5); // DeferredChannelMessageWithSource
    releaseClassify();
    const edited = await emulator.waitFor(() => emulator.interactionResponses(interaction.id).find((response) => response.kind === 'editOriginal'));
    expect(edited.content).toBe('😐 **neutral** (confidence 60%)');
  });

  it('tells the user briefly when the model fails, keeps the detail in the log, and records nothing', async () => {
    const failing = new ScriptedEngine();
    failing.reply = async () => {
      throw new Error('llama_decode failed: out of memory (detail for the log only)');
    };
    const bot = await boot({ engine: failing });
    const channelId = emulator.defaultChannelId;
    const message = emulator.sendUserMessage({ channelId, content: 'hello?' });
    const [notice] = await emulator.waitFor(() => replyTo(channelId, message.id).length > 0 && replyTo(channelId, message.id));
    expect(notice!.content).toBe('Sorry, something went wrong while answering that. Please try again.');
    await emulator.waitFor(() => bot.logs.some((line) => line.includes('"reply failed"') && line.includes('out of memory')));
    expect(await bot.store.load(channelId)).toEqual([]);
  });

  it('answers a failing command ephemerally with a short line, keeping the detail in the log', async () => {
    const failing = new ScriptedEngine();
    failing.classify = async () => {
      throw new Error('classifier exploded (detail for the log only)');
    };
    const bot = await boot({ engine: failing });
    const interaction = emulator.sendSlashCommand({ channelId: emulator.defaultChannelId, name: 'sentiment', options: { text: 'anything' } });
    const answer = await emulator.waitFor(() => emulator.interactionResponses(interaction.id).find((response) => response.content));
    expect(answer.ephemeral).toBe(true);
    expect(answer.content).toBe('Sorry, that command failed. Please try again.');
    await emulator.waitFor(() => bot.logs.some((line) => line.includes('"command failed"') && line.includes('classifier exploded')));
  });

  it('still lands the reaction when Discord answers it with 429 first', async () => {
    const bot = await boot();
    const fault = emulator.failNext({ method: 'PUT', path: /\/reactions\//, status: 429, retryAfter: 0.3, times: 1 });
    const message = emulator.sendUserMessage({ content: 'rate limits are fun' });
    await answered(bot, message.id);
    expect(fault.hits).toBe(1);
    const reactions = emulator.reactions(emulator.defaultChannelId, message.id).filter((reaction) => SENTIMENT_EMOJIS.includes(reaction.emoji));
    expect(reactions).toHaveLength(1);
    expect(replyTo(emulator.defaultChannelId, message.id)).toHaveLength(1);
  });

  it('generates the reply while a slow, rate-limited reaction goes out, and still posts nothing before the reaction', async () => {
    let replyStartedAt = 0;
    const engine = new ScriptedEngine();
    const reply = engine.reply.bind(engine);
    engine.reply = (request) => {
      replyStartedAt ||= Date.now();
      return reply(request);
    };
    const bot = await boot({ engine });
    emulator.setRestLatency(100);
    const fault = emulator.failNext({ method: 'PUT', path: /\/reactions\//, status: 429, retryAfter: 1, times: 1 });
    const sentAt = Date.now();
    const message = emulator.sendUserMessage({ content: 'is anyone around tonight?' });
    await answered(bot, message.id);

    expect(fault.hits).toBe(1);
    const [reaction] = emulator.reactions(emulator.defaultChannelId, message.id).filter((r) => SENTIMENT_EMOJIS.includes(r.emoji));
    const [firstPost] = replyTo(emulator.defaultChannelId, message.id);
    // The reaction took over a second (429, Retry-After 1); the model did not wait for it.
    expect(reaction!.time - sentAt).toBeGreaterThan(1000);
    expect(replyStartedAt).toBeGreaterThan(0);
    expect(replyStartedAt).toBeLessThan(reaction!.time - 500);
    // What the user sees is still in order: the reaction, then the reply and the typing indicator.
    expect(reaction!.time).toBeLessThanOrEqual(firstPost!.createdAt);
    for (const typing of emulator.typing(emulator.defaultChannelId)) expect(typing.time).toBeGreaterThanOrEqual(reaction!.time);
  });
});

describe('the bot process', () => {
  it('exits 0 soon after SIGTERM, closing the client and the store', async () => {
    const folder = fixture.tempFolder();
    emulator = await fixture.startEmulator();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: {
        ...process.env,
        DISCORD_TOKEN: emulator.token,
        DISCORD_API_URL: emulator.apiUrl,
        MODEL: await ensureTinyModel(),
        THREADS: '1',
        CONTEXT_SIZE: '1024',
        HISTORY_MAX_TOKENS: '256',
        REPLY_MAX_TOKENS: '24',
        DATABASE_URL: `sqlite://${folder}/history.sqlite`,
        LOG_LEVEL: 'info',
        ...NO_BACKGROUND_CALIBRATION,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await emulator.whenReady({ timeoutMs: 30_000 });
    const message = emulator.sendUserMessage({ content: 'hello process' });
    await emulator.waitFor(() => output.includes('"message answered"') && output, { timeoutMs: 30_000 });
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(output).toContain('"stopped"');
    expect(replyTo(emulator.defaultChannelId, message.id)).toHaveLength(1);
    expect(output).not.toContain(emulator.token);
  }, 60_000);
});
