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
