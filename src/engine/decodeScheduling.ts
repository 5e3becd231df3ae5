import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

/**
 * How the decodes of the one shared context are grouped, so replies running at once share each
 * decode step and a rewind never waits for them to end. Two fixes to what node-llama-cpp 3.21.1
 * does on its own, both measured with two and four replies on the Qwen-class model:
 *
 * - **Replies step together.** node-llama-cpp batches the decodes that are queued when a batch
 *   starts. Two generating replies fall out of step at once (each queues its next token while the
 *   other's is being decoded) and stay out of step: every batch held one token, 190 batches for
 *   192 tokens, so two replies made no more tokens per second than one. Here a generation step (a
 *   one-token decode) waits until every sequence that is generating has asked for its next step,
 *   or until STEP_WAIT_MS passed with none in flight (a reply that ended drops out that way), and
 *   they are queued together: one batch, one read of the weights, for all of them.
 * - **A rewind gets in between two steps.** The decode loop holds the context's lock for as long as
 *   anything is queued after a batch, and an erase (the classifier's rewind after each call, a
 *   finished reply's settle) takes that lock: with several replies generating it waited until they
 *   all ended (9.1 s of an 11.1 s sentiment call during four replies). While an erase waits, new
 *   decodes of the other sequences are held back; the loop finds nothing queued, lets go of the
 *   lock, the erase runs (a few milliseconds: it drops KV cells of its own sequence) and the held
 *   decodes go on. The erasing sequence's own decodes pass: an erase that cannot drop cells
 *   re-evaluates.
 * - **A sentiment call goes first** (`decodeFirst`): while it runs, the replies' next steps wait, so
 *   it costs one decode step of waiting, not one per reply running, however many run.
 *
 * It reaches two internal methods of the pinned node-llama-cpp (`_decodeTokens`,
 * `_eraseContextTokenRanges`); `test/unit/Engine.test.ts` fails if either stops being called.
 */
export function scheduleDecodes(context: LlamaContext): void {
  const internals = context as unknown as ContextInternals;
  if (internals.decodeScheduler) return;
  const scheduler = new DecodeScheduler(internals._decodeTokens.bind(context));
  internals.decodeScheduler = scheduler;
  internals._decodeTokens = (request, mapper) => scheduler.submit(request, mapper);

  const getSequence = context.getSequence.bind(context);
  context.getSequence = (...args) => {
    const sequence = getSequence(...args) as LlamaContextSequence & SequenceInternals;
    const sequenceId = sequence._sequenceId;
    const erase = sequence._eraseContextTokenRanges.bind(sequence);
    sequence._eraseContextTokenRanges = (...eraseArgs) => scheduler.holdingOthers(sequenceId, () => erase(...eraseArgs), true);
    return sequence;
  };
}

/**
 * Runs `work` on `sequence` with the other sequences' new decodes held back until it ends: the
 * decode step in flight finishes, then only this sequence decodes. On a context without the
 * scheduler it just runs `work`.
 */
export function decodeFirst<T>(sequence: LlamaContextSequence, work: () => Promise<T>): Promise<T> {
  const scheduler = (sequence.context as unknown as ContextInternals).decodeScheduler;
  return scheduler ? scheduler.holdingOthers((sequence as unknown as SequenceInternals)._sequenceId, work, false) : work();
}

/** What the scheduler did on this context so far (for tests and benchmarks). */
export function decodeStats(context: LlamaContext): DecodeStats {
  const scheduler = (context as unknown as ContextInternals).decodeScheduler;
  return scheduler ? { ...scheduler.stats } : { erases: 0, steps: 0, stepBatches: 0 };
}

export interface DecodeStats {
  /** Erases that held the other sequences back. */
  erases: number;
  /** Generation steps (one-token decodes) queued. */
  steps: number;
  /** Groups those steps were queued in: steps / stepBatches is how many replies shared a decode. */
  stepBatches: number;
}

