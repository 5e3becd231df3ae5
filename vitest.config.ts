import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The longest files of the first group, longest first (a clean clone's CI run: 142, 107, 78, 57,
 * 55, 46 s). Without a timing cache vitest orders files by size, and the 107-s file started last
 * and ran alone for its last 100 s.
 */
const LONGEST_FIRST = ['e2e/server.test.ts', 'e2e/models.test.ts', 'unit/modelFamilies.test.ts', 'e2e/shards.test.ts', 'unit/benchScripts.test.ts', 'e2e/process.test.ts'];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const at = LONGEST_FIRST.findIndex((name) => file.moduleId.endsWith(`/test/${name}`));
      return at === -1 ? LONGEST_FIRST.length : at;
    };
    // Stable: groups stay in their order, since vitest groups the sorted files by groupOrder afterwards.
    return [...(await super.sort(files))].sort((a, b) => rank(a) - rank(b));
  }
}

// The suite's settings, here rather than in the npm script, so `npx vitest run <any path>` runs a
// file the way `npm test` does. Limits are sized for real inference on a small machine.
//
// Two groups, one after the other:
// - unit, e2e and server: two files at a time. Every model they load runs on 1 thread (the tiny
//   models, the bots they start, the llama-servers), and much of their time is spent waiting on
//   processes, sockets and timers, so two files share 2 cores without slowing each other much.
// - real: one file at a time, after the others, so a real model may take every core.
export default defineConfig({
  test: {
    // Set once for the run: vitest takes the sequencer from the root config, not from a project.
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit+e2e+server', include: ['test/{unit,e2e,server}/**/*.test.ts'], maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'real', include: ['test/real/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
