/**
 * The emulated Discord world (one guild, its channels, users, messages, reactions, interactions and
 * application commands) and every operation on it, whether triggered by the bot over REST or by a
 * test acting as a human user. Changes are pushed to connected clients through the {@link Gateway}.
 */
import {
  AllowedMentionsTypes,
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationFlags,
  ApplicationIntegrationType,
  ChannelType,
  GatewayDispatchEvents,
  GatewayIntentBits,
  InteractionContextType,
  InteractionResponseType,
  InteractionType,
  Locale,
  MessageFlags,
  MessageReferenceType,
  MessageType,
  PermissionFlagsBits,
  ReactionType,
  type APIAllowedMentions,
  type APIApplicationCommand,
  type APIApplicationCommandInteractionDataOption,
  type APIApplicationCommandOption,
  type APIAttachment,
  type APIChatInputApplicationCommandGuildInteraction,
  type APIDMChannel,
  type APIEmbed,
  type APIGuild,
  type APIGuildForumChannel,
  type APIGuildMember,
  type APIThreadChannel,
  type APIThreadMember,
  type ThreadMemberFlags,
  type APIInteractionDataResolved,
  type APIInteractionGuildMember,
  type APIMessage,
  type APIMessageTopLevelComponent,
  type APIOverwrite,
  type APIPartialEmoji,
  type APIRole,
  type APITextChannel,
  type APIUser,
  type UserFlags,
  type GatewayGuildCreateDispatchData,
  type GatewayMessageCreateDispatchData,
  type GatewayReadyDispatchData,
  type GatewayRequestGuildMembersData,
  type RESTPostAPIApplicationCommandsJSONBody,
  type RESTPostAPIInteractionCallbackWithResponseResult,
} from 'discord-api-types/v10';
import { buildDMChannel, buildGuild, buildMember, buildRole, buildTextChannel, buildUser } from './fixtures.js';
import { buildForumChannel, buildThreadChannel, isThread, type ThreadKind } from './threads.js';
import { channelPermissions, requirePermissions } from './permissions.js';
import { shardOfGuild, type Gateway, type GatewaySession } from './gateway.js';
import type {
  BotMessageRecord,
  InteractionResponseRecord,
  MessageVersion,
  ReactionRecord,
  RecordedFile,
  ButtonClickOptions,
  SendUserMessageOptions,
  SentInteraction,
  UserAttachmentSpec,
  SlashCommandOptions,
  TypingRecord,
  UserSpec,
} from './types.js';
import { ALL_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, clone, errors, invalidFormBody, isPlausibleEmoji, isoNow, snowflake } from './util.js';

const MAX_CONTENT = 2000;
const INTERACTION_TOKEN_TTL_MS = 15 * 60_000;

interface ChannelRecord {
  channel: APITextChannel | APIDMChannel | APIThreadChannel | APIGuildForumChannel;
  guildId: string | null;
  messageIds: string[];
}

interface StoredMessage {
  message: APIMessage;
  guildId: string | null;
  source: 'user' | 'channel' | 'interaction' | 'followup';
  interactionId: string | null;
  ephemeral: boolean;
  allowedMentions: APIAllowedMentions | null;
  history: MessageVersion[];
  deleted: boolean;
  deletedAt: number | null;
  createdAt: number;
}

interface StoredInteraction {
  id: string;
  token: string;
  name: string;
  channelId: string;
  guildId: string;
  user: APIUser;
  createdAt: number;
  acknowledged: boolean;
  originalMessageId: string | null;
  /** A deferred reply whose loading message has not been replaced yet. */
  loading: boolean;
  ephemeral: boolean;
  followUpIds: string[];
  responses: InteractionResponseRecord[];
}

/** Body fields shared by channel messages, interaction replies and webhook messages. */
export interface MessageBody {
  content?: string | null;
  embeds?: APIEmbed[] | null;
  components?: APIMessageTopLevelComponent[] | null;
  allowed_mentions?: APIAllowedMentions | null;
  flags?: number | null;
  tts?: boolean;
  nonce?: string | number;
  message_reference?: { message_id?: string; channel_id?: string; guild_id?: string; fail_if_not_exists?: boolean; type?: number };
  sticker_ids?: string[];
  attachments?: Array<{ id: string | number; filename?: string; description?: string }> | null;
  poll?: unknown;
}

export interface UploadedFile extends RecordedFile {
  data: Buffer;
}

export interface StateOptions {
  guildName: string;
  channels: string[];
  botUsername: string;
  interactionAckDeadlineMs: number;
  echoBotEvents: boolean;
  botPermissions: bigint;
  /** Shard count GET /gateway/bot recommends; guilds go to shard `(guild_id >> 22) % count`. Default 1. */
  shards?: number;
}

export class EmulatorState {
  readonly token: string;
  readonly botUser: APIUser;
  readonly applicationId: string;
  readonly guildId: string;
  /** The default human user (author of injected messages unless told otherwise). */
  readonly humanUser: APIUser;

  readonly users = new Map<string, APIUser>();
  readonly members = new Map<string, APIGuildMember>();
  readonly roles: APIRole[];
  readonly channels = new Map<string, ChannelRecord>();
  /** Per thread, the ids of its members. */
  private readonly threadMembers = new Map<string, Set<string>>();
  readonly messages = new Map<string, StoredMessage>();
  readonly reactionLog: ReactionRecord[] = [];
  readonly typingLog: TypingRecord[] = [];
  readonly interactions = new Map<string, StoredInteraction>();
  readonly commands = { global: [] as APIApplicationCommand[], guilds: new Map<string, APIApplicationCommand[]>() };

  private readonly guild: APIGuild;
  /** Guilds beyond the first ({@link addGuild}): the same members and roles, channels of their own. */
  private readonly extraGuilds = new Map<string, APIGuild>();
  private readonly guildJoinedAt = isoNow(Date.now() - 86_400_000);
  private gateway!: Gateway;

  constructor(private readonly options: StateOptions) {
    this.applicationId = snowflake();
    this.botUser = { ...buildUser({ id: this.applicationId, username: options.botUsername, bot: true }), verified: true, mfa_enabled: false, flags: 0 as UserFlags };
    this.token = `${Buffer.from(this.botUser.id).toString('base64url')}.${randomPart(6)}.${randomPart(27)}`;
    this.guildId = snowflake();
    this.humanUser = buildUser({ id: snowflake(), username: 'alice', globalName: 'Alice' });
    const botRoleId = snowflake();
    this.roles = [
      buildRole({ id: this.guildId, name: '@everyone', permissions: DEFAULT_EVERYONE_PERMISSIONS, position: 0 }),
      buildRole({ id: botRoleId, name: options.botUsername, permissions: options.botPermissions.toString(), position: 1, managed: true, botId: this.botUser.id }),
    ];
    this.guild = buildGuild({ id: this.guildId, name: options.guildName, ownerId: this.humanUser.id, applicationId: this.applicationId, roles: this.roles });
    this.users.set(this.botUser.id, this.botUser);
    this.users.set(this.humanUser.id, this.humanUser);
    this.members.set(this.botUser.id, buildMember(this.botUser, [botRoleId], this.guildJoinedAt));
    this.members.set(this.humanUser.id, buildMember(this.humanUser, [], this.guildJoinedAt));
    for (const name of options.channels) this.addChannel(name);
  }

  get shardCount(): number {
    return this.options.shards ?? 1;
  }

  attachGateway(gateway: Gateway): void {
    this.gateway = gateway;
  }

  // ───────────────────────────── guild, channels, users ─────────────────────────────

  get firstChannelId(): string {
    for (const record of this.channels.values()) if (record.guildId) return record.channel.id;
    throw new Error('The emulated guild has no text channel');
  }

  addChannel(name?: string): string {
    const position = [...this.channels.values()].filter((c) => c.guildId).length;
    const channel = buildTextChannel({ id: snowflake(), guildId: this.guildId, name: name ?? `channel-${position + 1}`, position });
    this.channels.set(channel.id, { channel, guildId: this.guildId, messageIds: [] });
    if (this.gateway) {
      this.gateway.broadcast(GatewayDispatchEvents.ChannelCreate, (s) => (s.hasIntent(GatewayIntentBits.Guilds) ? { ...clone(channel), guild_id: this.guildId } : undefined));
    }
    return channel.id;
  }

