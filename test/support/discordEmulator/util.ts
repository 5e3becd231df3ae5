/**
 * Small helpers shared by the Discord emulator: snowflakes, Discord-style HTTP errors,
 * permission constants and emoji validation.
 */
import { PermissionFlagsBits, RESTJSONErrorCodes } from 'discord-api-types/v10';

const DISCORD_EPOCH = 1_420_070_400_000n;
let lastTimestamp = 0n;
let sequence = 0n;

/**
 * Returns a fresh, strictly increasing Discord snowflake whose timestamp is "now".
 * discord.js derives `createdTimestamp` from it and @discordjs/rest only treats 17–19 digit
 * numbers as ids when it computes rate-limit buckets, so ids must look real.
 */
export function snowflake(time: number = Date.now()): string {
  let ts = BigInt(time) - DISCORD_EPOCH;
  if (ts <= lastTimestamp) {
    ts = lastTimestamp;
    sequence += 1n;
    if (sequence > 0xfffn) {
      ts += 1n;
      sequence = 0n;
    }
  } else {
    sequence = 0n;
  }
  lastTimestamp = ts;
  return ((ts << 22n) | (1n << 17n) | sequence).toString();
}

/** Millisecond timestamp encoded in a snowflake. */
export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

/** Every permission bit Discord knows about, as the decimal string the API uses. */
export const ALL_PERMISSIONS: string = Object.values(PermissionFlagsBits)
  .reduce((acc, bit) => acc | bit, 0n)
  .toString();

/** The permissions Discord gives @everyone in a freshly created guild. */
export const DEFAULT_EVERYONE_PERMISSIONS: string = (
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.AddReactions |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.UseApplicationCommands |
  PermissionFlagsBits.UseExternalEmojis |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.CreatePublicThreads |
  PermissionFlagsBits.ChangeNickname |
  PermissionFlagsBits.Connect |
  PermissionFlagsBits.Speak
).toString();

/** Body of a Discord JSON error response. */
export interface DiscordErrorBody {
  code: number;
  message: string;
  errors?: unknown;
  retry_after?: number;
  global?: boolean;
}

/** Thrown by route handlers; turned into a Discord-style JSON error response. */
export class DiscordHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: DiscordErrorBody,
  ) {
    super(`${status} ${body.message}`);
  }
}

/** 400 "Invalid Form Body" with a single field error, shaped like Discord's. */
export function invalidFormBody(field: string, code: string, message: string): DiscordHttpError {
  const errors: Record<string, unknown> = {};
  let cursor = errors;
  const parts = field.split('.');
  parts.forEach((part, index) => {
    if (index === parts.length - 1) {
      cursor[part] = { _errors: [{ code, message }] };
    } else {
      const next: Record<string, unknown> = {};
      cursor[part] = next;
      cursor = next;
    }
  });
  return new DiscordHttpError(400, { code: RESTJSONErrorCodes.InvalidFormBodyOrContentType, message: 'Invalid Form Body', errors });
}

export const errors = {
  unauthorized: () => new DiscordHttpError(401, { code: 0, message: '401: Unauthorized' }),
  unknownChannel: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownChannel, message: 'Unknown Channel' }),
  unknownMessage: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownMessage, message: 'Unknown Message' }),
  unknownGuild: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownGuild, message: 'Unknown Guild' }),
  unknownMember: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownMember, message: 'Unknown Member' }),
  unknownUser: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownUser, message: 'Unknown User' }),
  unknownEmoji: () => new DiscordHttpError(400, { code: RESTJSONErrorCodes.UnknownEmoji, message: 'Unknown Emoji' }),
  unknownWebhook: () => new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownWebhook, message: 'Unknown Webhook' }),
  unknownInteraction: () =>
    new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownInteraction, message: 'Unknown interaction' }),
  unknownCommand: () =>
    new DiscordHttpError(404, { code: RESTJSONErrorCodes.UnknownApplicationCommand, message: 'Unknown application command' }),
  alreadyAcknowledged: () =>
    new DiscordHttpError(400, {
      code: RESTJSONErrorCodes.InteractionHasAlreadyBeenAcknowledged,
      message: 'Interaction has already been acknowledged.',
    }),
  emptyMessage: () => new DiscordHttpError(400, { code: RESTJSONErrorCodes.CannotSendAnEmptyMessage, message: 'Cannot send an empty message' }),
  notAuthor: () =>
    new DiscordHttpError(403, {
      code: RESTJSONErrorCodes.CannotEditMessageAuthoredByAnotherUser,
      message: 'Cannot edit a message authored by another user',
    }),
  unknownRoute: (method: string, path: string) => new DiscordHttpError(404, { code: 0, message: `404: Not Found (emulator has no route for ${method} ${path})` }),
  methodNotAllowed: () => new DiscordHttpError(405, { code: 0, message: '405: Method Not Allowed' }),
};

/**
 * Discord rejects reactions whose emoji is neither a custom emoji (`name:id`, `a:name:id`) nor an
 * actual Unicode emoji. Full Unicode validation is out of scope; plain ASCII (e.g. `:smile:` or
 * `thumbsup`) is the common bot bug, so that is what gets rejected with 10014 Unknown Emoji.
 */
export function isPlausibleEmoji(emoji: string): boolean {
  if (/^a?:?[\w~-]{2,32}:\d{17,20}$/.test(emoji)) return true;
  if (emoji.length === 0 || emoji.length > 64) return false;
  // eslint-disable-next-line no-control-regex
  return !/^[\x00-\x7F]*$/.test(emoji);
}

/** Deep-ish clone for JSON-compatible data, so recorded state cannot be mutated by callers. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function isoNow(time: number = Date.now()): string {
  return new Date(time).toISOString();
}
