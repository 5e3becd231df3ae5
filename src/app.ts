import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Config } from './config.js';
import { Engine, type EngineOptions, type ModelEngine } from './engine/Engine.js';
import { GenerationQueue } from './engine/GenerationQueue.js';
import { resolveModelPath } from './engine/loadModel.js';
import { ServerEngine } from './engine/server/ServerEngine.js';
import { AbortedError, UserError } from './errors.js';
import { KeyvHistoryStore } from './history/KeyvHistoryStore.js';
import type { Logger } from './logger.js';
import { ChannelSessions } from './sessions/ChannelSessions.js';
import type { SessionObserver } from './sessions/SessionObserver.js';

/** Everything below the front end: model, queue, store and sessions, built from the config. */
export interface Core {
  /** In process (Engine) or on an inference server (ServerEngine): the rest never learns which. */
  engine: ModelEngine;
  store: KeyvHistoryStore;
  queue: GenerationQueue;
  sessions: ChannelSessions;
  /** Stops the sessions (aborting a running generation), then frees store and model. */
  dispose(): Promise<void>;
}

/** INFERENCE_PARALLEL when neither it nor the server's slots say. */
const DEFAULT_INFERENCE_PARALLEL = 4;

/** `observer`: told about timings and store failures (the metrics). `shard`: this process's shard id, when sharded. */
export async function createCore(config: Config, logger: Logger, observer?: SessionObserver, shard?: number): Promise<Core> {
  // The template file and the store come first: they take a moment, and their mistakes (a wrong
  // path, a locked or unreachable database) must not wait behind a model download.
  const chatTemplate = config.CHAT_TEMPLATE_FILE === undefined ? undefined : await readChatTemplate(config.CHAT_TEMPLATE_FILE);
  logger.info('opening the history store');
  const store = await KeyvHistoryStore.open({ url: config.DATABASE_URL, moodRetentionDays: config.MOOD_RETENTION_DAYS, logger });
  let engine: ModelEngine;
  let parallelReplies = config.PARALLEL_REPLIES;
  try {
    if (config.INFERENCE_URL !== undefined) {
      // With INFERENCE_URL no weights are loaded here: no model file is looked for or downloaded.
      const server = await ServerEngine.start({
        url: config.INFERENCE_URL,
        apiKey: config.INFERENCE_API_KEY,
        api: config.INFERENCE_API,
        model: config.INFERENCE_MODEL,
        parallel: config.INFERENCE_PARALLEL ?? DEFAULT_INFERENCE_PARALLEL,
        slotOffset: shard === undefined || config.INFERENCE_PARALLEL === undefined ? 0 : shard * config.INFERENCE_PARALLEL,
        timeoutMs: config.INFERENCE_TIMEOUT_MS,
        idleTimeoutMs: config.INFERENCE_IDLE_TIMEOUT_MS,
        contextSize: config.CONTEXT_SIZE,
        historyMaxTokens: config.HISTORY_MAX_TOKENS,
        replyMaxTokens: config.REPLY_MAX_TOKENS,
        systemPrompt: config.SYSTEM_PROMPT,
        chatTemplate,
        sentimentCalibration: config.SENTIMENT_CALIBRATION,
        calibrationCacheDir: join(config.MODELS_DIR, 'calibration'),
        logger,
      });
      engine = server;
      parallelReplies = config.INFERENCE_PARALLEL ?? server.replySlotCount() ?? DEFAULT_INFERENCE_PARALLEL;
    } else {
      engine = await loadLocalEngine(config, logger, chatTemplate);
    }
  } catch (error) {
    await store.dispose();
    throw error;
  }
  const queue = new GenerationQueue({ maxPending: config.QUEUE_MAX, parallelReplies });
  const sessions = new ChannelSessions({ engine, queue, store, logger, messageMaxChars: config.MESSAGE_MAX_CHARS, defaultReplyMode: config.REPLY_MODE, observer });
  if (engine instanceof Engine) learnCalibrationInBackground(engine, queue, logger);
  return {
    engine,
    store,
    queue,
    sessions,
    async dispose() {
      await sessions.close();
      await store.dispose();
      await engine.dispose();
    },
  };
}

