import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
