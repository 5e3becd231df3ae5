import { LlamaChat, type ChatHistoryItem, type ChatWrapper, type LlamaContext, type LlamaContextSequence, type LlamaModel } from 'node-llama-cpp';
import type { HistoryTurn } from '../history/HistoryStore.js';

export interface ChatRepliesOptions {
  model: LlamaModel;
  /** The shared context; this pool takes `warmChannels` sequences from it. */
  context: LlamaContext;
  chatWrapper: ChatWrapper;
  systemPrompt: string;
  /** Token budget for history in the prompt; when exceeded, history is cut to half of it at once. */
  historyMaxTokens: number;
  replyMaxTokens: number;
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
  signal?: AbortSignal;
  /** Called with each new piece of reply text as it is generated. */
  onText?: (delta: string) => void;
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
}

interface WarmSlot {
  chat: LlamaChat;
  /** First turn in the prompt window; moves forward only in large steps, so the cached prefix stays valid. */
  windowFirst?: HistoryTurn;
}

const TEMPLATE_TOKENS_PER_TURN = 10;
const MAX_NAME_LENGTH = 32;

/**
 * History-aware replies for many channels over one context: a small LRU pool of sequences, one
 * chat per warm channel, so a warm channel's next reply evaluates only the new tokens. A cold
 * channel takes the least recently used sequence and is rebuilt from the history it is given.
 */
export class ChatReplies {
  private readonly warm = new Map<string, WarmSlot>();
  private readonly free: LlamaContextSequence[] = [];
  private readonly turnTokens = new WeakMap<HistoryTurn, number>();
  private readonly systemTokens: number;
  private readonly messageMaxTokens: number;

  constructor(private readonly options: ChatRepliesOptions) {
    for (let i = 0; i < options.warmChannels; i++) this.free.push(options.context.getSequence());
    this.systemTokens = options.model.tokenize(options.systemPrompt).length + TEMPLATE_TOKENS_PER_TURN;
    // A message may take a quarter of the context; the history budget shrinks to make room for it.
    this.messageMaxTokens = Math.floor(options.context.contextSize / 4);
  }

  isWarm(channelId: string): boolean {
    return this.warm.has(channelId);
  }

  /** The text a warm channel's sequence holds (its prompt and last reply); undefined when cold. */
  contextText(channelId: string): string | undefined {
    const slot = this.warm.get(channelId);
    return slot && this.options.model.detokenize(slot.chat.sequence.contextTokens, true);
  }

  /** Drops a channel's warm state (after /reset); its sequence goes back to the pool. */
  forget(channelId: string): void {
    const slot = this.warm.get(channelId);
    if (!slot) return;
    this.warm.delete(channelId);
    this.free.push(slot.chat.sequence);
    slot.chat.dispose({ disposeSequence: false });
  }

  async reply({ channelId, turns, userName, userText, signal, onText }: ReplyRequest): Promise<ReplyResult> {
    const slot = await this.slotFor(channelId);
    const { text: message, truncated, tokenCount: messageTokens } = this.fitMessage(userLine(userName, userText));
    const window = this.promptWindow(slot, turns, messageTokens);
    const history: ChatHistoryItem[] = [{ type: 'system', text: this.options.systemPrompt }];
    for (const turn of window) {
      history.push({ type: 'user', text: userLine(turn.userName, turn.userText) });
      history.push({ type: 'model', response: [turn.reply] });
    }
    history.push({ type: 'user', text: message });

    const meter = slot.chat.sequence.tokenMeter;
    const before = meter.usedInputTokens;
    const { response } = await slot.chat.generateResponse(history, {
      maxTokens: this.options.replyMaxTokens,
      temperature: this.options.temperature ?? 0.7,
      topP: 0.9,
      seed: this.options.seed,
      signal,
      stopOnAbortSignal: false,
      onTextChunk: onText,
      evaluationPriority: 3,
    });
    const text = response.trim();
    const evaluatedTokens = meter.usedInputTokens - before;
    await this.settle(slot, [...history, { type: 'model', response: [text] }]);
    return {
      text,
      evaluatedTokens,
      turnsInPrompt: window.length,
      messageTruncated: truncated,
    };
  }

