import type { InferenceApi } from '../../domain.js';
import { ModelUnavailableError } from '../../errors.js';
import type { PromptPart } from '../OwnTemplateChatWrapper.js';
import type { TopToken } from './labelScores.js';
import { NdjsonParser, SseParser } from './sse.js';
import type { ServerHttp } from './http.js';

export type { InferenceApi };

/** What a server says about itself at start. */
export interface ServerInfo {
  api: InferenceApi;
  /** The model's name or path as the server names it. */
  model: string;
  /** Tokens per request (llama-server: per slot); undefined when the server does not say. */
  contextSize?: number;
  /** llama-server's parallel slots. */
  slots?: number;
  /** The model's Jinja chat template, when the server hands it out (llama-server /props). */
  chatTemplate?: string;
  bosToken?: string;
  eosToken?: string;
}

export interface StreamParams {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
  stop: string[];
  /** llama-server's slot (id_slot); other servers ignore it. */
  slot?: number;
}

/** One event of a streamed reply: a piece of text, or its end with what the server counted. */
export type StreamEvent = { text: string } | { end: { evaluatedTokens?: number; generatedTokens?: number; endedByModel: boolean } };

/**
 * One kind of inference server, as the engine uses it: what it is, how a rendered prompt is sent,
 * the top next tokens at the answer position, and a streamed completion.
 */
export interface Backend {
  readonly api: InferenceApi;
  info(model?: string): Promise<ServerInfo>;
  /** Token ids of a text (llama-server /tokenize); absent where the server has no tokenizer endpoint. */
  tokenize?(text: string, special: boolean): Promise<number[]>;
  detokenize?(ids: number[]): Promise<string>;
  /** The rendered prompt as this server takes it. */
  encode(parts: readonly PromptPart[]): Promise<Array<string | number> | string>;
  top(prompt: Array<string | number> | string, count: number, slot?: number): Promise<TopToken[]>;
  /**
   * The probabilities of exactly these tokens at the answer position, each raised alike (logit_bias)
   * so all of them come back and their odds against each other stay the model's: what the in-process
   * classifier reads. llama-server only (its probabilities after the bias); absent elsewhere.
   */
  boostedTop?(prompt: Array<string | number> | string, tokens: readonly number[], slot?: number): Promise<Map<number, number>>;
  stream(prompt: Array<string | number> | string, params: StreamParams, signal?: AbortSignal): AsyncGenerator<StreamEvent>;
  /** How many candidates `top` asks for (vLLM and Ollama cap at 20). */
  readonly topCount: number;
}

type Json = Record<string, unknown>;

const asNumber = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const asString = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** Top tokens from either shape a server reports them in: `[{token, logprob}]` lists, or vLLM's legacy `{token: logprob}` maps. */
export function topTokensOf(value: unknown): TopToken[] {
  if (Array.isArray(value)) {
    return value.flatMap((item: Json) => {
      const token = typeof item?.token === 'string' ? item.token : typeof item?.tok_str === 'string' ? item.tok_str : undefined;
      const logprob = asNumber(item?.logprob) ?? (asNumber(item?.prob) !== undefined ? Math.log(item.prob as number) : undefined);
      return token !== undefined && logprob !== undefined ? [{ token, logprob }] : [];
    });
  }
  if (value && typeof value === 'object') return Object.entries(value as Json).flatMap(([token, logprob]) => (asNumber(logprob) !== undefined ? [{ token, logprob: logprob as number }] : []));
  return [];
}

/** What boostedTop adds to the chosen tokens' logits: far above any other token's, the same for each. */
const BOOST = 100;

/** llama.cpp's llama-server: /props, /tokenize, /completion with token-id prompts, n_probs, id_slot and cache_prompt. */
export class LlamaServerBackend implements Backend {
  readonly api = 'llama-server' as const;
  readonly topCount = 100;
  /** Token ids per (text, special): turns of the history are counted on every reply. */
  private readonly tokenCache = new Map<string, number[]>();

