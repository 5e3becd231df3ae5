// The guard on a decode's outputs, on a real llama.cpp context of the tiny model: with several
// sequences of different lengths in one batch, the first read of the outputs runs alone.
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/Engine.js';
import { loadModelFile } from '../../src/engine/loadModel.js';
import { guardOutputOrder } from '../../src/engine/outputOrderGuard.js';
import { ensureTinyModel, TEST_THREADS } from '../support/testModels.js';

let model: LlamaModel;
let dispose: () => Promise<void>;

beforeAll(async () => {
  const loaded = await loadModelFile({ modelPath: await ensureTinyModel() });
  model = loaded.model;
  dispose = async () => {
    await loaded.model.dispose();
    await loaded.llama.dispose();
  };
});
afterAll(() => dispose?.());

interface Read {
  decode: number;
  start: number;
  end?: number;
}

/**
 * Records every read of a decode's outputs as node-llama-cpp makes it (below the guard, when one is
 * put on afterwards): which decode it followed, when it started and when it ended.
 */
function recordReads(context: LlamaContext): Read[] {
  const addon = (context as unknown as { _ctx: Record<string, (...args: unknown[]) => Promise<unknown>> })._ctx;
  const decodeBatch = addon.decodeBatch!.bind(addon);
  const sampleToken = addon.sampleToken!.bind(addon);
  const reads: Read[] = [];
  let decodes = 0;
  let clock = 0;
  Object.defineProperty(addon, 'decodeBatch', { configurable: true, value: async () => (await decodeBatch(), decodes++) });
  Object.defineProperty(addon, 'sampleToken', {
    configurable: true,
    value: async (...args: unknown[]) => {
      const read: Read = { decode: decodes, start: clock++ };
      reads.push(read);
      try {
        return await sampleToken(...args);
      } finally {
        read.end = clock++;
      }
    },
  });
  return reads;
}

/** Evaluates `text` on each sequence at once (different lengths: one batch), reading the next token's probabilities. */
async function evaluateTogether(sequences: LlamaContextSequence[], texts: string[]): Promise<void> {
  await Promise.all(
    sequences.map((sequence, i) => {
      const tokens = model.tokenize(texts[i]!);
      const last = tokens.length - 1;
      return sequence.controlledEvaluate(tokens.map((token: Token, index) => (index === last ? ([token, { generateNext: { probabilities: true } }] as const) : token)));
    }),
  );
}

const TEXTS = ['a much longer message than the others, with many words in it', 'short', 'a middle one'];

describe('the first read of a decode’s outputs', () => {
  it('runs alone on a guarded context: the reads after it start only once it ended', async () => {
    const context = await model.createContext({ sequences: 3, contextSize: 256, threads: TEST_THREADS });
    try {
      const reads = recordReads(context);
      guardOutputOrder(context);
      await evaluateTogether([context.getSequence(), context.getSequence(), context.getSequence()], TEXTS);
      const batch = reads.filter((read) => read.decode === reads[0]!.decode);
      expect(batch).toHaveLength(3);
      const [first, ...rest] = batch;
      for (const read of rest) expect(read.start).toBeGreaterThan(first!.end!);
    } finally {
      await context.dispose();
    }
  });

  it('overlaps with the other reads on a context without the guard (what the guard is for)', async () => {
    const context = await model.createContext({ sequences: 3, contextSize: 256, threads: TEST_THREADS });
    try {
      const reads = recordReads(context);
      await evaluateTogether([context.getSequence(), context.getSequence(), context.getSequence()], TEXTS);
      const [first, ...rest] = reads;
      expect(rest.some((read) => read.start < first!.end!)).toBe(true);
    } finally {
      await context.dispose();
    }
  });

  it("is on the engine's shared context", async () => {
    const engine = await Engine.create({
      modelPath: await ensureTinyModel(),
      threads: TEST_THREADS,
      contextSize: 1024,
      warmChannels: 1,
      historyMaxTokens: 128,
      replyMaxTokens: 4,
      systemPrompt: 'hi',
    });
    try {
      const addon = (engine.context as unknown as { _ctx: object })._ctx;
      expect(Object.hasOwn(addon, 'sampleToken') && Object.hasOwn(addon, 'decodeBatch')).toBe(true);
    } finally {
      await engine.dispose();
    }
  });
});
