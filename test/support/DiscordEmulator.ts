/**
 * An in-process emulator of Discord's REST API (v10) and gateway, listening on 127.0.0.1, for
 * driving a REAL discord.js `Client` in end-to-end tests without network access.
 *
 * ```ts
 * const emu = await DiscordEmulator.start();
 * const client = new Client({
 *   intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
 *   rest: { api: emu.apiUrl },
 * });
 * const ready = once(client, Events.ClientReady);
 * await client.login(emu.token);
 * await ready;
 * emu.sendUserMessage({ channelId: emu.defaultChannelId, content: 'hi' });
 * const reply = await emu.waitFor(() => emu.botMessages(emu.defaultChannelId)[0]);
 * await client.destroy();
 * await emu.stop();
 * ```
 *
 * What it models (and checks the way Discord does):
 * - one guild with text channels, @everyone + an Administrator bot role, the bot and human members;
 * - gateway v10 JSON: HELLO → IDENTIFY → READY → GUILD_CREATE, heartbeat ACKs, RESUME with replay of
 *   missed dispatches, op 7 / op 9, op 8 member chunks; dispatches honour the session's intents
 *   (and MessageContent blanks user message content like Discord);
 * - REST: messages (create / edit / delete / fetch / history / bulk delete), reactions, typing,
 *   interaction callbacks + webhook follow-ups/edits, application command registration, a few reads;
 *   validation errors such as 50006 empty message, 50035 content over 2000 chars or unknown reply
 *   target, 10008 Unknown Message, 10014 Unknown Emoji, 40060 already acknowledged, 10062 late
 *   interaction callback (3 s), 401 wrong token; unknown routes answer 404 `{ code: 0, message }`
 *   and are flagged in {@link DiscordEmulator.requests};
 * - scripted faults ({@link DiscordEmulator.failNext}) and gateway drops ({@link DiscordEmulator.dropGateway}).
 *
 * - permissions: @everyone and the bot's role (`botPermissions`, default Administrator), channel
 *   overwrites ({@link DiscordEmulator.setPermissionOverwrite}); the bot's sends, typing and reactions
 *   need them, else 403 50013 Missing Permissions;
 * - duplicate deliveries of a MESSAGE_CREATE ({@link DiscordEmulator.redeliverMessage}).
 *
 * - shards ({@link EmulatorOptions.shards}): a guild's events reach only its shard's session, DMs shard 0;
 *   more guilds with {@link DiscordEmulator.addGuild}.
 *
 * - threads: public and private threads and forum posts ({@link DiscordEmulator.addThread}, THREAD_CREATE), their
 *   members ({@link DiscordEmulator.addThreadMember}, GET thread-members/:user);
 *
 * Not modelled: permissions of other users, thread members and archiving, voice, presences, ETF/zlib transport,
 * DM slash commands, real rate-limit buckets (only scripted 429s).
 *
 * discord.js behaviours worth knowing when writing tests against it:
 * - Destroy the Client before `emu.stop()`; otherwise it keeps trying to resume against a closed port.
 * - A RESUME after a drop happens ~500 ms later (fixed delay in @discordjs/ws). A re-IDENTIFY
 *   (`invalidateSession()`) is throttled to one per 5 s per client unless the Client is built with
 *   `ws: { buildIdentifyThrottler: () => ({ waitForIdentify: async () => {} }) }`.
 * - `shardResume`'s "replayed" count is a sequence difference, so it includes RESUMED itself.
 * - DMs only reach `messageCreate` with `partials: [Partials.Channel]` and the DirectMessages intent.
 * - The bot's own messages come back as `messageCreate` (as on Discord); handlers should skip `author.bot`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PermissionFlagsBits, type APIApplicationCommand, type APIMessage, type APIOverwrite, type APIUser, type GatewayMessageCreateDispatchData } from 'discord-api-types/v10';
import { Gateway, shardOfGuild, type GatewayLogEntry } from './discordEmulator/gateway.js';
import { RestApi } from './discordEmulator/rest.js';
import { EmulatorState } from './discordEmulator/state.js';
import type { ThreadKind } from './discordEmulator/threads.js';
import type {
  BotMessageRecord,
  ButtonClickOptions,
  EmulatorOptions,
  FaultHandle,
  FaultRule,
  InteractionResponseRecord,
  ReactionRecord,
  RecordedRequest,
  SendUserMessageOptions,
  SentInteraction,
  SlashCommandOptions,
  TypingRecord,
  UserSpec,
} from './discordEmulator/types.js';

export type * from './discordEmulator/types.js';
export type { GatewayLogEntry } from './discordEmulator/gateway.js';

/** Options of {@link DiscordEmulator.waitFor}. */
export interface WaitForOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
  /** Poll interval, default 10 ms. */
  intervalMs?: number;
  /** Included in the timeout error. */
  description?: string;
}

