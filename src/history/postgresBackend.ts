import Keyv from 'keyv';
import KeyvPostgres from '@keyv/postgres';
import pg from 'pg';
import { UserError } from '../errors.js';
import { maskCredentials } from '../logger.js';
import type { HistoryBackend } from './pagedHistory.js';
import { MOOD_HEADS_SQL, inTransaction, keyvPages, moodChannelsOf } from './sqliteBackend.js';

/**
 * @keyv/postgres with a pool of its own holding one connection: the adapter's pool is shared by
 * every adapter of the process and ended by any of them, and a transaction needs all its
 * statements on one connection.
 */
class OwnConnectionPostgres extends KeyvPostgres {
  // `declare`: assigned in connect(), which the base constructor calls before field initializers run.
  declare pool: pg.Pool;

  override async connect() {
    this.pool = new pg.Pool({ ...this.opts, connectionString: this.opts.uri, max: 1, idleTimeoutMillis: 0 });
    // A dropped idle connection is replaced on the next query; the error must not crash the process.
    this.pool.on('error', () => {});
    return async (sql: string, values?: unknown[]) => (await this.pool.query(sql, values)).rows;
  }
}

/** PostgreSQL's limits, in ms. */
export interface PostgresTimeouts {
  /** Connecting at start. */
  connectTimeoutMs: number;
  /** Waiting for a lock (another process's channel lock, a row another session holds): the server's lock_timeout. */
  lockTimeoutMs: number;
  /** One statement: the server's statement_timeout. */
  statementTimeoutMs: number;
}

/**
 * Opens the history on PostgreSQL and proves it usable: an unreachable server, a refused password
 * or a missing database fails within `connectTimeoutMs` with a UserError naming the host.
 * A write is one transaction holding the channel's advisory lock, so appends from several processes
 * queue up instead of overwriting each other; a read is one REPEATABLE READ snapshot. The server
 * cancels a statement past its lock or statement timeout, so one stalled statement fails its own
 * operation and the store's queue (every channel's history) moves on.
 */
export async function openPostgresBackend(url: string, { connectTimeoutMs, lockTimeoutMs, statementTimeoutMs }: PostgresTimeouts): Promise<HistoryBackend> {
  const where = describeServer(url);
  const adapter = new OwnConnectionPostgres({
    uri: url,
    connectionTimeoutMillis: connectTimeoutMs,
    // Session settings node-postgres sends at connect; pg_advisory_xact_lock waits count as lock waits.
    lock_timeout: lockTimeoutMs,
    statement_timeout: statementTimeoutMs,
  } as ConstructorParameters<typeof KeyvPostgres>[0]);
  // The table is created in the background and its failure emitted; the probe below reports it.
  adapter.on('error', () => {});
  const keyv = new Keyv({ store: adapter, namespace: 'history', throwOnErrors: true });
  keyv.on('error', () => {});
  try {
    await adapter.query('SELECT count(*) FROM keyv');
  } catch (error) {
    await adapter.pool.end().catch(() => {});
    throw new UserError(`Cannot use the history database on ${where}: ${maskCredentials(errorText(error))}. Check DATABASE_URL.`);
  }
  const kv = keyvPages(keyv);
  return {
    where,
    run: (channelId, mode, work) =>
      inTransaction(adapter.query, mode === 'write' ? 'BEGIN' : 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async () => {
        // Held until COMMIT or ROLLBACK, and released by the server if this process dies.
        if (mode === 'write') await adapter.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`mood-bot history:${channelId}`]);
        return work(kv);
      }),
    moodChannels: async () => moodChannelsOf((await adapter.query(MOOD_HEADS_SQL)) as Array<{ key: string }>),
    close: () => adapter.pool.end(),
  };
}

/** `postgresql (host:port)`: what a message may show of a URL. */
export function describeServer(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol.replace(/:$/, '')} server ${parsed.host || 'localhost'}`;
  } catch {
    return 'the server in DATABASE_URL (not a valid URL)';
  }
}

export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorText(error.errors[0]);
  const message = error instanceof Error ? error.message : String(error);
  // The caller ends the sentence: no doubled full stop.
  return (message || (error as { code?: string }).code || 'unknown error').replace(/\.+$/, '');
}
