import { dirname, join } from 'node:path';
import type { ChatWrapper, Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import type { CalibrationMode } from '../domain.js';
import { ChatReplies, type ReplyRequest, type ReplyResult } from './ChatReplies.js';
import { SentimentClassifier, type SentimentResult } from './SentimentClassifier.js';
import type { Calibration } from './sentimentCalibration.js';
import { learnCalibration, loadCalibrationSet } from './learnCalibration.js';
import { loadModelFile } from './loadModel.js';
import { modelChatWrapper } from './modelChatWrapper.js';

/** Read once: every prompt of this process prints this date, whatever the clock says later. */
const PROCESS_START = new Date();

/** What the channel sessions need from the model; a fake with the same shape drives unit tests. */
export interface ModelEngine {
  classify(text: string): Promise<SentimentResult>;
  reply(request: ReplyRequest): Promise<ReplyResult>;
  /**
   * The message as a reply would read it: cut to its token cap (a quarter of the context) and
   * marked when longer. What the history keeps of a message whose reply did not run to its end.
   */
  fitMessage(userName: string, userText: string): { userText: string; truncated: boolean };
  /** Drops a channel's warm cache (after /reset). */
  forget(channelId: string): void;
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
  /** Told while a learned calibration is fitted (a first start with a new model). */
  onCalibrationProgress?(done: number, total: number): void;
}

/**
 * The one shared model: a single context whose sequences are the classifier's (one) and the warm
 * channels' (one each). Sequences of one context are decoded together, one decode at a time: the
 * replies running at once (PARALLEL_REPLIES, each on its channel's sequence) share each decode
 * step, and a sentiment call slips in between two of them.
 */
export class Engine implements ModelEngine {
  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly classifier: SentimentClassifier,
    readonly replies: ChatReplies,
    /** How prompts are rendered: the model's own chat template (see modelChatWrapper). */
    readonly chatWrapper: ChatWrapper,
  ) {}

  static async create(options: EngineOptions): Promise<Engine> {
    const { llama, model } = await loadModelFile({ modelPath: options.modelPath });
    try {
      const context = await model.createContext({
        sequences: options.warmChannels + 1,
        contextSize: options.contextSize,
        threads: options.threads,
        batchSize: Math.min(512, options.contextSize),
      });
      const today = options.today ?? PROCESS_START;
      const { chatTemplate } = options;
      const { wrapper: chatWrapper } = modelChatWrapper(model, { thinking: options.thoughtTokens !== undefined, today, chatTemplate });
      // The classifier reads its label right after the prompt, so reasoning is always off for it.
      const classifierWrapper = options.thoughtTokens === undefined ? chatWrapper : modelChatWrapper(model, { thinking: false, today, chatTemplate }).wrapper;
      const classifier = await SentimentClassifier.create({ model, sequence: context.getSequence(), chatWrapper: classifierWrapper });
      classifier.calibration = await sentimentCalibration(classifier, options);
      const replies = new ChatReplies({ ...options, model, context, chatWrapper });
      return new Engine(llama, model, context, classifier, replies, chatWrapper);
    } catch (error) {
      await model.dispose();
      await llama.dispose();
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

  async dispose(): Promise<void> {
    this.replies.dispose();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/** The classifier's calibration for this model, as configured; a learned one comes from its cache when there is one. */
export async function sentimentCalibration(
  classifier: SentimentClassifier,
  options: Pick<EngineOptions, 'modelPath' | 'sentimentCalibration' | 'calibrationCacheDir' | 'onCalibrationProgress'>,
): Promise<Calibration | undefined> {
  const mode = options.sentimentCalibration ?? 'off';
  if (mode === 'off') return undefined;
  if (mode === 'content-free') return classifier.contentFreeCalibration();
  const { calibration } = await learnCalibration({
    modelPath: options.modelPath,
    cacheDir: options.calibrationCacheDir ?? join(dirname(options.modelPath), 'calibration'),
    promptKey: classifier.promptKey,
    set: loadCalibrationSet(),
    labelProbabilities: (text) => classifier.labelProbabilities(text),
    onProgress: options.onCalibrationProgress,
  });
  return calibration;
}
