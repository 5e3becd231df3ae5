// The ServerEngine when its real llama-server is not there, dies mid-reply, and comes back (SmolLM2-135M, one
// thread): one clear log line naming the URL (never the key), not ready meanwhile, ModelUnavailableError for calls,
// the text so far streamed before a death, and the next call working once the server is back.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerEngine } from '../../src/engine/server/ServerEngine.js';
import { ModelUnavailableError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { HOW_TO_GET_LLAMA_SERVER, llamaServerAvailable, startLlamaServer, type RunningLlamaServer } from '../support/llamaServer.js';
import { HOW_TO_GET_A_REAL_MODEL, REAL_MODEL_PATH } from '../support/realModel.js';
import { TEST_THREADS } from '../support/testModels.js';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

const ready = llamaServerAvailable() && existsSync(REAL_MODEL_PATH);
if (!ready) console.warn(existsSync(REAL_MODEL_PATH) ? HOW_TO_GET_LLAMA_SERVER : HOW_TO_GET_A_REAL_MODEL);

const KEY = 'sk-never-in-a-log';

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('until(): the condition never became true');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!ready)('ServerEngine faults on a real llama-server (SmolLM2-135M)', () => {
  let server: RunningLlamaServer | undefined;
  const engines: ServerEngine[] = [];
  afterAll(async () => {
    for (const engine of engines) await engine.dispose();
    await server?.stop();
  });

  it('starts without the server, says so once, answers ModelUnavailableError, and is ready once the server is up', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const engine = await ServerEngine.start({
      url: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      parallel: 1,
      timeoutMs: 60_000,
      contextSize: 2048,
      historyMaxTokens: 512,
      replyMaxTokens: 24,
      systemPrompt: 'Be brief.',
      logger: createLogger('info', (line) => lines.push(line)),
      retryMs: 200,
    });
    engines.push(engine);
    expect(engine.status().ready).toBe(false);
    await expect(engine.classify('hello')).rejects.toBeInstanceOf(ModelUnavailableError);
    await expect(engine.reply({ channelId: 'c', turns: [], userName: 'Ann', userText: 'hi' })).rejects.toBeInstanceOf(ModelUnavailableError);
    const warnings = lines.filter((line) => line.includes('"warn"'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`http://127.0.0.1:${port}`);
    expect(lines.join('\n')).not.toContain(KEY);

    server = await startLlamaServer({ modelPath: REAL_MODEL_PATH, port, parallel: 2, contextSize: 2048, threads: TEST_THREADS, apiKey: KEY });
    await until(() => engine.status().ready, 60_000);
    expect((await engine.classify('I love it!')).label).toMatch(/positive|neutral|negative/);
    const found = lines.filter((line) => line.includes('inference server found'));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/"model":"[^"]*SmolLM2[^"]*".*"contextSize":1024.*"slots":2/);
  });

  it('keeps the text streamed before the server died, fails the reply with ModelUnavailableError, and answers again after a restart', async () => {
    const engine = await ServerEngine.start({
      url: server!.url,
      apiKey: KEY,
      parallel: 1,
      timeoutMs: 60_000,
      contextSize: 2048,
      historyMaxTokens: 512,
      replyMaxTokens: 400,
      systemPrompt: 'Be brief.',
      retryMs: 200,
    });
    engines.push(engine);
    let streamed = '';
    const reply = engine.reply({
      channelId: 'dies',
      turns: [],
      userName: 'Ann',
      userText: 'Write a very long story about a lighthouse keeper.',
      onText: (piece) => {
        const first = streamed === '';
        streamed += piece;
        if (first) void server!.kill();
      },
    });
    await expect(reply).rejects.toBeInstanceOf(ModelUnavailableError);
    expect(streamed.length).toBeGreaterThan(0);
    expect(engine.status().ready).toBe(false);

    await server!.restart();
    const next = await engine.reply({ channelId: 'dies', turns: [], userName: 'Ann', userText: 'hi there' });
    expect(next.text.length).toBeGreaterThan(0);
    await until(() => engine.status().ready, 10_000);
  });
});
