import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

/**
 * Lets a rewind (an erase of a sequence's tokens) in between two decode steps while several
 * replies generate on one context.
 *
 * node-llama-cpp 3.21.1 decodes a context's queued evaluations in a loop that holds the context's
 * lock for as long as anything is queued after a batch, and an erase takes that lock. One reply
 * leaves a gap after each token; two or more queue their next tokens out of step, so the loop runs
 * until they all end, and the classifier's rewind after each call (or a finished reply's settle)
 * waited that long: 9.1 s of an 11.1 s sentiment call during four replies.
 *
 * While an erase waits, new decodes of the other sequences are held back: the batch in flight
 * ends, the loop finds nothing queued and lets go of the lock, the erase runs (it touches only the
 * KV cells of its own sequence, a few milliseconds), and the held decodes go on in the next batch.
 * The erasing sequence's own decodes pass, since an erase that cannot drop cells re-evaluates.
 *
 * This reaches two internal methods of the pinned node-llama-cpp (`_decodeTokens`,
 * `_eraseContextTokenRanges`); `test/unit/eraseGate.test.ts` fails if either stops being called.
 */
export function gateErases(context: LlamaContext): void {
  const internals = context as unknown as ContextInternals;
  if (internals.eraseGate) return;
  const gate = new EraseGate();
  internals.eraseGate = gate;

  const decode = internals._decodeTokens.bind(context);
  internals._decodeTokens = (request, mapper) => gate.admit(request.sequenceId).then(() => decode(request, mapper));

  const getSequence = context.getSequence.bind(context);
  context.getSequence = (...args) => {
    const sequence = getSequence(...args) as LlamaContextSequence & SequenceInternals;
    const sequenceId = sequence._sequenceId;
    const erase = sequence._eraseContextTokenRanges.bind(sequence);
    sequence._eraseContextTokenRanges = (...eraseArgs) => gate.during(sequenceId, () => erase(...eraseArgs));
    return sequence;
  };
}

/** How many erases went through the gate on this context (for the test that pins the internals). */
export function gatedErases(context: LlamaContext): number {
  return (context as unknown as ContextInternals).eraseGate?.erases ?? 0;
}

interface DecodeRequest {
  sequenceId: number;
}

interface ContextInternals {
  eraseGate?: EraseGate;
  _decodeTokens(request: DecodeRequest, mapper: unknown): Promise<unknown>;
}

interface SequenceInternals {
  _sequenceId: number;
  _eraseContextTokenRanges(...args: unknown[]): Promise<void>;
}

class EraseGate {
  /** Sequences with an erase waiting or running, and how many each has. */
  private readonly erasing = new Map<number, number>();
  private held: Array<() => void> = [];
  erases = 0;

  /** Resolves when a decode of this sequence may be queued. */
  admit(sequenceId: number): Promise<void> {
    if (this.erasing.size === 0 || this.erasing.has(sequenceId)) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }

  async during<T>(sequenceId: number, erase: () => Promise<T>): Promise<T> {
    this.erases++;
    this.erasing.set(sequenceId, (this.erasing.get(sequenceId) ?? 0) + 1);
    try {
      return await erase();
    } finally {
      const left = this.erasing.get(sequenceId)! - 1;
      if (left > 0) this.erasing.set(sequenceId, left);
      else this.erasing.delete(sequenceId);
      if (this.erasing.size === 0) this.release();
    }
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    for (const resolve of held) resolve();
  }
}
