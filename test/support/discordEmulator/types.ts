/**
 * Public types of the Discord emulator: start options, inputs of the test-side actions and the
 * records it keeps of what the bot did.
 */
import type {
  APIAllowedMentions,
  APIApplicationCommandInteractionDataOption,
  APIAttachment,
  APIEmbed,
  APIMessage,
  APIMessageTopLevelComponent,
  APIUser,
  InteractionResponseType,
  MessageType,
} from 'discord-api-types/v10';
import type { DiscordErrorBody } from './util.js';

export type { DiscordErrorBody };

/** Options of {@link DiscordEmulator.start}. Every field is optional. */
export interface EmulatorOptions {
  /** HELLO heartbeat interval. Default 1000 ms (Discord uses ~41 s; short keeps heartbeats exercised). */
  heartbeatIntervalMs?: number;
  /** Name of the single emulated guild. Default `Emulated Guild`. */
  guildName?: string;
  /** Text channels created up front (they appear in GUILD_CREATE). Default `['general']`. */
  channels?: string[];
  /** Bot username. Default `EmuBot`. */
  botUsername?: string;
  /**
   * How long after INTERACTION_CREATE the initial callback is still accepted; later callbacks get
   * 404 `10062 Unknown interaction`, like Discord's 3 s rule. Default 3000 ms; `Infinity` disables.
   */
  interactionAckDeadlineMs?: number;
  /**
   * Echo the bot's own REST actions back on the gateway (MESSAGE_CREATE / MESSAGE_UPDATE /
   * MESSAGE_DELETE / MESSAGE_REACTION_ADD for its own messages and reactions), as Discord does
   * when the client has the matching intents. Default true.
   */
  echoBotEvents?: boolean;
  /**
   * The permissions of the bot's own role (on top of @everyone's defaults: View Channel, Send
   * Messages, Add Reactions, Read Message History, ...). Default Administrator: everything,
   * whatever the channel's overwrites say.
   */
  botPermissions?: bigint;
  /**
   * Shards: GET /gateway/bot recommends this many, IDENTIFY's `shard: [id, count]` is kept per
   * session, and a guild's events go only to the session of shard `(guild_id >> 22) % count`
   * (DMs to shard 0), as on Discord. Default 1.
   */
  shards?: number;
}

/** Who a user-side action is performed by. Unknown ids/usernames create a new guild member. */
export interface UserSpec {
  id?: string;
  username?: string;
  globalName?: string | null;
  bot?: boolean;
}

/** A file attached to an injected user message. */
export interface UserAttachmentSpec {
  filename: string;
  /** Default: the content's length, else 1024. */
  size?: number;
  contentType?: string;
  url?: string;
  /** Served by the emulator at the attachment's URL (GET `http://127.0.0.1:PORT/attachments/...`). */
  content?: string | Buffer;
  /** The emulator answers the file's URL only after this long. */
  delayMs?: number;
  /** The emulator answers the file's URL with this status (and no body) instead. */
  status?: number;
}

/** Input of {@link DiscordEmulator.sendUserMessage}. */
export interface SendUserMessageOptions {
  /** Target guild text channel. Default: the first channel. Ignored with `dm: true`. */
  channelId?: string;
  content: string;
  /** Author; default the fixed human user `alice`. */
  author?: UserSpec;
  /** Send as a DM to the bot instead (channel_type 1, no guild_id/member; needs the client's Partials.Channel). */
  dm?: boolean;
  /** Make it a webhook message (`webhook_id` set, author is the webhook, no member). */
  webhookId?: string;
  attachments?: UserAttachmentSpec[];
  embeds?: APIEmbed[];
  /** Message type; default 0 (Default), or 19 (Reply) with `replyTo`. */
  type?: MessageType;
  /** Id of a message in the same channel to reply to (sets message_reference + referenced_message). */
  replyTo?: string;
  /** For replies: whether the replied-to author is pinged (put in `mentions`). Default true. */
  mentionRepliedUser?: boolean;
}

/** Input of {@link DiscordEmulator.sendSlashCommand}. */
export interface SlashCommandOptions {
  channelId?: string;
  name: string;
  /**
   * Either raw interaction options, or a `{ optionName: value }` map. With a map, option types come
   * from the registered command definition when there is one, otherwise they are inferred
   * (string → 3, integer → 4, other number → 10, boolean → 5).
   */
  options?: APIApplicationCommandInteractionDataOption[] | Record<string, string | number | boolean>;
  /** Wrap the options in this subcommand. */
  subcommand?: string;
  /** The invoking member's permissions (decimal string or bigint). Default: all permissions. */
  permissions?: bigint | string;
  user?: UserSpec;
  locale?: string;
}

