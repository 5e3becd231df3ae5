import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { UserError } from '../errors.js';
import { maskCredentials } from '../logger.js';
import type { HistoryBackend, PageStore } from './pagedHistory.js';
import { describeServer, errorText } from './postgresBackend.js';
import { moodChannelsOf } from './sqliteBackend.js';

/** Tries of one operation that keeps losing its WATCH to other processes' writes. */
const MAX_TRIES = 100;

/**
 * Opens the history on Redis and proves it usable: an unreachable server, a refused password or a
 * missing database number fails within `connectTimeoutMs` with a UserError naming the host.
 *
 * Atomic without locks: an operation WATCHes the channel's head, reads through Keyv, collects its
 * writes, and sends them as one MULTI/EXEC. Every write operation rewrites the head, so EXEC fails
 * if any other writer committed in between; then the operation runs again from fresh reads. A read
 * ends with an EXEC too, so head and pages it returns come from one state.
 */
export async function openRedisBackend(url: string, connectTimeoutMs: number): Promise<HistoryBackend> {
  const where = describeServer(url);
  let connected = false;
  const client = createClient({
    url,
    // While the server is away a write fails at once (the sessions keep the turn and retry it with
    // the next) instead of waiting in a queue that holds the channel's history up.
    disableOfflineQueue: true,
    // At start, one failed try is the answer; once running, reconnect with a capped backoff.
    socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries: number) => (connected ? Math.min(2 ** retries * 50, 2000) : false) },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    connected = true;
  } catch (error) {
    if (client.isOpen) client.destroy();
    throw new UserError(`Cannot use the history database on ${where}: ${maskCredentials(errorText(error))}. Check DATABASE_URL.`);
  }
  const adapter = new KeyvRedis(client, { namespace: 'history', throwOnErrors: true });
  const keyv = new Keyv({ store: adapter, namespace: 'history', useKeyPrefix: false, throwOnErrors: true });
  keyv.on('error', () => {});
  const redisKey = (key: string) => adapter.createKeyPrefix(key, 'history');

  return {
    where,
    async run(channelId, _mode, work) {
      for (let tries = 1; ; tries++) {
        await client.watch(redisKey(channelId));
        const writes = new Map<string, unknown>();
        let result;
        try {
          result = await work(pendingPages(keyv, writes));
        } catch (error) {
          await client.unwatch();
          throw error;
        }
        const multi = client.multi();
        for (const [key, value] of writes) {
          if (value === undefined) multi.del(redisKey(key));
          else multi.set(redisKey(key), (await keyv.serializeData({ value, expires: undefined })) as string);
        }
        if (writes.size === 0) multi.exists(redisKey(channelId));
        try {
          await multi.exec();
          return result;
        } catch (error) {
          // @redis/client's WatchError: another writer committed after our WATCH. Its name property is plain 'Error'.
          if (error?.constructor?.name !== 'WatchError' || tries >= MAX_TRIES) throw error;
        }
      }
    },
    async moodChannels() {
      const prefix = redisKey('');
      const keys: string[] = [];
      // SCAN walks the keyspace in small steps, so the server is never blocked as with KEYS.
      for await (const batch of client.scanIterator({ MATCH: `${prefix}*/mood`, COUNT: 1000 })) keys.push(...batch);
      return moodChannelsOf(keys.map((key) => ({ key })), prefix);
    },
    async close() {
      await client.close();
    },
  };
}

/** Reads through Keyv, but sees this operation's own writes, which wait in `writes` (undefined: deleted). */
function pendingPages(keyv: Keyv, writes: Map<string, unknown>): PageStore {
  const get = (key: string) => (writes.has(key) ? Promise.resolve(structuredClone(writes.get(key))) : keyv.get(key));
  return {
    get,
    getMany: (keys) => Promise.all(keys.map(get)),
    set: async (key, value) => void writes.set(key, structuredClone(value)),
    deleteMany: async (keys) => keys.forEach((key) => writes.set(key, undefined)),
  };
}