  constructor(private readonly http: ServerHttp) {}

  async info(): Promise<ServerInfo> {
    const props = (await this.http.json<Json>('/props'))!;
    const settings = (props.default_generation_settings ?? {}) as Json;
    return {
      api: this.api,
      model: asString(props.model_alias) ?? asString(props.model_path) ?? 'unknown',
      contextSize: asNumber(settings.n_ctx) ?? asNumber(props.n_ctx),
      slots: asNumber(props.total_slots),
      chatTemplate: asString(props.chat_template),
      bosToken: asString(props.bos_token),
      eosToken: asString(props.eos_token),
    };
  }

  async tokenize(text: string, special: boolean): Promise<number[]> {
    const key = `${special ? 1 : 0}${text}`;
    const cached = this.tokenCache.get(key);
    if (cached) {
      // Map order is the LRU order.
      this.tokenCache.delete(key);
      this.tokenCache.set(key, cached);
      return cached;
    }
    const body = await this.http.json<{ tokens: number[] }>('/tokenize', { content: text, add_special: false, parse_special: special });
    const tokens = body?.tokens ?? [];
    this.tokenCache.set(key, tokens);
    if (this.tokenCache.size > 8192) this.tokenCache.delete(this.tokenCache.keys().next().value!);
    return tokens;
  }

  async detokenize(ids: number[]): Promise<string> {
    return (await this.http.json<{ content: string }>('/detokenize', { tokens: ids }))?.content ?? '';
  }

  /** Every piece as token ids: the template's text with its special tokens, a message's text as plain text (a typed `<|im_start|>` stays text), as in process. */
  async encode(parts: readonly PromptPart[]): Promise<number[]> {
    const pieces = await Promise.all(parts.map((part) => this.tokenize(part.text, part.special)));
    return pieces.flat();
  }

  async top(prompt: Array<string | number> | string, count: number, slot?: number): Promise<TopToken[]> {
    // post_sampling_probs false: the model's own probabilities, before any sampler touches them.
    const body = await this.http.json<Json>('/completion', { prompt, n_predict: 1, n_probs: count, post_sampling_probs: false, cache_prompt: true, temperature: 1, ...(slot === undefined ? {} : { id_slot: slot }) });
    const first = (body?.completion_probabilities as Json[] | undefined)?.[0];
    return topTokensOf(first?.top_logprobs ?? first?.probs);
  }

  async boostedTop(prompt: Array<string | number> | string, tokens: readonly number[], slot?: number): Promise<Map<number, number>> {
    // post_sampling_probs: the probabilities after the bias, over a plain softmax (no top-k, top-p or min-p cut).
    const body = await this.http.json<Json>('/completion', {
      prompt,
      n_predict: 1,
      n_probs: tokens.length,
      post_sampling_probs: true,
      logit_bias: tokens.map((token) => [token, BOOST]),
      temperature: 1,
      top_k: 0,
      top_p: 1,
      min_p: 0,
      cache_prompt: true,
      ...(slot === undefined ? {} : { id_slot: slot }),
    });
    const first = (body?.completion_probabilities as Json[] | undefined)?.[0];
    const probabilities = new Map<number, number>();
    for (const item of (first?.top_probs as Json[] | undefined) ?? []) {
      const id = asNumber(item.id);
      const probability = asNumber(item.prob);
      if (id !== undefined && probability !== undefined) probabilities.set(id, probability);
    }
    return probabilities;
  }

  async *stream(prompt: Array<string | number> | string, params: StreamParams, signal?: AbortSignal): AsyncGenerator<StreamEvent> {
    const body = {
      prompt,
      stream: true,
      cache_prompt: true,
      n_predict: params.maxTokens,
      temperature: params.temperature,
      top_p: params.topP,
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      ...(params.stop.length > 0 ? { stop: params.stop } : {}),
      ...(params.slot === undefined ? {} : { id_slot: params.slot }),
    };
    const parser = new SseParser();
    for await (const chunk of this.http.stream('/completion', body, signal)) {
      for (const data of parser.push(chunk)) {
        const event = JSON.parse(data) as Json;
        if (typeof event.content === 'string' && event.content) yield { text: event.content };
        if (event.stop === true) {
          const timings = (event.timings ?? {}) as Json;
          yield { end: { evaluatedTokens: asNumber(timings.prompt_n), generatedTokens: asNumber(event.tokens_predicted), endedByModel: event.stop_type === 'eos' || event.stop_type === 'word' } };
          return;
        }
      }
    }
    throw streamEndedEarly();
  }
}