export class DiscordEmulator {
  /** `http://127.0.0.1:PORT/api` — pass as `rest: { api }` to the discord.js Client. */
  readonly apiUrl: string;
  /** `ws://127.0.0.1:PORT/gateway` — what GET /gateway/bot returns. */
  readonly gatewayUrl: string;
  readonly port: number;

  private constructor(
    private readonly server: Server,
    private readonly state: EmulatorState,
    private readonly gateway: Gateway,
    private readonly rest: RestApi,
  ) {
    const { port } = server.address() as AddressInfo;
    this.port = port;
    this.apiUrl = `http://127.0.0.1:${port}/api`;
    this.gatewayUrl = gateway.url;
  }

  /** Starts the emulator on a random free port of 127.0.0.1. */
  static async start(options: EmulatorOptions = {}): Promise<DiscordEmulator> {
    const state = new EmulatorState({
      guildName: options.guildName ?? 'Emulated Guild',
      channels: options.channels ?? ['general'],
      botUsername: options.botUsername ?? 'EmuBot',
      interactionAckDeadlineMs: options.interactionAckDeadlineMs ?? 3000,
      echoBotEvents: options.echoBotEvents ?? true,
      botPermissions: options.botPermissions ?? PermissionFlagsBits.Administrator,
      shards: options.shards,
    });
    const gateway = new Gateway(state.token, options.heartbeatIntervalMs ?? 1000, {
      buildReady: (session, resumeUrl) => state.buildReady(session, resumeUrl),
      afterReady: (session) => state.afterReady(session),
      onRequestGuildMembers: (session, data) => state.onRequestGuildMembers(session, data),
    });
    state.attachGateway(gateway);
    const rest = new RestApi(state, () => gateway.url);
    const server = createServer((req, res) => {
      rest.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ code: 0, message: `500: ${String(error)}` }));
      });
    });
    server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    gateway.setBaseUrl(`ws://127.0.0.1:${port}`);
    state.baseUrl = `http://127.0.0.1:${port}`;
    return new DiscordEmulator(server, state, gateway, rest);
  }

  // ───────────────────────────── identity ─────────────────────────────

  /** The bot token the emulator accepts (anything else gets 401 / gateway close 4004). */
  get token(): string {
    return this.state.token;
  }

  /** The bot's user (`bot: true`); its id equals {@link applicationId}. */
  get botUser(): APIUser {
    return structuredClone(this.state.botUser);
  }

  get applicationId(): string {
    return this.state.applicationId;
  }

  get guildId(): string {
    return this.state.guildId;
  }

  /** The default human (`alice`, guild owner) who authors injected messages and commands. */
  get humanUser(): APIUser {
    return structuredClone(this.state.humanUser);
  }

  /**
   * Adds a guild (the first guild's members and roles, these text channels) owned by `shard`.
   * Before login it is part of READY; afterwards the owning session gets GUILD_CREATE.
   */
  addGuild(name: string, channels: string[] = ['general'], shard = 0): { guildId: string; channelIds: string[] } {
    return this.state.addGuild(name, channels, shard);
  }

  /** The shard that owns a guild: `(guild_id >> 22) % shards`. */
  shardOf(guildId: string): number {
    return shardOfGuild(guildId, this.state.shardCount);
  }

  /** Shard ids with a session that is connected and has had READY, sorted (a shard twice if it has two). */
  connectedShards(): number[] {
    return this.gateway
      .liveSessions()
      .filter((session) => session.state === 'ready' && session.socket !== null)
      .map((session) => session.shard[0])
      .sort((a, b) => a - b);
  }

  /** The first text channel (`general` unless configured otherwise). */
  get defaultChannelId(): string {
    return this.state.firstChannelId;
  }

  /** Ids of all guild text channels, in creation order. */
  get channelIds(): string[] {
    return this.state.guildChannels().map((c) => c.id);
  }

  /**
   * Adds a guild text channel. Before login it is part of GUILD_CREATE; afterwards connected
   * clients get CHANNEL_CREATE. Returns its id.
   */
  addChannel(name?: string): string {
    return this.state.addChannel(name);
  }

  /**
   * Creates a thread of a text channel (`kind` public or private) or a post of a forum channel
   * (`kind: 'forum'`), and sends THREAD_CREATE. Messages go to it by its id, like to any channel.
   */
  addThread(parentId: string, options: { name?: string; kind?: ThreadKind; owner?: UserSpec } = {}): string {
    return this.state.addThread(parentId, options);
  }

  /** Adds a user to a thread's members (its owner is one from the start); GET thread-members answers 404 for anyone else. */
  addThreadMember(threadId: string, user?: UserSpec): void {
    this.state.addThreadMember(threadId, user);
  }

  /** Adds a forum channel (CHANNEL_CREATE); its posts are {@link addThread} with kind `forum`. */
  addForumChannel(name: string): string {
    return this.state.addForumChannel(name);
  }

  /** The bot's role (the `botPermissions` option); an overwrite for it changes the bot's rights in a channel. */
  get botRoleId(): string {
    return this.state.botRoleId;
  }

  /**
   * Sets one permission overwrite of a channel (`id` a role, @everyone = the guild id, or a member)
   * and sends CHANNEL_UPDATE, so discord.js's `permissionsFor` sees it too.
   */
  setPermissionOverwrite(channelId: string, overwrite: APIOverwrite): void {
    this.state.setPermissionOverwrite(channelId, overwrite);
  }

  /** The bot's permissions in a channel, as Discord computes them. */
  botPermissionsIn(channelId: string): bigint {
    return this.state.botPermissionsIn(channelId);
  }

  /** Finds or creates a user (and guild member) from a spec; useful to pre-create message authors. */
  addUser(spec: UserSpec): APIUser {
    return structuredClone(this.state.resolveUser(spec));
  }

  // ───────────────────────────── gateway ─────────────────────────────

  /**
   * Resolves once a client is connected and has been sent READY + GUILD_CREATE (immediately if
   * one already is). Events injected from then on are delivered: discord.js queues dispatches that
   * arrive before it emits `clientReady` and replays them afterwards.
   */
  async whenReady({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.gateway.whenReady(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`DiscordEmulator.whenReady timed out after ${timeoutMs} ms\n${this.describe()}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes the client's socket(s) abnormally (default code 4000; `1006` kills the TCP connection
   * without a close frame). discord.js reconnects to `resume_gateway_url` after ~500 ms and RESUMEs;
   * dispatches generated in the meantime are buffered and replayed before RESUMED.
   */
  dropGateway(code = 4000): void {
    this.gateway.drop(code);
  }

  /** Sends op 7 Reconnect (the client closes and RESUMEs). */
  requestReconnect(): void {
    this.gateway.requestReconnect();
  }

  /** Sends op 9 Invalid Session; non-resumable (default) makes the client IDENTIFY again. */
  invalidateSession(resumable = false): void {
    this.gateway.invalidateSessions(resumable);
  }

  /** Every gateway frame in and out (heartbeats included) and every socket close. */
  get gatewayLog(): readonly GatewayLogEntry[] {
    return this.gateway.log;
  }

  /** Number of IDENTIFY payloads received. */
  get identifyCount(): number {
    return this.gateway.log.filter((e) => e.direction === 'in' && e.op === 2).length;
  }

  /** Number of RESUME payloads received. */
  get resumeCount(): number {
    return this.gateway.log.filter((e) => e.direction === 'in' && e.op === 6).length;
  }

  /** Presence updates (op 3) received from the client, e.g. from `client.user.setPresence`. */
  get presenceUpdates(): readonly unknown[] {
    return this.gateway.presenceUpdates;
  }

  // ───────────────────────────── acting as users ─────────────────────────────

  /**
   * Posts a message as a human (default `alice`) and dispatches MESSAGE_CREATE, with `guild_id`,
   * `member`, parsed `mentions` (`<@id>`, `<@&id>`, @everyone) and, for `replyTo`, a reply
   * reference. Returns the dispatched payload. Throws if no client ever identified.
   */
  sendUserMessage(options: SendUserMessageOptions): GatewayMessageCreateDispatchData {
    return this.state.sendUserMessage(options);
  }

  /**
   * Dispatches MESSAGE_CREATE for a message once more, as Discord occasionally does. While the
   * gateway is dropped it is buffered and replayed on RESUME, like any dispatch.
   */
  redeliverMessage(messageId: string): void {
    this.state.redeliverMessage(messageId);
  }

  /** Edits any message as its author and dispatches MESSAGE_UPDATE. */
  editUserMessage(channelId: string, messageId: string, content: string): APIMessage {
    return this.state.editUserMessage(channelId, messageId, content);
  }

  /** Deletes any message and dispatches MESSAGE_DELETE. */
  deleteUserMessage(channelId: string, messageId: string): void {
    this.state.deleteUserMessage(channelId, messageId);
  }

  /** A human reacts to a message (MESSAGE_REACTION_ADD, needs the GuildMessageReactions intent). */
  addUserReaction(channelId: string, messageId: string, emoji: string, user?: UserSpec): void {
    this.state.addUserReaction(channelId, messageId, emoji, user);
  }

  /**
   * Dispatches a chat-input INTERACTION_CREATE (guild channel). Option types come from the
   * registered command when there is one. The bot must call back within
   * `interactionAckDeadlineMs` (default 3 s). A name that was never registered is still delivered
   * (with a fresh command id), so tests do not depend on registration. Returns id, token and payload.
   */
  sendSlashCommand(options: SlashCommandOptions): SentInteraction {
    return this.state.sendSlashCommand(options);
  }

  /**
   * A human clicks a button (`customId`) on a message: INTERACTION_CREATE of type 3. The bot's
   * answer shows in {@link interactionResponses} (a deferred update is callback type 6).
   */
  clickButton(options: ButtonClickOptions): SentInteraction {
    return this.state.clickButton(options);
  }

  // ───────────────────────────── what the bot did ─────────────────────────────

  /** Every REST request received, in order (including faulted, unauthorized and unknown ones). */
  get requests(): readonly RecordedRequest[] {
    return this.rest.requests;
  }

  /** Requests no emulator route handled (404/405). Handy in `afterEach` assertions. */
  get unhandledRequests(): RecordedRequest[] {
    return this.rest.requests.filter((r) => r.unknownRoute);
  }

  /**
   * Messages authored by the bot (channel messages, interaction replies incl. ephemeral ones,
   * follow-ups) in creation order, optionally for one channel, with edits applied, the full edit
   * `history` and a `deleted` flag.
   */
  botMessages(channelId?: string): BotMessageRecord[] {
    return this.state.botMessageRecords(channelId);
  }

  /** The visible history of a channel (all authors, oldest first, no deleted/ephemeral messages). */
  channelMessages(channelId: string): APIMessage[] {
    return this.state.channelMessages(channelId);
  }

  /** Reactions the bot added, oldest first; `removed` turns true when it takes one back. */
  reactions(channelId?: string, messageId?: string): ReactionRecord[] {
    return this.state.reactionLog
      .filter((r) => r.userId === this.state.botUser.id)
      .filter((r) => (channelId === undefined || r.channelId === channelId) && (messageId === undefined || r.messageId === messageId))
      .map((r) => ({ ...r }));
  }

  /** Typing indicators the bot triggered (POST /channels/:id/typing). */
  typing(channelId?: string): TypingRecord[] {
    return this.state.typingLog.filter((t) => channelId === undefined || t.channelId === channelId).map((t) => ({ ...t }));
  }

  /**
   * The bytes of a file the bot uploaded (multipart, on a channel message, an interaction response,
   * a follow-up or an edit), by its attachment; undefined for an attachment the emulator does not hold.
   */
  attachmentData(attachment: { url: string }): Buffer | undefined {
    const path = decodeURIComponent(new URL(attachment.url).pathname);
    const content = this.state.attachmentFiles.get(path)?.content;
    return content === undefined ? undefined : Buffer.from(content);
  }

  /** The callback and every webhook follow-up / edit / delete for an interaction, in order. */
  interactionResponses(interactionId: string): InteractionResponseRecord[] {
    return this.state.interactionResponses(interactionId);
  }

  /** The current command list: global, or for a guild (result of the last bulk overwrite plus upserts). */
  registeredCommands(guildId?: string): APIApplicationCommand[] {
    return structuredClone(this.state.commandList(guildId ?? null));
  }

  // ───────────────────────────── faults ─────────────────────────────

  /**
   * Makes the next `times` (default 1) requests matching `method` and `path` (a RegExp tested
   * against the decoded path below `/api/v10`, e.g. `/reactions/`) fail with `status`. A 429 sends
   * `Retry-After: retryAfter` (seconds, default 0.1) and the Discord JSON body, so @discordjs/rest
   * waits and retries; 5xx is retried up to 3 times by @discordjs/rest. Returns a live counter.
   */
  failNext(rule: FaultRule): FaultHandle {
    return this.rest.failNext(rule);
  }

  /** Delays every REST request by `ms` before handling it, as a network round trip would (0: none). */
  setRestLatency(ms: number): void {
    this.rest.latencyMs = ms;
  }

  /** Disarms every pending fault rule. */
  clearFaults(): void {
    this.rest.clearFaults();
  }

  // ───────────────────────────── utilities ─────────────────────────────

  /**
   * Polls `predicate` until it returns a truthy value and resolves with it; rejects after
   * `timeoutMs` (default 5 s) with a summary of the emulator state.
   */
  async waitFor<T>(predicate: () => T | undefined | null | false, options: WaitForOptions = {}): Promise<T> {
    const { timeoutMs = 5000, intervalMs = 10, description } = options;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate();
      if (value) return value;
      if (Date.now() >= deadline) {
        throw new Error(`DiscordEmulator.waitFor timed out after ${timeoutMs} ms${description ? ` (${description})` : ''}\n${this.describe()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Human-readable summary of recent activity, used in timeout errors. */
  describe(): string {
    const recent = this.rest.requests
      .slice(-15)
      .map((r) => `  ${r.method} ${r.path} → ${r.status}${r.injectedFault ? ' (fault)' : ''}${r.unknownRoute ? ' (no route)' : ''}${r.error ? ` ${r.error.message}` : ''}`);
    const sessions = [...this.gateway.sessions.values()].map((s) => `  session ${s.id}: ${s.state}, seq ${s.seq}, intents ${s.intents}`);
    return [`Gateway sessions:`, ...(sessions.length ? sessions : ['  (none)']), `Last REST requests:`, ...(recent.length ? recent : ['  (none)'])].join('\n');
  }

  /** Closes every socket and the HTTP server. */
  async stop(): Promise<void> {
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
