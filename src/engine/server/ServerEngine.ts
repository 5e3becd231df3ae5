import type { CalibrationMode, HistoryTurn } from '../../domain.js';
import { ModelUnavailableError, UserError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import type { ReplyRequest, ReplyResult } from '../ChatReplies.js';
import type { CalibrationStatus, EngineStatus, FittedMessage, ModelEngine } from '../Engine.js';
import { CALIBRATION_KEY_DATE, learnCalibration, loadCalibrationSet } from '../learnCalibration.js';
import { ChatTemplate, endOfAnswerText, templateMessages, type PromptPart } from '../OwnTemplateChatWrapper.js';
import { windowTurns } from '../promptWindow.js';
import { TEMPLATE_TOKENS_PER_TURN, historyBudget, replyChatHistory, replySpeakers, userLine } from '../replyPrompt.js';
import { CONTENT_FREE_INPUTS, classifierChatHistory, pickLabel, type SentimentResult } from '../SentimentClassifier.js';
import { meanPrior, type Calibration, type ContentFreeCalibration, type LabelProbabilities } from '../sentimentCalibration.js';
import { SpeakerPrefixFilter, stripSpeakerPrefix } from '../speakerPrefix.js';
import { SENTIMENT_LABELS, type SentimentLabel } from '../../domain.js';
import { backendFor, detectApi, type Backend, type InferenceApi, type ServerInfo } from './backends.js';
import { ServerHttp } from './http.js';
import { labelProbabilitiesFromBoosted, labelProbabilitiesFromTop, labelTokensOf, type LabelTokens } from './labelScores.js';
import { SlotLru } from './SlotLru.js';

export interface ServerEngineOptions {
  /** INFERENCE_URL: the server's base URL. */
  url: string;
  /** INFERENCE_API_KEY: sent as a bearer token, never logged. */
  apiKey?: string;
  /** INFERENCE_API; undefined: detected (llama-server answers /props, Ollama /api/version, else OpenAI-compatible). */
  api?: InferenceApi;
  /** INFERENCE_MODEL: the model to ask for (Ollama, an OpenAI server with several); default the server's first. */
  model?: string;
  /** Replies in flight at once (INFERENCE_PARALLEL): llama-server slots 0..parallel-1 carry replies, the next the classifier. */
  parallel: number;
  /**
   * llama-server: the first reply slot of this process. Shards give theirs shard × parallel, so
   * shards on one server do not evict each other's warm channels. Default 0.
   */
  slotOffset?: number;
  /** INFERENCE_TIMEOUT_MS: a whole request, a reply's stream included. */
  timeoutMs: number;
  /** A reply stream that sends nothing this long is given up. Default: `timeoutMs`. */
  idleTimeoutMs?: number;
  /** Tokens per request when the server does not say (CONTEXT_SIZE). */
  contextSize: number;
  historyMaxTokens: number;
  replyMaxTokens: number;
  systemPrompt: string;
  seed?: number;
  /** CHAT_TEMPLATE_FILE's text: needed where the server hands out no Jinja template (vLLM, Ollama). */
  chatTemplate?: string;
  /** The date templates print; default the day this engine was made. */
  today?: Date;
  sentimentCalibration?: CalibrationMode;
  /** Where learned calibrations are kept (keyed by server URL and model). */
  calibrationCacheDir?: string;
  logger?: Logger;
  /** First wait before trying an unreachable server again; doubles up to 30 s. Default 1000 ms. */
  retryMs?: number;
}

/** Stands for the message while the classifier's prompt is rendered once, to split it into prefix and suffix. */
const MESSAGE_SLOT = '\u0000MESSAGE\u0000';
/** Tokens of a message the classifier reads, as in process (SentimentClassifier's maxMessageTokens). */
const MAX_MESSAGE_TOKENS = 256;
/** Characters per token where a server cannot count tokens (OpenAI-compatible, Ollama): a cautious guess. */
const CHARS_PER_TOKEN = 3;

/** What the engine knows once the server has answered. */
interface Connected {
  info: ServerInfo;
  backend: Backend;
  template: ChatTemplate;
  stop: string[];
  classifierPrefix: PromptPart[];
  classifierSuffix: PromptPart[];
  /** The classifier's prompt rendered on a fixed date, with the API: what a learned fit is cached under. */
  calibrationKey: string;
  /** Reply slots (llama-server). */
  slots: SlotLru;
  classifierSlot?: number;
  /** The labels' and label words' tokens, read boosted as in process (llama-server); absent: the top-N are read. */
  labelTokens?: LabelTokens;
}

/**
 * The model on an inference server (llama-server first, any OpenAI-compatible server, Ollama).
 * The bot renders every prompt itself from the model's Jinja chat template, exactly as in process,
 * and sends raw prompts: the sentiment label comes from the label tokens' probabilities at the
 * answer position (llama-server: the labels' and label words' tokens boosted alike, as in process;
 * elsewhere the server's top-N, a floor for a label outside it, counted), and replies
 * stream on the channel's own slot so the server's prefix cache hits. An unreachable server never
 * stops the bot: it is tried again with backoff, and calls meanwhile fail with ModelUnavailableError.
 */
export class ServerEngine implements ModelEngine {
  private readonly http: ServerHttp;
  private connected?: Connected;
  private connecting?: Promise<Connected | undefined>;
  private ready = false;
  private disposed = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly today: Date;
  private calibration: Calibration | undefined;
  private calibrationKind: CalibrationStatus['inUse'] = 'raw';
  private learning?: { done: number; total: number; startedMs: number };
  private calibrating: Promise<void> = Promise.resolve();
  private floors = 0;
  /** Resolves with what the server said at the first connection (never, while it cannot be reached). */
  readonly firstConnect: Promise<ServerInfo>;
  private resolveFirst!: (info: ServerInfo) => void;
  private readonly logger: Logger;

  constructor(private readonly options: ServerEngineOptions) {
    this.http = new ServerHttp({ url: options.url, apiKey: options.apiKey, timeoutMs: options.timeoutMs, idleTimeoutMs: options.idleTimeoutMs });
    this.today = options.today ?? new Date();
    this.logger = options.logger ?? silentLogger;
    this.firstConnect = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  /** Starts connecting (in the background, retrying); resolves after the first try, whether it reached the server or not. */
  static async start(options: ServerEngineOptions): Promise<ServerEngine> {
    const engine = new ServerEngine(options);
    await engine.connect(0);
    return engine;
  }

  /** Replies the server can run at once: llama-server's reply slots; undefined when unknown (not reached yet, or another kind). */
  replySlotCount(): number | undefined {
    const info = this.connected?.info;
    return info?.api === 'llama-server' && info.slots !== undefined ? this.replySlotIds(info).length : undefined;
  }

  /** The server's URL without credentials. */
  get shownUrl(): string {
    return this.http.shownUrl;
  }

  /** Sentiment calls whose label probabilities used a floor for some label (see labelScores.ts). */
  get labelFloors(): number {
    return this.floors;
  }

  status(): EngineStatus {
    const info = this.connected?.info;
    return {
      model: info?.model ?? this.options.model ?? 'unknown (server not reached yet)',
      runsOn: `${this.http.shownUrl} (${info?.api ?? this.options.api ?? 'inference server'})`,
      contextSize: this.contextSize(),
      ready: this.ready,
      warmChannels: this.connected?.slots.size ?? 0,
      labelFloors: this.floors,
    };
  }

  private contextSize(): number {
    return this.connected?.info.contextSize ?? this.options.contextSize;
  }

  /** One try to reach the server; on failure another is scheduled, waiting longer each time. */
  private connect(attempt: number): Promise<Connected | undefined> {
    this.connecting ??= (async () => {
      try {
        const connected = await this.handshake();
        const wasConnected = this.connected !== undefined;
        this.connected = connected;
        this.ready = true;
        const { info } = connected;
        this.logger.info(wasConnected ? 'inference server reachable again' : 'inference server found', {
          url: this.http.shownUrl,
          api: info.api,
          model: info.model,
          contextSize: this.contextSize(),
          slots: info.slots ?? 'not reported',
          replySlots: info.api === 'llama-server' ? this.replySlotIds(info).length : 'n/a',
          ...(wasConnected ? {} : { labelTokens: await this.labelTokenCounts(connected) }),
        });
        if (!wasConnected) {
          this.resolveFirst(info);
          this.calibrating = this.learnCalibration();
        }
        return connected;
      } catch (error) {
        this.ready = false;
        if (error instanceof UserError) throw error;
        const detail = error instanceof ModelUnavailableError ? error.detail : String(error);
        // One line at the first failure; the retries after it are quiet.
        if (attempt === 0) this.logger.warn('inference server not reachable; the bot answers "model server unavailable" until it is, and keeps trying', { url: this.http.shownUrl, reason: detail });
        else this.logger.debug('inference server still not reachable', { url: this.http.shownUrl, attempt, reason: detail });
        this.scheduleRetry(attempt + 1);
        return undefined;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private scheduleRetry(attempt: number): void {
    if (this.disposed || this.retryTimer) return;
    const wait = Math.min(30_000, (this.options.retryMs ?? 1000) * 2 ** Math.min(attempt - 1, 10));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect(attempt).catch((error: unknown) => this.logger.error('the inference server answered, but the bot cannot use it', { url: this.http.shownUrl, error }));
    }, wait);
    this.retryTimer.unref();
  }

  /** A call failed to reach the server: not ready until it answers again. */
  private lost(error: unknown): void {
    if (!(error instanceof ModelUnavailableError) || this.disposed) return;
    if (this.ready) this.logger.warn('inference server stopped answering; trying again in the background', { url: this.http.shownUrl, reason: error.detail });
    this.ready = false;
    this.scheduleRetry(1);
  }

  private async handshake(): Promise<Connected> {
    let api: InferenceApi;
    let backend: Backend;
    let info: ServerInfo;
    try {
      api = this.options.api ?? (await detectApi(this.http));
      backend = backendFor(api, this.http);
      info = await backend.info(this.options.model);
    } catch (error) {
      // A refused key does not get better by waiting: the operator must fix it.
      if (error instanceof ModelUnavailableError && /HTTP 40[13]\b/.test(error.detail)) {
        throw new UserError(`INFERENCE_URL=${this.http.shownUrl} refused the bot (${error.detail}). Set INFERENCE_API_KEY to a key the server accepts.`);
      }
      throw error;
    }
    const source = this.options.chatTemplate ?? info.chatTemplate;
    if (!source) {
      throw new UserError(
        `INFERENCE_URL=${this.http.shownUrl} is ${api === 'ollama' ? 'an Ollama server' : 'an OpenAI-compatible server'}, which does not hand out the model's Jinja chat template; ` +
          'the bot renders prompts itself, so set CHAT_TEMPLATE_FILE to the model\'s template (the "chat_template" of its tokenizer_config.json, saved as a .jinja file).',
      );
    }
    const tokens = { tokens: { bosString: info.bosToken, eosString: info.eosToken } };
    const template = new ChatTemplate(source, tokens, { thinking: false, today: this.today });
    const end = endOfAnswerText(template);
    const classifierMessages = templateMessages(classifierChatHistory(MESSAGE_SLOT));
    const parts = template.renderParts(classifierMessages, true);
    // The fit depends on the prompt, not on the day it was rendered.
    const keyParts = new ChatTemplate(source, tokens, { thinking: false, today: CALIBRATION_KEY_DATE }).renderParts(classifierMessages, true);
    const at = parts.findIndex((part) => !part.special && part.text === MESSAGE_SLOT);
    if (at === -1) throw new UserError('The chat template drops the message placeholder; this template is not supported.');
    const slotIds = info.api === 'llama-server' ? this.replySlotIds(info) : [0];
    const total = info.slots ?? 0;
    const classifierSlot = info.api === 'llama-server' && total > slotIds.length ? total - 1 : undefined;
    if (info.api === 'llama-server' && classifierSlot === undefined) {
      this.logger.warn('llama-server has no slot left for the sentiment classifier; a sentiment call may wait behind a reply. Start it with --parallel INFERENCE_PARALLEL + 1', { slots: total, replySlots: slotIds.length });
    }
    const { tokenize } = backend;
    const labelTokens = backend.boostedTop && tokenize ? await labelTokensOf((text) => tokenize.call(backend, text, false)) : undefined;
    return {
      info,
      backend,
      template,
      labelTokens,
      stop: end ? [end] : [],
      classifierPrefix: parts.slice(0, at),
      classifierSuffix: parts.slice(at + 1),
      calibrationKey: JSON.stringify([keyParts, api]),
      slots: this.connected?.slots ?? new SlotLru(slotIds),
      classifierSlot,
    };
  }

  /**
   * How many tokens each label's word takes under the server's tokenizer (llama-server): a label read
   * from the first token is best when each is one token of its own. Where a label's first token is a
   * start shared with another ("ne"), that token cannot be credited: said once in a warning.
   */
  private async labelTokenCounts({ backend }: Connected): Promise<Record<string, number> | 'unknown'> {
    if (!backend.tokenize) return 'unknown';
    try {
      const tokens = await Promise.all(SENTIMENT_LABELS.map((label) => backend.tokenize!(label, false)));
      const counts = Object.fromEntries(SENTIMENT_LABELS.map((label, index) => [label, tokens[index]!.length]));
      if (new Set(tokens.map((ids) => ids[0])).size < tokens.length) this.logger.warn('two sentiment labels start with the same token under this model; that token is not counted for either', { labelTokens: counts });
      return counts;
    } catch {
      return 'unknown';
    }
  }

  /**
   * llama-server's reply slots: INFERENCE_PARALLEL of them from `slotOffset`, below the last slot (the
   * classifier's). A server with too few slots for the offset gets this process's replies on its first slots.
   */
  private replySlotIds(info: ServerInfo): number[] {
    const total = info.slots ?? 1;
    const usable = total > 1 ? total - 1 : 1;
    const offset = (this.options.slotOffset ?? 0) + this.options.parallel <= usable ? (this.options.slotOffset ?? 0) : 0;
    const count = Math.max(1, Math.min(this.options.parallel, usable));
    return Array.from({ length: count }, (_, index) => offset + index);
  }

  /** The connection, or ModelUnavailableError when the server was never reached. A lost server is still tried: it may be back. */
  private async use(): Promise<Connected> {
    if (this.disposed) throw new ModelUnavailableError('the bot is shutting down');
    const connected = this.connected ?? (await this.connect(1));
    if (!connected) throw new ModelUnavailableError(`${this.http.shownUrl} could not be reached`);
    return connected;
  }

  async classify(text: string): Promise<SentimentResult> {
    return pickLabel(await this.labelProbabilities(text), this.calibration);
  }

  /** The result, and the label probabilities before calibration (for the eval). */
  async classifyWithScores(text: string): Promise<{ result: SentimentResult; raw: Record<SentimentLabel, number> }> {
    const raw = await this.labelProbabilities(text);
    return { result: pickLabel(raw, this.calibration), raw };
  }

  /** The calibration in use: none until a learned one is ready (raw probabilities meanwhile). */
  get calibrationInUse(): Calibration | undefined {
    return this.calibration;
  }

  /** Resolves once the calibration is learned (or read from its cache) after the first connection; at once when there is none to learn. */
  async calibrationReady(): Promise<void> {
    await this.firstConnect;
    await this.calibrating;
  }

  /** The labels' prior on content-free inputs (Zhao et al. 2021), through the server. */
  async contentFreeCalibration(): Promise<ContentFreeCalibration> {
    const probabilities = [];
    for (const text of CONTENT_FREE_INPUTS) probabilities.push(await this.labelProbabilities(text));
    return meanPrior(probabilities);
  }

  /**
   * The three labels' probabilities at the answer position. On llama-server, as in process: the labels'
   * and label words' tokens boosted alike, so all come back (with the words' shares). Elsewhere, from
   * the server's top tokens there (a floor for a label outside them, counted).
   */
  async labelProbabilities(text: string): Promise<LabelProbabilities> {
    const connected = await this.use();
    try {
      const message = await this.messagePart(connected, text);
      const prompt = await connected.backend.encode([...connected.classifierPrefix, message, ...connected.classifierSuffix]);
      const probabilities = await this.readLabels(connected, prompt);
      this.ready = true;
      return probabilities;
    } catch (error) {
      this.lost(error);
      throw error;
    }
  }

  /** The labels at the answer position of a rendered classifier prompt: boosted where the server can, else from its top-N. */
  private async readLabels({ backend, labelTokens, classifierSlot }: Connected, prompt: Array<string | number> | string): Promise<LabelProbabilities> {
    if (labelTokens && backend.boostedTop) return labelProbabilitiesFromBoosted(await backend.boostedTop(prompt, labelTokens.tokens, classifierSlot), labelTokens);
    const { probabilities, floored } = labelProbabilitiesFromTop(await backend.top(prompt, backend.topCount, classifierSlot));
    if (floored.length > 0) this.floors++;
    return probabilities;
  }

  /** The message as the classifier reads it: trimmed, cut to 256 tokens (the start carries the mood). */
  private async messagePart({ backend }: Connected, text: string): Promise<PromptPart> {
    const trimmed = text.trim() || '(empty message)';
    if (backend.tokenize && backend.detokenize) {
      const ids = await backend.tokenize(trimmed, false);
      if (ids.length <= MAX_MESSAGE_TOKENS) return { text: trimmed, special: false };
      return { text: await backend.detokenize(ids.slice(0, MAX_MESSAGE_TOKENS)), special: false };
    }
    return { text: trimmed.slice(0, MAX_MESSAGE_TOKENS * CHARS_PER_TOKEN), special: false };
  }

  /** Tokens of a text: the server's count where it has a tokenizer, else an estimate by length. */
  private async countTokens({ backend }: Connected, text: string): Promise<number> {
    if (backend.tokenize) return (await backend.tokenize(text, false)).length;
    return Math.ceil(text.length / CHARS_PER_TOKEN);
  }

  async fitMessage(userName: string, userText: string): Promise<FittedMessage> {
    const connected = this.connected;
    // The server never reached: the message is kept whole (it is cut when a reply reads it).
    if (!connected) return { userText, truncated: false };
    try {
      const { userText: read, truncated } = await this.fit(connected, userName, userText);
      return { userText: read, truncated };
    } catch {
      return { userText, truncated: false };
    }
  }

  /** As ChatReplies.fitMessage: a message may take a quarter of the context; longer ones are cut at a token and marked. */
  private async fit(connected: Connected, userName: string, userText: string): Promise<{ userText: string; truncated: boolean; tokenCount: number }> {
    const max = Math.floor(this.contextSize() / 4);
    const tokenCount = await this.countTokens(connected, userLine(userName, userText));
    if (tokenCount <= max) return { userText, truncated: false, tokenCount };
    const room = Math.max(0, max - (await this.countTokens(connected, userLine(userName, ''))));
    const { backend } = connected;
    const head = backend.tokenize && backend.detokenize ? await backend.detokenize((await backend.tokenize(userText, false)).slice(0, room)) : userText.slice(0, room * CHARS_PER_TOKEN);
    const cut = `${head} …(message cut)`;
    return { userText: cut, truncated: true, tokenCount: await this.countTokens(connected, userLine(userName, cut)) };
  }

  /** The prompt a reply to this request on a cold channel sends, as the server gets it (tests compare it with the in-process render). */
  async replyPrompt(request: Pick<ReplyRequest, 'turns' | 'userName' | 'userText' | 'systemPrompt'>): Promise<Array<string | number> | string> {
    return (await this.buildReply(await this.use(), request, 0)).prompt;
  }

  /** The prompt a sentiment call for `text` sends, as the server gets it. */
  async sentimentPrompt(text: string): Promise<Array<string | number> | string> {
    const connected = await this.use();
    return connected.backend.encode([...connected.classifierPrefix, await this.messagePart(connected, text), ...connected.classifierSuffix]);
  }

  /** The reply's prompt, with the history windowed as in process (promptWindow.ts) from the turn at `from`. */
  private async buildReply(connected: Connected, { turns, userName, userText, systemPrompt = this.options.systemPrompt }: Pick<ReplyRequest, 'turns' | 'userName' | 'userText' | 'systemPrompt'>, from: number) {
    const message = await this.fit(connected, userName, userText);
    const fixedTokens = message.tokenCount + (await this.countTokens(connected, systemPrompt)) + TEMPLATE_TOKENS_PER_TURN;
    const budget = historyBudget({ contextSize: this.contextSize(), replyMaxTokens: this.options.replyMaxTokens, fixedTokens, historyMaxTokens: this.options.historyMaxTokens });
    const counts = new Map<HistoryTurn, number>();
    await Promise.all(turns.map(async (turn) => counts.set(turn, await this.turnTokens(connected, turn))));
    const window = windowTurns(turns, from, budget, (turn) => counts.get(turn)!);
    const history = replyChatHistory(systemPrompt, window.turns, userName, message.userText);
    const prompt = await connected.backend.encode(connected.template.renderParts(templateMessages(history), true));
    return { prompt, window, message };
  }

  async reply({ channelId, turns, userName, userText, botName, otherNames = [], systemPrompt, signal, onText }: ReplyRequest): Promise<ReplyResult> {
    const connected = await this.use();
    const { slot, cold } = connected.slots.take(channelId);
    try {
      const from = !cold && slot.windowFirst ? Math.max(0, turns.indexOf(slot.windowFirst)) : 0;
      const { prompt, window, message } = await this.buildReply(connected, { turns, userName, userText, systemPrompt }, from);
      slot.windowFirst = turns[window.start];
      const speakers = replySpeakers({ userName, window: window.turns, otherNames, botName });
      const filter = new SpeakerPrefixFilter(speakers);
      let response = '';
      let end: { evaluatedTokens?: number; generatedTokens?: number; endedByModel: boolean } | undefined;
      try {
        const events = connected.backend.stream(
          prompt,
          { maxTokens: this.options.replyMaxTokens, temperature: 0.7, topP: 0.9, seed: this.options.seed, stop: connected.stop, slot: connected.info.api === 'llama-server' ? slot.id : undefined },
          signal,
        );
        for await (const event of events) {
          if ('text' in event) {
            response += event.text;
            const shown = filter.push(event.text);
            if (shown) onText?.(shown);
          } else end = event.end;
        }
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        this.lost(error);
        throw error;
      } finally {
        const rest = filter.end();
        if (rest) onText?.(rest);
      }
      this.ready = true;
      const text = stripSpeakerPrefix(response, speakers).trim();
      return {
        text,
        evaluatedTokens: end?.evaluatedTokens ?? 0,
        generatedTokens: end?.generatedTokens,
        turnsInPrompt: window.turns.length,
        messageTruncated: message.truncated,
        userText: message.userText,
        endedByModel: end?.endedByModel ?? false,
      };
    } finally {
      connected.slots.done(slot);
    }
  }

  private async turnTokens(connected: Connected, turn: HistoryTurn): Promise<number> {
    let count = (await this.countTokens(connected, userLine(turn.userName, turn.userText))) + TEMPLATE_TOKENS_PER_TURN;
    if (turn.reply !== undefined) count += (await this.countTokens(connected, turn.reply)) + TEMPLATE_TOKENS_PER_TURN;
    return count;
  }

  forget(channelId: string): void {
    this.connected?.slots.forget(channelId);
  }

  /** Which calibration classify() uses now, and how far learning one is (told every 25 texts). */
  get calibrationStatus(): CalibrationStatus {
    const { learning } = this;
    if (!learning || this.calibrationKind === 'learned') return { inUse: this.calibrationKind };
    const msLeft = learning.done > 0 ? ((performance.now() - learning.startedMs) / learning.done) * (learning.total - learning.done) : undefined;
    return { inUse: this.calibrationKind, learning: { done: learning.done, total: learning.total, ...(msLeft === undefined ? {} : { msLeft }) } };
  }

  /** Learned calibration per server and model, in the background once the server answers; classify() uses raw probabilities until it is ready. */
  private async learnCalibration(): Promise<void> {
    const mode = this.options.sentimentCalibration ?? 'off';
    const connected = this.connected;
    if (mode === 'off' || !connected) return;
    try {
      if (mode === 'content-free') {
        this.calibration = await this.contentFreeCalibration();
        this.calibrationKind = 'content-free';
        return;
      }
      const promptKey = connected.calibrationKey;
      const set = loadCalibrationSet();
      this.learning = { done: 0, total: set.length, startedMs: performance.now() };
      const { calibration, cached } = await learnCalibration({
        identity: `${this.http.shownUrl} ${connected.info.model}`,
        cacheDir: this.options.calibrationCacheDir ?? 'data/models/calibration',
        promptKey,
        set,
        // From a server's top-N only the labels' probabilities can be read, not the label words'.
        features: connected.labelTokens ? 'words' : 'labels',
        labelProbabilities: (text) => this.labelProbabilities(text),
        onProgress: (done, total) => {
          this.learning = { done, total, startedMs: this.learning?.startedMs ?? performance.now() };
          this.logger.info('learning the sentiment calibration for this server and model', { done, total });
        },
      });
      this.calibration = calibration;
      this.calibrationKind = 'learned';
      this.logger.info('sentiment calibration ready', { cached, model: connected.info.model });
    } catch (error) {
      this.logger.warn('learning the sentiment calibration failed; raw label probabilities are used', { error });
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.retryTimer);
  }
}
