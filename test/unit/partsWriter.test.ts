import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { partsWriter } from '../support/partsWriter.js';
import { tempDirs } from '../support/tempDir.js';

const dirs = tempDirs('parts-writer-');
afterAll(() => dirs.removeAll());

describe('partsWriter (fetch-test-model joins a model from its parts with it)', () => {
  it('joins 12 parts in order into one file without a MaxListenersExceededWarning', async () => {
    const dir = dirs.make();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const target = join(dir, 'model.gguf.part');
    writeFileSync(target, 'left from an earlier try');
    const writer = partsWriter(target);
    try {
      for (let n = 1; n <= 12; n++) {
        const part = join(dir, `part${n}`);
        writeFileSync(part, `<${n}>`.repeat(1000));
        await writer.append(part);
      }
      await writer.close();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }

    expect(readFileSync(target, 'utf8')).toBe(Array.from({ length: 12 }, (_, i) => `<${i + 1}>`.repeat(1000)).join(''));
    expect(warnings).toEqual([]);
  });
});
