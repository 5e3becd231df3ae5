// Random-weight qwen2 GGUF models for tests and benchmarks. No model can be downloaded here, so we
// generate real llama.cpp models: the text they produce is meaningless, but tokenization, chat
// templating, sampling and timings are all real.
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  GEMMA3_MARCH_2025_TEMPLATE, GEMMA3_TEMPLATE, LLAMA32_TEMPLATE, MISTRAL_V3_TEMPLATE, PHI4_MINI_TEMPLATE, QWEN3_TEMPLATE,
  R1_DISTILL_JANUARY_2025_TEMPLATE, R1_DISTILL_TEMPLATE, SMOLLM3_ORIGINAL_TEMPLATE, SMOLLM3_TEMPLATE,
} from './familyTemplates.js';
import type { EngineOptions } from '../../src/engine/Engine.js';
import { meta, TensorType, writeGguf, type MetaValue, type TensorSpec } from './ggufWriter.js';

/** Tests must run the tiny model with one thread: llama.cpp threads spin, and this machine has 2 cores. */
export const TEST_THREADS = 1;

/** Bump when the generated files change, so stale models in test/.models are regenerated. */
const GENERATOR_VERSION = 1;

export const MODELS_DIR = fileURLToPath(new URL('../.models/', import.meta.url));

export interface ModelSpec {
  name: string;
  file: string;
  nEmbd: number;
  nBlocks: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  /** Total vocab size; BPE tokens fill the start, the rest is filler. */
  nVocab: number;
  /** Id of <|endoftext|>; <|im_start|> and <|im_end|> follow it. */
  specialsAt: number;
  contextLength: number;
  ropeBase: number;
  rmsEps: number;
  /** Std of random weights. Large enough that layers mix context, so greedy output isn't one token repeated. */
  weightStd: number;
  seed: number;
  /** Longest token, in bytes: 2 gives a tokenizer whose labels share first tokens ("n" of neutral and negative). */
  maxTokenBytes?: number;
  /** The GGUF's chat template. Default: Qwen2.5-Instruct's. */
  chatTemplate?: string;
  /** Control tokens placed at `specialsAt`. Default ChatML's: <|endoftext|>, <|im_start|>, <|im_end|>. */
  specials?: readonly string[];
  /** Which of `specials` are BOS and EOS (and whether a BOS is added). Default: the first, the third, none added. */
  bos?: string;
  eos?: string;
  addBos?: boolean;
  /**
   * Next-token rules that replace the random weights' choice, as token texts: after `from` the model
   * emits `to`. A scripted model is a pure bigram machine (attention and feed-forward add nothing),
   * so a rule holds wherever `from` appears; tokens without a rule continue at random.
   */
  script?: ReadonlyArray<readonly [from: string, to: string]>;
}

/** BPE tokens (bytes + merges) in every model. */
const BPE_VOCAB = 1021;

/** The special tokens of every ChatML model (Qwen2.5's ids order). */
const CHATML_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

export const TINY_SPEC: ModelSpec = {
  name: 'tiny-qwen2',
  file: 'tiny-qwen2.gguf',
  nEmbd: 64,
  nBlocks: 2,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  nVocab: BPE_VOCAB + 3,
  specialsAt: BPE_VOCAB,
  contextLength: 32768,
  ropeBase: 1e6,
  rmsEps: 1e-6,
  weightStd: 0.25,
  seed: 1,
};

/**
 * The tiny model with a cruder tokenizer: only two-byte merges and no whole-word labels, so
 * "neutral" and "negative" begin with the same token. A classifier must still tell them apart.
 */
export const TWO_BYTE_MERGES_SPEC: ModelSpec = {
  ...TINY_SPEC,
  name: 'tiny-qwen2-two-byte-merges',
  file: 'tiny-qwen2-two-byte-merges.gguf',
  maxTokenBytes: 2,
};

