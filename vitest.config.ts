import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { SUITE_FILES_AT_ONCE } from './test/support/limitUnderLoad.js';

/**
 * The longest files first, so the files running at once end together. Without a timing cache vitest orders
 * files by size, and a long file started last ran alone for its last minutes. The real model's
 * files lead: the Qwen-class sentiment file is the longest, and e2e/models learns SmolLM2's fit
 * before sentimentSmolLM2 needs it (which otherwise waits for it: oneStartAtATime).
 */
const LONGEST_FIRST = [
  'real/sentimentQwen.test.ts',
  'e2e/models.test.ts',
  'real/realReplies.test.ts',
  'real/sentimentSmolLM2.test.ts',
  'e2e/server.test.ts',
  'unit/modelFamilies.test.ts',
  'e2e/shards.test.ts',
  'unit/benchScripts.test.ts',
  'e2e/process.test.ts',
  'unit/terminalChat.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = LONGEST_FIRST.findIndex((name) => file.moduleId.endsWith(`/test/${name}`));
      return at === -1 ? LONGEST_FIRST.length : at;
    };
    return [...(await super.sort(files))].sort((a, b) => rank(a) - rank(b));
  }
}

// The suite's settings, here rather than in the npm script, so `npx vitest run <any path>` runs a
// file the way `npm test` does. Limits are sized for real inference on a small machine.
//
// Every tier together, SUITE_FILES_AT_ONCE (3) files at a time on any machine. The unit, e2e and
// server files load their models on 1 thread (the tiny models, the bots they start, the
// llama-servers) and many spend most of their time waiting on processes, sockets and timers; a
// third file fills those waits (on 2 idle cores, two at a time kept the CPU 88% busy and took
// 589 s; three at a time, 97% and 524 s). A real-model file takes its share of
// the cores (threadsUnderLoad: 1 on a 2-core machine, where the CPU is better spent on three files
// at 1 thread each than on one at 2).
export default defineConfig({
  test: {
    include: ['test/{unit,e2e,server,real}/**/*.test.ts'],
    maxWorkers: SUITE_FILES_AT_ONCE,
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
