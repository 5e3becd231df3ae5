import { AbortedError, QueueFullError } from '../errors.js';

/**
 * Two lanes in front of the one shared model. Up to `parallelReplies` replies of different channels
 * run at once (each on its channel's own context sequence, so the context decodes them in one
 * batch); sentiment calls run one at a time on their own sequence, so a sentiment call never waits
 * for a whole reply: the context batches its tokens in between two decode steps of the replies.
 */
export type Lane = 'sentiment' | 'reply';

export interface GenerationQueueOptions {
  /**
   * Most jobs waiting or running in one lane; more are refused with QueueFullError, except a
   * channel's only one: a channel with nothing waiting or running in the lane always gets a place,
   * so one busy channel cannot shut the quiet ones out. Default 64.
   */
  maxPending?: number;
  /**
   * Most reply jobs running at once, never two of one channel; the sentiment lane always runs one.
   * Default 1 (one reply at a time; the bot passes PARALLEL_REPLIES, default 4).
   */
  parallelReplies?: number;
}

export type Job<T> = (signal: AbortSignal) => Promise<T>;

/**
 * A place in a lane, taken when a message arrives so per-channel order is fixed then, and given its
 * job later (a reply's job is known only once its sentiment is done). A channel whose next ticket
 * has no job yet is skipped, so it holds up nobody else.
 */
export interface Ticket {
  readonly lane: Lane;
  readonly channelId: string;
  /** Hands the ticket its job; resolves with the job's result once it has run. */
  run<T>(job: Job<T>): Promise<T>;
  /** Gives the place up without running anything. */
  cancel(): void;
  /**
   * Stops this one job (a Stop button): a waiting job never starts and its run() rejects with
   * `reason`; a running one gets `reason` through its signal. Nothing happens once it has settled.
   */
  abort(reason: Error): void;
}

interface Entry {
  channelId: string;
  job?: Job<unknown>;
  settle?: { resolve(value: unknown): void; reject(error: unknown): void };
  cancelled: boolean;
  /** Why it was aborted before it started. */
  abortReason?: Error;
  /** Set while it runs. */
  controller?: AbortController;
}

/** The running map's key for a background job, which belongs to no channel. */
const BACKGROUND = '\u0000background';

interface Running {
  controller: AbortController;
  /** Resolves once the job has settled. */
  settled: Promise<void>;
}

class LaneState {
  /** Waiting entries per channel, in arrival order; a Map keeps channels in round-robin order. */
  readonly waiting = new Map<string, Entry[]>();
  /** The running jobs by channel (background jobs under BACKGROUND): a channel runs at most one job of a lane at a time. */
  readonly running = new Map<string, Running>();
  size = 0;
  /** Background jobs (learning a calibration): run only when no real job is ready; not counted in `size`. */
  readonly idle: Entry[] = [];

  constructor(readonly slots: number) {}
}

/**
 * The one queue in front of the shared model (in process or on a server): fair across channels
 * (round-robin), strict arrival order within a channel, bounded, and abortable for shutdown.
 */
export class GenerationQueue {
  private readonly lanes: Record<Lane, LaneState>;
  private readonly maxPending: number;
  private closedReason?: string;

  constructor({ maxPending = 64, parallelReplies = 1 }: GenerationQueueOptions = {}) {
    if (!Number.isInteger(parallelReplies) || parallelReplies < 1) throw new RangeError(`parallelReplies must be a whole number of at least 1, got ${parallelReplies}.`);
    this.maxPending = maxPending;
    this.lanes = { sentiment: new LaneState(1), reply: new LaneState(parallelReplies) };
  }

  /** Jobs waiting or running in a lane. */
  pending(lane: Lane): number {
    return this.lanes[lane].size;
  }

  /** Jobs running in a lane now. */
  running(lane: Lane): number {
    return this.lanes[lane].running.size;
  }

  /** Jobs that may run at once in a lane. */
  slots(lane: Lane): number {
    return this.lanes[lane].slots;
  }

  /**
   * True when a new job in this lane would have to wait: the jobs already there (running or
   * waiting) fill every slot, or, given a channel, that channel already has a job in the lane.
   */
  isBusy(lane: Lane, channelId?: string): boolean {
    const state = this.lanes[lane];
    if (state.size >= state.slots) return true;
    return channelId !== undefined && (state.waiting.has(channelId) || state.running.has(channelId));
  }