/** Exact shape of Qwen2.5-0.5B-Instruct (but with an untied output matrix, see outputWeight()). */
export const QWEN_SHAPE_SPEC: ModelSpec = {
  name: 'qwen2.5-0.5b-shape',
  file: 'qwen2.5-0.5b-shape-q8_0.gguf',
  nEmbd: 896,
  nBlocks: 24,
  nHead: 14,
  nHeadKv: 2,
  nFf: 4864,
  nVocab: 151936,
  specialsAt: 151643,
  contextLength: 32768,
  ropeBase: 1e6,
  rmsEps: 1e-6,
  weightStd: 0.06,
  seed: 2,
};

// ---------------------------------------------------------------------------------------------
// Tokenizer

/** GPT-2 bytes_to_unicode: byte -> printable symbol, in GPT-2's vocab order. */
function byteSymbols(): Array<[number, string]> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const pairs: Array<[number, string]> = printable.map((b) => [b, String.fromCodePoint(b)]);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) pairs.push([b, String.fromCodePoint(256 + n++)]);
  return pairs;
}

const BYTE_SYMBOLS = byteSymbols();
const SYMBOL_OF_BYTE = new Map(BYTE_SYMBOLS);

// llama.cpp's pre-tokenizer for `tokenizer.ggml.pre = qwen2`.
const QWEN2_PRETOKENIZER =
  /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function toSymbols(word: string): string[] {
  return [...Buffer.from(word, 'utf8')].map((b) => SYMBOL_OF_BYTE.get(b)!);
}

// Training text: chat-like English. The sentiment labels appear often, with and without a leading
// space and capitalised, so they are learned early; REQUIRED_WORDS below guarantees them anyway.
const CORPUS = `
positive
neutral
negative
Positive
Neutral
Negative
The sentiment of this message is positive. The sentiment of that message is negative.
The sentiment of the other message is neutral. Reply with one word: positive, neutral or negative.
Label: positive. Label: neutral. Label: negative. Answer: positive Answer: neutral Answer: negative
I love this server, you are all so kind and helpful! That is positive.
This is the worst day ever, my code broke again and nobody will help me. That is negative.
The meeting is at three o'clock tomorrow in the main channel. That is neutral.
Hey everyone, what's up? I just got back from work and I'm really tired, but happy to see you.
Thanks for the help with the bot yesterday, it works great now and I can't wait to try more.
Can someone tell me how to set up the new role? I don't know where the settings are.
I think the game update is good, but the new map feels a bit too big for small teams.
Why does it keep crashing? I've tried everything and I'm so angry right now.
Good morning! Have a nice day, and don't forget to drink some water.
That movie was amazing, the music was beautiful and the story made me cry.
I hate waiting for the build, it takes forever and then it fails anyway.
We should play together tonight if you have time, it would be fun.
Please be nice to new people in the chat, they are still learning the rules.
The weather is cold and grey today, I just want to stay home and read a book.
Wow, that's great news! Congratulations on the new job, you really deserve it.
Sorry, I was wrong about the time. The event starts at eight, not seven.
Does anyone know a good place to eat near the station? Something cheap would be better.
I'm not sure what you mean, could you explain it again with an example?
Lol that is so funny, I can't stop laughing at that picture of your cat.
My friend said the new version is much faster than the old one, which is nice.
This channel is for questions about the project. Please read the pinned message first.
You are a helpful assistant. You read the message and answer with the sentiment only.
The user said hello. The assistant said hi, how can I help you today?
`;

// Common English and chat words, each seen with and without a leading space.
const COMMON_WORDS = `the be to of and a in that have I it for not on with he as you do at this but his by from
they we say her she or an will my one all would there their what so up out if about who get which go me when
make can like time no just him know take people into year your good some could them see other than then now
look only come its over think also back after use two how our work first well way even new want because any
these give day most us is are was were been has had did does said got made went thing things man woman child
world life hand part place case week company system program question government number night point home water
room mother area money story fact month lot right study book eye job word business issue side kind head house
service friend father power hour game line end member law car city community name president team minute idea
kid body information back parent face others level office door health person art war history party result
change morning reason research girl guy moment air teacher force education very really much many more less
great little big old long high small large next early young important few public bad same able last late hard
major better best free sure real true full happy sad angry glad sorry love hate hope feel feeling felt nice
fine okay ok yes yeah hey hi hello thanks thank please help need try tried bot server channel message reply
chat discord user assistant system mood sentiment label answer word only text should must might may here
where why again never always still something nothing everything someone everyone today tomorrow yesterday
tonight bad awful terrible wonderful amazing awesome cool fun funny boring tired excited worried afraid
lol haha omg wow yay ugh hmm please idk btw`;

