/**
 * Exercises the Discord emulator with a real discord.js Client (no project bot logic): each test
 * wires tiny handlers on the client and checks what the emulator recorded.
 */
import { once } from 'node:events';
import {
  ApplicationCommandOptionType,
  ChannelType,
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Partials,
  type ClientOptions,
  type Message,
} from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiscordEmulator } from '../support/DiscordEmulator.js';

let emu: DiscordEmulator;
let client: Client | undefined;

async function startClient(extra: Partial<ClientOptions> = {}): Promise<Client> {
  const c = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    allowedMentions: { parse: [] },
    rest: { api: emu.apiUrl },
    ...extra,
  });
  client = c;
  const ready = once(c, Events.ClientReady);
  await c.login(emu.token);
  await ready;
  return c;
}

/** Resolves with the next `messageCreate` matching `filter`. */
function nextMessage(c: Client, filter: (m: Message) => boolean = () => true): Promise<Message> {
  return new Promise((resolve) => {
    const listener = (m: Message) => {
      if (!filter(m)) return;
      c.off(Events.MessageCreate, listener);
      resolve(m);
    };
    c.on(Events.MessageCreate, listener);
  });
}

beforeEach(async () => {
  emu = await DiscordEmulator.start({ heartbeatIntervalMs: 250 });
});

afterEach(async () => {
  await client?.destroy();
  client = undefined;
  await emu.stop();
});

