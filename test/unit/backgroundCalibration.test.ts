// The learned calibration at start: read from the cache when there, otherwise learned in the
// background through the sentiment lane while the bot already answers. Real llama.cpp inference
// on tiny random-weight models: the labels are meaningless, the scheduling and caching are real.
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type EngineOptions } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { tempDirs } from '../support/tempDir.js';
import { ensureTinyModel, familyEngineOptions, familySpec, TEST_THREADS } from '../support/testModels.js';

const dirs = tempDirs('background-calibration-');
afterAll(() => dirs.removeAll());

async function tinyOptions(overrides: Partial<EngineOptions>): Promise<EngineOptions> {
  return {
    modelPath: await ensureTinyModel(),
    threads: TEST_THREADS,
    contextSize: 1024,
    warmChannels: 1,
    historyMaxTokens: 256,
    replyMaxTokens: 6,
    systemPrompt: 'You are a bot.',
    seed: 1,
    ...overrides,
  };
}

describe('a calibration learned in the background', () => {
  it('starts on the raw probabilities, runs a real message after at most one calibration text, then switches to the learned fit', async () => {
    const cacheDir = dirs.make();
    const engine = await Engine.create(await tinyOptions({ sentimentCalibration: 'learned', calibrationCacheDir: cacheDir, calibrationInBackground: true }));
    const queue = new GenerationQueue();
    try {
      expect(engine.calibrationStatus).toEqual({ inUse: 'raw' });
      expect(engine.classifier.calibration).toBeUndefined();
      let calibrationTexts = 0;
      const learning = engine.learnCalibrationInBackground((job) => queue.runWhenIdle('sentiment', job).finally(() => calibrationTexts++));
      expect(engine.calibrationStatus.learning).toMatchObject({ done: 0 });
      const total = engine.calibrationStatus.learning!.total;
      expect(total).toBeGreaterThanOrEqual(240);

      // Real messages arrive while it learns: each runs after at most the one text in progress.
      while (calibrationTexts < 5) await new Promise((resolve) => setTimeout(resolve, 5));
      for (let i = 0; i < 3; i++) {
        const before = calibrationTexts;
        let after = -1;
        await queue.run('sentiment', 'channel', async () => {
          after = calibrationTexts;
          return engine.classify(`message ${i}`);
        });
        expect(after - before).toBeLessThanOrEqual(1);
      }
      const status = engine.calibrationStatus.learning!;
      expect(status.done).toBeGreaterThan(0);
      expect(status.done).toBeLessThan(total);
      expect(status.msLeft).toBeGreaterThan(0);

      await learning;
      expect(engine.calibrationStatus).toEqual({ inUse: 'learned' });
      expect(engine.classifier.calibration?.kind).toBe('learned');
      expect(readdirSync(cacheDir).filter((name) => name.endsWith('.json'))).toHaveLength(1);

      // The next start reads it from the cache: learned from the first message, nothing left to learn.
      const again = await Engine.create(await tinyOptions({ sentimentCalibration: 'learned', calibrationCacheDir: cacheDir, calibrationInBackground: true }));
      try {
        expect(again.calibrationStatus).toEqual({ inUse: 'learned' });
        expect(again.classifier.calibration).toEqual(engine.classifier.calibration);
        await again.learnCalibrationInBackground(() => Promise.reject(new Error('nothing should be scheduled')));
      } finally {
        await again.dispose();
      }
    } finally {
      await queue.close();
      await engine.dispose();
    }
  });

  it('stops when the queue closes (shutdown), staying on the raw probabilities', async () => {
    const engine = await Engine.create(await tinyOptions({ sentimentCalibration: 'learned', calibrationCacheDir: dirs.make(), calibrationInBackground: true }));
    const queue = new GenerationQueue();
    try {
      const learning = engine.learnCalibrationInBackground((job) => queue.runWhenIdle('sentiment', job));
      await queue.close();
      await expect(learning).rejects.toThrow(/shutting down/);
      expect(engine.calibrationStatus).toEqual({ inUse: 'raw' });
    } finally {
      await engine.dispose();
    }
  });

  it('is not learned again on a new day with a template that prints the date (Llama 3.2)', async () => {
    const cacheDir = dirs.make();
    const base = { ...(await familyEngineOptions(familySpec('Llama 3.2'))), sentimentCalibration: 'learned' as const, calibrationCacheDir: cacheDir };
    const dayOne = await Engine.create({ ...base, today: new Date('2026-03-01T10:00:00Z') });
    const promptOfDayOne = dayOne.model.detokenize(dayOne.classifier.promptTokens('hi'), true);
    await dayOne.dispose();
    const dayTwo = await Engine.create({ ...base, today: new Date('2026-03-02T10:00:00Z'), calibrationInBackground: true });
    try {
      // The prompt really changed with the day; the fit did not need to.
      expect(dayTwo.model.detokenize(dayTwo.classifier.promptTokens('hi'), true)).not.toBe(promptOfDayOne);
      expect(dayTwo.calibrationStatus).toEqual({ inUse: 'learned' });
      expect(readdirSync(cacheDir)).toHaveLength(1);
    } finally {
      await dayTwo.dispose();
    }
  });
});
