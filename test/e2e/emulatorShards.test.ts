/**
 * The emulator's shards, with real discord.js Clients (no project bot logic): one Client per shard,
 * as ShardingManager runs them, each sees only its own guilds' events; DMs reach shard 0 only.
 */
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, Partials, type Message } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DiscordEmulator } from '../support/DiscordEmulator.js';

let emu: DiscordEmulator | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.destroy();
  await emu?.stop();
  emu = undefined;
});

/** A Client that runs shard `id` of `count`, and every message it receives. */
async function shardClient(id: number, count: number): Promise<{ client: Client; seen: Message[] }> {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
    partials: [Partials.Channel],
    rest: { api: emu!.apiUrl },
    shards: [id],
    shardCount: count,
  });
  clients.push(client);
  const seen: Message[] = [];
  client.on(Events.MessageCreate, (message) => void seen.push(message));
  const ready = once(client, Events.ClientReady);
  await client.login(emu!.token);
  await ready;
  return { client, seen };
}

describe('the emulator with two shards', () => {
  it('recommends its shard count on GET /gateway/bot', async () => {
    emu = await DiscordEmulator.start({ shards: 2 });

    const response = await fetch(`${emu.apiUrl}/v10/gateway/bot`, { headers: { Authorization: `Bot ${emu.token}` } });

    expect((await response.json()).shards).toBe(2);
  });

  it("gives each shard only its own guilds and their messages, and DMs to shard 0 only", async () => {
    emu = await DiscordEmulator.start({ shards: 2 });
    const other = emu.addGuild('Second Guild', ['lobby'], 1 - emu.shardOf(emu.guildId));
    const guildOf = [emu.guildId, other.guildId].sort((a, b) => emu!.shardOf(a) - emu!.shardOf(b));
    const channelOf = guildOf.map((guildId) => (guildId === emu!.guildId ? emu!.defaultChannelId : other.channelIds[0]!));
    const shards = [await shardClient(0, 2), await shardClient(1, 2)];

    expect(emu.connectedShards()).toEqual([0, 1]);
    expect(shards.map(({ client }) => [...client.guilds.cache.keys()])).toEqual([[guildOf[0]], [guildOf[1]]]);
    emu.sendUserMessage({ channelId: channelOf[0], content: 'for shard 0' });
    emu.sendUserMessage({ channelId: channelOf[1], content: 'for shard 1' });
    emu.sendUserMessage({ dm: true, content: 'a DM' });

    await emu.waitFor(() => shards[0]!.seen.length === 2 && shards[1]!.seen.length === 1, { description: 'deliveries' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(shards.map(({ seen }) => seen.map((m) => m.content))).toEqual([['for shard 0', 'a DM'], ['for shard 1']]);
    expect(shards[0]!.client.ws.shards.first()!.id).toBe(0);
  });

  it('closes a connection whose IDENTIFY names a shard id not below the count', async () => {
    emu = await DiscordEmulator.start({ shards: 2 });
    const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: emu.apiUrl }, shards: [2], shardCount: 2 });
    clients.push(client);

    await expect(client.login(emu.token)).rejects.toThrow('Invalid shard');
  });
});
