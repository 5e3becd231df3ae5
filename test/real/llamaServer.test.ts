// The real llama-server the server tier runs against (test/support/llamaServer.ts), and the facts about it that the
// ServerEngine is built on (docs/inference-server-notes.md): if a wheel update changes one, this file says which.
// SmolLM2-135M, 2 slots, 1 thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOW_TO_GET_A_REAL_MODEL, REAL_MODEL_PATH } from '../support/realModel.js';
import { HOW_TO_GET_LLAMA_SERVER, llamaServerAvailable, startLlamaServer, type RunningLlamaServer } from '../support/llamaServer.js';
import { existsSync } from 'node:fs';

const ready = llamaServerAvailable() && existsSync(REAL_MODEL_PATH);
if (!ready) console.warn(existsSync(REAL_MODEL_PATH) ? HOW_TO_GET_LLAMA_SERVER : HOW_TO_GET_A_REAL_MODEL);

interface TopLogprob { id: number; token: string; logprob: number }
interface Completion {
  content: string;
  id_slot: number;
  tokens_evaluated: number;
  completion_probabilities: Array<{ top_logprobs: TopLogprob[] }>;
  timings: { cache_n: number; prompt_n: number; predicted_n: number };
}

const CHAT_PROMPT = '<|im_start|>user\nWrite a very long story about a lighthouse.<|im_end|>\n<|im_start|>assistant\n';

