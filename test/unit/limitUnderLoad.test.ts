import { describe, expect, it } from 'vitest';
import { busyCoresNow, limitUnderLoad, threadsUnderLoad } from '../support/limitUnderLoad.js';

describe('limitUnderLoad', () => {
  it('keeps the limit on a machine loaded up to its cores, stretches it by the load per core beyond, and caps the stretch', () => {
    expect(limitUnderLoad(300_000, { load: 0.3, cores: 2 })).toBe(300_000);
    expect(limitUnderLoad(300_000, { load: 2, cores: 2 })).toBe(300_000);
    expect(limitUnderLoad(300_000, { load: 10, cores: 2 })).toBe(1_500_000);
    expect(limitUnderLoad(300_000, { load: 14, cores: 2 })).toBe(2_100_000);
    expect(limitUnderLoad(300_000, { load: 100, cores: 2 })).toBe(2_400_000);
  });

  it("gives a real-model file its share of the cores beside the suite's other files, at least 1, and 1 on a machine busier than that", () => {
    expect(threadsUnderLoad({ busy: 0.1, cores: 2 })).toBe(1);
    expect(threadsUnderLoad({ busy: 2, cores: 2 })).toBe(1);
    expect(threadsUnderLoad({ busy: 0.2, cores: 8, filesAtOnce: 2 })).toBe(4);
    expect(threadsUnderLoad({ busy: 4.5, cores: 8, filesAtOnce: 2 })).toBe(4);
    expect(threadsUnderLoad({ busy: 4.6, cores: 8, filesAtOnce: 2 })).toBe(1);
    expect(threadsUnderLoad({ busy: 0.2, cores: 9, filesAtOnce: 3 })).toBe(3);
    expect(threadsUnderLoad({ busy: 0, cores: 8, filesAtOnce: 1 })).toBe(8);
    expect(threadsUnderLoad({ busy: 0.6, cores: 8, filesAtOnce: 1 })).toBe(1);
  });

  it('counts the cores busy right now: a loop spinning beside it shows as about one', async () => {
    const { Worker } = await import('node:worker_threads');
    const spinner = new Worker('const end = Date.now() + 3000; while (Date.now() < end);', { eval: true });
    await new Promise((resolve) => spinner.once('online', resolve));
    try {
      expect(busyCoresNow(400)).toBeGreaterThan(0.6);
    } finally {
      await spinner.terminate();
    }
  });
});