/** The model in this process: downloaded once when MODEL is an hf: URI, then loaded; the calibration is left for the background. */
async function loadLocalEngine(config: Config, logger: Logger, chatTemplate: string | undefined): Promise<Engine> {
  const modelPath = await resolveModelPath({
    model: config.MODEL,
    modelsDir: config.MODELS_DIR,
    onDownloadStart: () => process.stderr.write(`${config.MODEL} is not in ${config.MODELS_DIR} yet; downloading it once…\n`),
    onProgress: progressBar(`Downloading ${config.MODEL}`),
  });
  logger.info('loading the model', { modelPath });
  const started = performance.now();
  let engine: Engine | undefined;
  engine = await Engine.create({
    ...engineOptions(config, modelPath, chatTemplate),
    // A new model's first start classifies the shipped calibration set once, in the background.
    calibrationInBackground: true,
    onCalibrationProgress: (done, total) => {
      const msLeft = engine?.calibrationStatus.learning?.msLeft;
      logger.info('learning the sentiment calibration for this model', { done, total, ...(msLeft === undefined ? {} : { secondsLeft: Math.round(msLeft / 1000) }) });
    },
    onCalibrationSaveFailed: (cacheDir, error) =>
      logger.warn('could not save the learned sentiment calibration; using it now, and it is learned again at the next start. Make the folder writable to keep it', {
        folder: cacheDir,
        reason: (error as NodeJS.ErrnoException).code ?? error.message,
      }),
  });
  logger.info('model loaded', { modelPath, threads: config.THREADS, ms: Math.round(performance.now() - started), sentimentCalibration: engine.calibrationStatus.inUse });
  return engine;
}

/** The in-process engine's options as the config sets them (the bot's, and the benches' that measure it). */
export function engineOptions(config: Config, modelPath: string, chatTemplate?: string): EngineOptions {
  return {
    modelPath,
    threads: config.THREADS,
    contextSize: config.CONTEXT_SIZE,
    warmChannels: config.WARM_CHANNELS,
    historyMaxTokens: config.HISTORY_MAX_TOKENS,
    replyMaxTokens: config.REPLY_MAX_TOKENS,
    thoughtTokens: config.THINKING === 'off' ? undefined : config.THINKING,
    chatTemplate,
    systemPrompt: config.SYSTEM_PROMPT,
    sentimentCalibration: config.SENTIMENT_CALIBRATION,
    calibrationCacheDir: join(config.MODELS_DIR, 'calibration'),
  };
}

/**
 * Learns a calibration the cache did not have, one text at a time in the sentiment lane at the
 * lowest priority: a real message's sentiment waits behind at most one calibration text.
 */
function learnCalibrationInBackground(engine: Engine, queue: GenerationQueue, logger: Logger): void {
  const started = performance.now();
  const running = engine.learnCalibrationInBackground((job) => queue.runWhenIdle('sentiment', job));
  // Set at once when there is something to learn; absent when the fit came from the cache.
  const { learning } = engine.calibrationStatus;
  if (learning) logger.info('answering now with the raw sentiment probabilities; learning the calibration for this model in the background', { total: learning.total });
  running.then(
    () => {
      if (learning && engine.calibrationStatus.inUse === 'learned') logger.info('sentiment calibration learned; in use from now on', { ms: Math.round(performance.now() - started) });
    },
    (error: unknown) => {
      if (error instanceof AbortedError) return;
      logger.error('learning the sentiment calibration failed; staying with the raw probabilities', { error });
    },
  );
}

/** CHAT_TEMPLATE_FILE's text: a Jinja chat template, as in a model's tokenizer_config.json (unescaped). */
async function readChatTemplate(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`CHAT_TEMPLATE_FILE=${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Point it at a Jinja chat template file, or leave it empty to use the model file's template.`);
  }
  if (!text.trim()) throw new UserError(`CHAT_TEMPLATE_FILE=${path} is empty. Point it at a Jinja chat template file, or leave it empty to use the model file's template.`);
  return text;
}

/** A one-line progress bar on stderr, redrawn in place. */
function progressBar(label: string): (status: { downloadedSize: number; totalSize: number }) => void {
  let lastDrawn = 0;
  return ({ downloadedSize, totalSize }) => {
    const now = Date.now();
    if (now - lastDrawn < 200 && downloadedSize < totalSize) return;
    lastDrawn = now;
    const share = totalSize > 0 ? downloadedSize / totalSize : 0;
    const width = 30;
    const filled = Math.round(share * width);
    const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0)}% ${mb(downloadedSize)}/${mb(totalSize)} MB`);
    if (downloadedSize >= totalSize) process.stderr.write('\n');
  };
}
