// The Ollama path of the ServerEngine against a small fake of Ollama's HTTP API (no real Ollama runs here): it is
// detected by /api/version, sends our rendered prompt raw to /api/generate, reads the label probabilities from
// top_logprobs, streams NDJSON replies, and refuses to start without a Jinja template (Ollama's are Go templates).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerEngine } from '../../src/engine/server/ServerEngine.js';
import { UserError } from '../../src/errors.js';
import { tempDirs } from '../support/tempDir.js';

/** A ChatML template, as Qwen2.5's and SmolLM2's (what CHAT_TEMPLATE_FILE would hold). */
const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let server: Server | undefined;
const dirs = tempDirs('ollama-shapes-');
const bodies: Array<{ path: string; body: Record<string, unknown> }> = [];

async function fakeOllama(): Promise<string> {
  bodies.length = 0;
  server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk) => (text += chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      bodies.push({ path, body });
      const json = (value: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (path === '/api/version') return json({ version: '0.12.0' });
      if (path === '/api/tags') return json({ models: [{ name: 'qwen2.5:0.5b-instruct' }] });
      if (path === '/api/show') return json({ model_info: { 'qwen2.context_length': 32768 } });
      if (path === '/api/generate' && body.stream === false) {
        return json({ response: 'positive', done: true, logprobs: [{ token: 'positive', logprob: -0.2, top_logprobs: [{ token: 'positive', logprob: -0.2 }, { token: 'neutral', logprob: -2 }, { token: 'The', logprob: -4 }] }] });
      }
      if (path === '/api/generate') {
        response.writeHead(200, { 'content-type': 'application/x-ndjson' });
        for (const piece of ['Hello', ' Ann', '!']) response.write(`${JSON.stringify({ response: piece, done: false })}\n`);
        return response.end(`${JSON.stringify({ response: '', done: true, done_reason: 'stop', prompt_eval_count: 31, eval_count: 3 })}\n`);
      }
      response.writeHead(404).end('404 page not found');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  dirs.removeAll();
  const running = server;
  server = undefined;
  if (running) await new Promise((resolve) => running.close(resolve));
});

const options = { parallel: 2, timeoutMs: 10_000, contextSize: 2048, historyMaxTokens: 512, replyMaxTokens: 32, systemPrompt: 'Be kind.' };

describe('ServerEngine on Ollama (fake server for its shapes)', () => {
  it('detects Ollama, classifies from top_logprobs and streams a raw-prompt reply with its options', async () => {
    const url = await fakeOllama();
    const engine = await ServerEngine.start({ url, chatTemplate: TEMPLATE, ...options, seed: 3 });
    try {
      expect(engine.status()).toMatchObject({ ready: true, model: 'qwen2.5:0.5b-instruct', contextSize: 32768, runsOn: `${url} (ollama)` });
      const sentiment = await engine.classify('I love it');
      expect(sentiment.label).toBe('positive');
      expect(engine.labelFloors).toBe(1); // negative was not among the top tokens
      const classifyBody = bodies.find((entry) => entry.path === '/api/generate')!.body;
      expect(classifyBody).toMatchObject({ model: 'qwen2.5:0.5b-instruct', raw: true, stream: false, logprobs: true, top_logprobs: 20, options: { num_predict: 1 } });
      expect(classifyBody.prompt).toMatch(/<\|im_start\|>system\nYou label the mood[\s\S]*<\|im_start\|>user\nI love it<\|im_end\|>\n<\|im_start\|>assistant\n$/);

      const pieces: string[] = [];
      const reply = await engine.reply({ channelId: 'c', turns: [], userName: 'Ann', userText: 'hi', onText: (piece) => pieces.push(piece) });
      expect(pieces).toEqual(['Hello', ' Ann', '!']);
      expect(reply).toMatchObject({ text: 'Hello Ann!', evaluatedTokens: 31, generatedTokens: 3, endedByModel: true });
      const replyBody = bodies.filter((entry) => entry.path === '/api/generate').at(-1)!.body;
      expect(replyBody).toMatchObject({ raw: true, stream: true, options: { num_predict: 32, temperature: 0.7, top_p: 0.9, seed: 3, stop: ['<|im_end|>'] } });
      expect(replyBody.prompt).toBe('<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nAnn: hi<|im_end|>\n<|im_start|>assistant\n');
    } finally {
      await engine.dispose();
    }
  });

  it('keys the learned calibration on a prompt that does not hold the date: a restart on another day reads the fit, learns nothing', async () => {
    const url = await fakeOllama();
    // A template that prints the day, as Llama 3.2's does.
    const dated = `{{ '<|im_start|>system\\nToday is ' + strftime_now('%d %b %Y') + '<|im_end|>\\n' }}${TEMPLATE}`;
    const cacheDir = dirs.make();
    const start = (today: string) => ServerEngine.start({ url, chatTemplate: dated, ...options, today: new Date(today), sentimentCalibration: 'learned', calibrationCacheDir: cacheDir });
    const first = await start('2026-12-07T10:00:00Z');
    try {
      await first.calibrationReady();
      expect(first.calibrationStatus.inUse).toBe('learned');
      expect(bodies.find((entry) => entry.path === '/api/generate')!.body.prompt).toContain('Today is 07 Dec 2026');
    } finally {
      await first.dispose();
    }
    const classified = bodies.length;
    const nextDay = await start('2026-12-08T10:00:00Z');
    try {
      await nextDay.calibrationReady();
      expect(nextDay.calibrationStatus.inUse).toBe('learned');
      // Only the start's own requests: no calibration text was classified again.
      expect(bodies.slice(classified).filter((entry) => entry.path === '/api/generate')).toEqual([]);
    } finally {
      await nextDay.dispose();
    }
    expect(readdirSync(cacheDir).filter((name) => name.endsWith('.json'))).toHaveLength(1);
  });

  it('refuses to start without CHAT_TEMPLATE_FILE, saying why and what to set', async () => {
    const url = await fakeOllama();
    const error = await ServerEngine.start({ url, ...options }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/Ollama server.*CHAT_TEMPLATE_FILE/);
  });
});
