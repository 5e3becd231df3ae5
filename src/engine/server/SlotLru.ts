import type { HistoryTurn } from '../../domain.js';

/** A channel's place on the server: the slot whose prompt cache holds its last prompt. */
export interface ChannelSlot {
  id: number;
  /** First turn in the prompt window (see promptWindow.ts): the cached prefix stays valid while it holds. */
  windowFirst?: HistoryTurn;
  /** Replies running on it now. */
  busy: number;
}

/**
 * Channel -> server slot, least recently used first out: a warm channel gets the slot that still
 * caches its prompt, so the server re-evaluates only the new tokens. A cold channel takes a slot no
 * channel holds, else the least recently used idle one. The queue runs at most as many replies as
 * there are slots, so an idle one always exists; were they all busy, the least recently used is shared.
 */
export class SlotLru {
  private readonly warm = new Map<string, ChannelSlot>();

  constructor(private readonly slotIds: readonly number[]) {
    if (slotIds.length === 0) throw new RangeError('SlotLru needs at least one slot.');
  }

  get size(): number {
    return this.warm.size;
  }

  get(channelId: string): ChannelSlot | undefined {
    return this.warm.get(channelId);
  }

  /** The channel's slot, marked busy until `done()`; `cold`: the slot holds another channel's prompt, or none. */
  take(channelId: string): { slot: ChannelSlot; cold: boolean } {
    let slot = this.warm.get(channelId);
    const cold = !slot;
    if (slot) this.warm.delete(channelId);
    else slot = { id: this.freeSlot(), busy: 0 };
    slot.busy++;
    this.warm.set(channelId, slot);
    return { slot, cold };
  }

  done(slot: ChannelSlot): void {
    slot.busy = Math.max(0, slot.busy - 1);
  }

  /** The channel is cold again (after /reset): its next reply starts a new window. */
  forget(channelId: string): void {
    this.warm.delete(channelId);
  }

  private freeSlot(): number {
    const held = new Set([...this.warm.values()].map((slot) => slot.id));
    const free = this.slotIds.find((id) => !held.has(id));
    if (free !== undefined) return free;
    const [channelId, slot] = [...this.warm].find(([, candidate]) => candidate.busy === 0) ?? [...this.warm][0]!;
    this.warm.delete(channelId);
    return slot.id;
  }
}