describe.skipIf(!ready)('the real llama-server (xllamacpp wheel) on SmolLM2-135M', () => {
  let server: RunningLlamaServer;
  beforeAll(async () => {
    server = await startLlamaServer({ modelPath: REAL_MODEL_PATH, parallel: 2, contextSize: 2048, threads: 1 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const post = async <T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> => {
    const response = await fetch(`${server.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers });
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as T;
  };

  it('says in /props how many slots it has and that each slot gets the context divided by the slots', async () => {
    const props = (await (await fetch(`${server.url}/props`)).json()) as {
      total_slots: number; default_generation_settings: { n_ctx: number }; chat_template: string; eos_token: string;
    };
    expect(props.total_slots).toBe(2);
    expect(props.default_generation_settings.n_ctx).toBe(1024);
    expect(props.chat_template).toContain('<|im_start|>');
    expect(props.eos_token).toBe('<|im_end|>');
  });

  it('returns the probabilities of the whole vocabulary at the answer position when asked (n_probs has no cap of 20)', async () => {
    const result = await post<Completion>('/completion', { prompt: 'The sentiment of "I love it" is', n_predict: 1, n_probs: 100_000 });
    const top = result.completion_probabilities[0]!.top_logprobs;
    expect(top.length).toBe(49152);
    const total = top.reduce((sum, entry) => sum + Math.exp(entry.logprob), 0);
    expect(total).toBeGreaterThan(0.99);
    expect(total).toBeLessThan(1.01);
  });

  it('gives the same answer-position probabilities at any temperature (raw softmax, not the sampler\'s)', async () => {
    const ask = (temperature: number) =>
      post<Completion>('/completion', { prompt: 'My mood today is', n_predict: 1, n_probs: 5, temperature, cache_prompt: false });
    const [cold, hot] = [await ask(0), await ask(1.5)];
    const byId = (c: Completion) => c.completion_probabilities[0]!.top_logprobs.map((t) => [t.id, t.logprob.toFixed(3)]);
    expect(byId(hot)).toEqual(byId(cold));
  });

  it('returns exactly the tokens boosted by logit_bias, after the bias, with the odds between them the raw ones (post_sampling_probs)', async () => {
    const prompt = 'The sentiment of "I love it" is';
    const raw = await post<Completion>('/completion', { prompt, n_predict: 1, n_probs: 100_000 });
    const rawOf = new Map(raw.completion_probabilities[0]!.top_logprobs.map((entry) => [entry.id, Math.exp(entry.logprob)]));
    const { tokens } = await post<{ tokens: number[] }>('/tokenize', { content: ' positive negative neutral good', add_special: false });
    const boosted = await post<{ completion_probabilities: Array<{ top_probs: Array<{ id: number; prob: number }> }> }>('/completion', {
      prompt, n_predict: 1, n_probs: tokens.length, post_sampling_probs: true, logit_bias: tokens.map((id) => [id, 100]), temperature: 1, top_k: 0, top_p: 1, min_p: 0,
    });
    const top = boosted.completion_probabilities[0]!.top_probs;
    expect(top.map((entry) => entry.id).sort()).toEqual([...tokens].sort());
    expect(top.reduce((sum, entry) => sum + entry.prob, 0)).toBeCloseTo(1, 3);
    const rawTotal = tokens.reduce((sum, id) => sum + rawOf.get(id)!, 0);
    for (const { id, prob } of top) expect(prob).toBeCloseTo(rawOf.get(id)! / rawTotal, 3);
  });

  it('reuses a slot\'s cached prompt for the same prompt on the same slot (all but the last token), and not with cache_prompt false', async () => {
    const prompt = 'The lighthouse keeper counted the ships that passed in the night.';
    const first = await post<Completion>('/completion', { prompt, n_predict: 1, id_slot: 1, cache_prompt: true });
    const again = await post<Completion>('/completion', { prompt, n_predict: 1, id_slot: 1, cache_prompt: true });
    expect(again.id_slot).toBe(1);
    expect(again.timings.cache_n).toBe(first.tokens_evaluated - 1);
    const uncached = await post<Completion>('/completion', { prompt, n_predict: 1, id_slot: 1, cache_prompt: false });
    expect(uncached.timings.cache_n).toBe(0);
  });

  it('stops generating when the client goes away mid-stream', async () => {
    const metric = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/^llamacpp:tokens_predicted_total (\d+)/m.exec(text)![1]);
    };
    const before = await metric();
    const abort = new AbortController();
    const response = await fetch(`${server.url}/completion`, {
      method: 'POST',
      body: JSON.stringify({ prompt: CHAT_PROMPT, n_predict: 2000, ignore_eos: true, stream: true, id_slot: 0 }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let chunks = 0;
    while (chunks < 5) {
      await reader.read();
      chunks++;
    }
    abort.abort();
    // The server notices the closed connection at its next token and releases the slot.
    let slots: Array<{ id: number; is_processing: boolean }> = [];
    for (let i = 0; i < 100; i++) {
      slots = (await (await fetch(`${server.url}/slots`)).json()) as typeof slots;
      if (!slots[0]!.is_processing) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(slots[0]!.is_processing).toBe(false);
    const predicted = (await metric()) - before;
    expect(predicted).toBeGreaterThanOrEqual(5);
    expect(predicted).toBeLessThan(2000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await metric()).toBe(before + predicted);
  });

  it('refuses a prompt longer than a slot\'s context with a 400 that names both sizes', async () => {
    const response = await fetch(`${server.url}/completion`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'word '.repeat(1500), n_predict: 1 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { type: string; n_ctx: number; n_prompt_tokens: number } };
    expect(body.error.type).toBe('exceed_context_size_error');
    expect(body.error.n_ctx).toBe(1024);
    expect(body.error.n_prompt_tokens).toBeGreaterThan(1024);
  });

  it('dies at once when killed (requests fail) and answers again on the same port after restart()', async () => {
    await server.kill();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    await server.restart();
    const result = await post<Completion>('/completion', { prompt: 'Hello', n_predict: 2 });
    expect(result.timings.predicted_n).toBe(2);
  });
});

describe.skipIf(!ready)('the real llama-server with an API key', () => {
  let server: RunningLlamaServer;
  beforeAll(async () => {
    server = await startLlamaServer({ modelPath: REAL_MODEL_PATH, parallel: 1, contextSize: 512, threads: 1, apiKey: 'test-key-1' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers /completion only with the key as a Bearer token, and /health without it', async () => {
    const body = JSON.stringify({ prompt: 'Hi', n_predict: 1 });
    expect((await fetch(`${server.url}/completion`, { method: 'POST', body })).status).toBe(401);
    const withKey = await fetch(`${server.url}/completion`, { method: 'POST', body, headers: { Authorization: 'Bearer test-key-1' } });
    expect(withKey.status).toBe(200);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});
