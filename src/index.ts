import { fileURLToPath } from 'node:url';
import { DiscordAPIError } from 'discord.js';
import type { Core } from './app.js';
import { checkDiscordToken, reasonOf, TOKEN_HELP } from './discord/checkToken.js';
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

// `npm start`: config -> token check -> store -> model -> sessions -> Discord client; SIGINT/SIGTERM undo it in reverse.
runEntryPoint(async () => {
  const config = await loadConfig();
  if (!config.DISCORD_TOKEN) {
    throw new UserError(
      'DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers/applications (Bot tab -> Reset Token), ' +
        'put DISCORD_TOKEN=... in .env (see .env.example), and invite the bot to your server. ' +
        'To talk to the model without Discord, run `npm run chat`.',
    );
  }
  // The token is checked before the store, the model download and the load: a mistake shows in seconds.
  await checkDiscordToken({ token: config.DISCORD_TOKEN, apiUrl: config.DISCORD_API_URL });
  // SHARDS other than 1: this process only runs the shards (each runs this file again, as a bot).
  const shard = shardIdOfThisProcess();
  if (config.SHARDS !== 1 && shard === undefined) {
    return runShardManager({ file: fileURLToPath(import.meta.url), config, logger: createLogger(config.LOG_LEVEL, undefined, { shard: 'manager' }) });
  }
  const logger = createLogger(config.LOG_LEVEL, undefined, shard === undefined ? {} : { shard });
  // Loaded after the token check (and not by a shard manager): the model runtime and the commands' chart code take seconds to import.
  const [{ createCore }, { commands }] = await Promise.all([import('./app.js'), import('../commands/index.js')]);
  // Metrics come first: a taken port fails the start at once, and /healthz says 503 while the model loads.
  let core: Core | undefined;
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
  const bot = new DiscordBot(client, { commands, sessions, queue, config, logger, metrics, store, model: () => engine.status(), calibration: () => engine.calibrationStatus ?? { inUse: 'raw' } });

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
    if ((error as { code?: string }).code === 'TokenInvalid' || (error instanceof DiscordAPIError && error.status === 401)) {
      throw new UserError(`Discord refused DISCORD_TOKEN at login: it is wrong, was reset, or is not a bot token. ${TOKEN_HELP}`);
    }
    throw new UserError(`Could not connect to Discord (${reasonOf(error)}). Check the network connection${config.DISCORD_API_URL ? ' and DISCORD_API_URL' : ''}, then start again.`);
  }
  logger.info('bot is online', { user: client.user?.tag });
  await stopped;
  logger.info('stopped');
});