/** Any OpenAI-compatible server (vLLM, SGLang, LM Studio; llama-server too): /v1/models, /v1/completions with a raw prompt and logprobs. */
export class OpenAiBackend implements Backend {
  readonly api = 'openai' as const;
  /** vLLM's default --max-logprobs. */
  readonly topCount = 20;
  private model = '';

  constructor(private readonly http: ServerHttp) {}

  async info(model?: string): Promise<ServerInfo> {
    const list = await this.http.json<{ data?: Json[] }>('/v1/models');
    const first = list?.data?.find((entry) => model === undefined || entry.id === model) ?? list?.data?.[0];
    this.model = model ?? asString(first?.id) ?? '';
    // llama-server, also reachable this way, hands out its template; vLLM and the others do not.
    const props = await this.http.json<Json>('/props', undefined, { quiet404: true }).catch(() => undefined);
    return {
      api: this.api,
      model: this.model || 'unknown',
      contextSize: asNumber(first?.max_model_len) ?? asNumber((props?.default_generation_settings as Json | undefined)?.n_ctx),
      chatTemplate: asString(props?.chat_template),
      bosToken: asString(props?.bos_token),
      eosToken: asString(props?.eos_token),
    };
  }

  async encode(parts: readonly PromptPart[]): Promise<string> {
    return parts.map((part) => part.text).join('');
  }

  async top(prompt: Array<string | number> | string, count: number): Promise<TopToken[]> {
    const body = await this.http.json<Json>('/v1/completions', { model: this.model, prompt, max_tokens: 1, logprobs: count, temperature: 1 });
    const logprobs = ((body?.choices as Json[] | undefined)?.[0]?.logprobs ?? {}) as Json;
    // Legacy completions (vLLM): top_logprobs is a list of {token: logprob}; llama-server: content[0].top_logprobs.
    const legacy = (logprobs.top_logprobs as unknown[] | undefined)?.[0];
    return topTokensOf(legacy ?? (logprobs.content as Json[] | undefined)?.[0]?.top_logprobs);
  }

  async *stream(prompt: Array<string | number> | string, params: StreamParams, signal?: AbortSignal): AsyncGenerator<StreamEvent> {
    const body = {
      model: this.model,
      prompt,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: params.maxTokens,
      temperature: params.temperature,
      top_p: params.topP,
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      ...(params.stop.length > 0 ? { stop: params.stop } : {}),
    };
    const parser = new SseParser();
    let finish: string | undefined;
    let usage: Json | undefined;
    for await (const chunk of this.http.stream('/v1/completions', body, signal)) {
      for (const data of parser.push(chunk)) {
        if (data.trim() === '[DONE]') {
          const cached = asNumber(((usage?.prompt_tokens_details ?? {}) as Json).cached_tokens) ?? 0;
          const prompt = asNumber(usage?.prompt_tokens);
          yield { end: { evaluatedTokens: prompt === undefined ? undefined : prompt - cached, generatedTokens: asNumber(usage?.completion_tokens), endedByModel: finish === 'stop' } };
          return;
        }
        const event = JSON.parse(data) as Json;
        if (event.usage) usage = event.usage as Json;
        const choice = (event.choices as Json[] | undefined)?.[0];
        if (typeof choice?.text === 'string' && choice.text) yield { text: choice.text };
        if (typeof choice?.finish_reason === 'string') finish = choice.finish_reason;
      }
    }
    throw streamEndedEarly();
  }
}

