import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const PREFIX = 'mood-bot-calibration-run-';

/** The test run's process: vitest's own (a forked test file's parent, or this process with threads). */
function runPid(): number {
  return process.send && process.env.VITEST_POOL_ID !== undefined ? process.ppid : process.pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A calibration cache folder shared by every test file of one vitest run: a model's learned fit is
 * really learned in each run (never taken from an earlier run's cache), but once, whichever file
 * asks first, and read from here by the others (the e2e and real tiers both start the real model
 * with `learned`). Folders of runs that have ended are removed here.
 */
export function runCalibrationDir(): string {
  const pid = runPid();
  for (const name of readdirSync(tmpdir())) {
    const owner = name.startsWith(PREFIX) ? Number(name.slice(PREFIX.length)) : NaN;
    if (Number.isInteger(owner) && owner !== pid && !alive(owner)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  const dir = join(tmpdir(), `${PREFIX}${pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Runs `start` (an engine start that learns a fit into runCalibrationDir() when there is none) while
 * holding the run's lock for this model, across the run's test files: two files starting the same
 * model at once would each learn its fit; here the second waits, then reads the first one's. A lock
 * left by a process that died is taken over.
 */
export async function oneStartAtATime<T>(modelPath: string, start: () => Promise<T>, pollMs = 250): Promise<T> {
  const lock = join(runCalibrationDir(), `${basename(modelPath)}.lock`);
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // No owner written yet: it has just taken the lock.
    const owner = Number(readQuietly(join(lock, 'owner')));
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) rmSync(lock, { recursive: true, force: true });
    else await sleep(pollMs);
  }
  writeFileSync(join(lock, 'owner'), String(process.pid));
  try {
    return await start();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function readQuietly(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