  /** Adds a forum channel (its posts are threads: {@link addThread} with kind `forum`). */
  addForumChannel(name: string): string {
    const position = [...this.channels.values()].filter((c) => c.guildId).length;
    const channel = buildForumChannel({ id: snowflake(), guildId: this.guildId, name, position });
    this.channels.set(channel.id, { channel, guildId: this.guildId, messageIds: [] });
    this.gateway?.broadcast(GatewayDispatchEvents.ChannelCreate, (s) => (s.hasIntent(GatewayIntentBits.Guilds) ? (clone(channel) as never) : undefined));
    return channel.id;
  }

  /** Creates a thread in a text channel (or a post in a forum) and sends THREAD_CREATE. Returns its id. */
  addThread(parentId: string, { name = 'a thread', kind = 'public', owner }: { name?: string; kind?: ThreadKind; owner?: UserSpec } = {}): string {
    const parent = this.getChannel(parentId);
    if (!parent.guildId) throw new Error('Threads exist in guild channels only');
    const thread = buildThreadChannel({ id: snowflake(), guildId: parent.guildId, parentId, name, ownerId: this.resolveUser(owner).id, kind });
    this.channels.set(thread.id, { channel: thread, guildId: parent.guildId, messageIds: [] });
    // Its owner is its first member (Discord adds the creator); others join with addThreadMember.
    this.threadMembers.set(thread.id, new Set([thread.owner_id!]));
    this.gateway?.broadcast(GatewayDispatchEvents.ThreadCreate, (s) => (s.hasIntent(GatewayIntentBits.Guilds) ? { ...clone(thread), newly_created: true } : undefined));
    return thread.id;
  }

  /** Adds a user to a thread's members (a private thread's members are the ones who may see it). */
  addThreadMember(threadId: string, user?: UserSpec): void {
    const members = this.threadMembers.get(threadId);
    if (!members) throw new Error(`${threadId} is not a thread`);
    members.add(this.resolveUser(user).id);
  }

  /** GET /channels/:id/thread-members/:userId: the member, or 404 Unknown Member when not in the thread. */
  getThreadMember(threadId: string, userId: string): APIThreadMember {
    const record = this.getChannel(threadId);
    const members = this.threadMembers.get(threadId);
    if (!members || !isThread(record.channel.type)) throw errors.unknownChannel();
    if (!members.has(userId)) throw errors.unknownMember();
    return { id: threadId, user_id: userId, join_timestamp: isoNow(), flags: 0 as ThreadMemberFlags };
  }

  /** Sets (or replaces) one permission overwrite of a guild channel, and sends CHANNEL_UPDATE. */
  setPermissionOverwrite(channelId: string, overwrite: APIOverwrite): void {
    const channel = this.getChannel(channelId).channel;
    if (channel.type !== ChannelType.GuildText) throw new Error('Permission overwrites exist in guild channels only');
    channel.permission_overwrites = [...(channel.permission_overwrites ?? []).filter((o) => o.id !== overwrite.id), clone(overwrite)];
    this.gateway?.broadcast(GatewayDispatchEvents.ChannelUpdate, (s) => (s.hasIntent(GatewayIntentBits.Guilds) ? { ...clone(channel), guild_id: this.guildId } : undefined));
  }

  /** The bot's permissions in a channel (everything in a DM). */
  botPermissionsIn(channelId: string): bigint {
    let record = this.getChannel(channelId);
    // A thread has the permissions of its parent channel.
    if (isThread(record.channel.type) && 'parent_id' in record.channel && record.channel.parent_id) record = this.getChannel(record.channel.parent_id);
    if (!record.guildId || record.channel.type !== ChannelType.GuildText) return BigInt(ALL_PERMISSIONS);
    const member = this.members.get(this.botUser.id)!;
    return channelPermissions({ guildId: this.guildId, ownerId: this.humanUser.id, roles: this.roles, member, overwrites: record.channel.permission_overwrites ?? [] });
  }

  /** The bot's role's id (its permissions come from the `botPermissions` option). */
  get botRoleId(): string {
    return this.members.get(this.botUser.id)!.roles[0]!;
  }

  /** Finds or creates a user (and their guild membership). */
  resolveUser(spec: UserSpec | undefined): APIUser {
    if (!spec) return this.humanUser;
    if (spec.id) {
      const known = this.users.get(spec.id);
      if (known) return known;
    } else if (spec.username) {
      for (const user of this.users.values()) if (user.username === spec.username && !!user.bot === !!spec.bot) return user;
    }
    const user = buildUser({
      id: spec.id ?? snowflake(),
      username: spec.username ?? `user${this.users.size}`,
      globalName: spec.globalName ?? null,
      bot: spec.bot,
    });
    this.users.set(user.id, user);
    this.members.set(user.id, buildMember(user, [], isoNow()));
    return user;
  }

  getChannel(channelId: string): ChannelRecord {
    const record = this.channels.get(channelId);
    if (!record) throw errors.unknownChannel();
    return record;
  }

  getGuild(guildId: string): APIGuild {
    const guild = guildId === this.guildId ? this.guild : this.extraGuilds.get(guildId);
    if (!guild) throw errors.unknownGuild();
    return clone(guild);
  }

  /** Text channels of every guild, or of one. */
  guildChannels(guildId?: string): APITextChannel[] {
    return [...this.channels.values()]
      .filter((c) => (guildId ? c.guildId === guildId : c.guildId) && !isThread(c.channel.type))
      .map((c) => clone(c.channel as APITextChannel));
  }

  /**
   * Adds a guild owned by shard `shard` (of the configured count) with the first guild's members
   * and roles and text channels of its own. Connected sessions that own it get GUILD_CREATE.
   */
  addGuild(name: string, channelNames: string[], shard = 0): { guildId: string; channelIds: string[] } {
    const count = this.shardCount;
    if (shard >= count) throw new Error(`Shard ${shard} does not exist: the emulator has ${count} shard(s)`);
    let guildId = snowflake();
    while (shardOfGuild(guildId, count) !== shard) guildId = snowflake(Date.now() + 1);
    // Same role ids but @everyone, whose id is the guild's own (so the bot's role keeps its permissions).
    const roles = this.roles.map((role) => (role.id === this.guildId ? { ...clone(role), id: guildId } : clone(role)));
    this.extraGuilds.set(guildId, buildGuild({ id: guildId, name, ownerId: this.humanUser.id, applicationId: this.applicationId, roles }));
    const channelIds = channelNames.map((channelName, position) => {
      const channel = buildTextChannel({ id: snowflake(), guildId, name: channelName, position });
      this.channels.set(channel.id, { channel, guildId, messageIds: [] });
      return channel.id;
    });
    for (const session of this.gateway?.liveSessions() ?? []) {
      if (session.receives(guildId) && session.hasIntent(GatewayIntentBits.Guilds)) this.gateway.dispatch(session, GatewayDispatchEvents.GuildCreate, this.buildGuildCreate(guildId));
    }
    return { guildId, channelIds };
  }

  getMember(guildId: string, userId: string): APIGuildMember {
    this.getGuild(guildId);
    const member = this.members.get(userId);
    if (!member) throw errors.unknownMember();
    return clone(member);
  }

  /** The DM channel between the bot and `user`, created on first use. */
  dmChannelFor(user: APIUser): APIDMChannel {
    for (const record of this.channels.values()) {
      if (record.channel.type === ChannelType.DM && record.channel.recipients?.[0]?.id === user.id) return record.channel;
    }
    const channel = buildDMChannel(snowflake(), user);
    this.channels.set(channel.id, { channel, guildId: null, messageIds: [] });
    return channel;
  }

  // ───────────────────────────── gateway hooks ─────────────────────────────

  buildReady(session: GatewaySession, resumeUrl: string): GatewayReadyDispatchData {
    const flags = ApplicationFlags.GatewayPresenceLimited | ApplicationFlags.GatewayGuildMembersLimited | ApplicationFlags.GatewayMessageContentLimited;
    return {
      v: 10,
      user: clone(this.botUser),
      guilds: this.allGuildIds().filter((id) => session.receives(id)).map((id) => ({ id, unavailable: true })),
      session_id: session.id,
      resume_gateway_url: resumeUrl,
      shard: session.shard,
      application: { id: this.applicationId, flags, flags_new: String(flags) },
    };
  }

