import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Config } from './config.js';
import { Engine, type ModelEngine } from './engine/Engine.js';
import { GenerationQueue } from './engine/GenerationQueue.js';
import { resolveModelPath } from './engine/loadModel.js';
import { ServerEngine } from './engine/server/ServerEngine.js';
import { UserError } from './errors.js';
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
  // With INFERENCE_URL no weights are loaded here: no model file is looked for or downloaded.
  const modelPath =
    config.INFERENCE_URL === undefined
      ? await resolveModelPath({
          model: config.MODEL,
          modelsDir: config.MODELS_DIR,
          onDownloadStart: () => process.stderr.write(`${config.MODEL} is not in ${config.MODELS_DIR} yet; downloading it once…\n`),
          onProgress: progressBar(`Downloading ${config.MODEL}`),
        })
      : undefined;
  // The store opens first: it is quick and its errors (locked, corrupt) should not wait for the model.
  const chatTemplate = config.CHAT_TEMPLATE_FILE === undefined ? undefined : await readChatTemplate(config.CHAT_TEMPLATE_FILE);
  const store = await KeyvHistoryStore.open({ url: config.DATABASE_URL, moodRetentionDays: config.MOOD_RETENTION_DAYS });
  let engine: ModelEngine;
  let parallelReplies = config.PARALLEL_REPLIES;
  try {
    if (modelPath === undefined) {
      const server = await ServerEngine.start({
        url: config.INFERENCE_URL!,
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
      const started = performance.now();
      engine = await Engine.create({
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
        // A new model's first start classifies the shipped calibration set once (about a minute for a 0.5B model on 2 cores).
        onCalibrationProgress: (done, total) => logger.info('learning the sentiment calibration for this model', { done, total }),
      });
      logger.info('model loaded', { modelPath, threads: config.THREADS, ms: Math.round(performance.now() - started) });
    }
  } catch (error) {
    await store.dispose();
    throw error;
  }
  const queue = new GenerationQueue({ maxPending: config.QUEUE_MAX, parallelReplies });
  const sessions = new ChannelSessions({ engine, queue, store, logger, messageMaxChars: config.MESSAGE_MAX_CHARS, defaultReplyMode: config.REPLY_MODE, observer });
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