/** Ollama: /api/generate with `raw: true` (our rendered prompt), NDJSON streaming, top_logprobs up to 20. */
export class OllamaBackend implements Backend {
  readonly api = 'ollama' as const;
  readonly topCount = 20;
  private model = '';

  constructor(private readonly http: ServerHttp) {}

  async info(model?: string): Promise<ServerInfo> {
    const tags = await this.http.json<{ models?: Json[] }>('/api/tags');
    this.model = model ?? asString(tags?.models?.[0]?.name) ?? '';
    if (!this.model) return { api: this.api, model: 'none pulled' };
    const show = await this.http.json<Json>('/api/show', { model: this.model }).catch(() => undefined);
    const modelInfo = (show?.model_info ?? {}) as Json;
    const contextKey = Object.keys(modelInfo).find((key) => key.endsWith('.context_length'));
    return { api: this.api, model: this.model, contextSize: contextKey ? asNumber(modelInfo[contextKey]) : undefined };
  }

  async encode(parts: readonly PromptPart[]): Promise<string> {
    return parts.map((part) => part.text).join('');
  }

  async top(prompt: Array<string | number> | string, count: number): Promise<TopToken[]> {
    const body = await this.http.json<Json>('/api/generate', { model: this.model, prompt, raw: true, stream: false, logprobs: true, top_logprobs: count, options: { num_predict: 1, temperature: 1 } });
    return topTokensOf((body?.logprobs as Json[] | undefined)?.[0]?.top_logprobs);
  }

  async *stream(prompt: Array<string | number> | string, params: StreamParams, signal?: AbortSignal): AsyncGenerator<StreamEvent> {
    const body = {
      model: this.model,
      prompt,
      raw: true,
      stream: true,
      options: { num_predict: params.maxTokens, temperature: params.temperature, top_p: params.topP, ...(params.seed === undefined ? {} : { seed: params.seed }), ...(params.stop.length > 0 ? { stop: params.stop } : {}) },
    };
    const parser = new NdjsonParser();
    for await (const chunk of this.http.stream('/api/generate', body, signal)) {
      for (const line of parser.push(chunk)) {
        const event = JSON.parse(line) as Json;
        if (typeof event.error === 'string') throw new ModelUnavailableError(`Ollama: ${event.error}`);
        if (typeof event.response === 'string' && event.response) yield { text: event.response };
        if (event.done === true) {
          yield { end: { evaluatedTokens: asNumber(event.prompt_eval_count), generatedTokens: asNumber(event.eval_count), endedByModel: event.done_reason === 'stop' } };
          return;
        }
      }
    }
    throw streamEndedEarly();
  }
}

/** The server closed a reply's stream before saying it was done (it died or restarted). */
function streamEndedEarly(): Error {
  return new ModelUnavailableError('the reply stream ended before the server said it was done');
}

/**
 * Which kind of server answers at `http`: llama-server answers GET /props with a
 * default_generation_settings, Ollama GET /api/version; anything else is taken as OpenAI-compatible.
 */
export async function detectApi(http: ServerHttp): Promise<InferenceApi> {
  const props = await http.json<Json>('/props', undefined, { quiet404: true }).catch((error: unknown) => {
    // A server that has no such route says so (405, 400); one that is not there, still loading (503) or
    // failing is not "some other kind": that is the caller's to report and try again.
    if (error instanceof ModelUnavailableError && /answered HTTP (400|405)\b/.test(error.detail)) return undefined;
    throw error;
  });
  if (props && typeof props === 'object' && 'default_generation_settings' in props) return 'llama-server';
  const version = await http.json<Json>('/api/version', undefined, { quiet404: true }).catch(() => undefined);
  if (version && typeof version.version === 'string') return 'ollama';
  return 'openai';
}

export function backendFor(api: InferenceApi, http: ServerHttp): Backend {
  return api === 'llama-server' ? new LlamaServerBackend(http) : api === 'ollama' ? new OllamaBackend(http) : new OpenAiBackend(http);
}
