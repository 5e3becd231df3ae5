import { dirname, join } from 'node:path';
import type { ChatWrapper, Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import type { CalibrationMode } from '../domain.js';
import { ChatReplies, type ReplyRequest, type ReplyResult } from './ChatReplies.js';
import { SentimentClassifier, classifierPromptKey, type SentimentResult } from './SentimentClassifier.js';
import type { Calibration } from './sentimentCalibration.js';
import { CALIBRATION_KEY_DATE, learnCalibration, loadCalibrationSet, readCachedCalibration, type LearnCalibrationOptions } from './learnCalibration.js';
import { scheduleDecodes } from './decodeScheduling.js';
import { guardOutputOrder } from './outputOrderGuard.js';
import { loadModelFile } from './loadModel.js';
import { modelChatWrapper } from './modelChatWrapper.js';

/** Read once: every prompt of this process prints this date, whatever the clock says later. */
const PROCESS_START = new Date();

/** Which correction the classifier uses now; `learning` while a learned one is fitted in the background. */
export interface CalibrationStatus {
  inUse: 'learned' | 'content-free' | 'raw';
  learning?: {
    done: number;
    total: number;
    /** Time left at the pace so far; absent before the first text is done. */
    msLeft?: number;
  };
}

/** Runs one classification of the calibration set where it cannot hold up real messages (the sentiment lane, at low priority). */
export type BackgroundScheduler = <T>(job: () => Promise<T>) => Promise<T>;

/** What the model is and where it runs, for start-up logs, /status and /healthz. */
export interface EngineStatus {
  /** The model's name: its file in process, the name or path the inference server gives. */
  model: string;
  /** `this process`, or the inference server's URL (without credentials) and kind. */
  runsOn: string;
  /** Tokens per context sequence (a server's per-slot context). */
  contextSize: number;
  /** False while the inference server cannot be reached; always true in process. */
  ready: boolean;
  /** Channels whose prompt is cached now (warm). */
  warmChannels: number;
  /** Bytes of the model in memory (in process). */
  sizeBytes?: number;
  /** Sentiment calls where a label was not among the server's top tokens and got the floor. */
  labelFloors?: number;
}

/** The message as a reply reads it; see ModelEngine.fitMessage. */
export interface FittedMessage {
  userText: string;
  truncated: boolean;
}

/**
 * What the channel sessions need from the model, wherever it runs (in process: Engine; on an
 * inference server: ServerEngine); a fake with the same shape drives unit tests.
 */
export interface ModelEngine {
  classify(text: string): Promise<SentimentResult>;
  reply(request: ReplyRequest): Promise<ReplyResult>;
  /**
   * The message as a reply would read it: cut to its token cap (a quarter of the context) and
   * marked when longer. What the history keeps of a message whose reply did not run to its end.
   */
  fitMessage(userName: string, userText: string): FittedMessage | Promise<FittedMessage>;
  /** Drops a channel's warm cache (after /reset). */
  forget(channelId: string): void;
  /** What the model is, where it runs and whether it answers now. */
  status(): EngineStatus;
  /** Which sentiment calibration is in use, and how far learning one is; absent for engines without a classifier of their own (scripted test engines). */
  readonly calibrationStatus?: CalibrationStatus;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  modelPath: string;
  /** CPU threads for decoding; set it explicitly (node-llama-cpp's default is far too many on small machines). */
  threads: number;
  /** Tokens per context sequence. */
  contextSize: number;
  warmChannels: number;
  historyMaxTokens: number;
  replyMaxTokens: number;
  systemPrompt: string;
  /** Fixed sampling seed for replies (tests). */
  seed?: number;
  /** Sampling temperature for replies; 0 is greedy (benchmarks that must generate the same replies). Default 0.7. */
  temperature?: number;
  /** How sentiment probabilities become a label (see sentimentCalibration.ts). Default `off` (raw); the bot's config defaults to `learned`. */
  sentimentCalibration?: CalibrationMode;
  /** Where learned calibrations are kept, by model hash. Default: a `calibration` folder beside the model file. */
  calibrationCacheDir?: string;
  /**
   * Reasoning (THINKING): `off` (default) renders each template's own way of switching it off; a
   * number lets the model think up to that many tokens before its reply (see ChatReplies).
   */
  thoughtTokens?: number;
  /** The date chat templates print (Llama 3.2, SmolLM3). Default: the day this process started, so warm prompts survive midnight. */
  today?: Date;
  /** A Jinja chat template to use instead of the model file's (CHAT_TEMPLATE_FILE): for files without one, or with a broken one. */
  chatTemplate?: string;
  /**
   * A learned calibration not in the cache yet: `false` (default) learns it inside `create`;
   * `true` starts on the raw probabilities (the better of raw and content-free on every model
   * `npm run eval` measured) and leaves the learning to `learnCalibrationInBackground`.
   */
  calibrationInBackground?: boolean;
  /** Told while a learned calibration is fitted (a first start with a new model). */
  onCalibrationProgress?(done: number, total: number): void;
  /** Told once when a learned fit could not be saved in its cache folder (it is used all the same). */
  onCalibrationSaveFailed?(cacheDir: string, error: Error): void;
}

/**
 * The one shared model: a single context whose sequences are the classifier's (one) and the warm
 * channels' (one each). Sequences of one context are decoded together, one decode at a time: the
 * replies running at once (PARALLEL_REPLIES, each on its channel's sequence) share each decode
 * step, and a sentiment call goes in between two of them, first (see decodeScheduling).
 */
export class Engine implements ModelEngine {
  private calibration: CalibrationStatus;
  private pendingLearning?: LearnCalibrationOptions;

  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly classifier: SentimentClassifier,
    readonly replies: ChatReplies,
    /** How prompts are rendered: the model's own chat template (see modelChatWrapper). */
    readonly chatWrapper: ChatWrapper,
    calibration: { status: CalibrationStatus; pendingLearning?: LearnCalibrationOptions },
  ) {
    this.calibration = calibration.status;
    this.pendingLearning = calibration.pendingLearning;
  }

  static async create(options: EngineOptions): Promise<Engine> {
    const { llama, model } = await loadModelFile({ modelPath: options.modelPath });
    try {
      const context = await model.createContext({
        sequences: options.warmChannels + 1,
        contextSize: options.contextSize,
        threads: options.threads,
        batchSize: Math.min(512, options.contextSize),
      });
      // Before any sequence is taken: replies step together, and a rewind gets in between two steps.
      scheduleDecodes(context);
      // Replies and a sentiment call decoded together each read their own next token.
      guardOutputOrder(context);
      const today = options.today ?? PROCESS_START;
      const { chatTemplate } = options;
      const { wrapper: chatWrapper } = modelChatWrapper(model, { thinking: options.thoughtTokens !== undefined, today, chatTemplate });
      // The classifier reads its label right after the prompt, so reasoning is always off for it.
      const classifierWrapper = options.thoughtTokens === undefined ? chatWrapper : modelChatWrapper(model, { thinking: false, today, chatTemplate }).wrapper;
      const classifier = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper: classifierWrapper });
      // The fit depends on the prompt, not on the day it was rendered.
      const promptKey = classifierPromptKey(model, modelChatWrapper(model, { thinking: false, today: CALIBRATION_KEY_DATE, chatTemplate }).wrapper);
      const calibration = await startingCalibration(classifier, promptKey, options);
      const replies = new ChatReplies({ ...options, model, context, chatWrapper });
      return new Engine(llama, model, context, classifier, replies, chatWrapper, calibration);
    } catch (error) {
      await model.dispose();
      await llama.dispose();
      throw error;
    }
  }

  /** Which calibration is in use, and how far a background learning run is. */
  get calibrationStatus(): CalibrationStatus {
    return this.calibration;
  }

  /**
   * Learns the calibration left for the background (`calibrationInBackground`), one text per
   * `schedule` call, and switches the classifier to it when done. Resolves at once when there is
   * nothing to learn; rejects with the scheduler's error (an AbortedError at shutdown).
   */
  async learnCalibrationInBackground(schedule: BackgroundScheduler): Promise<void> {
    const learning = this.pendingLearning;
    if (!learning) return;
    this.pendingLearning = undefined;
    const total = learning.set.length;
    const started = performance.now();
    let done = 0;
    this.calibration = { ...this.calibration, learning: { done, total } };
    try {
      const { calibration } = await learnCalibration({
        ...learning,
        labelProbabilities: async (text) => {
          const probabilities = await schedule(() => learning.labelProbabilities(text));
          done++;
          const msLeft = ((performance.now() - started) / done) * (total - done);
          this.calibration = { ...this.calibration, learning: { done, total, msLeft } };
          return probabilities;
        },
      });
      this.classifier.calibration = calibration;
      this.calibration = { inUse: 'learned' };
    } catch (error) {
      this.calibration = { inUse: this.calibration.inUse };
      throw error;
    }
  }

  classify(text: string): Promise<SentimentResult> {
    return this.classifier.classify(text);
  }

  reply(request: ReplyRequest): Promise<ReplyResult> {
    return this.replies.reply(request);
  }

  fitMessage(userName: string, userText: string): { userText: string; truncated: boolean } {
    const { userText: read, truncated } = this.replies.fitMessage(userName, userText);
    return { userText: read, truncated };
  }

  forget(channelId: string): void {
    this.replies.forget(channelId);
  }

  status(): EngineStatus {
    return { model: this.model.filename ?? 'model', runsOn: 'this process', contextSize: this.context.contextSize, ready: true, warmChannels: this.replies.warmCount, sizeBytes: this.model.size };
  }

  async dispose(): Promise<void> {
    this.replies.dispose();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

type CalibrationOptions = Pick<EngineOptions, 'modelPath' | 'sentimentCalibration' | 'calibrationCacheDir' | 'onCalibrationProgress' | 'onCalibrationSaveFailed'>;

/** The classifier's calibration for this model, as configured; a learned one comes from its cache when there is one. */
export async function sentimentCalibration(classifier: SentimentClassifier, options: CalibrationOptions, promptKey = classifier.promptKey): Promise<Calibration | undefined> {
  const mode = options.sentimentCalibration ?? 'off';
  if (mode === 'off') return undefined;
  if (mode === 'content-free') return classifier.contentFreeCalibration();
  return (await learnCalibration(learningOptions(classifier, promptKey, options))).calibration;
}

/** Sets the classifier's calibration for the start; a learned one missing from the cache is learned now or left for the background. */
async function startingCalibration(
  classifier: SentimentClassifier,
  promptKey: string,
  options: CalibrationOptions & Pick<EngineOptions, 'calibrationInBackground'>,
): Promise<{ status: CalibrationStatus; pendingLearning?: LearnCalibrationOptions }> {
  const mode = options.sentimentCalibration ?? 'off';
  if (mode === 'learned' && options.calibrationInBackground) {
    const learning = learningOptions(classifier, promptKey, options);
    const cached = await readCachedCalibration(learning);
    classifier.calibration = cached;
    return cached ? { status: { inUse: 'learned' } } : { status: { inUse: 'raw' }, pendingLearning: learning };
  }
  classifier.calibration = await sentimentCalibration(classifier, options, promptKey);
  return { status: { inUse: mode === 'off' ? 'raw' : mode } };
}

function learningOptions(classifier: SentimentClassifier, promptKey: string, options: CalibrationOptions): LearnCalibrationOptions {
  return {
    modelPath: options.modelPath,
    cacheDir: options.calibrationCacheDir ?? join(dirname(options.modelPath), 'calibration'),
    promptKey,
    set: loadCalibrationSet(),
    labelProbabilities: (text) => classifier.labelProbabilities(text),
    onProgress: options.onCalibrationProgress,
    onSaveFailed: options.onCalibrationSaveFailed,
  };
}
