import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { oneStartAtATime, runCalibrationDir } from '../support/runCalibrationDir.js';

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

  it('runs one start of a model at a time across the run, and takes over a lock whose owner died', async () => {
    const model = `/models/lock-test-${process.pid}.gguf`;
    const order: string[] = [];
    const start = (name: string) => async () => {
      order.push(`${name} in`);
      await new Promise((resolve) => setTimeout(resolve, 60));
      order.push(`${name} out`);
      return name;
    };
    expect(await Promise.all([oneStartAtATime(model, start('a'), 10), oneStartAtATime(model, start('b'), 10)])).toEqual(['a', 'b']);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out']);

    const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const lock = join(runCalibrationDir(), `lock-test-${process.pid}.gguf.lock`);
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), ended);
    expect(await oneStartAtATime(model, async () => 'taken over', 10)).toBe('taken over');
    expect(existsSync(lock)).toBe(false);
  });
});
