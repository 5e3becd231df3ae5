import { describe, expect, it } from 'vitest';
import { GenerationQueue, type Job } from '../../src/engine/GenerationQueue.js';
import { AbortedError, QueueFullError } from '../../src/errors.js';

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback and I/O callback run (a few event-loop turns, no clock). */
async function drain(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Records when jobs start and finish. `job(name)` finishes after a few event-loop turns;
 * `gated(name)` runs until its gate is opened with `open(name)`.
 */
function recorder() {
  const started: string[] = [];
  const finished: string[] = [];
  const gates = new Map<string, Deferred>();
  let running = 0;
  let maxRunning = 0;
  const begin = (name: string) => {
    started.push(name);
    running++;
    maxRunning = Math.max(maxRunning, running);
  };
  const end = (name: string) => {
    running--;
    finished.push(name);
    return name;
  };
  return {
    started,
    finished,
    get maxRunning() {
      return maxRunning;
    },
    job(name: string, turns = 2): Job<string> {
      return async () => {
        begin(name);
        await drain(turns);
        return end(name);
      };
    },
    gated(name: string): Job<string> {
      const gate = deferred();
      gates.set(name, gate);
      return async () => {
        begin(name);
        await gate.promise;
        return end(name);
      };
    },
    open(name: string) {
      gates.get(name)!.resolve();
    },
  };
}

describe('GenerationQueue', () => {
  describe('within one channel', () => {
    it('runs concurrently submitted jobs one at a time in arrival order', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();

      // Jobs of varying length, so a FIFO violation would show as a different finish order.
      const results = await Promise.all([
        queue.run('reply', 'a', rec.job('a1', 6)),
        queue.run('reply', 'a', rec.job('a2', 1)),
        queue.run('reply', 'a', rec.job('a3', 4)),
        queue.run('reply', 'a', rec.job('a4', 0)),
        queue.run('reply', 'a', rec.job('a5', 2)),
      ]);

      expect(results).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
      expect(rec.started).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
      expect(rec.finished).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
      expect(rec.maxRunning).toBe(1);
    });

    it('keeps the order in which tickets were reserved, even when their jobs arrive in reverse', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const first = queue.reserve('reply', 'a');
      const second = queue.reserve('reply', 'a');
      const third = queue.reserve('reply', 'a');

      const runs = [third.run(rec.job('third')), second.run(rec.job('second'))];
      await drain();
      expect(rec.started).toEqual([]);
      runs.push(first.run(rec.job('first')));
      await Promise.all(runs);

      expect(rec.started).toEqual(['first', 'second', 'third']);
    });
  });

  describe('across channels', () => {
    it('takes turns round-robin, so a channel with five queued jobs does not starve the others', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const blocker = queue.run('reply', 'z', rec.gated('z1'));
      const runs = [
        ...['a1', 'a2', 'a3', 'a4', 'a5'].map((name) => queue.run('reply', 'a', rec.job(name))),
        ...['b1', 'b2'].map((name) => queue.run('reply', 'b', rec.job(name))),
        queue.run('reply', 'c', rec.job('c1')),
      ];

      rec.open('z1');
      await Promise.all([blocker, ...runs]);

      expect(rec.started).toEqual(['z1', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4', 'a5']);
      expect(rec.maxRunning).toBe(1);
    });

    it('puts a channel that just ran behind the channels that were waiting', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const blocker = queue.run('reply', 'a', rec.gated('a1'));
      const runs = [queue.run('reply', 'a', rec.job('a2')), queue.run('reply', 'b', rec.job('b1')), queue.run('reply', 'a', rec.job('a3'))];

      rec.open('a1');
      await Promise.all([blocker, ...runs]);

      expect(rec.started).toEqual(['a1', 'a2', 'b1', 'a3']);
    });
  });

  describe('the two lanes', () => {
    it('runs a sentiment job while a reply job is still running', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const reply = queue.run('reply', 'a', rec.gated('reply'));
      await drain();

      const sentiment = await queue.run('sentiment', 'a', rec.job('sentiment'));

      expect(sentiment).toBe('sentiment');
      expect(rec.started).toEqual(['reply', 'sentiment']);
      expect(rec.finished).toEqual(['sentiment']);
      expect(queue.pending('reply')).toBe(1);
      rec.open('reply');
      await expect(reply).resolves.toBe('reply');
      expect(queue.pending('reply')).toBe(0);
    });

    it('reports pending jobs and busyness per lane', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      expect(queue.isBusy('reply')).toBe(false);

      const running = queue.run('reply', 'a', rec.gated('r1'));
      const waiting = queue.run('reply', 'b', rec.job('r2'));

      expect(queue.pending('reply')).toBe(2);
      expect(queue.isBusy('reply')).toBe(true);
      expect(queue.pending('sentiment')).toBe(0);
      expect(queue.isBusy('sentiment')).toBe(false);
      rec.open('r1');
      await Promise.all([running, waiting]);
      expect(queue.pending('reply')).toBe(0);
      expect(queue.isBusy('reply')).toBe(false);
    });
  });

  describe('tickets', () => {
    it('lets a reserved ticket without a job block only its own channel', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const ticket = queue.reserve('reply', 'a');
      const a2 = queue.run('reply', 'a', rec.job('a2'));

      await expect(queue.run('reply', 'b', rec.job('b1'))).resolves.toBe('b1');
      await drain();
      expect(rec.started).toEqual(['b1']);

      await expect(ticket.run(rec.job('a1'))).resolves.toBe('a1');
      await a2;
      expect(rec.started).toEqual(['b1', 'a1', 'a2']);
    });

    it('frees the place when a ticket is cancelled, letting the next job of its channel run', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const ticket = queue.reserve('reply', 'a');
      const a2 = queue.run('reply', 'a', rec.job('a2'));
      expect(queue.pending('reply')).toBe(2);

      ticket.cancel();

      await expect(a2).resolves.toBe('a2');
      expect(rec.started).toEqual(['a2']);
      expect(queue.pending('reply')).toBe(0);
      await expect(ticket.run(rec.job('late'))).rejects.toBeInstanceOf(AbortedError);
      expect(rec.started).toEqual(['a2']);
    });

    it('runs only one job per ticket', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const ticket = queue.reserve('reply', 'a');
      const first = ticket.run(rec.gated('first'));

      await expect(ticket.run(rec.job('second'))).rejects.toThrow('A ticket runs only one job.');
      rec.open('first');
      await expect(first).resolves.toBe('first');
      expect(rec.started).toEqual(['first']);
    });
  });

  describe('failures', () => {
    it('rejects with the error of a failing job and goes on with the next one', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const failing = queue.run('reply', 'a', async () => {
        throw new Error('model exploded');
      });
      const throwingSync = queue.run('reply', 'a', (() => {
        throw new Error('thrown before any await');
      }) as Job<string>);
      const next = queue.run('reply', 'a', rec.job('next'));

      await expect(failing).rejects.toThrow('model exploded');
      await expect(throwingSync).rejects.toThrow('thrown before any await');
      await expect(next).resolves.toBe('next');
      expect(queue.pending('reply')).toBe(0);
    });
  });

  describe('bounds', () => {
    it('refuses a job with QueueFullError when the lane is full and its channel already has one there, and never runs it', async () => {
      const queue = new GenerationQueue({ maxPending: 2 });
      const rec = recorder();
      const running = queue.run('reply', 'a', rec.gated('r1'));
      const waiting = queue.run('reply', 'b', rec.job('r2'));
      let refusedRan = false;

      let refusal: unknown;
      try {
        void queue.run('reply', 'b', async () => {
          refusedRan = true;
          return 'r3';
        });
      } catch (error) {
        refusal = error;
      }

      expect(refusal).toBeInstanceOf(QueueFullError);
      expect((refusal as QueueFullError).pending).toBe(2);
      expect(() => queue.reserve('reply', 'a')).toThrow(QueueFullError);
      expect(queue.pending('reply')).toBe(2);
      rec.open('r1');
      await Promise.all([running, waiting]);
      await drain();
      expect(refusedRan).toBe(false);
      expect(rec.started).toEqual(['r1', 'r2']);
    });

    it('counts each lane separately and takes work again once a place frees up', async () => {
      const queue = new GenerationQueue({ maxPending: 1 });
      const rec = recorder();
      const reply = queue.run('reply', 'a', rec.gated('reply'));

      expect(() => queue.reserve('reply', 'a')).toThrow(QueueFullError);
      await expect(queue.run('sentiment', 'a', rec.job('sentiment'))).resolves.toBe('sentiment');

      rec.open('reply');
      await reply;
      await expect(queue.run('reply', 'a', rec.job('after'))).resolves.toBe('after');
    });

    it('gives a channel with nothing in the lane a place past the cap, served within the round, and refuses its second', async () => {
      const queue = new GenerationQueue({ maxPending: 4 });
      const rec = recorder();
      const busy = [queue.run('reply', 'busy', rec.gated('b1')), ...['b2', 'b3', 'b4'].map((name) => queue.run('reply', 'busy', rec.job(name)))];
      expect(() => queue.reserve('reply', 'busy')).toThrow(QueueFullError);

      const quiet = queue.run('reply', 'quiet', rec.job('q1'));
      expect(queue.pending('reply')).toBe(5);
      expect(() => queue.reserve('reply', 'quiet')).toThrow(QueueFullError);

      rec.open('b1');
      await Promise.all([...busy, quiet]);
      expect(rec.started).toEqual(['b1', 'b2', 'q1', 'b3', 'b4']);
    });
  });

  describe('close()', () => {
    it('aborts the running job through its signal, rejects waiting jobs with AbortedError and refuses new work', async () => {
      const queue = new GenerationQueue();
      let seenReason: unknown;
      const started: string[] = [];
      const running = queue.run('reply', 'a', (signal) => {
        started.push('running');
        return new Promise<string>((_, reject) => {
          signal.addEventListener('abort', () => {
            seenReason = signal.reason;
            reject(signal.reason);
          });
        });
      });
      const waitingSameChannel = queue.run('reply', 'a', async () => (started.push('waiting-a'), 'waiting-a'));
      const waitingOtherChannel = queue.run('reply', 'b', async () => (started.push('waiting-b'), 'waiting-b'));
      const waitingSentiment = queue.reserve('sentiment', 'c');
      await drain();
      expect(started).toEqual(['running']);
      const outcomes = Promise.allSettled([running, waitingSameChannel, waitingOtherChannel]);

      await queue.close('Shutting down for the test.');

      const settled = await outcomes;
      for (const outcome of settled) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(AbortedError);
        expect(((outcome as PromiseRejectedResult).reason as Error).message).toBe('Shutting down for the test.');
      }
      expect(seenReason).toBeInstanceOf(AbortedError);
      expect(started).toEqual(['running']);
      expect(queue.pending('reply')).toBe(0);
      expect(queue.pending('sentiment')).toBe(0);
      await expect(waitingSentiment.run(async () => 'never')).rejects.toBeInstanceOf(AbortedError);
      expect(() => queue.reserve('reply', 'a')).toThrow(AbortedError);
      expect(() => queue.run('sentiment', 'a', async () => 'never')).toThrow('Shutting down for the test.');
    });

    it('waits for a running job that finishes despite the abort, and hands back its result', async () => {
      const queue = new GenerationQueue();
      let sawAbort = false;
      const stubborn = queue.run('reply', 'a', async (signal) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        sawAbort = signal.aborted;
        return 'finished anyway';
      });
      await drain();

      await queue.close();

      expect(sawAbort).toBe(true);
      await expect(stubborn).resolves.toBe('finished anyway');
    });

    it('resolves at once when nothing is running', async () => {
      const queue = new GenerationQueue();
      await queue.run('reply', 'a', async () => 'done');

      await expect(queue.close()).resolves.toBeUndefined();
      expect(() => queue.reserve('reply', 'a')).toThrow('The bot is shutting down.');
    });
  });

  describe('abort of one ticket (the Stop button)', () => {
    it('takes a waiting job out: it never starts, rejects with the reason, and the jobs behind it run', async () => {
      const queue = new GenerationQueue();
      const rec = recorder();
      const blocker = queue.run('reply', 'a', rec.gated('a1'));
      const stopped = queue.reserve('reply', 'a');
      const stoppedRun = stopped.run(rec.job('a2'));
      const after = queue.run('reply', 'a', rec.job('a3'));
      await drain();

      stopped.abort(new Error('stopped by user'));
      await expect(stoppedRun).rejects.toThrow('stopped by user');
      expect(queue.pending('reply')).toBe(2);
      rec.open('a1');
      await Promise.all([blocker, after]);

      expect(rec.started).toEqual(['a1', 'a3']);
    });

    it('aborts a ticket whose job is not given yet: run() then rejects at once', async () => {
      const queue = new GenerationQueue();
      const ticket = queue.reserve('reply', 'a');

      ticket.abort(new Error('stopped early'));

      expect(queue.pending('reply')).toBe(0);
      await expect(ticket.run(async () => 'never')).rejects.toThrow('stopped early');
    });

    it('signals a running job with the reason, and leaves the other lanes and channels alone', async () => {
      const queue = new GenerationQueue();
      let reason: unknown;
      const running = queue.reserve('reply', 'a');
      const result = running.run(
        (signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              reason = signal.reason;
              reject(signal.reason);
            }),
          ),
      );
      const other = queue.run('reply', 'b', async () => 'b done');
      await drain();

      running.abort(new Error('stop this one'));

      await expect(result).rejects.toThrow('stop this one');
      expect(reason).toBeInstanceOf(Error);
      await expect(other).resolves.toBe('b done');
    });
  });

  describe('background jobs (learning a calibration)', () => {
    it('runs a real job after at most the one background job already running, however many wait', async () => {
      const queue = new GenerationQueue();
      const log = recorder();
      const background = [queue.runWhenIdle('sentiment', log.gated('learn 1')), queue.runWhenIdle('sentiment', log.job('learn 2')), queue.runWhenIdle('sentiment', log.job('learn 3'))];
      await drain();
      expect(log.started).toEqual(['learn 1']);

      const real = queue.run('sentiment', 'channel', log.job('message'));
      expect(queue.pending('sentiment')).toBe(1);
      log.open('learn 1');
      await real;
      await Promise.all(background);

      expect(log.started).toEqual(['learn 1', 'message', 'learn 2', 'learn 3']);
      expect(log.maxRunning).toBe(1);
      expect(queue.pending('sentiment')).toBe(0);
    });

    it('leaves background jobs out of pending, and rejects the waiting ones on close', async () => {
      const queue = new GenerationQueue();
      const log = recorder();
      const running = queue.runWhenIdle('sentiment', log.gated('learn 1'));
      const waiting = queue.runWhenIdle('sentiment', log.job('learn 2'));
      await drain();
      expect(queue.pending('sentiment')).toBe(0);
      expect(queue.isBusy('sentiment')).toBe(false);

      const closed = queue.close();
      await expect(waiting).rejects.toBeInstanceOf(AbortedError);
      log.open('learn 1');
      await closed;
      await expect(running).resolves.toBe('learn 1');
      await expect(queue.runWhenIdle('sentiment', log.job('late'))).rejects.toBeInstanceOf(AbortedError);
      expect(log.started).toEqual(['learn 1']);
    });
  });
});

