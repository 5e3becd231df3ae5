import { AbortedError, ModelUnavailableError } from '../../errors.js';
import { maskCredentials } from '../../logger.js';

export interface ServerHttpOptions {
  /** The server's base URL (INFERENCE_URL), e.g. http://127.0.0.1:8080. */
  url: string;
  /** Sent as `Authorization: Bearer …` (INFERENCE_API_KEY); never logged. */
  apiKey?: string;
  /** A whole request (a reply's whole stream included) ends after this long. */
  timeoutMs: number;
  /** A stream that sends nothing for this long is given up. Default: `timeoutMs`. */
  idleTimeoutMs?: number;
  /** Longest Retry-After honoured on 429/503 before giving up. Default 10 s. */
  maxRetryAfterMs?: number;
  /** Tries on 429/503 in all. Default 3. */
  maxTries?: number;
}

/**
 * Retry-After as milliseconds: a number of seconds or an HTTP date; undefined when absent or
 * unreadable. `now` is for tests.
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before the next try on a 429/503: the server's Retry-After, bounded; without one, 1 s, 2 s, … */
export function retryDelayMs(header: string | null | undefined, attempt: number, maxMs: number, now = Date.now()): number {
  const asked = retryAfterMs(header, now);
  return Math.min(asked ?? 1000 * 2 ** attempt, maxMs);
}

/**
 * JSON over HTTP to an inference server: a bearer key when given, a deadline on every request, and
 * 429/503 retried after the server's Retry-After (bounded). Every failure to reach the server or
 * get an answer from it is a ModelUnavailableError whose text names the path, never the key; a
 * caller's abort stays an abort.
 */
export class ServerHttp {
  readonly baseUrl: string;
  /** The URL without credentials, fit for logs and /status. */
  readonly shownUrl: string;

  /** Authorization for every request: the API key as a bearer token, else the URL's user and password as basic auth. */
  private readonly authorization?: string;

  constructor(private readonly options: ServerHttpOptions) {
    const url = new URL(options.url);
    // fetch refuses URLs with credentials in them: they go as a header instead.
    const basic = url.username || url.password ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}` : undefined;
    this.authorization = options.apiKey ? `Bearer ${options.apiKey}` : basic;
    this.shownUrl = maskCredentials(options.url.replace(/\/+$/, ''));
    url.username = '';
    url.password = '';
    this.baseUrl = url.toString().replace(/\/+$/, '');
  }

  /** GET or POST JSON; resolves with the parsed body. `quiet404`: a 404 resolves undefined (probing what a server is). */
  async json<T>(path: string, body?: unknown, { signal, quiet404 = false }: { signal?: AbortSignal; quiet404?: boolean } = {}): Promise<T | undefined> {
    const response = await this.request(path, body, signal, this.options.timeoutMs);
    try {
      if (quiet404 && response.status === 404) return undefined;
      if (!response.ok) throw new ModelUnavailableError(`${path} answered HTTP ${response.status}${await errorText(response)}`);
      return (await response.json()) as T;
    } catch (error) {
      throw this.failure(path, error, signal);
    }
  }

  /**
   * POSTs and reads the response body as text pieces, as they come. Ends with a
   * ModelUnavailableError when the server goes away mid-stream, sends nothing for the idle
   * timeout, or the whole stream outlasts the timeout.
   */
  async *stream(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<string> {
    const idleMs = this.options.idleTimeoutMs ?? this.options.timeoutMs;
    const idle = new AbortController();
    const response = await this.request(path, body, signal ? AbortSignal.any([signal, idle.signal]) : idle.signal, this.options.timeoutMs);
    if (!response.ok || !response.body) throw new ModelUnavailableError(`${path} answered HTTP ${response.status}${await errorText(response)}`);
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new ModelUnavailableError(`${path} sent nothing for ${idleMs} ms`)), idleMs);
    };
    try {
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        yield decoder.decode(value, { stream: true });
      }
      const rest = decoder.decode();
      if (rest) yield rest;
    } catch (error) {
      if (idle.signal.aborted && !signal?.aborted) throw idle.signal.reason;
      throw this.failure(path, error, signal);
    } finally {
      clearTimeout(timer);
      // Closing the body closes the connection: llama-server then stops generating for it.
      await reader.cancel().catch(() => undefined);
    }
  }

  /** One request, with retries on 429/503; the response is returned unread. */
  private async request(path: string, body: unknown, signal: AbortSignal | undefined, timeoutMs: number): Promise<Response> {
    const maxTries = this.options.maxTries ?? 3;
    const deadline = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(this.baseUrl + path, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(this.authorization ? { authorization: this.authorization } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: combined,
        });
      } catch (error) {
        throw this.failure(path, error, signal, deadline);
      }
      if ((response.status !== 429 && response.status !== 503) || attempt + 1 >= maxTries) return response;
      const wait = retryDelayMs(response.headers.get('retry-after'), attempt, this.options.maxRetryAfterMs ?? 10_000);
      await response.body?.cancel().catch(() => undefined);
      await sleep(wait, combined).catch((error: unknown) => {
        throw this.failure(path, error, signal, deadline);
      });
    }
  }

  /** What a failed request becomes: the caller's abort as is, a deadline as "did not answer in time", the rest as unavailable. */
  private failure(path: string, error: unknown, signal?: AbortSignal, deadline?: AbortSignal): Error {
    if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new AbortedError();
    if (error instanceof ModelUnavailableError) return error;
    if (deadline?.aborted || (error instanceof Error && error.name === 'TimeoutError')) return new ModelUnavailableError(`${path} did not answer within ${this.options.timeoutMs} ms`);
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    return new ModelUnavailableError(`${path}: ${maskCredentials(cause)}`);
  }
}

async function errorText(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  return text ? `: ${maskCredentials(text.slice(0, 200))}` : '';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
