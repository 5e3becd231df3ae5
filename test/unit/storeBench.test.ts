import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchStoreAppends, formatStoreBench } from '../bench/storeBench.js';
import { tempDirs } from '../support/tempDir.js';

const dirs = tempDirs('store-bench-test-');
afterAll(() => dirs.removeAll());

describe('the store bench', () => {
  it('times history appends at 10 and 500 turns and sentiment-log appends at 10 and many records for each backend it is given, and skips one it cannot reach', async () => {
    const lines: string[] = [];
    const results = await benchStoreAppends({
      urls: { sqlite: `sqlite://${join(dirs.make(), 'h.sqlite')}`, redis: 'redis://:pw@127.0.0.1:1' },
      samples: 3,
      moodRecords: 1000,
      log: (line) => lines.push(line),
    });

    expect(results.map((r) => r.backend)).toEqual(['sqlite']);
    expect(results[0]!.append_ms_at_10).toBeGreaterThan(0);
    expect(results[0]!.append_ms_at_500).toBeGreaterThan(0);
    expect(results[0]!.growth).toBeCloseTo(results[0]!.append_ms_at_500 / results[0]!.append_ms_at_10, 1);
    expect(results[0]!.mood_records).toBe(1000);
    expect(results[0]!.mood_append_ms_at_10).toBeGreaterThan(0);
    expect(results[0]!.mood_append_ms_at_many).toBeGreaterThan(0);
    expect(lines).toEqual(['store bench: redis skipped: Cannot use the history database on redis server 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1. Check DATABASE_URL.']);
    expect(formatStoreBench(results)).toMatch(/^\| history backend .*\n\|---.*\n\| sqlite \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+× \|\n\n\| sentiment log backend \| append at 10 records \| append at 1,000 records .*\n\|---.*\n\| sqlite \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+× \|$/);
  });
});
