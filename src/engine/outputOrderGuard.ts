import type { LlamaContext } from 'node-llama-cpp';

interface AddonContext {
  decodeBatch(): Promise<void>;
  sampleToken(...args: unknown[]): Promise<unknown>;
}

const guarded = new WeakSet<object>();

/**
 * Makes the first read of each decode's outputs run alone; the reads after it may run together.
 *
 * With several sequences of different lengths in one batch, llama.cpp (as pinned by node-llama-cpp
 * 3.21.1) may compute the outputs in another order than the batch's. It puts the rows back in
 * order lazily, in place and without a lock, on the first read of any row. node-llama-cpp reads
 * each sequence's row on a worker thread of its own, all at once: two first reads each swap the
 * rows, undoing each other, and each sequence then reads another's row. Measured on the Qwen-class
 * model: two classifier calls decoded together got each other's label probabilities exactly; a
 * reply stepping beside another channel's prompt could sample its next token from that channel's
 * distribution. Once the first read is over the rows are in order, and reading them is safe.
 */
export function guardOutputOrder(context: LlamaContext): void {
  const addon = (context as unknown as { _ctx: AddonContext })._ctx;
  if (guarded.has(addon)) return;
  guarded.add(addon);
  const decodeBatch = addon.decodeBatch.bind(addon);
  const sampleToken = addon.sampleToken.bind(addon);
  /** A decode ended and none of its outputs was read yet. */
  let unread = false;
  let firstRead: Promise<unknown> = Promise.resolve();
  // The native methods are read-only on the addon's prototype; own properties shadow them.
  Object.defineProperty(addon, 'decodeBatch', {
    configurable: true,
    value: async () => {
      await decodeBatch();
      unread = true;
    },
  });
  Object.defineProperty(addon, 'sampleToken', {
    configurable: true,
    value: (...args: unknown[]) => {
      if (unread) {
        unread = false;
        firstRead = sampleToken(...args);
        return firstRead;
      }
      const read = () => sampleToken(...args);
      return firstRead.then(read, read);
    },
  });
}
