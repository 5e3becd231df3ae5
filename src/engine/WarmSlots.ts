import { LlamaChat, type ChatWrapper, type LlamaContext, type LlamaContextSequence } from 'node-llama-cpp';
import type { HistoryTurn } from '../domain.js';

/** One warm channel: a chat on its own context sequence, which still holds the channel's last prompt. */
export interface WarmSlot {
  chat: LlamaChat;
  /** First turn in the prompt window; moves forward only in large steps, so the cached prefix stays valid. */
  windowFirst?: HistoryTurn;
  /** A reply is running on it. */
  busy: boolean;
  /** Forgotten while busy: freed once the reply ends. */
  forgotten: boolean;
}

/** A small LRU pool of context sequences, one per warm channel. */
export class WarmSlots {
  private readonly warm = new Map<string, WarmSlot>();
  private readonly free: LlamaContextSequence[] = [];

  constructor(
    context: LlamaContext,
    count: number,
    private readonly chatWrapper: ChatWrapper,
  ) {
    for (let i = 0; i < count; i++) this.free.push(context.getSequence());
  }

  /** Channels warm now. */
  get size(): number {
    return this.warm.size;
  }

  get(channelId: string): WarmSlot | undefined {
    return this.warm.get(channelId);
  }

  /**
   * The channel's slot, marked busy until `done()`. A cold channel takes a free sequence or the least
   * recently used idle one; `cold` says its sequence must be cleared first.
   */
  take(channelId: string): { slot: WarmSlot; cold: boolean } {
    let slot = this.warm.get(channelId);
    const cold = !slot;
    if (slot) {
      this.warm.delete(channelId); // re-insert: Map order is the LRU order
    } else {
      const sequence = this.free.pop() ?? this.evictIdle();
      slot = { chat: new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper, autoDisposeSequence: false }), busy: false, forgotten: false };
    }
    slot.busy = true;
    this.warm.set(channelId, slot);
    return { slot, cold };
  }

  /** The reply on the slot has ended; a slot forgotten meanwhile is freed now. */
  done(slot: WarmSlot): void {
    slot.busy = false;
    if (slot.forgotten) this.release(slot);
  }

  /**
   * Drops a channel's warm state; its sequence goes back to the pool. A reply generating on it
   * (a /reset mid-stream) is never disposed under it: the slot is freed when the reply ends.
   */
  forget(channelId: string): void {
    const slot = this.warm.get(channelId);
    if (!slot) return;
    this.warm.delete(channelId);
    if (slot.busy) slot.forgotten = true;
    else this.release(slot);
  }

  dispose(): void {
    for (const slot of this.warm.values()) this.release(slot);
    this.warm.clear();
  }

  private release(slot: WarmSlot): void {
    this.free.push(slot.chat.sequence);
    slot.chat.dispose({ disposeSequence: false });
  }

  private evictIdle(): LlamaContextSequence {
    const idle = [...this.warm].find(([, slot]) => !slot.busy);
    if (!idle) throw new Error('Every warm sequence is busy with a reply.');
    this.forget(idle[0]);
    return this.free.pop()!;
  }
}