describe('DiscordEmulator with a real discord.js Client', () => {
  it('logs in: clientReady fires with the guild and its channels cached', async () => {
    const extra = emu.addChannel('bot-lab');
    const started = Date.now();
    const c = await startClient();

    expect(Date.now() - started).toBeLessThan(3000); // the guild arrived; no 15 s unavailable-guild wait
    expect(c.user?.id).toBe(emu.botUser.id);
    expect(c.user?.bot).toBe(true);
    expect(c.application?.id).toBe(emu.applicationId);
    const guild = c.guilds.cache.get(emu.guildId);
    expect(guild?.available).toBe(true);
    expect(guild?.channels.cache.get(emu.defaultChannelId)?.name).toBe('general');
    expect(guild?.channels.cache.get(extra)?.type).toBe(ChannelType.GuildText);
    expect(guild?.members.me?.id).toBe(emu.botUser.id);
    expect(emu.identifyCount).toBe(1);
    await emu.whenReady();

    // A channel added after login arrives as CHANNEL_CREATE.
    const created = once(c, Events.ChannelCreate);
    const late = emu.addChannel('late');
    const [channel] = (await created) as [{ id: string; name: string }];
    expect(channel.id).toBe(late);
    expect(channel.name).toBe('late');

    // Heartbeats are acknowledged (no zombie-connection resume).
    await emu.waitFor(() => emu.gatewayLog.some((e) => e.direction === 'out' && e.op === 11));
    expect(emu.resumeCount).toBe(0);
    expect(emu.requests.find((r) => r.path === '/gateway/bot')?.status).toBe(200);
    expect(emu.unhandledRequests).toEqual([]);
  });

  it('rejects a wrong token with 401 on GET /gateway/bot', async () => {
    const c = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: emu.apiUrl } });
    await expect(c.login('not-the-token')).rejects.toThrow(/token/i);
    expect(emu.requests.at(-1)).toMatchObject({ path: '/gateway/bot', status: 401 });
    await c.destroy();
  });

  it('delivers a user message as messageCreate with content and author', async () => {
    const c = await startClient();
    await emu.whenReady();
    const received = nextMessage(c);
    const sent = emu.sendUserMessage({ channelId: emu.defaultChannelId, content: `hello <@${emu.botUser.id}>` });
    const message = await received;

    expect(message.id).toBe(sent.id);
    expect(message.content).toBe(`hello <@${emu.botUser.id}>`);
    expect(message.author.id).toBe(emu.humanUser.id);
    expect(message.author.username).toBe('alice');
    expect(message.author.bot).toBe(false);
    expect(message.member?.id).toBe(emu.humanUser.id);
    expect(message.guildId).toBe(emu.guildId);
    expect(message.channelId).toBe(emu.defaultChannelId);
    expect(message.mentions.has(c.user!)).toBe(true);

    const fromBob = nextMessage(c);
    emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'second', author: { username: 'bob' } });
    const second = await fromBob;
    expect(second.author.username).toBe('bob');
    expect(second.author.id).not.toBe(emu.humanUser.id);
  });

  it('records react → reply → edit in order, with the decoded emoji and allowed_mentions', async () => {
    const c = await startClient();
    c.on(Events.MessageCreate, async (message) => {
      if (message.author.bot) return;
      await message.react('👍');
      const reply = await message.reply(`pong: ${message.content}`);
      await reply.edit(`${reply.content} (edited)`);
    });
    await emu.whenReady();
    const sent = emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'ping' });

    const [botMessage] = await emu.waitFor(() => {
      const messages = emu.botMessages(emu.defaultChannelId);
      return messages[0]?.edited ? messages : undefined;
    });
    expect(botMessage).toMatchObject({
      content: 'pong: ping (edited)',
      replyTo: sent.id,
      allowedMentions: { parse: [] },
      deleted: false,
      source: 'channel',
    });
    expect(botMessage!.history.map((v) => v.content)).toEqual(['pong: ping', 'pong: ping (edited)']);
    expect(botMessage!.message.type).toBe(19); // Reply
    expect(botMessage!.message.mentions).toEqual([]); // parse: [] and no replied_user → nobody pinged

    expect(emu.reactions(emu.defaultChannelId, sent.id)).toEqual([
      expect.objectContaining({ emoji: '👍', userId: emu.botUser.id, removed: false }),
    ]);

    const actions = emu.requests
      .filter((r) => r.path.startsWith(`/channels/${emu.defaultChannelId}/messages`))
      .map((r) => `${r.method} ${r.path.replace(emu.defaultChannelId, 'C').replace(sent.id, 'M').replace(botMessage!.id, 'R')}`);
    expect(actions).toEqual(['PUT /channels/C/messages/M/reactions/👍/@me', 'POST /channels/C/messages', 'PATCH /channels/C/messages/R']);
    const post = emu.requests.find((r) => r.method === 'POST' && r.path === `/channels/${emu.defaultChannelId}/messages`);
    expect(post?.body).toMatchObject({ content: 'pong: ping', allowed_mentions: { parse: [] }, message_reference: { message_id: sent.id } });
  });

  it('records bulk command registration', async () => {
    const c = await startClient();
    const commands = await c.application!.commands.set([
      { name: 'ask', description: 'Ask the bot', options: [{ name: 'question', description: 'What to ask', type: ApplicationCommandOptionType.String, required: true }] },
      { name: 'ping', description: 'Health check' },
    ]);
    expect(commands.size).toBe(2);

    const registered = emu.registeredCommands();
    expect(registered.map((cmd) => cmd.name)).toEqual(['ask', 'ping']);
    expect(registered[0]).toMatchObject({ application_id: emu.applicationId, type: 1, description: 'Ask the bot', options: [{ name: 'question', type: 3, required: true }] });
    expect([...commands.keys()].sort()).toEqual(registered.map((cmd) => cmd.id).sort());

    // Guild-scoped overwrite is kept separately; an invalid name is rejected like Discord does.
    await c.application!.commands.set([{ name: 'local', description: 'Guild only' }], emu.guildId);
    expect(emu.registeredCommands(emu.guildId).map((cmd) => cmd.name)).toEqual(['local']);
    await expect(c.application!.commands.set([{ name: 'Bad Name', description: 'x' }])).rejects.toThrow(/Invalid Form Body/);
    expect(emu.registeredCommands().map((cmd) => cmd.name)).toEqual(['ask', 'ping']);
  });

  it('delivers a slash command and records ephemeral reply, deferReply and editReply', async () => {
    const c = await startClient();
    await c.application!.commands.set([
      { name: 'secret', description: 'Ephemeral answer' },
      { name: 'slow', description: 'Deferred answer', options: [{ name: 'n', description: 'A number', type: ApplicationCommandOptionType.Integer }] },
    ]);
    const seen: Array<{ name: string; user: string; n: number | null; canManage: boolean }> = [];
    c.on(Events.InteractionCreate, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      seen.push({
        name: interaction.commandName,
        user: interaction.user.id,
        n: interaction.options.getInteger('n'),
        canManage: interaction.memberPermissions?.has('ManageGuild') ?? false,
      });
      if (interaction.commandName === 'secret') {
        await interaction.reply({ content: 'only you can see this', flags: MessageFlags.Ephemeral });
      } else {
        await interaction.deferReply();
        await interaction.editReply(`done: ${interaction.options.getInteger('n')}`);
      }
    });
    await emu.whenReady();

    const secret = emu.sendSlashCommand({ channelId: emu.defaultChannelId, name: 'secret', permissions: 0n });
    const secretResponses = await emu.waitFor(() => {
      const r = emu.interactionResponses(secret.id);
      return r.length ? r : undefined;
    });
    expect(secretResponses).toEqual([
      expect.objectContaining({ kind: 'callback', callbackType: 4, content: 'only you can see this', flags: 64, ephemeral: true }),
    ]);

    const slow = emu.sendSlashCommand({ channelId: emu.defaultChannelId, name: 'slow', options: { n: 42 } });
    const slowResponses = await emu.waitFor(() => {
      const r = emu.interactionResponses(slow.id);
      return r.length >= 2 ? r : undefined;
    });
    expect(slowResponses.map((r) => r.kind)).toEqual(['callback', 'editOriginal']);
    expect(slowResponses[0]).toMatchObject({ callbackType: 5, ephemeral: false });
    expect(slowResponses[1]).toMatchObject({ content: 'done: 42', messageId: slowResponses[0]!.messageId });

    expect(seen).toEqual([
      { name: 'secret', user: emu.humanUser.id, n: null, canManage: false },
      { name: 'slow', user: emu.humanUser.id, n: 42, canManage: true },
    ]);
    const [ephemeral, deferred] = emu.botMessages(emu.defaultChannelId);
    expect(ephemeral).toMatchObject({ source: 'interaction', ephemeral: true, interactionId: secret.id });
    expect(deferred).toMatchObject({ source: 'interaction', ephemeral: false, content: 'done: 42', interactionId: slow.id });
    expect(deferred!.flags & MessageFlags.Loading).toBe(0);
    // Ephemeral messages are not part of the visible channel history.
    expect(emu.channelMessages(emu.defaultChannelId).map((m) => m.id)).toEqual([deferred!.id]);
  });

  it('keeps the files a bot uploads (multipart) on a channel message, an interaction reply, a follow-up and an edit, and serves them at their URLs', async () => {
    const c = await startClient();
    const file = (text: string, name: string) => ({ attachment: Buffer.from(text), name });
    c.on(Events.InteractionCreate, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.reply({ content: 'chart', files: [file('reply bytes', 'a.png')] });
      await interaction.followUp({ content: 'more', files: [file('follow-up bytes', 'b.txt')], flags: MessageFlags.Ephemeral });
      await interaction.editReply({ files: [file('edited bytes', 'c.png')] });
    });
    await emu.whenReady();
    const channel = c.channels.cache.get(emu.defaultChannelId);
    if (!channel?.isSendable()) throw new Error('default channel not sendable');
    await channel.send({ content: 'with a file', files: [file('channel bytes', 'd.csv')] });

    const asked = emu.sendSlashCommand({ channelId: emu.defaultChannelId, name: 'upload' });
    await emu.waitFor(() => emu.interactionResponses(asked.id).length >= 3);

    const [sent, reply, followUp] = emu.botMessages(emu.defaultChannelId);
    const texts = (message: typeof sent) => message!.attachments.map((a) => [a.filename, emu.attachmentData(a)?.toString()]);
    expect(texts(sent)).toEqual([['d.csv', 'channel bytes']]);
    // The edit kept nothing it did not list: the new file replaced the reply's first one, as on Discord.
    expect(texts(reply)).toEqual([['c.png', 'edited bytes']]);
    expect(texts(followUp)).toEqual([['b.txt', 'follow-up bytes']]);
    expect(followUp!.ephemeral).toBe(true);
    const served = await fetch(reply!.attachments[0]!.url);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe(reply!.attachments[0]!.content_type);
    expect(await served.text()).toBe('edited bytes');
  });

  it('rejects a second interaction callback, like Discord', async () => {
    const c = await startClient();
    const errors: string[] = [];
    c.on(Events.InteractionCreate, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      if (interaction.commandName === 'twice') {
        await interaction.reply('first');
        // Bypass discord.js' own "already replied" guard to hit the API.
        await c.rest
          .post(`/interactions/${interaction.id}/${interaction.token}/callback`, { body: { type: 4, data: { content: 'again' } }, auth: false })
          .catch((error: Error) => errors.push(error.message));
      }
    });
    await emu.whenReady();
    const twice = emu.sendSlashCommand({ name: 'twice' });
    await emu.waitFor(() => errors.length > 0);
    expect(errors[0]).toMatch(/already been acknowledged/);
    expect(emu.interactionResponses(twice.id)).toHaveLength(1);
  });

  it('rejects an interaction callback after the acknowledgement deadline', async () => {
    await emu.stop();
    emu = await DiscordEmulator.start({ heartbeatIntervalMs: 250, interactionAckDeadlineMs: 50 });
    const c = await startClient();
    const failures: unknown[] = [];
    c.on(Events.InteractionCreate, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
      await interaction.reply('too late').catch((error: unknown) => failures.push(error));
    });
    await emu.whenReady();
    const late = emu.sendSlashCommand({ name: 'late' });
    await emu.waitFor(() => failures.length > 0);
    expect(failures[0]).toMatchObject({ status: 404, code: 10062 });
    expect(emu.interactionResponses(late.id)).toEqual([]);
  });

  it('retries a reaction PUT answered with a scripted 429 and still lands it', async () => {
    const c = await startClient();
    const fault = emu.failNext({ method: 'PUT', path: /\/reactions\//, status: 429, retryAfter: 0.2, times: 1 });
    const reacted: number[] = [];
    c.on(Events.MessageCreate, async (message) => {
      if (message.author.bot) return;
      await message.react('🎉');
      reacted.push(Date.now());
    });
    await emu.whenReady();
    const sent = emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'party' });

    const [reaction] = await emu.waitFor(() => {
      const r = emu.reactions(emu.defaultChannelId, sent.id);
      return r.length ? r : undefined;
    });
    expect(reaction).toMatchObject({ emoji: '🎉', removed: false });
    await emu.waitFor(() => reacted.length === 1);
    expect(fault.hits).toBe(1);
    expect(fault.remaining).toBe(0);

    const puts = emu.requests.filter((r) => r.method === 'PUT' && r.path.includes('/reactions/'));
    expect(puts.map((r) => r.status)).toEqual([429, 204]);
    expect(puts[0]!.injectedFault).toBe(true);
    expect(puts[1]!.time - puts[0]!.time).toBeGreaterThanOrEqual(190); // honoured Retry-After
  });

  it('retries a 500 on message create (up to @discordjs/rest retry limit)', async () => {
    const c = await startClient();
    emu.failNext({ method: 'POST', path: /\/messages$/, status: 500, times: 2 });
    const channel = c.channels.cache.get(emu.defaultChannelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const sent = await channel.send('survived');
    expect(sent.content).toBe('survived');
    const posts = emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/messages'));
    expect(posts.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(emu.botMessages(emu.defaultChannelId).map((m) => m.content)).toEqual(['survived']);
  });

  it('answers API errors like Discord: unknown message, empty/too long content, unknown route', async () => {
    const c = await startClient();
    await emu.whenReady();
    const channel = c.channels.cache.get(emu.defaultChannelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const mine = await channel.send('to be deleted');
    await mine.delete();
    await expect(c.rest.patch(`/channels/${emu.defaultChannelId}/messages/${mine.id}`, { body: { content: 'x' } })).rejects.toMatchObject({
      status: 404,
      code: 10008,
    });
    await expect(channel.send('x'.repeat(2001))).rejects.toMatchObject({ status: 400, code: 50035 });
    await expect(c.rest.post(`/channels/${emu.defaultChannelId}/messages`, { body: { content: '' } })).rejects.toMatchObject({ code: 50006 });
    await expect(c.rest.get('/no/such/route')).rejects.toMatchObject({ status: 404, code: 0 });
    expect(emu.unhandledRequests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /no/such/route']);
    expect(emu.botMessages(emu.defaultChannelId)).toEqual([expect.objectContaining({ content: 'to be deleted', deleted: true })]);
  });

  it('resumes after dropGateway without re-identifying and delivers a message sent meanwhile exactly once', async () => {
    const c = await startClient();
    await emu.whenReady();
    const received: string[] = [];
    c.on(Events.MessageCreate, (message) => {
      received.push(message.content);
    });
    const resumed = once(c, Events.ShardResume);

    emu.dropGateway();
    const sent = emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'sent while offline' });
    const [, replayed] = (await resumed) as [number, number];

    await emu.waitFor(() => received.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 100)); // would catch a duplicate delivery
    expect(received).toEqual(['sent while offline']);
    expect(emu.identifyCount).toBe(1);
    expect(emu.resumeCount).toBe(1);
    // discord.js computes "replayed" as a sequence difference, so RESUMED itself is counted too.
    expect(replayed).toBe(2);
    const creates = emu.gatewayLog.filter((e) => e.direction === 'out' && e.t === 'MESSAGE_CREATE');
    expect(creates).toHaveLength(1);
    // The client reconnected to READY's resume_gateway_url.
    expect(emu.gatewayLog.filter((e) => e.direction === 'open').map((e) => e.path)).toEqual(['/gateway', '/gateway-resume']);
    expect(sent.content).toBe('sent while offline');

    // The resumed session keeps working.
    const after = nextMessage(c, (m) => m.content === 'after resume');
    emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'after resume' });
    await after;
  });

  it('delivers DMs (with Partials.Channel) and lets the bot answer in the DM channel', async () => {
    const c = await startClient({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.DirectMessages, GatewayIntentBits.MessageContent],
      partials: [Partials.Channel],
    });
    c.on(Events.MessageCreate, async (message) => {
      if (message.author.bot || message.guildId) return;
      await message.channel.send(`dm echo: ${message.content}`);
    });
    await emu.whenReady();
    const sent = emu.sendUserMessage({ dm: true, content: 'psst' });
    const [answer] = await emu.waitFor(() => {
      const m = emu.botMessages(sent.channel_id);
      return m.length ? m : undefined;
    });
    expect(answer).toMatchObject({ content: 'dm echo: psst', guildId: null });
  });

  it('blanks user message content for a client without the MessageContent intent', async () => {
    const c = await startClient({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages] });
    await emu.whenReady();
    const plain = nextMessage(c);
    emu.sendUserMessage({ content: 'secret words' });
    expect((await plain).content).toBe('');
    const mention = nextMessage(c);
    emu.sendUserMessage({ content: `<@${emu.botUser.id}> hi` });
    expect((await mention).content).toBe(`<@${emu.botUser.id}> hi`);
  });

  it('serves channel history to messages.fetch', async () => {
    const c = await startClient();
    await emu.whenReady();
    const ids = ['one', 'two', 'three'].map((content) => emu.sendUserMessage({ content }).id);
    const channel = c.channels.cache.get(emu.defaultChannelId);
    if (!channel?.isTextBased()) throw new Error('not text');
    const fetched = await channel.messages.fetch({ limit: 2, cache: false });
    expect([...fetched.values()].map((m) => m.content)).toEqual(['three', 'two']);
    const before = await channel.messages.fetch({ before: ids[2], limit: 10, cache: false });
    expect([...before.values()].map((m) => m.content)).toEqual(['two', 'one']);
  });
});
