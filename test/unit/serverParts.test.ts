// The pure parts of the inference-server engine: SSE and NDJSON parsing, label probabilities from a
// server's top-N (with the floor, counted), the channel -> slot LRU, Retry-After, and the key masking.
import { describe, expect, it } from 'vitest';
import { labelOfToken, labelProbabilitiesFromBoosted, labelProbabilitiesFromTop, labelTokensOf } from '../../src/engine/server/labelScores.js';
import { LABEL_WORDS } from '../../src/engine/SentimentClassifier.js';
import { NdjsonParser, SseParser } from '../../src/engine/server/sse.js';
import { SlotLru } from '../../src/engine/server/SlotLru.js';
import { retryAfterMs, retryDelayMs } from '../../src/engine/server/http.js';
import { topTokensOf } from '../../src/engine/server/backends.js';
import { maskCredentials } from '../../src/logger.js';
import { parseConfig } from '../../src/config.js';
import { UserError } from '../../src/errors.js';

describe('SseParser', () => {
  it('gives each event once it is complete, whatever the chunks split (mid-line, between \\r and \\n)', () => {
    const stream = 'data: {"content":"Hel"}\r\n\r\n: ping\n\ndata: {"content":"lo"}\n\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n';
    for (const size of [1, 2, 3, 7, stream.length]) {
      const parser = new SseParser();
      const events: string[] = [];
      for (let i = 0; i < stream.length; i += size) events.push(...parser.push(stream.slice(i, i + size)));
      events.push(...parser.end());
      expect(events, `chunks of ${size}`).toEqual(['{"content":"Hel"}', '{"content":"lo"}', 'line one\nline two', '[DONE]']);
    }
  });

  it('keeps a last event the stream ended without its blank line', () => {
    const parser = new SseParser();
    expect(parser.push('data: {"stop":true}')).toEqual([]);
    expect(parser.end()).toEqual(['{"stop":true}']);
  });
});

describe('NdjsonParser (Ollama)', () => {
  it('gives complete lines only, across chunks', () => {
    const parser = new NdjsonParser();
    expect(parser.push('{"response":"a"}\n{"resp')).toEqual(['{"response":"a"}']);
    expect(parser.push('onse":"b"}\n\n')).toEqual(['{"response":"b"}']);
    expect(parser.push('{"done":true}')).toEqual([]);
    expect(parser.end()).toEqual(['{"done":true}']);
  });
});

describe('label probabilities from a server top-N', () => {
  const lp = Math.log;

  it('credits a token to the one label it starts (any case, one leading space), never an ambiguous or short one', () => {
    expect(labelOfToken('positive')).toBe('positive');
    expect(labelOfToken(' Negative')).toBe('negative');
    expect(labelOfToken('neut')).toBe('neutral');
    expect(labelOfToken('neg')).toBe('negative');
    expect(labelOfToken('ne')).toBeUndefined();
    expect(labelOfToken('po')).toBeUndefined();
    expect(labelOfToken('positively')).toBeUndefined();
    expect(labelOfToken('The')).toBeUndefined();
  });

  it("sums each label's spellings and normalizes over the three labels", () => {
    const { probabilities, floored } = labelProbabilitiesFromTop([
      { token: 'positive', logprob: lp(0.5) },
      { token: ' positive', logprob: lp(0.1) },
      { token: 'neutral', logprob: lp(0.2) },
      { token: 'Negative', logprob: lp(0.1) },
      { token: 'The', logprob: lp(0.05) },
    ]);
    expect(floored).toEqual([]);
    expect(probabilities.positive).toBeCloseTo(0.6 / 0.9);
    expect(probabilities.neutral).toBeCloseTo(0.2 / 0.9);
    expect(probabilities.negative).toBeCloseTo(0.1 / 0.9);
  });

  it('gives a label outside the top-N the floor (the smallest probability returned) and reports it', () => {
    const { probabilities, floored } = labelProbabilitiesFromTop([
      { token: 'positive', logprob: lp(0.7) },
      { token: 'neutral', logprob: lp(0.2) },
      { token: 'I', logprob: lp(0.01) },
    ]);
    expect(floored).toEqual(['negative']);
    expect(probabilities.negative).toBeCloseTo(0.01 / 0.91);
    expect(probabilities.positive).toBeCloseTo(0.7 / 0.91);
  });

  it('answers an even three-way split, all floored, when the server returned nothing usable', () => {
    const { probabilities, floored } = labelProbabilitiesFromTop([]);
    expect(floored).toEqual(['positive', 'neutral', 'negative']);
    expect(probabilities.positive).toBeCloseTo(1 / 3);
  });

  it("reads both servers' shapes of top tokens: lists of {token, logprob} and vLLM's {token: logprob} maps", () => {
    expect(topTokensOf([{ id: 1, token: 'positive', logprob: -0.1 }, { token: 'x' }])).toEqual([{ token: 'positive', logprob: -0.1 }]);
    expect(topTokensOf({ neutral: -1, ' negative': -2 })).toEqual([{ token: 'neutral', logprob: -1 }, { token: ' negative', logprob: -2 }]);
    expect(topTokensOf(undefined)).toEqual([]);
  });
});

