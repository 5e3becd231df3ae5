// Where the real-model test tier finds its models: REAL_MODEL, or the files that
// `npm run fetch-test-model` puts into test/.models/ (SmolLM2-135M and the Qwen2.5-class 0.5B, the
// chat models; and Gemma 3 270M, a base model whose file has no chat template).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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

/**
 * The model one sentiment file of the real tier runs on (a file per chat model, so the two run side
 * by side): the fetched model of that name, or REAL_MODEL when set, in the Qwen-class file alone.
 */
export function realSentimentModel(file: (typeof CHAT_MODELS)[number]): { name: string; path: string } | undefined {
  const chosen = chosenModel();
  if (chosen) return file === 'qwen' ? { name: 'REAL_MODEL', path: chosen } : undefined;
  const path = join(MODELS_DIR, REAL_MODELS[file]);
  return existsSync(path) ? { name: file, path } : undefined;
}

/** Where the real tier's measured rates go (for the README and the closing notes), one file per test file. */
export function writeTierReport(part: string, report: Record<string, unknown>): void {
  mkdirSync('data/bench', { recursive: true });
  writeFileSync(join('data/bench', `real-model-${part}.json`), JSON.stringify(report, null, 2));
  console.log(`real-model tier, ${part}:`, JSON.stringify(report));
}

export const HOW_TO_GET_A_REAL_MODEL =
  'real-model tests skipped: no model at ' + REAL_MODEL_PATH + ' (run `npm run fetch-test-model`, or set REAL_MODEL=path/to/model.gguf)';
