import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaChatSession, QwenChatWrapper, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { buildBpeVocab, ensureTinyModel, generateModel, TEST_THREADS, TINY_SPEC } from '../support/testModels.js';
import { quantizeQ8_0, toHalf } from '../support/ggufWriter.js';

describe('ggufWriter', () => {
  it('converts floats to half precision', () => {
    expect(toHalf(0)).toBe(0);
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e6)).toBe(0x7c00); // overflow -> inf
    expect(toHalf(2 ** -24)).toBe(1); // smallest subnormal
  });

  it('quantizes Q8_0 blocks as scale + 32 int8', () => {
    const src = new Float32Array(32).map((_, i) => (i - 16) / 16); // -1 .. 0.9375
    const dst = Buffer.alloc(34);
    quantizeQ8_0(src, dst);
    expect(dst.readUInt16LE(0)).toBe(toHalf(1 / 127));
    expect(dst.readInt8(2)).toBe(-127);
    expect(dst.readInt8(2 + 16)).toBe(0);
  });
});

describe('BPE vocab', () => {
  const { tokens, merges } = buildBpeVocab();

  it('has unique tokens and merges whose parts and results are tokens', () => {
    expect(new Set(tokens).size).toBe(tokens.length);
    const known = new Set(tokens.slice(0, 256));
    for (const m of merges) {
      const [a, b] = m.split(' ');
      // Parts must exist before the merge that uses them (priority order).
      expect(known.has(a!) && known.has(b!), m).toBe(true);
      known.add(a! + b!);
    }
    expect(known.size).toBe(tokens.length);
  });
});

describe('tiny test model (real llama.cpp)', () => {
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;

  beforeAll(async () => {
    llama = await getLlama({ gpu: false });
    model = await llama.loadModel({ modelPath: await ensureTinyModel() });
    context = await model.createContext({ contextSize: 512, threads: TEST_THREADS });
  });

  afterAll(async () => {
    await context?.dispose();
    await model?.dispose();
  });

  it('is generated deterministically', async () => {
    const other = join(tmpdir(), `tiny-qwen2-${process.pid}.gguf`);
    try {
      await generateModel(TINY_SPEC, other);
      expect((await readFile(other)).equals(await readFile(await ensureTinyModel()))).toBe(true);
    } finally {
      await rm(other, { force: true });
    }
  });

  it('tokenizes each sentiment label to one distinct token, with and without a leading space', () => {
    for (const prefix of ['', ' ']) {
      const ids = ['positive', 'neutral', 'negative'].map((label) => model.tokenize(prefix + label));
      for (const t of ids) expect(t).toHaveLength(1);
      expect(new Set(ids.map((t) => t[0])).size).toBe(3);
    }
  });

  it('round-trips arbitrary text through byte fallback', () => {
    for (const text of ['Hello, world! The meeting is at 3pm.', '你好，世界', 'party 🎉🦀 time', 'tabs\tand\nnew  lines', 'Ünïcödé — ok?']) {
      expect(model.detokenize(model.tokenize(text))).toBe(text);
    }
  });

  it('has ChatML control tokens', () => {
    expect(model.tokenize('<|im_end|>', true)).toEqual([model.tokens.eos]);
    expect(model.tokenize('<|im_start|>', true)).toHaveLength(1);
    expect(model.tokenize('<|im_end|>', false).length).toBeGreaterThan(1); // plain text, not the control token
  });

  it('resolves the ChatML-format Qwen chat wrapper from the chat template', () => {
    const session = new LlamaChatSession({ contextSequence: context.getSequence() });
    try {
      // node-llama-cpp maps the real Qwen2.5 template to QwenChatWrapper (not ChatMLChatWrapper),
      // as it does for the real model; the prompt it renders is plain ChatML either way.
      expect(session.chatWrapper).toBeInstanceOf(QwenChatWrapper);
      const { contextText } = session.chatWrapper.generateContextState({
        chatHistory: [
          { type: 'system', text: 'Be brief.' },
          { type: 'user', text: 'hello' },
          { type: 'model', response: [] },
        ],
      });
      expect(contextText.toString()).toBe(
        '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n',
      );
    } finally {
      session.dispose({ disposeSequence: true });
    }
  });

  it('generates varied text', async () => {
    const session = new LlamaChatSession({ contextSequence: context.getSequence() });
    try {
      const answer = await session.prompt('Hi there, how are you?', { maxTokens: 20 });
      const tokens = model.tokenize(answer);
      expect(tokens.length).toBeGreaterThanOrEqual(10);
      expect(new Set(tokens).size).toBeGreaterThanOrEqual(5); // not one token repeated
      expect(answer).not.toContain('\uFFFD');
    } finally {
      session.dispose({ disposeSequence: true });
    }
  });
});