/**
 * A toy tokenizer: a whole word is one token of its own (a leading space or a capital gives another),
 * and a text matching `sharedNe` starts with a token "ne" (or "Ne", " ne"...) and one token per letter after.
 */
function toyTokenizer(sharedNe?: RegExp) {
  const vocab = new Map<string, number>();
  return async (text: string): Promise<number[]> => {
    const head = sharedNe?.test(text) ? text.slice(0, text.indexOf('e') + 1) : text;
    if (!vocab.has(head)) vocab.set(head, vocab.size + 1);
    return [vocab.get(head)!, ...[...text.slice(head.length)].map((_, i) => 1000 + i)];
  };
}

describe('label tokens read boosted (llama-server)', () => {
  it("names each label's and each label word's first tokens, every spelling, and reads them as in process", async () => {
    const tokenize = toyTokenizer();
    const tokens = (await labelTokensOf(tokenize))!;
    // Four spellings of each of the three labels and fifteen words; the labels are words too.
    expect(tokens.labelOf.size).toBe(12);
    expect(tokens.wordOf.size).toBe(60);
    expect(tokens.tokens).toHaveLength(60);
    const [positive] = await tokenize('positive');
    const [spaceNeutral] = await tokenize(' neutral');
    const [negative] = await tokenize('Negative');
    const [good] = await tokenize(' good');
    expect(tokens.labelOf.get(positive!)).toBe('positive');
    expect(tokens.labelOf.get(spaceNeutral!)).toBe('neutral');
    expect(tokens.wordOf.get(good!)).toBe(LABEL_WORDS.positive.indexOf('good'));
    const read = labelProbabilitiesFromBoosted(new Map([[positive!, 0.5], [spaceNeutral!, 0.2], [negative!, 0.1], [good!, 0.2]]), tokens);
    expect(read.positive).toBeCloseTo(0.5 / 0.8);
    expect(read.neutral).toBeCloseTo(0.2 / 0.8);
    expect(read.negative).toBeCloseTo(0.1 / 0.8);
    // Words: positive 0.5, good 0.2, neutral 0.2, negative 0.1, out of 1.
    expect(read.words).toHaveLength(15);
    expect(read.words[0]).toBeCloseTo(0.5);
    expect(read.words[1]).toBeCloseTo(0.2);
    expect(read.words.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
  });

  it('gives up when a label has no first token of its own (the top-N are read then, with their floors)', async () => {
    // Every spelling of neutral and of negative starts with "ne" ("Ne", " ne", " Ne"): neither has a token of its own.
    expect(await labelTokensOf(toyTokenizer(/^ ?[Nn]e(utral|gative)$/))).toBeUndefined();
  });

  it('leaves out a first token two labels share, and reads the others', async () => {
    const tokenize = toyTokenizer(/^ne(utral|gative)$/);
    const tokens = (await labelTokensOf(tokenize))!;
    const [ne] = await tokenize('neutral');
    expect(tokens.labelOf.has(ne!)).toBe(false);
    expect(tokens.labelOf.size).toBe(10);
    expect([...tokens.labelOf.values()].filter((label) => label === 'negative')).toHaveLength(3);
  });
});

describe('SlotLru', () => {
  it('gives a warm channel its own slot again, and a cold one a free slot first', () => {
    const slots = new SlotLru([0, 1]);
    const a = slots.take('a');
    slots.done(a.slot);
    const b = slots.take('b');
    slots.done(b.slot);
    expect([a.cold, b.cold]).toEqual([true, true]);
    expect(b.slot.id).not.toBe(a.slot.id);
    const again = slots.take('a');
    expect(again).toMatchObject({ cold: false, slot: { id: a.slot.id } });
    slots.done(again.slot);
  });

  it('takes the least recently used idle slot when all are held, never a busy one', () => {
    const slots = new SlotLru([0, 1]);
    const a = slots.take('a'); // busy
    const b = slots.take('b');
    slots.done(b.slot);
    const c = slots.take('c');
    expect(c.cold).toBe(true);
    expect(c.slot.id).toBe(b.slot.id);
    expect(c.slot.id).not.toBe(a.slot.id);
    expect(slots.get('b')).toBeUndefined();
    expect(slots.take('b').cold).toBe(true);
  });

  it('makes a channel cold again when forgotten (/reset)', () => {
    const slots = new SlotLru([0]);
    slots.done(slots.take('a').slot);
    slots.forget('a');
    expect(slots.take('a').cold).toBe(true);
  });
});

describe('Retry-After', () => {
  it('reads seconds and HTTP dates, and bounds the wait', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('2', now)).toBe(2000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryDelayMs('3', 0, 10_000, now)).toBe(3000);
    expect(retryDelayMs('3600', 0, 10_000, now)).toBe(10_000);
    // Without one: 1 s, 2 s, 4 s.
    expect([0, 1, 2].map((attempt) => retryDelayMs(null, attempt, 10_000, now))).toEqual([1000, 2000, 4000]);
  });
});