/** Words (pre-tokenizer pieces) that must be single tokens: a classifier's labels need distinct first tokens. */
const REQUIRED_WORDS = ['positive', 'neutral', 'negative', 'Positive', 'Neutral', 'Negative'].flatMap((w) => [w, ` ${w}`]);

function corpusWordCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (text: string, times: number): void => {
    for (const m of text.matchAll(QWEN2_PRETOKENIZER)) counts.set(m[0], (counts.get(m[0]) ?? 0) + times);
  };
  add(CORPUS, 3);
  const words = COMMON_WORDS.split(/\s+/).filter(Boolean);
  add(words.join(' '), 2);
  add(words.join('\n'), 1);
  return counts;
}

/** Applies merges (lowest rank first, as llama.cpp does) to a byte-symbol sequence. */
function applyMerges(symbols: string[], ranks: Map<string, number>): string[] {
  let parts = symbols;
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) return parts;
    parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
  }
}

export interface BpeVocab {
  /** Byte symbols first, then merge results, in merge order. */
  tokens: string[];
  /** "a b" strings in priority order; every a, b and a+b is in `tokens`. */
  merges: string[];
}

/** Trains a byte-level BPE on the built-in corpus. Deterministic: ties break on the pair text. */
export function buildBpeVocab(size = BPE_VOCAB, maxTokenBytes = Infinity): BpeVocab {
  const tokens = BYTE_SYMBOLS.map(([, s]) => s);
  const known = new Set(tokens);
  const merges: string[] = [];
  const ranks = new Map<string, number>();
  const addMerge = (a: string, b: string): void => {
    ranks.set(`${a} ${b}`, merges.length);
    merges.push(`${a} ${b}`);
    if (!known.has(a + b)) { known.add(a + b); tokens.push(a + b); }
  };

  // Required words go first so they are single tokens whatever the corpus statistics do.
  for (const w of maxTokenBytes === Infinity ? REQUIRED_WORDS : []) {
    for (let parts = applyMerges(toSymbols(w), ranks); parts.length > 1; parts = applyMerges(toSymbols(w), ranks)) {
      addMerge(parts[0]!, parts[1]!);
    }
  }

  const words = [...corpusWordCounts()].map(([w, count]) => ({ parts: applyMerges(toSymbols(w), ranks), count }));
  while (tokens.length < size) {
    const pairCounts = new Map<string, number>();
    for (const { parts, count } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        if (parts[i]!.length + parts[i + 1]!.length > maxTokenBytes) continue;
        const key = `${parts[i]} ${parts[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let bestKey = '';
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) { bestKey = key; bestCount = count; }
    }
    if (!bestKey) break; // corpus exhausted: every word is already one token
    const [a, b] = bestKey.split(' ') as [string, string];
    addMerge(a, b);
    for (const w of words) {
      const p = w.parts;
      const merged: string[] = [];
      for (let i = 0; i < p.length; i++) {
        if (i + 1 < p.length && p[i] === a && p[i + 1] === b) { merged.push(a + b); i++; }
        else merged.push(p[i]!);
      }
      w.parts = merged;
    }
  }
  return { tokens, merges };
}

/** Real Qwen2.5-Instruct chat template; node-llama-cpp maps it to its ChatML wrapper. */
export const QWEN25_CHAT_TEMPLATE = String.raw`{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`;

/** Qwen1.5-Chat's template (the seed article's model): ChatML without Qwen2.5's tool branches. */
export const QWEN15_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The tiny model with Qwen1.5-Chat's chat template: the seed article's model family. */
export const QWEN15_TEMPLATE_SPEC: ModelSpec = {
  ...TINY_SPEC,
  name: 'tiny-qwen2-qwen15-template',
  file: 'tiny-qwen2-qwen15-template.gguf',
  chatTemplate: QWEN15_CHAT_TEMPLATE,
};

/** A chat family of issue 17: its tiny test model, and whether it reasons (emits a think block). */
export interface FamilySpec extends ModelSpec {
  family: string;
  reasoning: boolean;
  /** The template needs message contents as lists of parts (transformers' multimodal form). */
  contentParts?: boolean;
}

const THINK = ['<think>', '</think>'];

function family(family: string, chatTemplate: string, specials: string[], extra: Partial<FamilySpec> = {}): FamilySpec {
  const slug = family.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/-$/, '');
  return {
    ...TINY_SPEC,
    name: `tiny-${slug}`,
    file: `tiny-${slug}.gguf`,
    nVocab: BPE_VOCAB + specials.length,
    family,
    chatTemplate,
    specials,
    reasoning: false,
    ...extra,
  };
}

const GEMMA_SPECIALS = ['<pad>', '<eos>', '<bos>', '<start_of_turn>', '<end_of_turn>'];
const R1_SPECIALS = ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>', ...THINK];
const R1_TOKENS = { bos: '<｜begin▁of▁sentence｜>', eos: '<｜end▁of▁sentence｜>', addBos: true, reasoning: true };

/**
 * One tiny model per family of issue 17, each carrying its family's special tokens (as control
 * tokens) and a published chat template (familyTemplates.ts says where each comes from), plus the
 * earlier templates that the first GGUFs of Gemma 3 and DeepSeek-R1-Distill carry.
 */
export const FAMILY_SPECS: readonly FamilySpec[] = [
  family('Qwen3', QWEN3_TEMPLATE, [...CHATML_SPECIALS, ...THINK], { reasoning: true }),
  family('Gemma 3', GEMMA3_TEMPLATE, GEMMA_SPECIALS, { bos: '<bos>', eos: '<end_of_turn>', addBos: true }),
  family('Gemma 3 (March 2025 template)', GEMMA3_MARCH_2025_TEMPLATE, GEMMA_SPECIALS, { bos: '<bos>', eos: '<end_of_turn>', addBos: true, contentParts: true }),
  family('Llama 3.2', LLAMA32_TEMPLATE, ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], { bos: '<|begin_of_text|>', eos: '<|eot_id|>', addBos: true }),
  family('Mistral v0.3', MISTRAL_V3_TEMPLATE, ['<unk>', '<s>', '</s>', '[INST]', '[/INST]'], { bos: '<s>', eos: '</s>', addBos: true }),
  family('Phi-4-mini', PHI4_MINI_TEMPLATE, ['<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>'], { bos: '<|endoftext|>', eos: '<|end|>' }),
  family('SmolLM3', SMOLLM3_TEMPLATE, ['<|end_of_text|>', '<|im_start|>', '<|im_end|>', ...THINK], { bos: '<|im_start|>', eos: '<|im_end|>', reasoning: true }),
  family('DeepSeek-R1-Distill', R1_DISTILL_TEMPLATE, R1_SPECIALS, R1_TOKENS),
  family('DeepSeek-R1-Distill (January 2025 template)', R1_DISTILL_JANUARY_2025_TEMPLATE, R1_SPECIALS, R1_TOKENS),
];

/** SmolLM3 with HuggingFaceTB's own template, which prints today's date (written by hand: see familyTemplates.ts). */
export const SMOLLM3_ORIGINAL_SPEC: FamilySpec = family('SmolLM3 (HuggingFaceTB template)', SMOLLM3_ORIGINAL_TEMPLATE, ['<|end_of_text|>', '<|im_start|>', '<|im_end|>', ...THINK], {
  bos: '<|im_start|>',
  eos: '<|im_end|>',
  reasoning: true,
});

export function familySpec(name: string): FamilySpec {
  const spec = [...FAMILY_SPECS, SMOLLM3_ORIGINAL_SPEC].find((candidate) => candidate.family === name);
  if (!spec) throw new Error(`no test model for the family ${name}`);
  return spec;
}

/**
 * A reasoning family's model scripted to think without end: wherever a generation prompt or a
 * thought ends in a newline (or, for `opensAfter`, that token) it opens a think block, and inside
 * it only ever writes `<think>\n` again, never `</think>`. Once something closes the thought for
 * it, it answers " ok ok ok…". A reply from it is non-empty only if the thought was cut off.
 */
export function endlessThinker(spec: FamilySpec, opensAfter = '\n'): FamilySpec {
  const rules: Array<readonly [string, string]> = [['\n', '<think>'], ['<think>', '\n'], ['</think>', ' ok'], [' ok', ' ok']];
  if (opensAfter !== '\n') rules.push([opensAfter, '<think>']);
  return { ...spec, name: `${spec.name}-endless-thinker`, file: `${spec.name}-endless-thinker.gguf`, script: rules };
}

/** The tiny model of one family of issue 17. Use with TEST_THREADS. */
export function ensureFamilyModel(spec: FamilySpec): Promise<string> {
  return ensureModel(spec);
}

function specialsOf(spec: ModelSpec): readonly string[] {
  return spec.specials ?? CHATML_SPECIALS;
}

function specialId(spec: ModelSpec, token: string): number {
  const index = specialsOf(spec).indexOf(token);
  if (index < 0) throw new Error(`${spec.name}: ${token} is not one of its special tokens`);
  return spec.specialsAt + index;
}
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;

interface Vocab {
  tokens: string[];
  types: Int32Array;
  merges: string[];
  /** 1 for tokens the model should emit: BPE tokens of printable ASCII or newlines. */
  emittable: Uint8Array;
}

function buildVocab(spec: ModelSpec): Vocab {
  const bpe = buildBpeVocab(BPE_VOCAB, spec.maxTokenBytes);
  const SPECIALS = specialsOf(spec);
  if (spec.specialsAt < bpe.tokens.length || spec.specialsAt + SPECIALS.length > spec.nVocab) {
    throw new Error(`${spec.name}: vocab layout does not fit`);
  }
  const tokens = [...bpe.tokens];
  const taken = new Set(tokens);
  // Fillers pad the vocab to the real size. No merge produces them, so they are never tokenized to;
  // they are plain byte symbols so they would still detokenize cleanly.
  let n = 0;
  const filler = (): string => {
    for (;;) {
      const s = `[filler${n++}]`;
      if (!taken.has(s)) return s;
    }
  };
  while (tokens.length < spec.specialsAt) tokens.push(filler());
  tokens.push(...SPECIALS);
  while (tokens.length < spec.nVocab) tokens.push(filler());
  const types = new Int32Array(spec.nVocab).fill(TOKEN_NORMAL);
  for (let i = 0; i < SPECIALS.length; i++) types[spec.specialsAt + i] = TOKEN_CONTROL;
  // Lone bytes >= 0x80 would decode to U+FFFD and control bytes are noise: keep output to plain text.
  const emittable = new Uint8Array(spec.nVocab);
  const byteOfSymbol = new Map(BYTE_SYMBOLS.map(([b, sym]) => [sym, b]));
  bpe.tokens.forEach((t, id) => {
    emittable[id] = [...t].every((sym) => {
      const b = byteOfSymbol.get(sym)!;
      return (b >= 0x20 && b < 0x7f) || b === 0x0a;
    }) ? 1 : 0;
  });
  return { tokens, types, merges: bpe.merges, emittable };
}

// ---------------------------------------------------------------------------------------------
// Weights

/** mulberry32: tiny, fast, seedable; plenty for random weights. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function hashName(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0; // FNV-1a
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Random fill with the given std. Each tensor has its own stream (seeded from its name), so
 * content doesn't depend on tensor order. Sum of two 16-bit uniforms = triangular, close enough to
 * normal for random weights, at one PRNG call per value (the 0.5B model has 630M weights).
 */
function randomFill(seed: number, name: string, std: number, rowLen = 0, keepRow?: Uint8Array): TensorSpec['fill'] {
  const next = prng(hashName(seed, name));
  const scale = (std * Math.sqrt(6)) / 65535;
  return (out, start) => {
    for (let i = 0; i < out.length; i++) {
      const r = next();
      out[i] = ((r & 0xffff) + (r >>> 16) - 65535) * scale;
    }
    if (keepRow) {
      // Chunks hold whole rows, so row boundaries line up with `out`.
      for (let o = 0; o < out.length; o += rowLen) if (!keepRow[(start + o) / rowLen]) out.fill(0, o, o + rowLen);
    }
  };
}

const ones: TensorSpec['fill'] = (out) => { out.fill(1); };

/** A rule of a scripted model as token ids, with the embedding dimension it owns. */
interface ScriptRule {
  from: number;
  to: number;
  dim: number;
}

// A scripted rule's signal: the `from` token's own embedding dimension, and the `to` row's weight on
// it. After RMS norm it gives the `to` token a logit near 60, against random logits of a few units.
const SCRIPT_SIGNAL = 8;

function scriptRules(spec: ModelSpec, vocab: Vocab): ScriptRule[] {
  const idOf = (text: string): number => {
    const special = specialsOf(spec).indexOf(text);
    if (special >= 0) return spec.specialsAt + special;
    const id = vocab.tokens.indexOf(toSymbols(text).join(''));
    if (id < 0 || id >= spec.specialsAt) throw new Error(`${spec.name}: script token ${JSON.stringify(text)} is not one token of its vocabulary`);
    return id;
  };
  const fromIds = [...new Set((spec.script ?? []).map(([from]) => idOf(from)))];
  return (spec.script ?? []).map(([from, to]) => ({ from: idOf(from), to: idOf(to), dim: fromIds.indexOf(idOf(from)) }));
}

/** `fill`, then each row (one token's values, `rowLen` long) edited in place; chunks hold whole rows. */
function editRows(fill: TensorSpec['fill'], rowLen: number, edit: (token: number, row: Float32Array) => void): TensorSpec['fill'] {
  return (out, start) => {
    fill(out, start);
    for (let o = 0; o < out.length; o += rowLen) edit((start + o) / rowLen, out.subarray(o, o + rowLen));
  };
}

function buildTensors(spec: ModelSpec, vocab: Vocab): TensorSpec[] {
  const { nEmbd, nFf, nVocab, seed, weightStd: std } = spec;
  const nEmbdKv = (nEmbd / spec.nHead) * spec.nHeadKv;
  const rules = scriptRules(spec, vocab);
  const scriptDims = new Set(rules.map((rule) => rule.dim)).size;
  const zeros: TensorSpec['fill'] = (out) => { out.fill(0); };
  const rand = (name: string, dims: number[], type: TensorSpec['type'] = TensorType.Q8_0): TensorSpec =>
    ({ name, dims, type, fill: randomFill(seed, name, std) });
  // A scripted model's blocks add nothing to the residual stream: the next token depends on the last one only.
  const block = (name: string, dims: number[]): TensorSpec => (rules.length > 0 ? { name, dims, type: TensorType.Q8_0, fill: zeros } : rand(name, dims));
  // Scripted dimensions are the first ones: zero for every token but each rule's `from` token.
  const embedding = editRows(randomFill(seed, 'token_embd.weight', std), nEmbd, (token, row) => {
    row.fill(0, 0, scriptDims);
    for (const rule of rules) if (rule.from === token) row[rule.dim] = SCRIPT_SIGNAL;
  });
  const tensors: TensorSpec[] = [{ name: 'token_embd.weight', dims: [nEmbd, nVocab], type: TensorType.Q8_0, fill: embedding }];
  for (let i = 0; i < spec.nBlocks; i++) {
    const p = `blk.${i}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [nEmbd], type: TensorType.F32, fill: ones },
      rand(`${p}attn_q.weight`, [nEmbd, nEmbd]),
      rand(`${p}attn_q.bias`, [nEmbd], TensorType.F32),
      rand(`${p}attn_k.weight`, [nEmbd, nEmbdKv]),
      rand(`${p}attn_k.bias`, [nEmbdKv], TensorType.F32),
      rand(`${p}attn_v.weight`, [nEmbd, nEmbdKv]),
      rand(`${p}attn_v.bias`, [nEmbdKv], TensorType.F32),
      block(`${p}attn_output.weight`, [nEmbd, nEmbd]),
      { name: `${p}ffn_norm.weight`, dims: [nEmbd], type: TensorType.F32, fill: ones },
      rand(`${p}ffn_gate.weight`, [nEmbd, nFf]),
      rand(`${p}ffn_up.weight`, [nEmbd, nFf]),
      block(`${p}ffn_down.weight`, [nFf, nEmbd]),
    );
  }
  tensors.push({ name: 'output_norm.weight', dims: [nEmbd], type: TensorType.F32, fill: ones });
  // A separate output matrix: tied to the embedding, a random model just echoes its last token.
  // Rows of fillers, specials and odd bytes are zero (logit 0, below the best random logits), so
  // greedy/top-k generation stays in plain text and never stops on its own: runs end at maxTokens,
  // which keeps benchmark token counts fixed. A scripted rule's `to` row reads its `from` dimension.
  const output = editRows(randomFill(seed, 'output.weight', std, nEmbd, vocab.emittable), nEmbd, (token, row) => {
    row.fill(0, 0, scriptDims);
    for (const rule of rules) if (rule.to === token) row[rule.dim] = SCRIPT_SIGNAL;
  });
  tensors.push({ name: 'output.weight', dims: [nEmbd, nVocab], type: TensorType.Q8_0, fill: output });
  return tensors;
}