  /**
   * Takes a place in the lane now. Throws QueueFullError when the lane is full and the channel
   * already has a job in it, AbortedError once closed.
   */
  reserve(lane: Lane, channelId: string): Ticket {
    if (this.closedReason !== undefined) throw new AbortedError(this.closedReason);
    const state = this.lanes[lane];
    const channelWaits = state.waiting.has(channelId) || state.running.has(channelId);
    // Round-robin serves a channel's first job after at most one job of each other channel, so
    // taking it past the cap costs the others little; the cap bounds the backlog of busy channels.
    if (state.size >= this.maxPending && channelWaits) throw new QueueFullError(state.size);
    const entry: Entry = { channelId, cancelled: false };
    const list = state.waiting.get(channelId) ?? [];
    list.push(entry);
    state.waiting.set(channelId, list);
    state.size++;
    return {
      lane,
      channelId,
      run: <T>(job: Job<T>) =>
        new Promise<T>((resolve, reject) => {
          if (entry.cancelled) return reject(entry.abortReason ?? new AbortedError(this.closedReason ?? 'The ticket was cancelled.'));
          if (entry.job) return reject(new Error('A ticket runs only one job.'));
          entry.job = job;
          entry.settle = { resolve: resolve as (value: unknown) => void, reject };
          this.pump(lane);
        }),
      cancel: () => {
        if (entry.cancelled || entry.job) return;
        entry.cancelled = true;
        this.remove(state, entry);
        this.pump(lane);
      },
      abort: (reason) => {
        if (entry.controller) return entry.controller.abort(reason);
        if (entry.cancelled) return;
        entry.cancelled = true;
        entry.abortReason = reason;
        this.remove(state, entry);
        entry.settle?.reject(reason);
        this.pump(lane);
      },
    };
  }

  /**
   * Runs a background job in the lane at the lowest priority: only when no real job is ready, so
   * a real one waits behind at most one background job. Not counted in `pending` (it is nobody's
   * message); rejected with AbortedError once closed.
   */
  runWhenIdle<T>(lane: Lane, job: Job<T>): Promise<T> {
    if (this.closedReason !== undefined) return Promise.reject(new AbortedError(this.closedReason));
    return new Promise<T>((resolve, reject) => {
      this.lanes[lane].idle.push({ channelId: '', job, settle: { resolve: resolve as (value: unknown) => void, reject }, cancelled: false });
      this.pump(lane);
    });
  }

  /** Stops the channel's running job in the lane, if it has one (a /reset): the job gets `reason` through its signal. */
  abortRunning(lane: Lane, channelId: string, reason: Error): void {
    this.lanes[lane].running.get(channelId)?.controller.abort(reason);
  }

  /** Reserves and runs at once. */
  run<T>(lane: Lane, channelId: string, job: Job<T>): Promise<T> {
    return this.reserve(lane, channelId).run(job);
  }

  /**
   * Refuses new work, aborts every running job through its signal and rejects every waiting one.
   * Resolves when all the running jobs have settled.
   */
  async close(reason = 'The bot is shutting down.'): Promise<void> {
    this.closedReason = reason;
    const running: Promise<void>[] = [];
    for (const state of Object.values(this.lanes)) {
      for (const list of state.waiting.values()) {
        for (const entry of list) {
          entry.cancelled = true;
          entry.settle?.reject(new AbortedError(reason));
        }
      }
      state.waiting.clear();
      for (const entry of state.idle.splice(0)) entry.settle?.reject(new AbortedError(reason));
      state.size = [...state.running.keys()].filter((key) => key !== BACKGROUND).length;
      for (const job of state.running.values()) {
        running.push(job.settled);
        job.controller.abort(new AbortedError(reason));
      }
    }
    await Promise.all(running);
  }

  private pump(lane: Lane): void {
    const state = this.lanes[lane];
    // Round-robin: the first channel in map order whose head is ready and that runs nothing now
    // starts, then moves to the back; a channel skipped keeps its place in the round.
    while (state.running.size < state.slots) {
      let next: Entry | undefined;
      for (const [channelId, list] of state.waiting) {
        const head = list[0];
        if (!head?.job || state.running.has(channelId)) continue;
        list.shift();
        state.waiting.delete(channelId);
        if (list.length > 0) state.waiting.set(channelId, list);
        next = head;
        break;
      }
      if (!next) break;
      this.start(lane, state, next);
    }
    // A background job takes a free slot only when no real job is ready, one at a time.
    if (state.running.size < state.slots && !state.running.has(BACKGROUND)) {
      const background = state.idle.shift();
      if (background) this.start(lane, state, background, true);
    }
  }

  private start(lane: Lane, state: LaneState, entry: Entry, background = false): void {
    const controller = new AbortController();
    entry.controller = controller;
    const finish = () => {
      state.running.delete(background ? BACKGROUND : entry.channelId);
      if (!background) state.size--;
      this.pump(lane);
    };
    // A job that throws synchronously still settles through the promise chain.
    const settled = Promise.resolve()
      .then(() => entry.job!(controller.signal))
      .then(
        (value) => {
          finish();
          entry.settle!.resolve(value);
        },
        (error: unknown) => {
          finish();
          entry.settle!.reject(error);
        },
      );
    state.running.set(background ? BACKGROUND : entry.channelId, { controller, settled });
  }

  private remove(state: LaneState, entry: Entry): void {
    const list = state.waiting.get(entry.channelId);
    if (!list) return;
    const index = list.indexOf(entry);
    if (index < 0) return;
    list.splice(index, 1);
    state.size--;
    if (list.length === 0) state.waiting.delete(entry.channelId);
  }
}
