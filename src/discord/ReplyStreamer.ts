import type { Logger } from '../logger.js';
import { EditBudget } from './EditBudget.js';
import { splitMessage } from './splitMessage.js';

/** A posted message the streamer can edit; `components: []` takes its controls (the Stop button) off. */
export interface PostedMessage {
  edit(content: string | { content: string; components: [] }): Promise<unknown>;
}

/** Where the streamer writes: the first piece as a reply to the user's message, the rest after it. */
export interface ReplyTarget {
  /** `withControls`: put the Stop button on it (when the target has one). */
  reply(content: string, withControls?: boolean): Promise<PostedMessage>;
  send(content: string): Promise<PostedMessage>;
  /** Shows "bot is typing…" for about 10 s. */
  typing(): Promise<unknown>;
}

export interface ReplyStreamerOptions {
  target: ReplyTarget;
  logger: Logger;
  /** Least time between two streaming edits of this reply, in ms. Default 1000. */
  editIntervalMs?: number;
  /** The channel's edit budget, shared by every reply in the channel. Default: one for this reply alone. */
  editBudget?: EditBudget;
  /** Refresh interval of the typing indicator, in ms. Default 8000. */
  typingIntervalMs?: number;
  /** The target puts controls (the Stop button) on the first message; finish() takes them off. Default false. */
  controls?: boolean;
}

/** Shown when the model's reply is blank: Discord refuses an empty message. */
export const EMPTY_REPLY_PLACEHOLDER = '…(I have no words for that one.)';

/**
 * Streams a growing reply into Discord: posts as soon as there is text, then edits at most once per
 * interval, continuing in further messages past 2000 characters. Writes are serialized, so edits
 * never overtake each other, and at most one is under way: when Discord is slow (rate limits), the
 * text that arrived meanwhile goes out in one edit instead of piling up one edit per piece.
 */
export class ReplyStreamer {
  private text = '';
  private readonly posted: { message: PostedMessage; content: string }[] = [];
  private writing: Promise<void> = Promise.resolve();
  /** Settles when posting may begin (see holdUntil). */
  private gate: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private typingTimer?: NodeJS.Timeout;
  private lastWrite = 0;
  /** A streaming write is under way (scheduled writes wait for it, then send the latest text). */
  private streaming = false;
  private lastStreamed = '';
  private finished = false;
  private readonly editIntervalMs: number;
  private readonly editBudget: EditBudget;

  private markFirstPost!: () => void;
  /** Settles once the first message (the placeholder or the reply's text) has been posted. */
  readonly firstPost = new Promise<void>((resolve) => (this.markFirstPost = resolve));

  constructor(private readonly options: ReplyStreamerOptions) {
    this.editIntervalMs = options.editIntervalMs ?? 1000;
    this.editBudget = options.editBudget ?? new EditBudget();
  }

  /**
   * Holds every post, and the typing indicator, until `shown` settles (fulfilled or not), and
   * whatever an earlier call holds them for: the sentiment reaction lands before the reply appears,
   * while the reply keeps generating meanwhile.
   */
  holdUntil(shown: Promise<unknown>): void {
    const gate = Promise.all([
      this.gate,
      shown.then(
        () => undefined,
        () => undefined,
      ),
    ]).then(() => undefined);
    this.gate = gate;
    this.writing = this.writing.then(() => gate);
  }

  /**
   * Posts `text` at once as the first message (to hold the Stop button while the reply waits); the
   * reply's own text replaces it. Nothing happens once the reply has posted.
   */
  showPlaceholder(text: string): void {
    if (this.finished || this.posted.length > 0) return;
    this.write(text);
  }

  /** Starts the typing indicator, refreshed until finish(). */
  startTyping(): void {
    const tick = () => void this.options.target.typing().catch((error: unknown) => this.options.logger.debug('typing failed', { error }));
    void this.gate.then(() => {
      if (this.finished) return;
      tick();
      this.typingTimer = setInterval(tick, this.options.typingIntervalMs ?? 8000);
      this.typingTimer.unref();
    });
  }

  push(delta: string): void {
    if (this.finished) return;
    this.text += delta;
    this.schedule();
  }

  /** Plans the next streaming write: at once for the first try, else one interval after the last write ended. */
  private schedule(): void {
    if (this.finished || this.timer || this.streaming) return;
    const content = this.text.trim();
    if (content === '' || content === this.lastStreamed) return;
    const wait = this.lastWrite === 0 ? 0 : Math.max(0, this.lastWrite + this.editIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.streaming = true;
      this.lastStreamed = this.text.trim();
      this.write(this.lastStreamed);
      void this.writing.then(() => {
        this.streaming = false;
        this.lastWrite = Date.now();
        this.schedule();
      });
    }, wait);
  }

  /**
   * Writes the final text (the placeholder when it is blank) and resolves when every piece shows it.
   * Throws when that fails (after discord.js's own retries): the caller must not count it as answered.
   */
  async finish(finalText: string): Promise<void> {
    this.finished = true;
    clearTimeout(this.timer);
    clearInterval(this.typingTimer);
    await this.writing;
    await this.sync(finalText.trim() || EMPTY_REPLY_PLACEHOLDER, true);
  }

  /** Stops timers without writing anything more; resolves once a write under way has ended. */
  cancel(): Promise<void> {
    this.finished = true;
    clearTimeout(this.timer);
    clearInterval(this.typingTimer);
    return this.writing;
  }

  /** The text received so far. */
  get currentText(): string {
    return this.text;
  }

  get postedCount(): number {
    return this.posted.length;
  }

  private write(content: string): void {
    this.writing = this.writing.then(() => this.sync(content)).catch((error: unknown) => {
      this.options.logger.warn('posting a reply piece failed', { error });
    });
  }

  /** Makes the posted messages show `content`: edits the changed pieces and sends the new ones. The final sync takes the controls off. */
  private async sync(content: string, final = false): Promise<void> {
    const pieces = splitMessage(content);
    for (const [index, piece] of pieces.entries()) {
      const posted = this.posted[index];
      const dropControls = final && index === 0 && this.options.controls === true;
      if (posted?.content === piece && !dropControls) continue;
      if (posted) {
        try {
          await this.editBudget.run(() => posted.message.edit(dropControls ? { content: piece, components: [] } : piece));
          posted.content = piece;
          continue;
        } catch (error) {
          // Any other failure leaves the message standing, so a repost would show the reply twice:
          // throw, and the next write edits it again.
          if (!isUnknownMessage(error)) throw error;
          // The message was deleted meanwhile: post the piece anew rather than lose it.
          this.options.logger.warn('a reply message was deleted; posting it again', { error });
        }
      }
      const { target } = this.options;
      // A first message posted by the final sync never gets the controls.
      const message = index === 0 ? await target.reply(piece, !final) : await target.send(piece);
      this.posted[index] = { message, content: piece };
      if (index === 0) this.markFirstPost();
    }
  }
}

/** Discord's 10008 Unknown Message: the message to edit is gone (deleted). */
function isUnknownMessage(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ('code' in error && error.code === 10008) return true;
  return error instanceof Error && /unknown message/i.test(error.message);
}
