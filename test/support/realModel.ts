// Where the real-model test tier finds its models: REAL_MODEL, or the files that
// `npm run fetch-test-model` puts into test/.models/ (SmolLM2-135M and the Qwen2.5-class 0.5B, the
// chat models; and Gemma 3 270M, a base model whose file has no chat template).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS_DIR } from './testModels.js';

export const REAL_MODELS = {
  smollm2: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  qwen: 'Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf',
  gemma3: 'gemma-3-270m.Q4_K_M.gguf',
} as const;
export type RealModelName = keyof typeof REAL_MODELS;

/** The instruction-tuned ones: the sentiment tier runs on each. */
const CHAT_MODELS: readonly RealModelName[] = ['smollm2', 'qwen'];

/** Gemma 3 270M's path when it was fetched (the model-families part of the real tier runs on it). */
export function realGemma3Path(): string | undefined {
  const path = join(MODELS_DIR, REAL_MODELS.gemma3);
  return existsSync(path) ? path : undefined;
}

/** The small model the reply tier runs on (fast enough for dozens of real replies). */
export const REAL_MODEL_FILE = REAL_MODELS.smollm2;
export const REAL_MODEL_PATH = join(MODELS_DIR, REAL_MODEL_FILE);

function chosenModel(): string | undefined {
  const chosen = process.env.REAL_MODEL?.trim();
  // A REAL_MODEL that is not there is a mistake to report, not a reason to skip quietly.
  if (chosen && !existsSync(chosen)) throw new Error(`REAL_MODEL=${chosen}: no such file.`);
  return chosen || undefined;
}

/** The real model's path, or undefined when there is none (the tier is then skipped, saying how to get it). */
export function realModelPath(): string | undefined {
  const chosen = chosenModel();
  if (chosen) return chosen;
  return existsSync(REAL_MODEL_PATH) ? REAL_MODEL_PATH : undefined;
}

/** Every real model the sentiment tier runs on: REAL_MODEL alone when set, else each fetched model. */
export function realModelPaths(): Array<{ name: string; path: string }> {
  const chosen = chosenModel();
  if (chosen) return [{ name: 'REAL_MODEL', path: chosen }];
  return CHAT_MODELS.map((name) => ({ name, path: join(MODELS_DIR, REAL_MODELS[name]) }))
    .filter(({ path }) => existsSync(path));
}

export const HOW_TO_GET_A_REAL_MODEL =
  'real-model tests skipped: no model at ' + REAL_MODEL_PATH + ' (run `npm run fetch-test-model`, or set REAL_MODEL=path/to/model.gguf)';