/** A job that runs until its signal aborts, then rejects with the reason. */
function untilAborted(started: string[], name: string): Job<string> {
  return (signal) => {
    started.push(name);
    return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  };
}

describe('GenerationQueue with parallelReplies', () => {
  it('runs up to parallelReplies replies of different channels at once, and the next one as soon as a slot frees', async () => {
    const queue = new GenerationQueue({ parallelReplies: 3 });
    const rec = recorder();
    const runs = ['a', 'b', 'c', 'd'].map((channel) => queue.run('reply', channel, rec.gated(`${channel}1`)));
    await drain();

    expect(rec.started).toEqual(['a1', 'b1', 'c1']);
    expect(queue.running('reply')).toBe(3);
    expect(queue.pending('reply')).toBe(4);

    rec.open('b1');
    await drain();
    expect(rec.started).toEqual(['a1', 'b1', 'c1', 'd1']);
    expect(queue.running('reply')).toBe(3);

    for (const name of ['a1', 'c1', 'd1']) rec.open(name);
    await expect(Promise.all(runs)).resolves.toEqual(['a1', 'b1', 'c1', 'd1']);
    expect(rec.maxRunning).toBe(3);
    expect(queue.running('reply')).toBe(0);
    expect(queue.pending('reply')).toBe(0);
  });

  it('never runs two replies of one channel at once, even with slots free', async () => {
    const queue = new GenerationQueue({ parallelReplies: 4 });
    const rec = recorder();
    const runs = [queue.run('reply', 'a', rec.gated('a1')), queue.run('reply', 'a', rec.gated('a2')), queue.run('reply', 'a', rec.gated('a3')), queue.run('reply', 'b', rec.gated('b1'))];
    await drain();

    expect(rec.started).toEqual(['a1', 'b1']);
    expect(queue.running('reply')).toBe(2);

    rec.open('a1');
    await drain();
    expect(rec.started).toEqual(['a1', 'b1', 'a2']);
    rec.open('a2');
    await drain();
    expect(rec.started).toEqual(['a1', 'b1', 'a2', 'a3']);
    rec.open('a3');
    rec.open('b1');
    await Promise.all(runs);
    expect(rec.finished).toEqual(['a1', 'a2', 'a3', 'b1']);
  });

  it('keeps arrival order within each channel while channels run side by side', async () => {
    const queue = new GenerationQueue({ parallelReplies: 3 });
    const rec = recorder();
    // Jobs of varying length, so an order violation within a channel would show in the finish order.
    const lengths: Record<string, number[]> = { a: [6, 1, 4], b: [0, 5, 2], c: [3, 3, 0] };
    const runs = [0, 1, 2].flatMap((i) => Object.entries(lengths).map(([channel, turns]) => queue.run('reply', channel, rec.job(`${channel}${i + 1}`, turns[i]))));

    const results = await Promise.all(runs);

    expect(results).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3', 'b3', 'c3']);
    for (const channel of ['a', 'b', 'c']) {
      const own = (list: string[]) => list.filter((name) => name.startsWith(channel));
      expect(own(rec.started)).toEqual([`${channel}1`, `${channel}2`, `${channel}3`]);
      expect(own(rec.finished)).toEqual([`${channel}1`, `${channel}2`, `${channel}3`]);
    }
    expect(rec.maxRunning).toBe(3);
  });

  it('takes turns round-robin across channels as slots free up', async () => {
    const queue = new GenerationQueue({ parallelReplies: 2 });
    const rec = recorder();
    const names = ['z1', 'y1', 'a1', 'a2', 'a3', 'a4', 'a5', 'b1', 'b2', 'c1'];
    const runs = names.map((name) => queue.run('reply', name[0]!, rec.gated(name)));
    await drain();
    expect(rec.started).toEqual(['z1', 'y1']);

    // Finish the running jobs one at a time, oldest first, and watch who takes each freed slot.
    for (let i = 0; i < names.length; i++) {
      rec.open(rec.started[i]!);
      await drain();
    }
    await Promise.all(runs);

    expect(rec.started).toEqual(['z1', 'y1', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4', 'a5']);
    expect(rec.maxRunning).toBe(2);
  });

  it('skips a channel that is running for now but keeps its place in the round', async () => {
    const queue = new GenerationQueue({ parallelReplies: 2 });
    const rec = recorder();
    const runs = [
      queue.run('reply', 'a', rec.gated('a1')),
      queue.run('reply', 'b', rec.gated('b1')),
      queue.run('reply', 'a', rec.gated('a2')),
      queue.run('reply', 'c', rec.gated('c1')),
      queue.run('reply', 'd', rec.gated('d1')),
      queue.run('reply', 'e', rec.gated('e1')),
    ];
    await drain();

    rec.open('b1');
    await drain();
    expect(rec.started).toEqual(['a1', 'b1', 'c1']);
    rec.open('a1');
    await drain();
    // a waited longer than d and e, so its next job goes first once a1 is done.
    expect(rec.started).toEqual(['a1', 'b1', 'c1', 'a2']);
    for (const name of ['c1', 'a2', 'd1', 'e1']) {
      rec.open(name);
      await drain();
    }
    await Promise.all(runs);
    expect(rec.started).toEqual(['a1', 'b1', 'c1', 'a2', 'd1', 'e1']);
  });

  it('keeps the sentiment lane at one job at a time, running beside a full reply lane', async () => {
    const queue = new GenerationQueue({ parallelReplies: 2 });
    const replies = recorder();
    const sentiments = recorder();
    const running = [queue.run('reply', 'a', replies.gated('ra')), queue.run('reply', 'b', replies.gated('rb'))];
    const waitingReply = queue.run('reply', 'c', replies.gated('rc'));
    await drain();

    const labels = await Promise.all(['a', 'b', 'c'].map((channel) => queue.run('sentiment', channel, sentiments.job(`s${channel}`))));

    expect(labels).toEqual(['sa', 'sb', 'sc']);
    expect(sentiments.maxRunning).toBe(1);
    expect(replies.started).toEqual(['ra', 'rb']);
    expect(queue.slots('sentiment')).toBe(1);
    expect(queue.slots('reply')).toBe(2);
    for (const name of ['ra', 'rb']) replies.open(name);
    await Promise.all(running);
    replies.open('rc');
    await waitingReply;
  });

  it('says a new reply would wait only when the replies there fill every slot, or its own channel has one', async () => {
    const queue = new GenerationQueue({ parallelReplies: 2 });
    const rec = recorder();
    expect(queue.isBusy('reply')).toBe(false);

    const first = queue.run('reply', 'a', rec.gated('a1'));
    await drain();
    expect(queue.isBusy('reply')).toBe(false);
    expect(queue.isBusy('reply', 'b')).toBe(false);
    expect(queue.isBusy('reply', 'a')).toBe(true);

    const second = queue.run('reply', 'b', rec.gated('b1'));
    await drain();
    expect(queue.isBusy('reply')).toBe(true);
    expect(queue.isBusy('reply', 'c')).toBe(true);

    rec.open('a1');
    await first;
    expect(queue.isBusy('reply', 'c')).toBe(false);
    rec.open('b1');
    await second;
    expect(queue.isBusy('reply', 'a')).toBe(false);
  });

  it('stops one of the running replies: the others go on and the next waiting one takes its slot', async () => {
    const queue = new GenerationQueue({ parallelReplies: 3 });
    const started: string[] = [];
    const a = queue.run('reply', 'a', untilAborted(started, 'a1'));
    const bTicket = queue.reserve('reply', 'b');
    const b = bTicket.run(untilAborted(started, 'b1'));
    const rec = recorder();
    const c = queue.run('reply', 'c', rec.gated('c1'));
    const d = queue.run('reply', 'd', rec.gated('d1'));
    await drain();
    expect(started).toEqual(['a1', 'b1']);
    expect(rec.started).toEqual(['c1']);

    bTicket.abort(new Error('stopped by user'));

    await expect(b).rejects.toThrow('stopped by user');
    await drain();
    expect(rec.started).toEqual(['c1', 'd1']);
    expect(queue.running('reply')).toBe(3);
    rec.open('c1');
    rec.open('d1');
    await expect(Promise.all([c, d])).resolves.toEqual(['c1', 'd1']);
    expect(queue.running('reply')).toBe(1);
    const aSettled = Promise.allSettled([a]);
    await queue.close('closing after the test');
    expect((await aSettled)[0].status).toBe('rejected');
  });

  it('close() aborts every running reply and resolves only once all of them have settled', async () => {
    const queue = new GenerationQueue({ parallelReplies: 3 });
    const started: string[] = [];
    const quick = [queue.run('reply', 'a', untilAborted(started, 'a1')), queue.run('reply', 'b', untilAborted(started, 'b1'))];
    const slowGate = deferred();
    let slowSawAbort = false;
    const slow = queue.run('reply', 'c', async (signal) => {
      started.push('c1');
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      slowSawAbort = true;
      await slowGate.promise;
      return 'c1 ended after the abort';
    });
    const waiting = queue.run('reply', 'd', async () => (started.push('d1'), 'd1'));
    await drain();
    const outcomes = Promise.allSettled([...quick, waiting]);

    let closed = false;
    const closing = queue.close('Shutting down for the test.').then(() => (closed = true));
    await drain();

    expect(slowSawAbort).toBe(true);
    expect(closed).toBe(false);
    expect(queue.running('reply')).toBe(1);
    slowGate.resolve();
    await closing;
    expect(closed).toBe(true);
    await expect(slow).resolves.toBe('c1 ended after the abort');
    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(AbortedError);
    }
    expect(started).toEqual(['a1', 'b1', 'c1']);
    expect(queue.running('reply')).toBe(0);
    expect(queue.pending('reply')).toBe(0);
  });

  it('keeps the cap: running jobs count toward maxPending, and only a channel with nothing there gets a place past it', async () => {
    const queue = new GenerationQueue({ maxPending: 2, parallelReplies: 2 });
    const rec = recorder();
    const runs = [queue.run('reply', 'a', rec.gated('a1')), queue.run('reply', 'b', rec.gated('b1'))];
    await drain();

    expect(() => queue.reserve('reply', 'a')).toThrow(QueueFullError);
    expect(() => queue.reserve('reply', 'b')).toThrow(QueueFullError);
    const quiet = queue.run('reply', 'c', rec.job('c1'));
    expect(queue.pending('reply')).toBe(3);
    expect(() => queue.reserve('reply', 'c')).toThrow(QueueFullError);

    rec.open('a1');
    await expect(quiet).resolves.toBe('c1');
    rec.open('b1');
    await Promise.all(runs);
    expect(rec.started).toEqual(['a1', 'b1', 'c1']);
    expect(rec.maxRunning).toBe(2);
  });

  it('refuses a parallelReplies below one or not a whole number', () => {
    expect(() => new GenerationQueue({ parallelReplies: 0 })).toThrow('parallelReplies must be a whole number of at least 1, got 0.');
    expect(() => new GenerationQueue({ parallelReplies: 1.5 })).toThrow(RangeError);
  });
});
