// Where the real-model test tier finds its model: REAL_MODEL, or the SmolLM2 file that
// `npm run fetch-test-model` puts into test/.models/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS_DIR } from './testModels.js';

export const REAL_MODEL_FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf';
export const REAL_MODEL_PATH = join(MODELS_DIR, REAL_MODEL_FILE);

/** The real model's path, or undefined when there is none (the tier is then skipped, saying how to get it). */
export function realModelPath(): string | undefined {
  const chosen = process.env.REAL_MODEL?.trim();
  // A REAL_MODEL that is not there is a mistake to report, not a reason to skip quietly.
  if (chosen && !existsSync(chosen)) throw new Error(`REAL_MODEL=${chosen}: no such file.`);
  if (chosen) return chosen;
  return existsSync(REAL_MODEL_PATH) ? REAL_MODEL_PATH : undefined;
}

export const HOW_TO_GET_A_REAL_MODEL =
  'real-model tests skipped: no model at ' + REAL_MODEL_PATH + ' (run `npm run fetch-test-model`, or set REAL_MODEL=path/to/model.gguf)';