/** Input of {@link DiscordEmulator.clickButton}. */
export interface ButtonClickOptions {
  /** The message whose button is clicked. */
  messageId: string;
  customId: string;
  /** Who clicks; default `alice`. */
  user?: UserSpec;
  /** The clicking member's permissions in the channel (decimal string or bigint). Default: all permissions. */
  permissions?: bigint | string;
}

/** What {@link DiscordEmulator.sendSlashCommand} returns. */
export interface SentInteraction {
  id: string;
  token: string;
  /** The INTERACTION_CREATE payload as dispatched. */
  payload: unknown;
}

/** One REST call the emulator received, in arrival order. */
export interface RecordedRequest {
  method: string;
  /** Path below `/api/v10`, each segment percent-decoded, no query (e.g. `/channels/1/messages/2/reactions/👍/@me`). */
  path: string;
  /** The raw request target as received (`/api/v10/...?...`). */
  rawUrl: string;
  query: Record<string, string>;
  /** Parsed JSON body (`payload_json` for multipart), `undefined` when there was none. */
  body: unknown;
  files: RecordedFile[];
  /** `Date.now()` at arrival. */
  time: number;
  status: number;
  /** The JSON error body when status is not 2xx. */
  error?: DiscordErrorBody;
  /** True when a {@link FaultRule} produced this response. */
  injectedFault?: boolean;
  /** True when no emulator route matched (404). */
  unknownRoute?: boolean;
}

export interface RecordedFile {
  field: string;
  name: string;
  size: number;
  contentType: string;
}

/** One version of a message's content (the first is the original, the last is current). */
export interface MessageVersion {
  content: string;
  embeds: APIEmbed[];
  time: number;
}

/** A message the bot authored (channel message, interaction response or follow-up). */
export interface BotMessageRecord {
  id: string;
  channelId: string;
  guildId: string | null;
  /** Current content (edits applied). */
  content: string;
  embeds: APIEmbed[];
  attachments: APIAttachment[];
  components: APIMessageTopLevelComponent[];
  flags: number;
  /** Id of the message it replies to (message_reference.message_id). */
  replyTo: string | null;
  /** `allowed_mentions` as sent on creation (last edit wins if an edit sent one). */
  allowedMentions: APIAllowedMentions | null;
  /** How it was created. */
  source: 'channel' | 'interaction' | 'followup';
  interactionId: string | null;
  ephemeral: boolean;
  /** Every version, oldest first. `history.length - 1` edits happened. */
  history: MessageVersion[];
  edited: boolean;
  deleted: boolean;
  deletedAt: number | null;
  createdAt: number;
  /** The current full message object. */
  message: APIMessage;
}

/** A reaction the bot added (and maybe removed later). */
export interface ReactionRecord {
  channelId: string;
  messageId: string;
  /** Decoded emoji: a Unicode emoji, or `name:id` for custom ones. */
  emoji: string;
  userId: string;
  time: number;
  removed: boolean;
  removedAt: number | null;
}

/** One step of the bot's answer to an interaction. */
export interface InteractionResponseRecord {
  kind: 'callback' | 'editOriginal' | 'deleteOriginal' | 'followUp' | 'editFollowUp' | 'deleteFollowUp';
  /** For `callback`: the interaction response type (4 reply, 5 deferred, 6/7 updates, 9 modal...). */
  callbackType: InteractionResponseType | null;
  content: string | null;
  /** Message flags sent (64 = ephemeral). */
  flags: number;
  ephemeral: boolean;
  /** The message created or touched by this step. */
  messageId: string | null;
  /** Raw request body. */
  body: unknown;
  time: number;
}

/** A scripted REST failure, see {@link DiscordEmulator.failNext}. */
export interface FaultRule {
  /** HTTP method to match (any when omitted). */
  method?: string;
  /** Tested against {@link RecordedRequest.path} (decoded, below `/api/v10`). */
  path: RegExp;
  /** Status to answer with, e.g. 429, 500, 502, 403. */
  status: number;
  /** For 429: seconds to wait (Retry-After header and `retry_after`). Default 0.1. */
  retryAfter?: number;
  /** For 429: mark as a global rate limit (X-RateLimit-Global). */
  global?: boolean;
  /** How many matching requests fail. Default 1. */
  times?: number;
  /** Override the JSON error body. */
  body?: DiscordErrorBody;
}

/** Live view of an armed {@link FaultRule}. */
export interface FaultHandle {
  readonly hits: number;
  readonly remaining: number;
}

export interface TypingRecord {
  channelId: string;
  time: number;
}

export type { APIUser };
