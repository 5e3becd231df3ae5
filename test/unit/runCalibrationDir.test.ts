import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCalibrationDir } from '../support/runCalibrationDir.js';

describe('runCalibrationDir', () => {
  it("gives every call of one run the same folder, named by the run's process, and removes the folders of runs that ended", () => {
    // A process that has ended: its pid names a stale run folder.
    const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const stale = join(tmpdir(), `mood-bot-calibration-run-${ended}`);
    mkdirSync(stale, { recursive: true });

    const first = runCalibrationDir();
    const second = runCalibrationDir();

    expect(second).toBe(first);
    expect(first).toMatch(/mood-bot-calibration-run-\d+$/);
    expect(first).not.toBe(stale);
    expect(existsSync(first)).toBe(true);
    expect(existsSync(stale)).toBe(false);
  });
});
