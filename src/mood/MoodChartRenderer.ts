import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MoodChartOptions } from './moodChart.js';

/**
 * Draws mood charts on a worker thread of its own. A 30-day chart takes ~90 ms of CPU (bench:mood);
 * on the main thread that would stall the event loop, and with it the model's next decode step and
 * every reply's streaming. The worker starts on the first chart and does not keep the process alive.
 */
export class MoodChartRenderer {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(png: Buffer): void; reject(error: Error): void }>();

  render(options: MoodChartOptions): Promise<Buffer> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, options });
    });
  }

  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('The chart renderer was closed.'));
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const fromSources = import.meta.url.endsWith('.ts');
    const entry = new URL(`./chartWorker${fromSources ? '.ts' : '.js'}`, import.meta.url).href;
    // From TypeScript sources (tsx, vitest) the worker registers tsx's loader first (Node 20 does not
    // apply a worker's --import before its entry); built JavaScript is loaded as it is.
    const tsxRequire = fromSources ? createRequire(import.meta.url).resolve('tsx/cjs') : undefined;
    const worker = tsxRequire
      ? new Worker(`require(${JSON.stringify(tsxRequire)}); require(${JSON.stringify(fileURLToPath(entry))});`, { eval: true })
      : new Worker(new URL(entry));
    worker.unref();
    worker.on('message', ({ id, png, error }: { id: number; png?: Uint8Array; error?: string }) => {
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      if (png) waiting?.resolve(Buffer.from(png));
      else waiting?.reject(new Error(`Drawing the mood chart failed: ${error}`));
    });
    // A worker that dies fails what it held; the next chart starts a new one.
    const died = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`The chart worker stopped (exit code ${code}).`)));
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