function buildMetadata(spec: ModelSpec, vocab: Vocab): Array<[string, MetaValue]> {
  return [
    ['testmodel.stamp', meta.str(stamp(spec))],
    ['general.architecture', meta.str('qwen2')],
    ['general.name', meta.str(spec.name)],
    ['general.file_type', meta.u32(7)], // LLAMA_FTYPE_MOSTLY_Q8_0
    ['general.quantization_version', meta.u32(2)],
    ['qwen2.context_length', meta.u32(spec.contextLength)],
    ['qwen2.embedding_length', meta.u32(spec.nEmbd)],
    ['qwen2.block_count', meta.u32(spec.nBlocks)],
    ['qwen2.feed_forward_length', meta.u32(spec.nFf)],
    ['qwen2.attention.head_count', meta.u32(spec.nHead)],
    ['qwen2.attention.head_count_kv', meta.u32(spec.nHeadKv)],
    ['qwen2.rope.freq_base', meta.f32(spec.ropeBase)],
    ['qwen2.attention.layer_norm_rms_epsilon', meta.f32(spec.rmsEps)],
    ['tokenizer.ggml.model', meta.str('gpt2')],
    ['tokenizer.ggml.pre', meta.str('qwen2')],
    ['tokenizer.ggml.tokens', meta.strings(vocab.tokens)],
    ['tokenizer.ggml.token_type', meta.i32s(vocab.types)],
    ['tokenizer.ggml.merges', meta.strings(vocab.merges)],
    ['tokenizer.ggml.eos_token_id', meta.u32(spec.eos ? specialId(spec, spec.eos) : spec.specialsAt + 2)],
    ['tokenizer.ggml.padding_token_id', meta.u32(spec.specialsAt)],
    ['tokenizer.ggml.bos_token_id', meta.u32(spec.bos ? specialId(spec, spec.bos) : spec.specialsAt)],
    ['tokenizer.ggml.add_bos_token', meta.bool(spec.addBos ?? false)],
    ['tokenizer.chat_template', meta.str(spec.chatTemplate ?? QWEN25_CHAT_TEMPLATE)],
  ];
}

