import { fileURLToPath } from 'node:url';
import { commands } from '../commands/index.js';
import { createCore } from './app.js';
import { loadConfig } from './config.js';
import { DiscordBot, createDiscordClient } from './discord/DiscordBot.js';
import { gatewayConnected } from './discord/discordClient.js';
import { runShardManager, shardIdOfThisProcess } from './discord/shardManager.js';
import { UserError } from './errors.js';
import { createLogger } from './logger.js';
import { BotMetrics } from './metrics/BotMetrics.js';
import { startMetricsServer } from './metrics/metricsServer.js';
import { runEntryPoint } from './runEntryPoint.js';

const SHUTDOWN_LIMIT_MS = 9000;

// `npm start`: config -> model -> store -> sessions -> Discord client; SIGINT/SIGTERM undo it in reverse.
runEntryPoint(async () => {
  const config = await loadConfig();
  if (!config.DISCORD_TOKEN) {
    throw new UserError(
      'DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers/applications (Bot tab -> Reset Token), ' +
        'put DISCORD_TOKEN=... in .env (see .env.example), and invite the bot to your server. ' +
        'To talk to the model without Discord, run `npm run chat`.',
    );
  }
  // SHARDS other than 1: this process only runs the shards (each runs this file again, as a bot).
  const shard = shardIdOfThisProcess();
  if (config.SHARDS !== 1 && shard === undefined) {
    return runShardManager({ file: fileURLToPath(import.meta.url), config, logger: createLogger(config.LOG_LEVEL, undefined, { shard: 'manager' }) });
  }
  const logger = createLogger(config.LOG_LEVEL, undefined, shard === undefined ? {} : { shard });
  // Metrics come first: a taken port fails the start at once, and /healthz says 503 while the model loads.
  let core: Awaited<ReturnType<typeof createCore>> | undefined;
  const client = createDiscordClient(config);
  const metrics = new BotMetrics({ queueDepth: (lane) => core?.queue.pending(lane) ?? 0, runningReplies: () => core?.queue.running('reply') ?? 0, warmChannels: () => core?.engine.status().warmChannels ?? 0 });
  const metricsServer =
    config.METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer({ metrics, port: config.METRICS_PORT, host: config.METRICS_HOST, healthy: () => core !== undefined && core.engine.status().ready && gatewayConnected(client), logger });
  try {
    core = await createCore(config, logger, metrics, shard);
  } catch (error) {
    await metricsServer?.dispose();
    throw error;
  }
  const running = core;
  const { sessions, queue, store, engine } = running;
  const disposeAll = async () => {
    await running.dispose();
    await metricsServer?.dispose();
  };
  const bot = new DiscordBot(client, { commands, sessions, queue, config, logger, metrics, store, model: () => engine.status() });

  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info('shutting down', { signal });
      // Past the limit, exit anyway: a hung REST call must not keep the process alive.
      setTimeout(() => {
        logger.error('shutdown took too long; exiting now');
        process.exit(0);
      }, SHUTDOWN_LIMIT_MS).unref();
      void bot
        .stop()
        .then(disposeAll)
        .catch((error: unknown) => logger.error('error while shutting down', { error }))
        .finally(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // A shard whose manager is gone (killed) stops too, instead of answering on alone.
    if (shard !== undefined) process.once('disconnect', () => stop('manager gone'));
  });

  try {
    await bot.start(config.DISCORD_TOKEN);
  } catch (error) {
    await disposeAll();
    const reason = error instanceof Error ? error.message : String(error);
    throw new UserError(`Could not log in to Discord: ${reason}. Check DISCORD_TOKEN (and DISCORD_API_URL if set).`);
  }
  logger.info('bot is online', { user: client.user?.tag });
  await stopped;
  logger.info('stopped');
});
