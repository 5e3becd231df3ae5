import type { ReplyRequest, ReplyResult } from '../../src/engine/ChatReplies.js';
import type { EngineStatus, ModelEngine } from '../../src/engine/Engine.js';
import { ModelUnavailableError } from '../../src/errors.js';
import type { SentimentResult } from '../../src/engine/SentimentClassifier.js';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';

/** What one reply call was given; `turns` is a copy taken when the call started. */
export interface RecordedReply {
  channelId: string;
  userName: string;
  userText: string;
  turns: HistoryTurn[];
  /** The channel's persona, when it has one. */
  systemPrompt?: string;
  /** The bot's own name, when the front end gave it. */
  botName?: string;
}

/**
 * A ModelEngine without a model. It records every input, answers with predictable text, and can
 * hold replies open (`holdReplies`) until `releaseReplies()` or until their abort signal fires.
 */
export class FakeEngine implements ModelEngine {
  /** Every text classify() received, in call order. */
  readonly classifyInputs: string[] = [];
  readonly replyCalls: RecordedReply[] = [];
  readonly forgotten: string[] = [];
  /** One ordered log across all calls: `classify:<text>`, `reply:<text>`, `forget:<channel>`. */
  readonly events: string[] = [];
  /** When true, reply() waits for releaseReplies() (or an abort) before answering. */
  holdReplies = false;
  /** Text streamed through onText before a held reply waits. */
  partialText = 'partial ';
  /** When set, the engine cuts every message to its first 4 characters, marked, and reports it cut (reply and fitMessage alike). */
  truncateMessages = false;
  /** How many of the next classify() calls fail. */
  failNextClassify = 0;
  /** The model server is down: classify() and reply() fail with ModelUnavailableError. */
  serverDown = false;
  /** The model server dies during the next reply: `partialText` streams, then ModelUnavailableError. */
  dieMidReply = false;
  disposed = false;
  /** Replies inside reply() now, and the most there were at once. */
  replying = 0;
  mostReplyingAtOnce = 0;
  private readonly held: Array<{ channelId: string; release: () => void }> = [];

  constructor(
    private readonly label: (text: string) => SentimentResult = (text) =>
      /love|great/.test(text) ? { label: 'positive', confidence: 0.9 } : /hate|awful/.test(text) ? { label: 'negative', confidence: 0.8 } : { label: 'neutral', confidence: 0.6 },
  ) {}

  /** The reply text the fake answers a message with. */
  static replyTo(userText: string): string {
    return `reply to ${userText}`;
  }

  async classify(text: string): Promise<SentimentResult> {
    this.classifyInputs.push(text);
    this.events.push(`classify:${text}`);
    if (this.serverDown) throw new ModelUnavailableError('fake server down');
    if (this.failNextClassify > 0) {
      this.failNextClassify--;
      throw new Error('the classifier broke');
    }
    return this.label(text);
  }

  async reply({ channelId, turns, userName, userText, botName, systemPrompt, signal, onText }: ReplyRequest): Promise<ReplyResult> {
    this.replyCalls.push({ channelId, userName, userText, turns: [...turns], ...(systemPrompt === undefined ? {} : { systemPrompt }), ...(botName === undefined ? {} : { botName }) });
    this.events.push(`reply:${userText}`);
    if (this.serverDown) throw new ModelUnavailableError('fake server down');
    if (this.dieMidReply) {
      this.dieMidReply = false;
      onText?.(this.partialText);
      throw new ModelUnavailableError('the reply stream ended before the server said it was done');
    }
    this.replying++;
    this.mostReplyingAtOnce = Math.max(this.mostReplyingAtOnce, this.replying);
    try {
      if (this.holdReplies) {
        onText?.(this.partialText);
        await new Promise<void>((resolve, reject) => {
          if (signal?.aborted) return reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
          this.held.push({ channelId, release: resolve });
        });
      }
    } finally {
      this.replying--;
    }
    const text = FakeEngine.replyTo(userText);
    onText?.(text);
    const read = this.truncateMessages ? { userText: this.fitMessage(userName, userText).userText } : {};
    return { text, evaluatedTokens: userText.length, turnsInPrompt: turns.length, messageTruncated: this.truncateMessages, ...read };
  }

  fitMessage(_userName: string, userText: string): { userText: string; truncated: boolean } {
    return this.truncateMessages ? { userText: `${userText.slice(0, 4)} …(message cut)`, truncated: true } : { userText, truncated: false };
  }

  forget(channelId: string): void {
    this.forgotten.push(channelId);
    this.events.push(`forget:${channelId}`);
  }

  status(): EngineStatus {
    return { model: 'fake', runsOn: 'this process', contextSize: 2048, ready: true, warmChannels: 0 };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }

  /** Lets every held reply finish, and stops holding new ones. */
  releaseReplies(): void {
    this.holdReplies = false;
    for (const { release } of this.held.splice(0)) release();
  }

  /** Lets the held reply of one channel finish; new replies are still held. */
  releaseReply(channelId: string): void {
    const index = this.held.findIndex((held) => held.channelId === channelId);
    if (index < 0) throw new Error(`no reply of channel ${channelId} is held`);
    this.held.splice(index, 1)[0]!.release();
  }
}

/**
 * Waits until `condition()` holds, letting the event loop turn in between. Fails after `timeoutMs`,
 * so a broken expectation ends the test instead of hanging it (a budget of time, not of turns:
 * real SQLite I/O takes as many turns as a busy machine makes it take).
 */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('until(): the condition never became true');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lets the event loop turn `times` times, so every callback that is ready runs (no clock involved). */
export async function letEventLoopTurn(times = 10): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise((resolve) => setImmediate(resolve));
}
