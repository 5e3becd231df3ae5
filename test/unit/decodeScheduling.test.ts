// The decode scheduler against a fake context: which decodes it queues together, which it holds
// back and for how long. Real inference through it is in Engine.test.ts.
import { describe, expect, it } from 'vitest';
import type { LlamaContext } from 'node-llama-cpp';
import { decodeStats, scheduleDecodes } from '../../src/engine/decodeScheduling.js';

interface Call {
  sequenceId: number;
  tokens: number[];
  /** The fake decode's "batch": calls queued in the same tick share one. */
  tick: number;
  finish(): void;
}

/** A context whose decodes end only when the test says so; calls queued in one tick share a batch number. */
function fakeContext() {
  const calls: Call[] = [];
  let tick = 0;
  let tickScheduled = false;
  const erases: Array<{ sequenceId: number; finish(): void }> = [];
  let nextId = 0;
  const context = {
    _decodeTokens(request: { sequenceId: number; tokens: number[] }) {
      if (!tickScheduled) {
        tickScheduled = true;
        setImmediate(() => ((tickScheduled = false), tick++));
      }
      return new Promise<void>((resolve) => calls.push({ ...request, tick, finish: resolve }));
    },
    getSequence() {
      const sequenceId = nextId++;
      return {
        _sequenceId: sequenceId,
        _eraseContextTokenRanges: () => new Promise<void>((resolve) => erases.push({ sequenceId, finish: resolve })),
      };
    },
  };
  scheduleDecodes(context as unknown as LlamaContext);
  const sequence = () => context.getSequence() as unknown as { _sequenceId: number; _eraseContextTokenRanges(): Promise<void> };
  const decode = (sequenceId: number, tokens: number[]) => (context as unknown as { _decodeTokens(r: object, m: unknown): Promise<unknown> })._decodeTokens({ sequenceId, tokens }, undefined);
  return { context: context as unknown as LlamaContext, calls, erases, sequence, decode };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('decode scheduling on the shared context', () => {
  it('queues the next steps of replies that generate together in one batch, even when they ask at different times', async () => {
    const fake = fakeContext();
    const [a, b] = [fake.sequence(), fake.sequence()];
    // Both generating: their first steps go together.
    const a1 = fake.decode(a._sequenceId, [1]);
    const b1 = fake.decode(b._sequenceId, [1]);
    await settle();
    expect(fake.calls.map((c) => c.sequenceId)).toEqual([a._sequenceId, b._sequenceId]);
    fake.calls.forEach((c) => c.finish());
    await Promise.all([a1, b1]);

    // a asks for its next step at once, b a little later: a waits for b rather than going alone.
    const a2 = fake.decode(a._sequenceId, [2]);
    await settle();
    expect(fake.calls).toHaveLength(2);
    await sleep(2);
    const b2 = fake.decode(b._sequenceId, [2]);
    await settle();
    const second = fake.calls.slice(2);
    expect(second.map((c) => c.sequenceId).sort()).toEqual([a._sequenceId, b._sequenceId].sort());
    expect(second[0]!.tick).toBe(second[1]!.tick);
    second.forEach((c) => c.finish());
    await Promise.all([a2, b2]);
    expect(decodeStats(fake.context)).toMatchObject({ steps: 4, stepBatches: 2 });
  });

  it('lets a step wait while another step is being decoded, so the two fall back in step', async () => {
    const fake = fakeContext();
    const [a, b] = [fake.sequence(), fake.sequence()];
    const a1 = fake.decode(a._sequenceId, [1]);
    await settle();
    expect(fake.calls).toHaveLength(1);
    // b joins while a's step is in flight: it waits for that step to end and for a's next one.
    const b1 = fake.decode(b._sequenceId, [1]);
    await settle();
    expect(fake.calls).toHaveLength(1);
    fake.calls[0]!.finish();
    await a1;
    const a2 = fake.decode(a._sequenceId, [2]);
    await settle();
    expect(fake.calls.slice(1).map((c) => c.sequenceId).sort()).toEqual([a._sequenceId, b._sequenceId].sort());
    fake.calls.slice(1).forEach((c) => c.finish());
    await Promise.all([a2, b1]);
  });

  it('stops waiting for a reply that ended: the other goes on after a short wait', async () => {
    const fake = fakeContext();
    const [a, b] = [fake.sequence(), fake.sequence()];
    const steps = [fake.decode(a._sequenceId, [1]), fake.decode(b._sequenceId, [1])];
    await settle();
    fake.calls.forEach((c) => c.finish());
    await Promise.all(steps);
    // b has ended; a's next step still goes, and the one after does not wait again.
    const a2 = fake.decode(a._sequenceId, [2]);
    await sleep(40);
    expect(fake.calls).toHaveLength(3);
    fake.calls[2]!.finish();
    await a2;
    const a3 = fake.decode(a._sequenceId, [3]);
    await settle();
    expect(fake.calls).toHaveLength(4);
    fake.calls[3]!.finish();
    await a3;
  });

  it('never holds back a decode of several tokens (a prompt, a sentiment call)', async () => {
    const fake = fakeContext();
    const [a, b, classifier] = [fake.sequence(), fake.sequence(), fake.sequence()];
    const steps = [fake.decode(a._sequenceId, [1]), fake.decode(b._sequenceId, [1])];
    await settle();
    fake.calls.forEach((c) => c.finish());
    await Promise.all(steps);
    const a2 = fake.decode(a._sequenceId, [2]);
    const prompt = fake.decode(classifier._sequenceId, [5, 6, 7]);
    await settle();
    expect(fake.calls.slice(2).map((c) => c.sequenceId)).toEqual([classifier._sequenceId]);
    fake.calls[2]!.finish();
    await prompt;
    await sleep(40);
    fake.calls.slice(3).forEach((c) => c.finish());
    await a2;
  });

  it("holds the other sequences' new decodes while an erase waits, lets the erasing sequence's own pass, and releases them after", async () => {
    const fake = fakeContext();
    const [reply, classifier] = [fake.sequence(), fake.sequence()];
    const erase = classifier._eraseContextTokenRanges();
    await settle();
    const held = fake.decode(reply._sequenceId, [1, 2]);
    const own = fake.decode(classifier._sequenceId, [3, 4]);
    await settle();
    expect(fake.calls.map((c) => c.sequenceId)).toEqual([classifier._sequenceId]);
    fake.erases[0]!.finish();
    await erase;
    await settle();
    expect(fake.calls.map((c) => c.sequenceId)).toEqual([classifier._sequenceId, reply._sequenceId]);
    fake.calls.forEach((c) => c.finish());
    await Promise.all([held, own]);
    expect(decodeStats(fake.context).erases).toBe(1);
  });
});
