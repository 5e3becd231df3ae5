import { ShardingManager, type Shard } from 'discord.js';
import type { Config } from '../config.js';
import { resolveModelPath } from '../engine/loadModel.js';
import { UserError } from '../errors.js';
import type { Logger } from '../logger.js';

/** SIGTERM reaches every shard, which gets 9 s to finish (its own limit); past this the manager SIGKILLs. */
const STOP_LIMIT_MS = 9500;
/** A shard is ready once its model is loaded and it has logged in; the first start may download the model. */
const READY_TIMEOUT_MS = 15 * 60_000;
/** Discord lets a bot IDENTIFY once per 5 s (max_concurrency 1). */
const SPAWN_DELAY_MS = 5500;

export interface ShardManagerOptions {
  /** The entry point every shard process runs (src/index.ts). */
  file: string;
  config: Config;
  logger: Logger;
}

/** The shard id of this process when the ShardingManager started it (discord.js sets SHARDS to it), else undefined. */
export function shardIdOfThisProcess(): number | undefined {
  return process.env.SHARDING_MANAGER ? Number(process.env.SHARDS) : undefined;
}

/**
 * `npm start` with SHARDS other than 1: discord.js's ShardingManager runs one process per shard,
 * each a whole bot with its own model. A shard that dies after start is started again; SIGTERM or
 * SIGINT stops every shard cleanly and resolves. A shard that dies before it is ready fails the start.
 */
export async function runShardManager({ file, config, logger }: ShardManagerOptions): Promise<void> {
  const totalShards = config.SHARDS === 'auto' ? await recommendedShardCount(config) : config.SHARDS;
  // An hf: model is fetched here, once, before any shard starts: shards started together would each
  // download the same file into the same folder at once. Each shard then loads the file by its path.
  // With INFERENCE_URL the model runs on the server: nothing is fetched or loaded here.
  const modelPath =
    config.INFERENCE_URL === undefined
      ? await resolveModelPath({
          model: config.MODEL,
          modelsDir: config.MODELS_DIR,
          onDownloadStart: () => logger.info('downloading the model once for every shard', { model: config.MODEL, modelsDir: config.MODELS_DIR }),
        })
      : undefined;
  // Shards inherit this process's loader flags (tsx), so they run the same TypeScript entry point.
  const manager = new ShardingManager(file, { totalShards, token: config.DISCORD_TOKEN, execArgv: process.execArgv, respawn: false });
  let stopping = false;
  manager.on('shardCreate', (shard: Shard) => {
    // Each shard serves its own metrics, on a port of its own.
    if (config.METRICS_PORT) (shard.env as Record<string, string>).METRICS_PORT = String(config.METRICS_PORT + shard.id);
    if (modelPath !== undefined) (shard.env as Record<string, string>).MODEL = modelPath;
    shard.on('spawn', () => logger.info('shard started', { shard: shard.id, pid: shard.process?.pid }));
    shard.on('ready', () => logger.info('shard ready', { shard: shard.id }));
    shard.on('death', (child) => {
      if (stopping || !('exitCode' in child)) return;
      const fields = { shard: shard.id, pid: child.pid, code: child.exitCode, signal: child.signalCode };
      logger.error(manager.respawn ? 'shard died; starting it again' : 'shard died', fields);
    });
  });
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      manager.respawn = false;
      logger.info('stopping every shard', { signal });
      void stopShards([...manager.shards.values()]).then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

  logger.info('starting shards', { shards: totalShards });
  try {
    await manager.spawn({ amount: totalShards, delay: SPAWN_DELAY_MS, timeout: READY_TIMEOUT_MS });
  } catch (error) {
    if (stopping) return stopped;
    stopping = true;
    await stopShards([...manager.shards.values()]);
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
    throw new UserError(`A shard did not start (${reason}); its own error is above. Every shard was stopped.`);
  }
  // From here on a shard that dies is started again.
  manager.respawn = !stopping;
  logger.info('all shards ready', { shards: totalShards });
  await stopped;
  logger.info('stopped');
}

/** SIGTERM to every shard process; whatever still runs after STOP_LIMIT_MS gets SIGKILL. */
async function stopShards(shards: Shard[]): Promise<void> {
  const running = shards.map((shard) => shard.process).filter((child) => child !== null && child.exitCode === null && child.signalCode === null);
  const exits = running.map((child) => new Promise<void>((resolve) => child!.once('exit', () => resolve())));
  for (const child of running) child!.kill('SIGTERM');
  const limit = setTimeout(() => running.forEach((child) => child!.kill('SIGKILL')), STOP_LIMIT_MS);
  await Promise.all(exits);
  clearTimeout(limit);
}

/** SHARDS=auto: the count Discord recommends (GET /gateway/bot), from DISCORD_API_URL when set. */
async function recommendedShardCount(config: Config): Promise<number> {
  const base = config.DISCORD_API_URL ?? 'https://discord.com/api';
  const response = await fetch(`${base.replace(/\/$/, '')}/v10/gateway/bot`, { headers: { Authorization: `Bot ${config.DISCORD_TOKEN}` } }).catch(
    (error: Error) => {
      throw new UserError(`Could not ask Discord for a shard count (SHARDS=auto): ${error.message}. Set SHARDS to a number or check DISCORD_API_URL.`);
    },
  );
  const body = (await response.json().catch(() => ({}))) as { shards?: unknown };
  if (!response.ok || typeof body.shards !== 'number') {
    throw new UserError(`Discord refused the shard count request (SHARDS=auto): HTTP ${response.status}. Check DISCORD_TOKEN.`);
  }
  return body.shards;
}