describe('INFERENCE_* configuration', () => {
  it('takes the server keys with their defaults', () => {
    const config = parseConfig({ INFERENCE_URL: 'http://127.0.0.1:8080', INFERENCE_API_KEY: 'sk-secret' });
    expect(config.INFERENCE_API).toBeUndefined();
    expect(config.INFERENCE_PARALLEL).toBeUndefined();
    expect(config).toMatchObject({ INFERENCE_URL: 'http://127.0.0.1:8080', INFERENCE_TIMEOUT_MS: 120_000, INFERENCE_IDLE_TIMEOUT_MS: 60_000 });
  });

  it('says what is wrong with a bad key, and never echoes the API key', () => {
    let error: unknown;
    try {
      parseConfig({ INFERENCE_URL: 'localhost:8080', INFERENCE_API: 'tgi', INFERENCE_PARALLEL: '0', INFERENCE_API_KEY: 'x'.repeat(5000) });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UserError);
    const message = (error as Error).message;
    expect(message).toMatch(/INFERENCE_URL: must be an http\(s\) URL/);
    expect(message).toMatch(/INFERENCE_API: must be one of llama-server, openai, ollama/);
    expect(message).toMatch(/INFERENCE_PARALLEL: must be a whole number from 1 to 256/);
    expect(message).not.toContain('xxxx');
  });

  it('masks bearer tokens and API keys in log lines', () => {
    expect(maskCredentials('headers {"authorization":"Bearer sk-abc.def"}')).toBe('headers {"authorization":"Bearer ***"}');
    expect(maskCredentials('INFERENCE_API_KEY=sk-abc and "apiKey":"sk-def"')).toBe('INFERENCE_API_KEY=*** and "apiKey":"***"');
    expect(maskCredentials('http://user:pw@host:8080/v1')).toBe('http://***@host:8080/v1');
  });
});