// ---------------------------------------------------------------------------------------------
// Files

function stamp(spec: ModelSpec): string {
  // A family model's template and tokens are still being written: a change must regenerate it.
  const content = spec.specials ? `/${hashName(0, `${spec.chatTemplate}\u0000${spec.specials.join('\u0000')}\u0000${JSON.stringify(spec.script ?? [])}`).toString(16)}` : '';
  return `${spec.name}/v${GENERATOR_VERSION}${content}`;
}

/** True if `path` holds a model from this generator version (the stamp is the second metadata value, well inside 512 bytes). */
async function isCurrent(path: string, spec: ModelSpec): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => null);
  if (!fh) return false;
  try {
    const { buffer, bytesRead } = await fh.read({ buffer: Buffer.alloc(512), position: 0 });
    return buffer.subarray(0, bytesRead).includes(stamp(spec));
  } finally {
    await fh.close();
  }
}

/** Writes the model for `spec` to `path` (overwriting it). */
export async function generateModel(spec: ModelSpec, path: string): Promise<void> {
  const vocab = buildVocab(spec);
  await writeGguf(path, buildMetadata(spec, vocab), buildTensors(spec, vocab));
}

/** Temp files left by killed runs (a run takes seconds; an hour-old one is dead). Up to 700 MB each. */
async function removeStaleTempFiles(file: string): Promise<void> {
  for (const name of await readdir(MODELS_DIR)) {
    if (!name.startsWith(`${file}.`) || !name.endsWith('.tmp')) continue;
    const tmp = join(MODELS_DIR, name);
    const info = await stat(tmp).catch(() => null);
    if (info && Date.now() - info.mtimeMs > 3600_000) await rm(tmp, { force: true });
  }
}

