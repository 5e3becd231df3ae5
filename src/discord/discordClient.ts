import { Client, GatewayIntentBits, Options, Partials, Status } from 'discord.js';
import type { Config } from '../config.js';

/** Users, and members per guild, that discord.js keeps; one is ~1 KB. The bot's own always stay. */
export const USERS_CACHED = 1000;

/** The client options the bot needs; exported so tests build the very same client. */
export function createDiscordClient(config: Pick<Config, 'DISCORD_API_URL'>): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
    partials: [Partials.Channel],
    // Model output must never ping anyone: no @everyone, roles, users, nor the replied-to author.
    allowedMentions: { parse: [], repliedUser: false },
    rest: config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {},
    // The bot keeps the Message objects it works on; discord.js's default cache of 200 messages per
    // channel would only grow the memory with every busy channel (megabytes per thousand messages).
    // Every author and member seen would stay otherwise (20,000 authors: 20,002 of each). The bot's own
    // user and member are kept over the limit: its permission checks read them.
    makeCache: Options.cacheWithLimits({
      ...Options.DefaultMakeCacheSettings,
      MessageManager: 0,
      UserManager: { maxSize: USERS_CACHED, keepOverLimit: (user) => user.id === user.client.user?.id },
      GuildMemberManager: { maxSize: USERS_CACHED, keepOverLimit: (member) => member.id === member.client.user?.id },
    }),
  });
}

/** True while every gateway shard of the client is connected and ready (for /healthz). */
export function gatewayConnected(client: Client): boolean {
  const shards = [...client.ws.shards.values()];
  return shards.length > 0 && shards.every((shard) => shard.status === Status.Ready);
}