  /**
   * Brings the sequence to the exact tokens the next prompt will start with. Sampled tokens are not
   * always the tokenizer's own spelling of the reply text, so without this the next reply would
   * re-evaluate the whole previous reply; doing it now keeps that work off the next reply's start.
   */
  private async settle(slot: WarmSlot, history: ChatHistoryItem[]): Promise<void> {
    const { contextText } = this.options.chatWrapper.generateContextState({ chatHistory: history });
    const tokens = contextText.tokenize(this.options.model.tokenizer);
    const sequence = slot.chat.sequence;
    const { firstDifferentIndex } = sequence.compareContextTokens(tokens);
    if (firstDifferentIndex < sequence.nextTokenIndex) {
      await sequence.eraseContextTokenRanges([{ start: firstDifferentIndex, end: sequence.nextTokenIndex }]);
    }
    if (firstDifferentIndex < tokens.length) await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(firstDifferentIndex));
  }

  dispose(): void {
    for (const channelId of [...this.warm.keys()]) this.forget(channelId);
  }

  private async slotFor(channelId: string): Promise<WarmSlot> {
    let slot = this.warm.get(channelId);
    if (slot) {
      this.warm.delete(channelId); // re-insert: Map order is the LRU order
    } else {
      let sequence = this.free.pop();
      if (!sequence) {
        const [oldest] = this.warm.keys();
        this.forget(oldest!);
        sequence = this.free.pop()!;
      }
      // A cold channel starts from an empty sequence: nothing of the previous channel stays behind.
      await sequence.clearHistory();
      slot = { chat: new LlamaChat({ contextSequence: sequence, chatWrapper: this.options.chatWrapper, autoDisposeSequence: false }) };
    }
    this.warm.set(channelId, slot);
    return slot;
  }

  /**
   * The turns that go into the prompt. Once the window exceeds the budget it is cut to half the
   * budget in one step; between cuts it only grows at the end, so the cached tokens stay reusable
   * and the library's per-turn context shift never has to run.
   */
  private promptWindow(slot: WarmSlot, turns: readonly HistoryTurn[], messageTokens: number): readonly HistoryTurn[] {
    const contextRoom = this.options.context.contextSize - this.options.replyMaxTokens - this.systemTokens - messageTokens - 2 * TEMPLATE_TOKENS_PER_TURN;
    const budget = Math.max(0, Math.min(this.options.historyMaxTokens, contextRoom));
    let start = slot.windowFirst ? Math.max(0, turns.indexOf(slot.windowFirst)) : 0;
    let total = 0;
    for (let i = start; i < turns.length; i++) total += this.tokensOf(turns[i]!);
    if (total > budget) {
      while (start < turns.length && total > budget / 2) total -= this.tokensOf(turns[start++]!);
    }
    slot.windowFirst = turns[start];
    return turns.slice(start);
  }

  private tokensOf(turn: HistoryTurn): number {
    let count = this.turnTokens.get(turn);
    if (count === undefined) {
      const { model } = this.options;
      count = model.tokenize(userLine(turn.userName, turn.userText)).length + model.tokenize(turn.reply).length + 2 * TEMPLATE_TOKENS_PER_TURN;
      this.turnTokens.set(turn, count);
    }
    return count;
  }

  /** Cuts an over-long message to its first tokens, marking the cut; also says how many tokens it takes. */
  private fitMessage(message: string): { text: string; truncated: boolean; tokenCount: number } {
    const { model } = this.options;
    const tokens = model.tokenize(message);
    if (tokens.length <= this.messageMaxTokens) return { text: message, truncated: false, tokenCount: tokens.length };
    const text = model.detokenize(tokens.slice(0, this.messageMaxTokens)) + ' …(message cut)';
    return { text, truncated: true, tokenCount: model.tokenize(text).length };
  }
}

/** A user turn as the model reads it: "Name: text". */
function userLine(name: string, text: string): string {
  return `${cleanName(name)}: ${text}`;
}

/** Names go into the prompt as "Name: text", so they must stay one short line. */
export function cleanName(name: string): string {
  const clean = name.replace(/[\s\u200b-\u200d\ufeff]+/g, ' ').replace(/:/g, '').trim().slice(0, MAX_NAME_LENGTH);
  return clean || 'user';
}