  afterReady(session: GatewaySession): void {
    if (session.hasIntent(GatewayIntentBits.Guilds)) {
      for (const guildId of this.allGuildIds()) if (session.receives(guildId)) this.gateway.dispatch(session, GatewayDispatchEvents.GuildCreate, this.buildGuildCreate(guildId));
    }
  }

  private allGuildIds(): string[] {
    return [this.guildId, ...this.extraGuilds.keys()];
  }

  onRequestGuildMembers(session: GatewaySession, data: GatewayRequestGuildMembersData): void {
    let members = [...this.members.values()];
    if ('user_ids' in data && data.user_ids) {
      const ids = new Set(Array.isArray(data.user_ids) ? data.user_ids : [data.user_ids]);
      members = members.filter((m) => ids.has(m.user.id));
    } else if ('query' in data && typeof data.query === 'string' && data.query) {
      const query = data.query.toLowerCase();
      members = members.filter((m) => m.user.username.toLowerCase().startsWith(query));
    }
    if ('limit' in data && data.limit) members = members.slice(0, data.limit);
    this.gateway.dispatch(session, GatewayDispatchEvents.GuildMembersChunk, {
      guild_id: this.guildId,
      members: clone(members),
      chunk_index: 0,
      chunk_count: 1,
      ...(data.nonce ? { nonce: data.nonce } : {}),
    });
  }