/**
 * How long steps that are ready wait for a generating sequence that has not asked for its next
 * step while nothing is being decoded. Between two steps a reply spends well under a millisecond
 * in JavaScript (sampling happens in the decode); one that does not come back within this has
 * ended, and waiting for it costs its neighbours this once.
 */
const STEP_WAIT_MS = 15;

interface DecodeRequest {
  sequenceId: number;
  tokens: readonly number[];
}

type Decode = (request: DecodeRequest, mapper: unknown) => Promise<unknown>;

interface ContextInternals {
  decodeScheduler?: DecodeScheduler;
  _decodeTokens: Decode;
}

interface SequenceInternals {
  _sequenceId: number;
  _eraseContextTokenRanges(...args: unknown[]): Promise<void>;
}

class DecodeScheduler {
  readonly stats: DecodeStats = { erases: 0, steps: 0, stepBatches: 0 };
  /** Sequences that hold the context (an erase waiting or running, a sentiment call), and how many holds each has. */
  private readonly holders = new Map<number, number>();
  /** Other sequences' decodes held back meanwhile. */
  private held: Array<() => void> = [];
  /** Sequences that are generating (asked for a one-token step lately). */
  private readonly generating = new Set<number>();
  /** Steps ready to go, by sequence. */
  private readonly ready = new Map<number, () => void>();
  /** Steps queued and not decoded yet. */
  private inFlight = 0;
  private waitTimer?: NodeJS.Timeout;
  private checkScheduled = false;

  constructor(private readonly decode: Decode) {}

  submit(request: DecodeRequest, mapper: unknown): Promise<unknown> {
    if (request.tokens.length !== 1) return this.afterHolders(request.sequenceId).then(() => this.decode(request, mapper));
    return new Promise<void>((resolve) => {
      this.generating.add(request.sequenceId);
      this.ready.set(request.sequenceId, resolve);
      this.checkSoon();
    }).then(async () => {
      try {
        await this.afterHolders(request.sequenceId);
        return await this.decode(request, mapper);
      } finally {
        this.inFlight--;
        this.checkSoon();
      }
    });
  }

  /** Holds the other sequences' new decodes while `work` (an erase, a sentiment call) runs on this one. */
  async holdingOthers<T>(sequenceId: number, work: () => Promise<T>, isErase: boolean): Promise<T> {
    if (isErase) this.stats.erases++;
    this.holders.set(sequenceId, (this.holders.get(sequenceId) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = this.holders.get(sequenceId)! - 1;
      if (left > 0) this.holders.set(sequenceId, left);
      else this.holders.delete(sequenceId);
      if (this.holders.size === 0) {
        const held = this.held;
        this.held = [];
        for (const resolve of held) resolve();
      }
    }
  }

  /** Resolves when a decode of this sequence may be queued: no other sequence holds the context. */
  private afterHolders(sequenceId: number): Promise<void> {
    if (this.holders.size === 0 || this.holders.has(sequenceId)) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }

  /** Looks at the ready steps once this turn of the event loop is over, so steps asked for in one turn go together. */
  private checkSoon(): void {
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      this.releaseStepsWhenAligned();
    });
  }

  /** Queues the ready steps together once nothing is in flight and every generating sequence is ready. */
  private releaseStepsWhenAligned(): void {
    if (this.ready.size === 0 || this.inFlight > 0) return;
    const missing = [...this.generating].filter((id) => !this.ready.has(id));
    if (missing.length > 0) {
      this.waitTimer ??= setTimeout(() => {
        this.waitTimer = undefined;
        // Those still missing have stopped generating; they join again with their next step.
        for (const id of this.generating) if (!this.ready.has(id)) this.generating.delete(id);
        this.releaseStepsWhenAligned();
      }, STEP_WAIT_MS);
      return;
    }
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    const steps = [...this.ready.values()];
    this.ready.clear();
    this.inFlight += steps.length;
    this.stats.steps += steps.length;
    this.stats.stepBatches++;
    for (const go of steps) go();
  }
}
