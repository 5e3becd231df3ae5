import { Client, GatewayIntentBits, Options, Partials, Status } from 'discord.js';
import type { Config } from '../config.js';

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
    makeCache: Options.cacheWithLimits({ ...Options.DefaultMakeCacheSettings, MessageManager: 0 }),
  });
}

/** True while every gateway shard of the client is connected and ready (for /healthz). */
export function gatewayConnected(client: Client): boolean {
  const shards = [...client.ws.shards.values()];
  return shards.length > 0 && shards.every((shard) => shard.status === Status.Ready);
}