  private buildGuildCreate(guildId = this.guildId): GatewayGuildCreateDispatchData {
    return {
      ...this.getGuild(guildId),
      joined_at: this.guildJoinedAt,
      large: false,
      unavailable: false,
      member_count: this.members.size,
      voice_states: [],
      members: clone([...this.members.values()]),
      channels: this.guildChannels(guildId),
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  // ───────────────────────────── message plumbing ─────────────────────────────

  getMessage(channelId: string, messageId: string): StoredMessage {
    this.getChannel(channelId);
    const stored = this.messages.get(messageId);
    if (!stored || stored.deleted || stored.message.channel_id !== channelId) throw errors.unknownMessage();
    return stored;
  }

  channelMessages(channelId: string): APIMessage[] {
    const record = this.getChannel(channelId);
    return record.messageIds
      .map((id) => this.messages.get(id))
      .filter((m): m is StoredMessage => !!m && !m.deleted && !m.ephemeral)
      .map((m) => clone(m.message));
  }

  /** GET /channels/:id/messages semantics: newest first, limit 1–100, before/after/around. */
  listMessages(channelId: string, query: Record<string, string>): APIMessage[] {
    const limit = query.limit === undefined ? 50 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidFormBody('limit', 'NUMBER_TYPE_MAX', 'int value should be less than or equal to 100.');
    }
    const ascending = this.channelMessages(channelId); // ids increase with time
    const byId = (id: string) => BigInt(id);
    let picked: APIMessage[];
    if (query.before) {
      picked = ascending.filter((m) => byId(m.id) < byId(query.before!)).slice(-limit);
    } else if (query.after) {
      picked = ascending.filter((m) => byId(m.id) > byId(query.after!)).slice(0, limit);
    } else if (query.around) {
      const around = byId(query.around);
      const older = ascending.filter((m) => byId(m.id) < around).slice(-Math.floor(limit / 2));
      const newer = ascending.filter((m) => byId(m.id) >= around).slice(0, limit - older.length);
      picked = [...older, ...newer];
    } else {
      picked = ascending.slice(-limit);
    }
    return picked.reverse();
  }

  private storeMessage(stored: StoredMessage): void {
    this.messages.set(stored.message.id, stored);
    const record = this.getChannel(stored.message.channel_id);
    record.messageIds.push(stored.message.id);
    record.channel.last_message_id = stored.message.id;
  }

  /** Users pinged by a message, honouring allowed_mentions like Discord does. */
  private resolveMentions(
    content: string,
    allowed: APIAllowedMentions | null | undefined,
    repliedUser: APIUser | null,
    pingReplied: boolean,
  ): { users: APIUser[]; roles: string[]; everyone: boolean } {
    const userIds = [...content.matchAll(/<@!?(\d{17,20})>/g)].map((m) => m[1]!);
    const roleIds = [...content.matchAll(/<@&(\d{17,20})>/g)].map((m) => m[1]!);
    const wantsEveryone = /@(everyone|here)\b/.test(content);
    const parse = allowed?.parse ?? [];
    const userAllowed = (id: string) => !allowed || parse.includes(AllowedMentionsTypes.User) || (allowed.users ?? []).includes(id);
    const roleAllowed = (id: string) => !allowed || parse.includes(AllowedMentionsTypes.Role) || (allowed.roles ?? []).includes(id);
    const users = new Map<string, APIUser>();
    for (const id of userIds) {
      const user = this.users.get(id);
      if (user && userAllowed(id)) users.set(id, user);
    }
    if (repliedUser && pingReplied) users.set(repliedUser.id, repliedUser);
    return {
      users: [...users.values()].map((u) => clone(u)),
      roles: roleIds.filter((id) => this.roles.some((r) => r.id === id) && roleAllowed(id)),
      everyone: wantsEveryone && (!allowed || parse.includes(AllowedMentionsTypes.Everyone)),
    };
  }

  private validateBody(body: MessageBody, files: UploadedFile[], { requireSomething }: { requireSomething: boolean }): void {
    if (body.content !== undefined && body.content !== null && typeof body.content !== 'string') {
      throw invalidFormBody('content', 'BASE_TYPE_STRING', 'Must be a string.');
    }
    if (typeof body.content === 'string' && body.content.length > MAX_CONTENT) {
      throw invalidFormBody('content', 'BASE_TYPE_MAX_LENGTH', `Must be ${MAX_CONTENT} or fewer in length.`);
    }
    if ((body.embeds?.length ?? 0) > 10) throw invalidFormBody('embeds', 'BASE_TYPE_MAX_LENGTH', 'Must be 10 or fewer in length.');
    if (requireSomething) {
      const hasContent = typeof body.content === 'string' && body.content.length > 0;
      const hasOther = (body.embeds?.length ?? 0) > 0 || files.length > 0 || (body.sticker_ids?.length ?? 0) > 0 || (body.components?.length ?? 0) > 0 || !!body.poll;
      if (!hasContent && !hasOther) throw errors.emptyMessage();
    }
  }

  private buildAttachments(channelId: string, body: MessageBody, files: UploadedFile[]): APIAttachment[] {
    return files.map((file, index) => {
      const id = snowflake();
      const meta = body.attachments?.find((a) => String(a.id) === String(index));
      const filename = meta?.filename ?? file.name;
      // Kept and served at the emulator's own URL, as Discord's CDN serves an upload: a test reads back what the bot sent.
      const url = this.serveAttachment(`/attachments/${channelId}/${id}/${filename}`, { filename, content: file.data, contentType: file.contentType });
      const attachment: APIAttachment = { id, filename, size: file.size, url, proxy_url: url, content_type: file.contentType };
      if (meta?.description) attachment.description = meta.description;
      return attachment;
    });
  }

  private baseMessage(channelId: string, author: APIUser, content: string): APIMessage {
    return {
      id: snowflake(),
      channel_id: channelId,
      author: clone(author),
      content,
      timestamp: isoNow(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      pinned: false,
      type: MessageType.Default,
      flags: 0 as MessageFlags,
      components: [],
    };
  }

  /** Message as dispatched to one session: guild extras added, content stripped without MessageContent. */
  private gatewayMessage(stored: StoredMessage, session: GatewaySession): GatewayMessageCreateDispatchData {
    const message = clone(stored.message);
    const data: GatewayMessageCreateDispatchData = { ...message };
    const channel = this.channels.get(message.channel_id);
    if (channel) data.channel_type = channel.channel.type as ChannelType.GuildText | ChannelType.DM;
    if (stored.guildId) {
      data.guild_id = stored.guildId;
      const member = this.members.get(message.author.id);
      if (member && !message.webhook_id) {
        const { user: _user, ...rest } = clone(member);
        data.member = rest;
      }
      data.mentions = message.mentions.map((user) => {
        const m = this.members.get(user.id);
        if (!m) return user;
        const { user: _u, ...rest } = clone(m);
        return { ...user, member: rest };
      });
      const mentionsBot = message.mentions.some((u) => u.id === this.botUser.id);
      const fromBot = message.author.id === this.botUser.id;
      if (!session.hasIntent(GatewayIntentBits.MessageContent) && !mentionsBot && !fromBot) {
        // Discord blanks these for bots without the privileged MessageContent intent.
        data.content = '';
        data.embeds = [];
        data.attachments = [];
        data.components = [];
        delete data.poll;
      }
    }
    return data;
  }

  private messageIntent(stored: StoredMessage): number {
    return stored.guildId ? GatewayIntentBits.GuildMessages : GatewayIntentBits.DirectMessages;
  }

  private dispatchMessageCreate(stored: StoredMessage): number {
    if (stored.ephemeral) return 0;
    return this.gateway.broadcast(GatewayDispatchEvents.MessageCreate, (s) =>
      s.hasIntent(this.messageIntent(stored)) ? this.gatewayMessage(stored, s) : undefined,
    );
  }

  private dispatchMessageUpdate(stored: StoredMessage): void {
    if (stored.ephemeral) return;
    this.gateway.broadcast(GatewayDispatchEvents.MessageUpdate, (s) =>
      s.hasIntent(this.messageIntent(stored)) ? this.gatewayMessage(stored, s) : undefined,
    );
  }

  private dispatchMessageDelete(stored: StoredMessage): void {
    if (stored.ephemeral) return;
    this.gateway.broadcast(GatewayDispatchEvents.MessageDelete, (s) =>
      s.hasIntent(this.messageIntent(stored))
        ? { id: stored.message.id, channel_id: stored.message.channel_id, ...(stored.guildId ? { guild_id: stored.guildId } : {}) }
        : undefined,
    );
  }

  private requireSession(): void {
    if (this.gateway.liveSessions().length === 0) {
      throw new Error('DiscordEmulator: no gateway session yet – log the client in and `await emu.whenReady()` before injecting events');
    }
  }

  private recordVersion(stored: StoredMessage): void {
    stored.history.push({ content: stored.message.content, embeds: clone(stored.message.embeds), time: Date.now() });
  }

  // ───────────────────────────── bot actions (REST) ─────────────────────────────

  createBotMessage(channelId: string, body: MessageBody, files: UploadedFile[]): APIMessage {
    const record = this.getChannel(channelId);
    requirePermissions(this.botPermissionsIn(channelId), PermissionFlagsBits.ViewChannel | PermissionFlagsBits.SendMessages);
    this.validateBody(body, files, { requireSomething: true });
    const message = this.baseMessage(channelId, this.botUser, body.content ?? '');
    let referenced: StoredMessage | null = null;
    const ref = body.message_reference;
    if (ref?.message_id && (ref.type ?? MessageReferenceType.Default) === MessageReferenceType.Default) {
      const target = this.messages.get(ref.message_id);
      if (target && !target.deleted && target.message.channel_id === channelId) {
        referenced = target;
      } else if (ref.fail_if_not_exists !== false) {
        throw invalidFormBody('message_reference', 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', 'Unknown message');
      }
    }
    const allowed = body.allowed_mentions ?? null;
    const pingReplied = allowed ? allowed.replied_user === true : true;
    const mentions = this.resolveMentions(message.content, allowed, referenced?.message.author ?? null, pingReplied);
    message.mentions = mentions.users;
    message.mention_roles = mentions.roles;
    message.mention_everyone = mentions.everyone;
    message.embeds = clone(body.embeds ?? []);
    message.components = clone(body.components ?? []);
    message.attachments = this.buildAttachments(channelId, body, files);
    message.tts = body.tts ?? false;
    message.flags = (body.flags ?? 0) & (MessageFlags.SuppressEmbeds | MessageFlags.SuppressNotifications | MessageFlags.IsComponentsV2);
    if (body.nonce !== undefined) message.nonce = body.nonce;
    if (referenced) markAsReply(message, referenced, channelId, record.guildId);
    this.addBotMessage({ message, guildId: record.guildId, source: 'channel', interactionId: null, ephemeral: false, allowed });
    return clone(message);
  }

  editMessage(channelId: string, messageId: string, body: MessageBody, files: UploadedFile[], { byBot }: { byBot: boolean }): APIMessage {
    const stored = this.getMessage(channelId, messageId);
    if (byBot && stored.message.author.id !== this.botUser.id) throw errors.notAuthor();
    this.validateBody(body, files, { requireSomething: false });
    this.applyEdit(stored, body, files);
    if (!byBot || this.options.echoBotEvents) this.dispatchMessageUpdate(stored);
    return clone(stored.message);
  }

  private applyEdit(stored: StoredMessage, body: MessageBody, files: UploadedFile[]): void {
    const message = stored.message;
    if (body.content !== undefined) message.content = body.content ?? '';
    if (body.embeds !== undefined) message.embeds = clone(body.embeds ?? []);
    if (body.components !== undefined) message.components = clone(body.components ?? []);
    if (body.flags !== undefined && body.flags !== null) {
      message.flags = (body.flags & ~MessageFlags.Loading) | ((message.flags ?? 0) & MessageFlags.Ephemeral);
    }
    if (body.allowed_mentions !== undefined) stored.allowedMentions = body.allowed_mentions ? clone(body.allowed_mentions) : null;
    if (body.attachments !== undefined || files.length > 0) {
      const keep = (body.attachments ?? []).map((a) => String(a.id));
      const kept = body.attachments === undefined ? message.attachments : message.attachments.filter((a) => keep.includes(a.id));
      message.attachments = [...kept, ...this.buildAttachments(message.channel_id, body, files)];
    }
    if (body.content !== undefined || body.allowed_mentions !== undefined) {
      const replied = message.referenced_message?.author ?? null;
      const allowed = stored.allowedMentions;
      const mentions = this.resolveMentions(message.content, allowed, replied, allowed ? allowed.replied_user === true : true);
      message.mentions = mentions.users;
      message.mention_roles = mentions.roles;
      message.mention_everyone = mentions.everyone;
    }
    message.edited_timestamp = isoNow();
    this.recordVersion(stored);
  }

  deleteMessage(channelId: string, messageId: string, { byBot }: { byBot: boolean }): void {
    const stored = this.getMessage(channelId, messageId);
    stored.deleted = true;
    stored.deletedAt = Date.now();
    if (!byBot || this.options.echoBotEvents) this.dispatchMessageDelete(stored);
  }

  bulkDelete(channelId: string, ids: string[]): void {
    if (!Array.isArray(ids) || ids.length < 2 || ids.length > 100) {
      throw invalidFormBody('messages', 'BASE_TYPE_BAD_LENGTH', 'Must be between 2 and 100 in length.');
    }
    const record = this.getChannel(channelId);
    const deleted: string[] = [];
    for (const id of ids) {
      const stored = this.messages.get(id);
      if (stored && !stored.deleted && stored.message.channel_id === channelId) {
        stored.deleted = true;
        stored.deletedAt = Date.now();
        deleted.push(id);
      }
    }
    if (this.options.echoBotEvents && deleted.length) {
      this.gateway.broadcast(GatewayDispatchEvents.MessageDeleteBulk, (s) =>
        s.hasIntent(GatewayIntentBits.GuildMessages)
          ? { ids: deleted, channel_id: channelId, ...(record.guildId ? { guild_id: record.guildId } : {}) }
          : undefined,
      );
    }
  }

  addReaction(channelId: string, messageId: string, emoji: string, user: APIUser): void {
    const stored = this.getMessage(channelId, messageId);
    if (!isPlausibleEmoji(emoji)) throw errors.unknownEmoji();
    if (user.id === this.botUser.id) {
      requirePermissions(this.botPermissionsIn(channelId), PermissionFlagsBits.ViewChannel | PermissionFlagsBits.ReadMessageHistory | PermissionFlagsBits.AddReactions);
    }
    const active = this.reactionLog.find((r) => r.messageId === messageId && r.emoji === emoji && r.userId === user.id && !r.removed);
    if (active) return; // Discord treats a repeated PUT as a no-op.
    this.reactionLog.push({ channelId, messageId, emoji, userId: user.id, time: Date.now(), removed: false, removedAt: null });
    const reactions = (stored.message.reactions ??= []);
    const existing = reactions.find((r) => emojiKey(r.emoji) === emoji);
    const isBot = user.id === this.botUser.id;
    if (existing) {
      existing.count += 1;
      existing.count_details.normal += 1;
      if (isBot) existing.me = true;
    } else {
      reactions.push({ emoji: parseEmoji(emoji), count: 1, count_details: { burst: 0, normal: 1 }, me: isBot, me_burst: false, burst_colors: [] });
    }
    if (isBot && !this.options.echoBotEvents) return;
    const member = stored.guildId ? this.members.get(user.id) : undefined;
    this.gateway.broadcast(GatewayDispatchEvents.MessageReactionAdd, (s) =>
      s.hasIntent(stored.guildId ? GatewayIntentBits.GuildMessageReactions : GatewayIntentBits.DirectMessageReactions)
        ? {
            user_id: user.id,
            channel_id: channelId,
            message_id: messageId,
            ...(stored.guildId ? { guild_id: stored.guildId } : {}),
            ...(member ? { member: clone(member) } : {}),
            emoji: parseEmoji(emoji),
            message_author_id: stored.message.author.id,
            burst: false,
            burst_colors: [],
            type: ReactionType.Normal,
          }
        : undefined,
    );
  }

  removeReaction(channelId: string, messageId: string, emoji: string | null, userId: string | null): void {
    const stored = this.getMessage(channelId, messageId);
    if (emoji !== null && !isPlausibleEmoji(emoji)) throw errors.unknownEmoji();
    const removed = this.reactionLog.filter(
      (r) => r.messageId === messageId && !r.removed && (emoji === null || r.emoji === emoji) && (userId === null || r.userId === userId),
    );
    for (const r of removed) {
      r.removed = true;
      r.removedAt = Date.now();
      const reaction = stored.message.reactions?.find((x) => emojiKey(x.emoji) === r.emoji);
      if (reaction) {
        reaction.count -= 1;
        reaction.count_details.normal -= 1;
        if (r.userId === this.botUser.id) reaction.me = false;
      }
      if (r.userId === this.botUser.id && !this.options.echoBotEvents) continue;
      this.gateway.broadcast(GatewayDispatchEvents.MessageReactionRemove, (s) =>
        s.hasIntent(stored.guildId ? GatewayIntentBits.GuildMessageReactions : GatewayIntentBits.DirectMessageReactions)
          ? {
              user_id: r.userId,
              channel_id: channelId,
              message_id: messageId,
              ...(stored.guildId ? { guild_id: stored.guildId } : {}),
              emoji: parseEmoji(r.emoji),
              burst: false,
              type: ReactionType.Normal,
            }
          : undefined,
      );
    }
    if (stored.message.reactions) stored.message.reactions = stored.message.reactions.filter((x) => x.count > 0);
  }

  startTyping(channelId: string): void {
    const record = this.getChannel(channelId);
    requirePermissions(this.botPermissionsIn(channelId), PermissionFlagsBits.ViewChannel | PermissionFlagsBits.SendMessages);
    this.typingLog.push({ channelId, time: Date.now() });
    const member = record.guildId ? this.members.get(this.botUser.id) : undefined;
    if (!this.options.echoBotEvents) return;
    this.gateway.broadcast(GatewayDispatchEvents.TypingStart, (s) =>
      s.hasIntent(record.guildId ? GatewayIntentBits.GuildMessageTyping : GatewayIntentBits.DirectMessageTyping)
        ? {
            channel_id: channelId,
            user_id: this.botUser.id,
            timestamp: Math.floor(Date.now() / 1000),
            ...(record.guildId ? { guild_id: record.guildId } : {}),
            ...(member ? { member: clone(member) } : {}),
          }
        : undefined,
    );
  }

  // ───────────────────────────── application commands ─────────────────────────────

  commandList(guildId: string | null): APIApplicationCommand[] {
    if (guildId === null) return this.commands.global;
    if (guildId !== this.guildId) throw errors.unknownGuild();
    return this.commands.guilds.get(guildId) ?? [];
  }

  bulkOverwriteCommands(guildId: string | null, body: unknown): APIApplicationCommand[] {
    if (!Array.isArray(body)) throw invalidFormBody('_root', 'BASE_TYPE_ARRAY', 'Must be an array.');
    const previous = this.commandList(guildId);
    const seen = new Set<string>();
    const next = (body as RESTPostAPIApplicationCommandsJSONBody[]).map((def, index) => {
      validateCommand(def, `${index}`);
      const type = def.type ?? ApplicationCommandType.ChatInput;
      const key = `${type}:${def.name}`;
      if (seen.has(key)) throw invalidFormBody(`${index}.name`, 'APPLICATION_COMMANDS_DUPLICATE_NAME', `Application command names must be unique`);
      seen.add(key);
      const keepId = previous.find((c) => c.name === def.name && c.type === type)?.id;
      return this.buildCommand(def, guildId, keepId);
    });
    if (guildId === null) this.commands.global = next;
    else this.commands.guilds.set(guildId, next);
    return clone(next);
  }

  upsertCommand(guildId: string | null, body: unknown): { command: APIApplicationCommand; created: boolean } {
    const def = body as RESTPostAPIApplicationCommandsJSONBody;
    validateCommand(def, '');
    const list = [...this.commandList(guildId)];
    const type = def.type ?? ApplicationCommandType.ChatInput;
    const index = list.findIndex((c) => c.name === def.name && c.type === type);
    const command = this.buildCommand(def, guildId, index >= 0 ? list[index]!.id : undefined);
    if (index >= 0) list[index] = command;
    else list.push(command);
    if (guildId === null) this.commands.global = list;
    else this.commands.guilds.set(guildId, list);
    return { command: clone(command), created: index < 0 };
  }

  deleteCommand(guildId: string | null, commandId: string): void {
    const list = this.commandList(guildId);
    if (!list.some((c) => c.id === commandId)) throw errors.unknownCommand();
    const next = list.filter((c) => c.id !== commandId);
    if (guildId === null) this.commands.global = next;
    else this.commands.guilds.set(guildId, next);
  }

  private buildCommand(def: RESTPostAPIApplicationCommandsJSONBody, guildId: string | null, id: string | undefined): APIApplicationCommand {
    const type = def.type ?? ApplicationCommandType.ChatInput;
    const command: APIApplicationCommand = {
      id: id ?? snowflake(),
      application_id: this.applicationId,
      version: snowflake(),
      type,
      name: def.name,
      description: 'description' in def && typeof def.description === 'string' ? def.description : '',
      default_member_permissions: def.default_member_permissions ?? null,
      nsfw: def.nsfw ?? false,
      integration_types: def.integration_types ?? [ApplicationIntegrationType.GuildInstall],
      contexts: def.contexts ?? null,
    };
    if (guildId) command.guild_id = guildId;
    if (def.name_localizations) command.name_localizations = def.name_localizations;
    if ('description_localizations' in def && def.description_localizations) command.description_localizations = def.description_localizations;
    if ('options' in def && def.options) command.options = clone(def.options) as APIApplicationCommandOption[];
    return command;
  }

  // ───────────────────────────── user actions (tests) ─────────────────────────────

  sendUserMessage(opts: SendUserMessageOptions): GatewayMessageCreateDispatchData {
    this.requireSession();
    let author = this.resolveUser(opts.author);
    let channelId = opts.channelId ?? this.firstChannelId;
    if (opts.dm) channelId = this.dmChannelFor(author).id;
    const record = this.getChannel(channelId);
    if (opts.webhookId) {
      author = buildUser({ id: opts.webhookId, username: opts.author?.username ?? 'Captain Hook', bot: true });
    }
    const message = this.baseMessage(channelId, author, opts.content);
    if (opts.webhookId) message.webhook_id = opts.webhookId;
    let referenced: StoredMessage | null = null;
    if (opts.replyTo) {
      referenced = this.getMessage(channelId, opts.replyTo);
      markAsReply(message, referenced, channelId, record.guildId);
    }
    if (opts.type !== undefined) message.type = opts.type;
    const mentions = this.resolveMentions(opts.content, undefined, referenced?.message.author ?? null, opts.mentionRepliedUser ?? true);
    message.mentions = mentions.users;
    message.mention_roles = mentions.roles;
    message.mention_everyone = mentions.everyone;
    message.embeds = clone(opts.embeds ?? []);
    message.attachments = (opts.attachments ?? []).map((a) => {
      const id = snowflake();
      const served = a.content === undefined ? undefined : this.serveAttachment(`/attachments/${channelId}/${id}/${a.filename}`, a);
      const attachment: APIAttachment = {
        id,
        filename: a.filename,
        size: a.size ?? (a.content === undefined ? 1024 : Buffer.byteLength(a.content)),
        url: a.url ?? served ?? `https://cdn.discordapp.com/attachments/${channelId}/${id}/${encodeURIComponent(a.filename)}`,
        proxy_url: a.url ?? served ?? `https://media.discordapp.net/attachments/${channelId}/${id}/${encodeURIComponent(a.filename)}`,
      };
      if (a.contentType) attachment.content_type = a.contentType;
      return attachment;
    });
    const stored: StoredMessage = {
      message,
      guildId: record.guildId,
      source: 'user',
      interactionId: null,
      ephemeral: false,
      allowedMentions: null,
      history: [],
      deleted: false,
      deletedAt: null,
      createdAt: Date.now(),
    };
    this.recordVersion(stored);
    this.storeMessage(stored);
    this.dispatchMessageCreate(stored);
    const asSent = this.gatewayMessage(stored, { hasIntent: () => true } as unknown as GatewaySession);
    return asSent;
  }

  /** Files served at this emulator's own `/attachments/...` URLs (user attachments with `content`, and every file the bot uploads), by path. */
  readonly attachmentFiles = new Map<string, Pick<UserAttachmentSpec, 'content' | 'contentType' | 'delayMs' | 'status'>>();
  /** `http://127.0.0.1:PORT`, set once the server listens. */
  baseUrl = '';

  private serveAttachment(path: string, spec: UserAttachmentSpec): string {
    // Requests are matched on the decoded path; the URL carries it encoded.
    this.attachmentFiles.set(path, { content: spec.content, contentType: spec.contentType, delayMs: spec.delayMs, status: spec.status });
    return `${this.baseUrl}${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Dispatches MESSAGE_CREATE for a stored message once more, as Discord may (a duplicate delivery). */
  redeliverMessage(messageId: string): void {
    this.requireSession();
    const stored = this.messages.get(messageId);
    if (!stored) throw errors.unknownMessage();
    this.dispatchMessageCreate(stored);
  }

  editUserMessage(channelId: string, messageId: string, content: string): APIMessage {
    this.requireSession();
    return this.editMessage(channelId, messageId, { content }, [], { byBot: false });
  }

  deleteUserMessage(channelId: string, messageId: string): void {
    this.requireSession();
    this.deleteMessage(channelId, messageId, { byBot: false });
  }

  addUserReaction(channelId: string, messageId: string, emoji: string, user?: UserSpec): void {
    this.requireSession();
    this.addReaction(channelId, messageId, emoji, this.resolveUser(user));
  }

  sendSlashCommand(opts: SlashCommandOptions): SentInteraction {
    this.requireSession();
    const channelId = opts.channelId ?? this.firstChannelId;
    const record = this.getChannel(channelId);
    if (!record.guildId) throw new Error('DiscordEmulator.sendSlashCommand supports guild text channels only');
    const user = this.resolveUser(opts.user);
    const member = this.members.get(user.id)!;
    const registered =
      (this.commands.guilds.get(this.guildId) ?? []).find((c) => c.name === opts.name && c.type === ApplicationCommandType.ChatInput) ??
      this.commands.global.find((c) => c.name === opts.name && c.type === ApplicationCommandType.ChatInput);
    const resolved: APIInteractionDataResolved = {};
    let optionDefs = registered?.options ?? [];
    if (opts.subcommand) {
      const sub = optionDefs.find((o) => o.name === opts.subcommand && o.type === ApplicationCommandOptionType.Subcommand);
      optionDefs = sub && 'options' in sub ? (sub.options ?? []) : [];
    }
    let options = Array.isArray(opts.options) ? clone(opts.options) : this.buildOptions(opts.options ?? {}, optionDefs, resolved);
    if (opts.subcommand) {
      options = [{ type: ApplicationCommandOptionType.Subcommand, name: opts.subcommand, options: options as never }];
    }
    const permissions = opts.permissions === undefined ? ALL_PERMISSIONS : opts.permissions.toString();
    const id = snowflake();
    const token = `aW50ZXJhY3Rpb246${id}:${randomPart(40)}`;
    const locale = (opts.locale ?? Locale.EnglishUS) as Locale;
    const payload: APIChatInputApplicationCommandGuildInteraction = {
      id,
      application_id: this.applicationId,
      type: InteractionType.ApplicationCommand,
      data: {
        id: registered?.id ?? snowflake(),
        name: opts.name,
        type: ApplicationCommandType.ChatInput,
        ...(options.length ? { options } : {}),
        ...(Object.keys(resolved).length ? { resolved } : {}),
        ...(registered?.guild_id ? { guild_id: registered.guild_id } : {}),
      },
      ...this.interactionContext(token, channelId, { ...clone(member), permissions }, locale),
      channel: clone(record.channel as APITextChannel),
    };
    return this.dispatchInteraction(payload, opts.name, user);
  }

  /** The fields every guild interaction carries. */
  private interactionContext(token: string, channelId: string, member: APIInteractionGuildMember, locale: Locale) {
    // The channel's own guild: a command in a second guild's channel comes from that guild.
    const guildId = this.channels.get(channelId)?.guildId ?? this.guildId;
    return {
      guild_id: guildId,
      guild: { id: guildId, features: [], locale: Locale.EnglishUS },
      channel_id: channelId,
      member,
      token,
      version: 1 as const,
      app_permissions: ALL_PERMISSIONS,
      locale,
      guild_locale: Locale.EnglishUS,
      entitlements: [],
      authorizing_integration_owners: { [ApplicationIntegrationType.GuildInstall]: guildId },
      context: InteractionContextType.Guild as const,
      attachment_size_limit: 10 * 1024 * 1024,
    };
  }

  /** Remembers an interaction (for its callback and webhook follow-ups) and dispatches INTERACTION_CREATE. */
  private dispatchInteraction(payload: { id: string; token: string; channel_id: string }, name: string, user: APIUser): SentInteraction {
    const { id, token, channel_id: channelId } = payload;
    this.interactions.set(id, {
      id,
      token,
      name,
      channelId,
      guildId: this.guildId,
      user,
      createdAt: Date.now(),
      acknowledged: false,
      originalMessageId: null,
      loading: false,
      ephemeral: false,
      followUpIds: [],
      responses: [],
    });
    this.gateway.broadcast(GatewayDispatchEvents.InteractionCreate, () => clone(payload) as never);
    return { id, token, payload: clone(payload) };
  }

  /**
   * A human clicks a button of a message (INTERACTION_CREATE, type 3 MESSAGE_COMPONENT); the bot
   * answers it like any interaction (a deferred update, type 6, or a reply). Guild channels only.
   */
  clickButton(opts: ButtonClickOptions): SentInteraction {
    this.requireSession();
    const stored = this.messages.get(opts.messageId);
    if (!stored || stored.deleted) throw errors.unknownMessage();
    const channelId = stored.message.channel_id;
    const record = this.getChannel(channelId);
    if (!record.guildId) throw new Error('DiscordEmulator.clickButton supports guild channels only');
    const user = this.resolveUser(opts.user);
    const id = snowflake();
    const token = `aW50ZXJhY3Rpb246${id}:${randomPart(40)}`;
    const permissions = opts.permissions === undefined ? ALL_PERMISSIONS : opts.permissions.toString();
    const payload = {
      id,
      application_id: this.applicationId,
      type: InteractionType.MessageComponent,
      data: { custom_id: opts.customId, component_type: 2 },
      ...this.interactionContext(token, channelId, { ...clone(this.members.get(user.id)!), permissions }, Locale.EnglishUS),
      channel: clone(record.channel),
      message: stripReference(stored.message),
    };
    return this.dispatchInteraction(payload, opts.customId, user);
  }

  private buildOptions(
    values: Record<string, string | number | boolean>,
    defs: APIApplicationCommandOption[],
    resolved: APIInteractionDataResolved,
  ): APIApplicationCommandInteractionDataOption[] {
    return Object.entries(values).map(([name, value]) => {
      const def = defs.find((d) => d.name === name);
      const type =
        def?.type ??
        (typeof value === 'boolean'
          ? ApplicationCommandOptionType.Boolean
          : typeof value === 'number'
            ? Number.isInteger(value)
              ? ApplicationCommandOptionType.Integer
              : ApplicationCommandOptionType.Number
            : ApplicationCommandOptionType.String);
      if (type === ApplicationCommandOptionType.User || type === ApplicationCommandOptionType.Mentionable) {
        const user = this.users.get(String(value));
        if (user) {
          (resolved.users ??= {})[user.id] = clone(user);
          const member = this.members.get(user.id);
          if (member) {
            const { user: _u, ...rest } = clone(member);
            (resolved.members ??= {})[user.id] = { ...rest, permissions: DEFAULT_EVERYONE_PERMISSIONS };
          }
        }
      }
      if (type === ApplicationCommandOptionType.Role || type === ApplicationCommandOptionType.Mentionable) {
        const role = this.roles.find((r) => r.id === String(value));
        if (role) (resolved.roles ??= {})[role.id] = clone(role);
      }
      if (type === ApplicationCommandOptionType.Channel) {
        const channel = this.channels.get(String(value))?.channel;
        if (channel && channel.type === ChannelType.GuildText) {
          (resolved.channels ??= {})[channel.id] = { id: channel.id, type: channel.type, name: channel.name, permissions: ALL_PERMISSIONS };
        } else if (channel && isThread(channel.type) && 'parent_id' in channel) {
          // A thread comes with its parent and metadata, as Discord sends it.
          const { id, type, name, parent_id, thread_metadata } = channel as APIThreadChannel;
          (resolved.channels ??= {})[id] = { id, type, name, parent_id, thread_metadata, permissions: ALL_PERMISSIONS } as never;
        }
      }
      return { name, type, value } as APIApplicationCommandInteractionDataOption;
    });
  }

  // ───────────────────────────── interaction responses (REST) ─────────────────────────────

  private getInteractionByToken(applicationId: string, token: string): StoredInteraction {
    if (applicationId !== this.applicationId) throw errors.unknownWebhook();
    for (const interaction of this.interactions.values()) {
      if (interaction.token === token) {
        if (Date.now() - interaction.createdAt > INTERACTION_TOKEN_TTL_MS) throw errors.unknownWebhook();
        return interaction;
      }
    }
    throw errors.unknownWebhook();
  }

  interactionCallback(
    interactionId: string,
    token: string,
    body: { type?: number; data?: MessageBody } | undefined,
    files: UploadedFile[],
    withResponse: boolean,
  ): RESTPostAPIInteractionCallbackWithResponseResult | undefined {
    const interaction = this.interactions.get(interactionId);
    if (!interaction || interaction.token !== token) throw errors.unknownInteraction();
    if (Date.now() - interaction.createdAt > this.options.interactionAckDeadlineMs) throw errors.unknownInteraction();
    if (interaction.acknowledged) throw errors.alreadyAcknowledged();
    const type = body?.type;
    const data: MessageBody = body?.data ?? {};
    const flags = Number(data.flags ?? 0);
    const ephemeral = (flags & MessageFlags.Ephemeral) !== 0;
    let message: StoredMessage | null = null;
    switch (type) {
      case InteractionResponseType.ChannelMessageWithSource:
        this.validateBody(data, files, { requireSomething: true });
        message = this.createInteractionMessage(interaction, data, files, { ephemeral, loading: false, source: 'interaction' });
        interaction.originalMessageId = message.message.id;
        break;
      case InteractionResponseType.DeferredChannelMessageWithSource:
        message = this.createInteractionMessage(interaction, { content: '' }, [], { ephemeral, loading: true, source: 'interaction' });
        interaction.originalMessageId = message.message.id;
        interaction.loading = true;
        break;
      case InteractionResponseType.DeferredMessageUpdate:
      case InteractionResponseType.UpdateMessage:
      case InteractionResponseType.Modal:
      case InteractionResponseType.PremiumRequired:
      case InteractionResponseType.LaunchActivity:
        break;
      default:
        throw invalidFormBody('type', 'BASE_TYPE_CHOICES', `Value must be one of ${[4, 5, 6, 7, 9, 10, 12].join(', ')}.`);
    }
    interaction.acknowledged = true;
    interaction.ephemeral = ephemeral;
    interaction.responses.push({
      kind: 'callback',
      callbackType: type as InteractionResponseType,
      content: typeof data.content === 'string' ? data.content : null,
      flags,
      ephemeral,
      messageId: message?.message.id ?? null,
      body: clone(body),
      time: Date.now(),
    });
    if (!withResponse) return undefined;
    const result: RESTPostAPIInteractionCallbackWithResponseResult = {
      interaction: {
        id: interaction.id,
        type: InteractionType.ApplicationCommand,
        ...(message ? { response_message_id: message.message.id, response_message_loading: interaction.loading, response_message_ephemeral: ephemeral } : {}),
      },
    };
    if (message) result.resource = { type: type as InteractionResponseType.ChannelMessageWithSource, message: clone(message.message) };
    return result;
  }

  private createInteractionMessage(
    interaction: StoredInteraction,
    body: MessageBody,
    files: UploadedFile[],
    { ephemeral, loading, source }: { ephemeral: boolean; loading: boolean; source: 'interaction' | 'followup' },
  ): StoredMessage {
    const message = this.baseMessage(interaction.channelId, this.botUser, body.content ?? '');
    message.type = source === 'interaction' ? MessageType.ChatInputCommand : MessageType.Default;
    message.webhook_id = this.applicationId;
    message.application_id = this.applicationId;
    message.embeds = clone(body.embeds ?? []);
    message.components = clone(body.components ?? []);
    message.attachments = this.buildAttachments(interaction.channelId, body, files);
    message.flags = (ephemeral ? MessageFlags.Ephemeral : 0) | (loading ? MessageFlags.Loading : 0) | ((body.flags ?? 0) & MessageFlags.SuppressEmbeds);
    message.interaction_metadata = {
      id: interaction.id,
      type: InteractionType.ApplicationCommand,
      user: clone(interaction.user),
      authorizing_integration_owners: { [ApplicationIntegrationType.GuildInstall]: interaction.guildId },
      ...(source === 'followup' && interaction.originalMessageId ? { original_response_message_id: interaction.originalMessageId } : {}),
    };
    message.interaction = { id: interaction.id, type: InteractionType.ApplicationCommand, name: interaction.name, user: clone(interaction.user) };
    const allowed = body.allowed_mentions ?? null;
    const mentions = this.resolveMentions(message.content, allowed, null, false);
    message.mentions = mentions.users;
    message.mention_roles = mentions.roles;
    message.mention_everyone = mentions.everyone;
    return this.addBotMessage({ message, guildId: interaction.guildId, source, interactionId: interaction.id, ephemeral, allowed });
  }

  /** Stores a message the bot just created, records its first version, and echoes it on the gateway. */
  private addBotMessage(fields: Pick<StoredMessage, 'message' | 'guildId' | 'source' | 'interactionId' | 'ephemeral'> & { allowed: StoredMessage['allowedMentions'] | undefined }): StoredMessage {
    const { allowed, ...rest } = fields;
    const stored: StoredMessage = { ...rest, allowedMentions: allowed ? clone(allowed) : null, history: [], deleted: false, deletedAt: null, createdAt: Date.now() };
    this.recordVersion(stored);
    this.storeMessage(stored);
    if (this.options.echoBotEvents) this.dispatchMessageCreate(stored);
    return stored;
  }

  private webhookTarget(interaction: StoredInteraction, messageId: string): StoredMessage {
    const id = messageId === '@original' ? interaction.originalMessageId : messageId;
    if (!id) throw errors.unknownMessage();
    const stored = this.messages.get(id);
    if (!stored || stored.deleted || stored.interactionId !== interaction.id) throw errors.unknownMessage();
    return stored;
  }

  getWebhookMessage(applicationId: string, token: string, messageId: string): APIMessage {
    const interaction = this.getInteractionByToken(applicationId, token);
    return clone(this.webhookTarget(interaction, messageId).message);
  }

  editWebhookMessage(applicationId: string, token: string, messageId: string, body: MessageBody, files: UploadedFile[]): APIMessage {
    const interaction = this.getInteractionByToken(applicationId, token);
    const stored = this.webhookTarget(interaction, messageId);
    this.validateBody(body, files, { requireSomething: false });
    const wasLoading = ((stored.message.flags ?? 0) & MessageFlags.Loading) !== 0;
    this.applyEdit(stored, body, files);
    if (wasLoading) {
      stored.message.flags = (stored.message.flags ?? 0) & ~MessageFlags.Loading;
      // Replacing the "thinking…" placeholder is not an edit from the user's point of view.
      stored.message.edited_timestamp = null;
      stored.history = stored.history.slice(-1);
      if (stored.message.id === interaction.originalMessageId) interaction.loading = false;
    }
    const isOriginal = stored.message.id === interaction.originalMessageId;
    interaction.responses.push({
      kind: isOriginal ? 'editOriginal' : 'editFollowUp',
      callbackType: null,
      content: typeof body.content === 'string' ? body.content : null,
      flags: Number(body.flags ?? 0),
      ephemeral: stored.ephemeral,
      messageId: stored.message.id,
      body: clone(body),
      time: Date.now(),
    });
    if (this.options.echoBotEvents) this.dispatchMessageUpdate(stored);
    return clone(stored.message);
  }

  deleteWebhookMessage(applicationId: string, token: string, messageId: string): void {
    const interaction = this.getInteractionByToken(applicationId, token);
    const stored = this.webhookTarget(interaction, messageId);
    stored.deleted = true;
    stored.deletedAt = Date.now();
    const isOriginal = stored.message.id === interaction.originalMessageId;
    interaction.responses.push({
      kind: isOriginal ? 'deleteOriginal' : 'deleteFollowUp',
      callbackType: null,
      content: null,
      flags: 0,
      ephemeral: stored.ephemeral,
      messageId: stored.message.id,
      body: undefined,
      time: Date.now(),
    });
    if (this.options.echoBotEvents) this.dispatchMessageDelete(stored);
  }

  /**
   * POST /webhooks/:app/:token. After a deferred reply the first follow-up replaces the loading
   * message (Discord's documented behaviour) and inherits its ephemerality.
   */
  executeWebhook(applicationId: string, token: string, body: MessageBody, files: UploadedFile[]): APIMessage {
    const interaction = this.getInteractionByToken(applicationId, token);
    if (!interaction.acknowledged) throw errors.unknownWebhook();
    this.validateBody(body, files, { requireSomething: true });
    const flags = Number(body.flags ?? 0);
    let stored: StoredMessage;
    if (interaction.loading && interaction.originalMessageId) {
      stored = this.messages.get(interaction.originalMessageId)!;
      this.applyEdit(stored, { ...body, flags: null }, files);
      stored.message.flags = (stored.message.flags ?? 0) & ~MessageFlags.Loading;
      stored.message.edited_timestamp = null;
      stored.history = stored.history.slice(-1);
      interaction.loading = false;
      if (this.options.echoBotEvents) this.dispatchMessageUpdate(stored);
    } else {
      stored = this.createInteractionMessage(interaction, body, files, {
        ephemeral: (flags & MessageFlags.Ephemeral) !== 0,
        loading: false,
        source: 'followup',
      });
      interaction.followUpIds.push(stored.message.id);
    }
    interaction.responses.push({
      kind: 'followUp',
      callbackType: null,
      content: typeof body.content === 'string' ? body.content : null,
      flags,
      ephemeral: stored.ephemeral,
      messageId: stored.message.id,
      body: clone(body),
      time: Date.now(),
    });
    return clone(stored.message);
  }

  // ───────────────────────────── views for tests ─────────────────────────────

  botMessageRecords(channelId?: string): BotMessageRecord[] {
    return [...this.messages.values()]
      .filter((m) => m.message.author.id === this.botUser.id && (channelId === undefined || m.message.channel_id === channelId))
      .map((m) => ({
        id: m.message.id,
        channelId: m.message.channel_id,
        guildId: m.guildId,
        content: m.message.content,
        embeds: clone(m.message.embeds),
        attachments: clone(m.message.attachments),
        components: clone(m.message.components ?? []),
        flags: m.message.flags ?? 0,
        replyTo: m.message.message_reference?.message_id ?? null,
        allowedMentions: clone(m.allowedMentions),
        source: m.source === 'user' ? 'channel' : m.source,
        interactionId: m.interactionId,
        ephemeral: m.ephemeral,
        history: clone(m.history),
        edited: m.history.length > 1,
        deleted: m.deleted,
        deletedAt: m.deletedAt,
        createdAt: m.createdAt,
        message: clone(m.message),
      }));
  }

  interactionResponses(interactionId: string): InteractionResponseRecord[] {
    return clone(this.interactions.get(interactionId)?.responses ?? []);
  }
}

function stripReference(message: APIMessage): APIMessage {
  const copy = clone(message);
  delete copy.referenced_message;
  return copy;
}

function parseEmoji(emoji: string): APIPartialEmoji {
  const custom = /^(a)?:?([\w~-]+):(\d{17,20})$/.exec(emoji);
  if (custom) return { id: custom[3]!, name: custom[2]!, animated: custom[1] === 'a' };
  return { id: null, name: emoji };
}

function emojiKey(emoji: APIPartialEmoji): string {
  return emoji.id ? `${emoji.name}:${emoji.id}` : (emoji.name ?? '');
}

function randomPart(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}

const NAME_RE = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

/** The subset of Discord's command validation that catches real-world mistakes. */
function validateCommand(def: RESTPostAPIApplicationCommandsJSONBody, path: string): void {
  const at = (field: string) => (path ? `${path}.${field}` : field);
  if (!def || typeof def !== 'object' || typeof def.name !== 'string') throw invalidFormBody(at('name'), 'BASE_TYPE_REQUIRED', 'This field is required');
  const type = def.type ?? ApplicationCommandType.ChatInput;
  if (type === ApplicationCommandType.ChatInput) {
    if (!NAME_RE.test(def.name) || def.name !== def.name.toLowerCase()) {
      throw invalidFormBody(at('name'), 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
    }
    const description = 'description' in def ? def.description : undefined;
    if (typeof description !== 'string' || description.length < 1 || description.length > 100) {
      throw invalidFormBody(at('description'), 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    }
    validateOptions('options' in def ? def.options : undefined, at('options'));
  } else if (def.name.length < 1 || def.name.length > 32) {
    throw invalidFormBody(at('name'), 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 32 in length.');
  }
}

function validateOptions(options: readonly APIApplicationCommandOption[] | undefined, path: string): void {
  if (!options) return;
  if (options.length > 25) throw invalidFormBody(path, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
  let sawOptional = false;
  options.forEach((option, index) => {
    const at = `${path}.${index}`;
    if (!NAME_RE.test(option.name) || option.name !== option.name.toLowerCase()) {
      throw invalidFormBody(`${at}.name`, 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
    }
    if (typeof option.description !== 'string' || option.description.length < 1 || option.description.length > 100) {
      throw invalidFormBody(`${at}.description`, 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    }
    const required = 'required' in option && option.required === true;
    if (required && sawOptional) {
      throw invalidFormBody(`${at}.required`, 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', 'Required options must be placed before non-required options');
    }
    if (!required) sawOptional = true;
    if ('choices' in option && option.choices && option.choices.length > 25) {
      throw invalidFormBody(`${at}.choices`, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    }
    if ('options' in option && option.options) validateOptions(option.options as APIApplicationCommandOption[], `${at}.options`);
  });
}

/** Makes `message` a reply to `referenced`, as Discord shows it. */
function markAsReply(message: APIMessage, referenced: StoredMessage, channelId: string, guildId: string | null | undefined): void {
  message.type = MessageType.Reply;
  message.message_reference = {
    type: MessageReferenceType.Default,
    message_id: referenced.message.id,
    channel_id: channelId,
    ...(guildId ? { guild_id: guildId } : {}),
  };
  message.referenced_message = stripReference(referenced.message);
}
