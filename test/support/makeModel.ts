// Generates a random-weight test model: npx tsx test/support/makeModel.ts tiny|qwen [outPath]
// Without outPath it fills test/.models (a no-op if the model there is current).
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { ensureQwenShapeModel, ensureTinyModel, generateModel, QWEN_SHAPE_SPEC, TINY_SPEC } from './testModels.js';

const [which, outPath] = process.argv.slice(2);
const models = {
  tiny: { spec: TINY_SPEC, ensure: ensureTinyModel },
  qwen: { spec: QWEN_SHAPE_SPEC, ensure: ensureQwenShapeModel },
};

if (which !== 'tiny' && which !== 'qwen') {
  console.error('usage: npx tsx test/support/makeModel.ts tiny|qwen [outPath]');
  process.exit(2);
}

const started = performance.now();
let path: string;
if (outPath) {
  path = resolve(outPath);
  await generateModel(models[which].spec, path);
} else {
  path = await models[which].ensure();
}
const { size } = await stat(path);
console.log(`${path}: ${(size / 1e6).toFixed(2)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
