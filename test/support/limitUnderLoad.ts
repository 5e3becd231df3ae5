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

/** How many test files the suite runs at once (vitest.config.ts): each may take its share of the cores. */
export const SUITE_FILES_AT_ONCE = 3;

/**
 * Threads for a real-model test file: its share of the cores (the suite runs SUITE_FILES_AT_ONCE
 * files at once), at least 1; and 1 when more than the other files' part of the cores is busy. On
 * a 2-core machine that is 1: even idle, SmolLM2's replies made 68.8 tokens/s on 1 thread and 56.2
 * on 2 (test/bench/threadsUnderLoad.ts, AMD EPYC), since llama.cpp's two threads wait for each
 * other whenever Node's own thread takes a core; on a busy one (load 11-13), 17.7 against 0.6.
 * `busy` is how many cores are at work now (measured over a short moment, not the one-minute load
 * average, which still counts files that just ended).
 */
export function threadsUnderLoad({ busy = busyCoresNow(), cores = os.availableParallelism(), filesAtOnce = SUITE_FILES_AT_ONCE } = {}): number {
  const share = Math.max(1, Math.floor(cores / filesAtOnce));
  return busy <= cores - share + 0.5 ? share : 1;
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
