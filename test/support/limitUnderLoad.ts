import os from 'node:os';

/**
 * A test's time limit for work that takes well under `ms` on a quiet machine, stretched by how busy
 * the machine is when the test file starts: the one-minute load average per core, from ×1 (idle or
 * loaded up to its cores) to ×`maxFactor`. On a 2-core machine at load 10 (other work beside the
 * suite) a real-model test runs about five times slower; its check is the same, only the limit moves.
 */
export function limitUnderLoad(ms: number, { load = os.loadavg()[0]!, cores = os.availableParallelism(), maxFactor = 8 } = {}): number {
  const factor = Math.min(maxFactor, Math.max(1, load / cores));
  return Math.round(ms * factor);
}

/**
 * Threads for a test that may use the whole machine (the real tier, its files run one at a time):
 * every core when the machine is otherwise idle, else 1. On a busy 2-core machine (load 11-13) 2
 * threads made 0.6 tokens/s against 17.7 with 1 (test/bench/threadsUnderLoad.ts): llama.cpp's threads
 * wait for each other's turn on a core. `busy` is how many cores are at work now (measured over a
 * short moment, not the one-minute load average, which still counts the suite's files that just
 * ended).
 */
export function threadsUnderLoad({ busy = busyCoresNow(), cores = os.availableParallelism() } = {}): number {
  return busy <= 0.5 ? cores : 1;
}

/** Cores busy over the next `ms` milliseconds, from the CPUs' own time counters (blocks that long). */
export function busyCoresNow(ms = 500): number {
  const total = (cpus: os.CpuInfo[]) => cpus.reduce((sum, { times }) => ({ idle: sum.idle + times.idle, all: sum.all + times.user + times.nice + times.sys + times.irq + times.idle }), { idle: 0, all: 0 });
  const cpus = os.cpus();
  const before = total(cpus);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const after = total(os.cpus());
  const all = after.all - before.all;
  return all > 0 ? (cpus.length * (all - (after.idle - before.idle))) / all : 0;
}
