import { LlamaText, type ChatHistoryItem, type ChatWrapper, type LlamaChatResponseChunk, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import type { HistoryTurn } from '../domain.js';
import { textBefore } from './OwnTemplateChatWrapper.js';
import { windowTurns } from './promptWindow.js';
import { TEMPLATE_TOKENS_PER_TURN, historyBudget, replyChatHistory, replySpeakers, userLine } from './replyPrompt.js';
import { SpeakerPrefixFilter, stripSpeakerPrefix } from './speakerPrefix.js';
import { WarmSlots, type WarmSlot } from './WarmSlots.js';

export interface ChatRepliesOptions {
  model: LlamaModel;
  /** The shared context; this pool takes `warmChannels` sequences from it. */
  context: LlamaContext;
  chatWrapper: ChatWrapper;
  systemPrompt: string;
  /** Token budget for history in the prompt; when exceeded, history is cut to half of it at once. */
  historyMaxTokens: number;
  replyMaxTokens: number;
  /** Reasoning on: the model may think up to this many tokens, beyond `replyMaxTokens`, before its reply. Absent: off (a thought it starts anyway is closed at once). */
  thoughtTokens?: number;
  /** Channels whose KV cache stays warm (one context sequence each). */
  warmChannels: number;
  /** Sampling temperature for replies. Default 0.7. */
  temperature?: number;
  /** Fixed sampling seed (tests); default random per reply. */
  seed?: number;
}

export interface ReplyRequest {
  channelId: string;
  /** The channel's history, oldest first; only whole turns. */
  turns: readonly HistoryTurn[];
  userName: string;
  userText: string;
  /** The bot's own name as users see it: a reply starting "<botName>:" loses that prefix. */
  botName?: string;
  /** Names of people seen recently in the channel's server, not in this prompt: a reply starting "<name>:" loses that prefix too. */
  otherNames?: readonly string[];
  /** The channel's own system prompt (`/persona`); default the `systemPrompt` option. */
  systemPrompt?: string;
  signal?: AbortSignal;
  /** Called with each new piece of reply text as it is generated. */
  onText?: (delta: string) => void;
  /** Called once when the model starts a (hidden) thought: nothing streams until it ends. */
  onThinking?: () => void;
}

export interface ReplyResult {
  /** The reply, trimmed; may be empty (a model can always return blank text). */
  text: string;
  /** Input tokens evaluated for this reply: only the new ones on a warm channel. */
  evaluatedTokens: number;
  /** How many of the history's turns were in the prompt. */
  turnsInPrompt: number;
  /** Whether the message was cut to fit the context. */
  messageTruncated: boolean;
  /** The message as the model read it (cut to its token cap and marked, when it was longer); absent: as given. */
  userText?: string;
  /** Tokens the model generated for this reply. */
  generatedTokens?: number;
  /** The model ended the reply itself (end-of-turn token), rather than running into REPLY_MAX_TOKENS. */
  endedByModel?: boolean;
}

/** Stands for the next message when a warm sequence is settled after a reply. */
const NEXT_MESSAGE = '\u0001next message\u0001';

/**
 * History-aware replies for many channels over one context: a small LRU pool of sequences, one
 * chat per warm channel, so a warm channel's next reply evaluates only the new tokens. A cold
 * channel takes the least recently used sequence and is rebuilt from the history it is given.
 */
export class ChatReplies {
  private readonly slots: WarmSlots;
  private readonly turnTokens = new WeakMap<HistoryTurn, number>();
  /** Tokens of each system prompt seen (the default and the channels' personas). */
  private readonly systemTokens = new Map<string, number>();
  private readonly messageMaxTokens: number;
  /** What a thought may take of a reply's output tokens: its budget and the text that opens and closes it (`<think>\n`, `\n</think>`). */
  private readonly thoughtRoom: number;

  constructor(private readonly options: ChatRepliesOptions) {
    this.slots = new WarmSlots(options.context, options.warmChannels, options.chatWrapper);
    // A message may take a quarter of the context; the history budget shrinks to make room for it.
    this.messageMaxTokens = Math.floor(options.context.contextSize / 4);
    const thought = options.chatWrapper.settings.segments?.thought;
    const tokensOf = (text: unknown): number => (typeof text === 'string' || LlamaText.isLlamaText(text) ? LlamaText(text).tokenize(options.model.tokenizer).length : 0);
    this.thoughtRoom = options.thoughtTokens ? options.thoughtTokens + tokensOf(thought?.prefix) + tokensOf(thought?.suffix) : 0;
  }

  /** Channels whose sequence is warm now. */
  get warmCount(): number {
    return this.slots.size;
  }

  isWarm(channelId: string): boolean {
    return this.slots.get(channelId) !== undefined;
  }

  /** The text a warm channel's sequence holds (its prompt and last reply); undefined when cold. */
  contextText(channelId: string): string | undefined {
    const slot = this.slots.get(channelId);
    return slot && this.options.model.detokenize(slot.chat.sequence.contextTokens, true);
  }

  /** Drops a channel's warm state (after /reset); a reply running on it finishes first. */
  forget(channelId: string): void {
    this.slots.forget(channelId);
  }

  async reply({ channelId, turns, userName, userText, botName, otherNames = [], systemPrompt = this.options.systemPrompt, signal, onText, onThinking }: ReplyRequest): Promise<ReplyResult> {
    const { slot, cold } = this.slots.take(channelId);
    try {
      // A cold channel starts from an empty sequence: nothing of the previous channel stays behind.
      if (cold) await slot.chat.sequence.clearHistory();
      const message = this.fitMessage(userName, userText);
      const window = this.promptWindow(slot, turns, message.tokenCount + this.systemTokensOf(systemPrompt));
      // Mentions mode leaves unanswered messages as user turns of their own; templates such as
      // Gemma's and Mistral's refuse two user turns in a row, so every wrapper gets them merged.
      const prompt = replyChatHistory(systemPrompt, window, userName, message.userText);
      const speakers = replySpeakers({ userName, window, otherNames, botName });
      const prefixFilter = new SpeakerPrefixFilter(speakers);
      const meter = slot.chat.sequence.tokenMeter;
      const before = meter.usedInputTokens;
      const outputBefore = meter.usedOutputTokens;
      const thoughtTokens = this.options.thoughtTokens ?? 0;
      const reasoning = this.thoughtRoom > 0;
      // With THINKING on the output cap has the thought's room on top of the reply's, so the reply's
      // own tokens are counted and cut at REPLY_MAX_TOKENS: a model that does not think gets no more.
      const replyCap = new AbortController();
      let replyTokens = 0;
      let thinking = false;
      const onResponseChunk = (chunk: LlamaChatResponseChunk): void => {
        if (chunk.type !== 'segment') {
          replyTokens += chunk.tokens.length;
          if (replyTokens >= this.options.replyMaxTokens) replyCap.abort();
        } else if (chunk.segmentType === 'thought' && !thinking) {
          thinking = true;
          onThinking?.();
        }
      };
      let response: string;
      let stopReason: string | undefined;
      try {
        ({ response, metadata: { stopReason } } = await slot.chat.generateResponse(prompt, {
          // A thought has its own budget on top of the reply's, so a long one never leaves the reply
          // empty. With THINKING off the budget is 0: a model that thinks anyway (a template with no
          // way to switch reasoning off) has its thought closed at once and answers.
          maxTokens: this.options.replyMaxTokens + this.thoughtRoom,
          budgets: { thoughtTokens },
          temperature: this.options.temperature ?? 0.7,
          topP: 0.9,
          seed: this.options.seed,
          // The reply cap stops generation and keeps what was said; the caller's abort still throws (below).
          signal: reasoning ? (signal ? AbortSignal.any([signal, replyCap.signal]) : replyCap.signal) : signal,
          stopOnAbortSignal: reasoning,
          onTextChunk: onText && ((chunk) => emit(onText, prefixFilter.push(chunk))),
          onResponseChunk: reasoning ? onResponseChunk : undefined,
          evaluationPriority: 3,
        }));
        if (stopReason === 'abort' && signal?.aborted) throw signal.reason;
      } finally {
        if (onText) emit(onText, prefixFilter.end());
      }
      const text = stripSpeakerPrefix(response, speakers).trim();
      const evaluatedTokens = meter.usedInputTokens - before;
      if (!slot.forgotten) await this.settle(slot, [...prompt, { type: 'model', response: [text] }]);
      const generatedTokens = meter.usedOutputTokens - outputBefore;
      return { text, evaluatedTokens, generatedTokens, turnsInPrompt: window.length, messageTruncated: message.truncated, userText: message.userText, endedByModel: stopReason === 'eogToken' || stopReason === 'stopGenerationTrigger' };
    } finally {
      this.slots.done(slot);
    }
  }

  /**
   * Brings the sequence to the exact tokens the next prompt will start with. Sampled tokens are not
   * always the tokenizer's own spelling of the reply text, so without this the next reply would
   * re-evaluate the whole previous reply; doing it now keeps that work off the next reply's start.
   */
  private async settle(slot: WarmSlot, history: ChatHistoryItem[]): Promise<void> {
    const { chatWrapper } = this.options;
    // Up to where the next message will stand: templates print an answer differently once a user
    // turn follows it (Qwen3 and SmolLM3 drop its think block, Mistral moves the persona to the new
    // last user message), and the next prompt is what the sequence must hold.
    const next = chatWrapper.generateContextState({ chatHistory: [...history, { type: 'user', text: NEXT_MESSAGE }, { type: 'model', response: [] }] }).contextText;
    const contextText = textBefore(next, NEXT_MESSAGE) ?? chatWrapper.generateContextState({ chatHistory: history }).contextText;
    const tokens = contextText.tokenize(this.options.model.tokenizer);
    const sequence = slot.chat.sequence;
    const { firstDifferentIndex } = sequence.compareContextTokens(tokens);
    if (firstDifferentIndex < sequence.nextTokenIndex) {
      await sequence.eraseContextTokenRanges([{ start: firstDifferentIndex, end: sequence.nextTokenIndex }]);
    }
    if (firstDifferentIndex < tokens.length) await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(firstDifferentIndex));
  }

  dispose(): void {
    this.slots.dispose();
  }

  private systemTokensOf(systemPrompt: string): number {
    let count = this.systemTokens.get(systemPrompt);
    if (count === undefined) {
      count = this.options.model.tokenize(systemPrompt).length + TEMPLATE_TOKENS_PER_TURN;
      this.systemTokens.set(systemPrompt, count);
    }
    return count;
  }

  /** `fixedTokens`: the new message and the system prompt, which the history must leave room for. */
  private promptWindow(slot: WarmSlot, turns: readonly HistoryTurn[], fixedTokens: number): readonly HistoryTurn[] {
    const { replyMaxTokens, historyMaxTokens } = this.options;
    const budget = historyBudget({ contextSize: this.options.context.contextSize, replyMaxTokens, thoughtRoom: this.thoughtRoom, fixedTokens, historyMaxTokens });
    const from = slot.windowFirst ? Math.max(0, turns.indexOf(slot.windowFirst)) : 0;
    const window = windowTurns(turns, from, budget, (turn) => this.tokensOf(turn));
    slot.windowFirst = turns[window.start];
    return window.turns;
  }

  private tokensOf(turn: HistoryTurn): number {
    let count = this.turnTokens.get(turn);
    if (count === undefined) {
      const { model } = this.options;
      count = model.tokenize(userLine(turn.userName, turn.userText)).length + TEMPLATE_TOKENS_PER_TURN;
      if (turn.reply !== undefined) count += model.tokenize(turn.reply).length + TEMPLATE_TOKENS_PER_TURN;
      this.turnTokens.set(turn, count);
    }
    return count;
  }

  /**
   * Cuts an over-long message to its first tokens, marking the cut. Returns the message text as the
   * model reads it (what the history keeps) and the tokens its user line takes.
   */
  fitMessage(userName: string, userText: string): { userText: string; truncated: boolean; tokenCount: number } {
    const { model } = this.options;
    const tokenCount = model.tokenize(userLine(userName, userText)).length;
    if (tokenCount <= this.messageMaxTokens) return { userText, truncated: false, tokenCount };
    const room = this.messageMaxTokens - model.tokenize(userLine(userName, '')).length;
    const cut = model.detokenize(model.tokenize(userText).slice(0, Math.max(0, room))) + ' …(message cut)';
    return { userText: cut, truncated: true, tokenCount: model.tokenize(userLine(userName, cut)).length };
  }
}

function emit(onText: (delta: string) => void, text: string): void {
  if (text) onText(text);
}

export { cleanName, replySpeakers } from './replyPrompt.js';
