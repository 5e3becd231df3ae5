import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { resolveModelPath } from '../../src/engine/loadModel.js';
import { tempDirs } from '../support/tempDir.js';
import { ensureTinyModel } from '../support/testModels.js';

const dirs = tempDirs('load-model-');
afterAll(() => dirs.removeAll());

const failure = (promise: Promise<unknown>) => promise.then(() => expect.unreachable('it resolved'), (error: unknown) => error as Error);

describe('resolveModelPath', () => {
  it('returns a local .gguf path as an absolute path', async () => {
    const path = await ensureTinyModel();
    expect(await resolveModelPath({ model: path, modelsDir: dirs.make() })).toBe(path);
  });

  it('names a missing local file and how to fix MODEL', async () => {
    const missing = join(dirs.make(), 'nope.gguf');
    const error = await failure(resolveModelPath({ model: missing, modelsDir: dirs.make() }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`Model file not found: ${missing}. Set MODEL to an existing .gguf file or an hf: URI.`);
  });

  it('says in one line that MODELS_DIR runs into a file, before any download', async () => {
    const file = join(dirs.make(), 'models');
    writeFileSync(file, 'a file, not a folder');
    let started = false;
    const error = await failure(resolveModelPath({ model: 'hf:someone/some-model-GGUF:Q8_0', modelsDir: join(file, 'sub'), onDownloadStart: () => (started = true) }));
    expect(started).toBe(false);
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`MODELS_DIR=${join(file, 'sub')}: part of that path is a file, not a folder. Set MODELS_DIR to a folder you can write (default data/models).`);
  });

  // This machine and CI have no route to Hugging Face; with one, these fail just as clearly (404).
  it('fails clearly, without hanging, when an hf: model cannot be downloaded', async () => {
    let started = false;
    const uri = 'hf:no-such-user-0000/no-such-model-GGUF:Q8_0';
    const error = await failure(resolveModelPath({ model: uri, modelsDir: dirs.make(), stallTimeoutMs: 3000, onDownloadStart: () => (started = true) }));
    expect(started).toBe(true);
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(new RegExp(`^Could not download the model ${uri} into .+: .+ download the \\.gguf file yourself and set MODEL to its path\\.$`));
  }, 30_000);

  it('gives up on an exact-file hf: URI whose download makes no progress', async () => {
    const uri = 'hf:no-such-user-0000/no-such-model-GGUF/model-q8_0.gguf';
    const error = await failure(resolveModelPath({ model: uri, modelsDir: dirs.make(), stallTimeoutMs: 2000 }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`Could not download the model ${uri}`);
  }, 30_000);
});
