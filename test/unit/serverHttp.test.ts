// ServerHttp's fault handling against a small local fake HTTP server, for the shapes a real llama-server cannot be
// made to show: 429/503 with Retry-After, a stream that stalls, a request that never gets an answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerHttp } from '../../src/engine/server/http.js';
import { ServerEngine } from '../../src/engine/server/ServerEngine.js';
import { ModelUnavailableError, UserError } from '../../src/errors.js';

let server: Server | undefined;
const seen: Array<{ at: number; path: string; authorization?: string }> = [];

async function fake(handle: (request: IncomingMessage, response: ServerResponse, count: number) => void): Promise<string> {
  seen.length = 0;
  server = createServer((request, response) => {
    seen.push({ at: performance.now(), path: request.url ?? '', authorization: request.headers.authorization });
    handle(request, response, seen.length);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

const KEY = 'sk-very-secret-key';

describe('ServerHttp', () => {
  it('waits out a 429 for its Retry-After, then tries again, sending the key as a bearer token', async () => {
    const url = await fake((_request, response, count) => {
      if (count === 1) response.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const http = new ServerHttp({ url, apiKey: KEY, timeoutMs: 10_000 });
    expect(await http.json('/props')).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(900);
    expect(seen.every((request) => request.authorization === `Bearer ${KEY}`)).toBe(true);
  });

  it('bounds a long Retry-After and gives up after its tries with ModelUnavailableError, naming the status and not the key', async () => {
    const url = await fake((_request, response) => response.writeHead(503, { 'retry-after': '3600' }).end('loading model'));
    const http = new ServerHttp({ url, apiKey: KEY, timeoutMs: 10_000, maxRetryAfterMs: 50, maxTries: 3 });
    const error = await http.json('/props').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as Error).message).toContain('HTTP 503');
    expect((error as Error).message).not.toContain(KEY);
    expect(seen).toHaveLength(3);
  });

  it('gives up a stream that stalls after its first piece (idle timeout)', async () => {
    const url = await fake((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: {"content":"Hel"}\n\n');
      // …and nothing more, the connection left open.
    });
    const http = new ServerHttp({ url, timeoutMs: 30_000, idleTimeoutMs: 300 });
    const pieces: string[] = [];
    const error = await (async () => {
      for await (const piece of http.stream('/completion', {})) pieces.push(piece);
    })().catch((caught: unknown) => caught);
    expect(pieces.join('')).toContain('Hel');
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as Error).message).toContain('sent nothing for 300 ms');
  });

  it('times out a request that never gets an answer (INFERENCE_TIMEOUT_MS)', async () => {
    const url = await fake(() => {
      // never answers
    });
    const http = new ServerHttp({ url, timeoutMs: 300 });
    const error = await http.json('/props').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as Error).message).toContain('did not answer within 300 ms');
  });

  it("keeps the caller's abort an abort, not a server failure", async () => {
    const url = await fake(() => {});
    const http = new ServerHttp({ url, timeoutMs: 30_000 });
    const controller = new AbortController();
    const pending = http.json('/props', undefined, { signal: controller.signal });
    controller.abort(new Error('stopped'));
    await expect(pending).rejects.toThrow('stopped');
  });

  it('sends credentials in INFERENCE_URL as basic auth (fetch refuses them in the URL)', async () => {
    const url = await fake((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const http = new ServerHttp({ url: url.replace('http://', 'http://bot:hunter2@'), timeoutMs: 5000 });
    await http.json('/props');
    expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('bot:hunter2').toString('base64')}`);
  });

  it('says a server that is not there is unavailable, with the URL and never the credentials', async () => {
    const http = new ServerHttp({ url: 'http://bot:hunter2@127.0.0.1:9', apiKey: KEY, timeoutMs: 5000 });
    const error = await http.json('/props').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect(http.shownUrl).toBe('http://***@127.0.0.1:9');
    expect(String((error as Error).message)).not.toMatch(/hunter2|sk-very/);
  });

  it('stops the start with a UserError when the server refuses the key (401), naming INFERENCE_API_KEY but not the key', async () => {
    const url = await fake((_request, response) => response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":401,"message":"Invalid API Key"}}'));
    const error = await ServerEngine.start({ url, apiKey: KEY, parallel: 1, timeoutMs: 5000, contextSize: 2048, historyMaxTokens: 256, replyMaxTokens: 16, systemPrompt: 'x' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/refused the bot .*HTTP 401.*Set INFERENCE_API_KEY/);
    expect((error as Error).message).not.toContain(KEY);
  });
});
