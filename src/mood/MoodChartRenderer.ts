import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MoodChartOptions } from './moodChart.js';

export interface MoodChartRendererOptions {
  /**
   * How long one chart may take on the worker, in ms, before it fails and the worker is stopped (a
   * hung draw would otherwise leave its /mood deferred for good and every later chart behind it).
   * Default 15000: a 30-day chart takes ~90 ms (bench:mood).
   */
  timeoutMs?: number;
  /** Starts a worker thread. Default {@link chartWorker}. */
  createWorker?: () => Worker;
}

interface Waiting {
  worker: Worker;
  resolve(png: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Draws mood charts on a worker thread of its own. A 30-day chart takes ~90 ms of CPU (bench:mood);
 * on the main thread that would stall the event loop, and with it the model's next decode step and
 * every reply's streaming. The worker starts on the first chart and does not keep the process alive.
 */
export class MoodChartRenderer {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, Waiting>();
  private readonly timeoutMs: number;
  private readonly createWorker: () => Worker;

  constructor({ timeoutMs = 15_000, createWorker = chartWorker }: MoodChartRendererOptions = {}) {
    this.timeoutMs = timeoutMs;
    this.createWorker = createWorker;
  }

  render(options: MoodChartOptions): Promise<Buffer> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The worker is stuck in a draw: stop it (failing what else it held); the next chart gets a new one.
        this.stop(worker, new Error(`Drawing the mood chart took longer than ${this.timeoutMs / 1000} s; it was given up.`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { worker, resolve, reject, timer });
      worker.ref();
      worker.postMessage({ id, options });
    });
  }

  async dispose(): Promise<void> {
    const worker = this.worker;
    if (worker) await this.stop(worker, new Error('The chart renderer was closed.'));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = this.createWorker();
    worker.unref();
    worker.on('message', ({ id, png, error }: { id: number; png?: Uint8Array; error?: string }) => {
      const waiting = this.settle(id);
      if (![...this.pending.values()].some((entry) => entry.worker === worker)) worker.unref();
      if (png) waiting?.resolve(Buffer.from(png));
      else waiting?.reject(new Error(`Drawing the mood chart failed: ${error}`));
    });
    // A worker that dies fails what it held, and only that: a late exit of a stopped worker never
    // touches the charts sent to the one after it. The next chart starts a new one.
    const died = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(worker, error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`The chart worker stopped (exit code ${code}).`)));
    this.worker = worker;
    return worker;
  }

  /** Fails the worker's charts with `error` and terminates it; a new chart starts a new worker at once. */
  private async stop(worker: Worker, error: Error): Promise<void> {
    if (this.worker === worker) this.worker = undefined;
    this.failAll(worker, error);
    await worker.terminate();
  }

  private settle(id: number): Waiting | undefined {
    const waiting = this.pending.get(id);
    this.pending.delete(id);
    if (waiting) clearTimeout(waiting.timer);
    return waiting;
  }

  private failAll(worker: Worker, error: Error): void {
    for (const [id, waiting] of this.pending) if (waiting.worker === worker) this.settle(id)?.reject(error);
  }
}

/** The chart worker thread (chartWorker.ts, or its built .js). */
export function chartWorker(): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(`./chartWorker${fromSources ? '.ts' : '.js'}`, import.meta.url).href;
  // From TypeScript sources (tsx, vitest) the worker registers tsx's loader first (Node 20 does not
  // apply a worker's --import before its entry); built JavaScript is loaded as it is.
  const tsxRequire = fromSources ? createRequire(import.meta.url).resolve('tsx/cjs') : undefined;
  return tsxRequire
    ? new Worker(`require(${JSON.stringify(tsxRequire)}); require(${JSON.stringify(fileURLToPath(entry))});`, { eval: true })
    : new Worker(new URL(entry));
}