// One generation per file per process; across processes the temp-file + rename keeps readers safe
// (racing writers produce identical bytes, the last rename wins).
const pending = new Map<string, Promise<string>>();

function ensureModel(spec: ModelSpec): Promise<string> {
  const path = join(MODELS_DIR, spec.file);
  let p = pending.get(path);
  if (!p) {
    p = (async () => {
      if (!(await isCurrent(path, spec))) {
        await mkdir(MODELS_DIR, { recursive: true });
        await removeStaleTempFiles(spec.file);
        await generateModel(spec, path);
      }
      return path;
    })();
    p.catch(() => pending.delete(path));
    pending.set(path, p);
  }
  return p;
}

/** Absolute path of the tiny random qwen2 model (~200 KB), generated on first use. Use with TEST_THREADS. */
export function ensureTinyModel(): Promise<string> {
  return ensureModel(TINY_SPEC);
}

/** The tiny model with two-byte merges only, whose labels share first tokens. Use with TEST_THREADS. */
export function ensureTwoByteMergesModel(): Promise<string> {
  return ensureModel(TWO_BYTE_MERGES_SPEC);
}

/** The tiny model carrying Qwen1.5-Chat's chat template. Use with TEST_THREADS. */
export function ensureQwen15TemplateModel(): Promise<string> {
  return ensureModel(QWEN15_TEMPLATE_SPEC);
}

/** Absolute path of a random model shaped exactly like Qwen2.5-0.5B-Instruct Q8_0 (~670 MB), generated on first use. */
export function ensureQwenShapeModel(): Promise<string> {
  return ensureModel(QWEN_SHAPE_SPEC);
}

/** The persona of every family test and of bench:families. */
export const FAMILY_PERSONA = 'You are Mochi, a cheerful bot.';

/** Engine options for a family's tiny model: a small context, one warm channel, 6-token replies, a fixed seed. */
export async function familyEngineOptions(spec: FamilySpec): Promise<EngineOptions> {
  return {
    modelPath: await ensureFamilyModel(spec),
    threads: TEST_THREADS,
    contextSize: 1024,
    warmChannels: 1,
    historyMaxTokens: 256,
    replyMaxTokens: 6,
    systemPrompt: FAMILY_PERSONA,
    seed: 7,
  };
}
