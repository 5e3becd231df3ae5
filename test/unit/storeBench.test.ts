import { describe, expect, it } from 'vitest';
import { benchStoreAppends, formatStoreBench } from '../bench/storeBench.js';

describe('the store bench', () => {
  it('times appends at 10 and 500 turns for each backend it is given, and skips one it cannot reach', async () => {
    const lines: string[] = [];
    const results = await benchStoreAppends({
      urls: { sqlite: 'sqlite://:memory:', redis: 'redis://:pw@127.0.0.1:1' },
      samples: 3,
      log: (line) => lines.push(line),
    });

    expect(results.map((r) => r.backend)).toEqual(['sqlite']);
    expect(results[0]!.append_ms_at_10).toBeGreaterThan(0);
    expect(results[0]!.append_ms_at_500).toBeGreaterThan(0);
    expect(results[0]!.growth).toBeCloseTo(results[0]!.append_ms_at_500 / results[0]!.append_ms_at_10, 1);
    expect(lines).toEqual(['store bench: redis skipped: Cannot use the history database on redis server 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1. Check DATABASE_URL.']);
    expect(formatStoreBench(results)).toMatch(/^\| history backend .*\n\|---.*\n\| sqlite \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+× \|$/);
  });
});
