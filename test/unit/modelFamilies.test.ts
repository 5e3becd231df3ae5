// The families of issue 17 on the real engine: one tiny model each, carrying the family's special
// tokens and chat template (see test/support/familyTemplates.ts for where each template comes from).
// The oracle is the template rendered by @huggingface/jinja the way transformers renders it.
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Engine, type EngineOptions } from '../../src/engine/Engine.js';
import { PROBE, render } from '../../src/engine/modelChatWrapper.js';
import type { HistoryTurn } from '../../src/domain.js';
import { endlessThinker, FAMILY_PERSONA, FAMILY_SPECS, familyEngineOptions, familySpec, SMOLLM3_ORIGINAL_SPEC, type FamilySpec } from '../support/testModels.js';
import { R1_DISTILL_JANUARY_2025_TEMPLATE, R1_DISTILL_TEMPLATE } from '../support/familyTemplates.js';

const PERSONA = FAMILY_PERSONA;
type Message = { role: 'system' | 'user' | 'assistant'; content: string };

let engine: Engine | undefined;
afterAll(async () => {
  await engine?.dispose();
});

async function engineFor(spec: FamilySpec, overrides: Partial<EngineOptions> = {}): Promise<Engine> {
  await engine?.dispose();
  engine = await Engine.create({ ...(await familyEngineOptions(spec)), today: new Date(), ...overrides });
  return engine;
}

/** The template's own render, as transformers would do it with reasoning switched off. */
function oracle(engine: Engine, spec: FamilySpec, messages: Message[], addGenerationPrompt: boolean, thinking = false): string {
  return new Template(engine.model.fileInfo.metadata.tokenizer!.chat_template!).render({
    // Gemma 3's first template takes contents only as lists of parts, as transformers' processors pass them.
    messages: spec.contentParts ? messages.map(({ role, content }) => ({ role, content: [{ type: 'text', text: content }] })) : messages,
    add_generation_prompt: addGenerationPrompt,
    bos_token: engine.model.tokens.bosString ?? '',
    eos_token: engine.model.tokens.eosString ?? '',
    ...(thinking ? {} : { enable_thinking: false }),
  });
}

/**
 * What THINKING=off adds to the template's generation prompt: nothing where the template switches
 * reasoning off itself (enable_thinking, /no_think); DeepSeek-R1-Distill's template has no switch
 * and opens a thought in every prompt, so the bot closes it empty, as the issue asks; its first
 * template leaves the model to open the thought, so the bot adds a closed empty one.
 */
const OFF_SWITCH: Record<string, string> = {
  'DeepSeek-R1-Distill': '\n</think>\n\n',
  'DeepSeek-R1-Distill (January 2025 template)': '<think>\n\n</think>\n\n',
};
const offSwitch = (spec: FamilySpec): string => OFF_SWITCH[spec.family] ?? '';

/** The text after the message in the template's render of one user turn: where the answer starts. */
function answerPosition(engine: Engine, spec: FamilySpec): string {
  const text = oracle(engine, spec, [{ role: 'system', content: 'S' }, { role: 'user', content: 'MESSAGE' }], true);
  return text.slice(text.indexOf('MESSAGE') + 'MESSAGE'.length) + offSwitch(spec);
}

/** The conversation of the warm test as template messages: the probe's, with the bot's answer. */
const PROBE_MESSAGES = (answer: string): Message[] => [
  { role: 'system', content: PERSONA },
  { role: 'user', content: 'Ann: hi all' },
  { role: 'assistant', content: 'Hello Ann!' },
  { role: 'user', content: 'Bob: anyone here?\n\nAnn: Mochi, what is up?' },
  { role: 'assistant', content: answer },
];

/** Tokens of `next` past its common start with `previous`. */
function newTokens(engine: Engine, previous: string, next: string): number {
  const a = engine.model.tokenize(previous, true);
  const b = engine.model.tokenize(next, true);
  let same = 0;
  while (same < a.length && same < b.length && a[same] === b[same]) same++;
  return b.length - same;
}

const turn = (userName: string, userText: string, reply?: string): HistoryTurn => ({ userName, userText, ...(reply !== undefined && { reply }), at: 0 });

describe.each(FAMILY_SPECS.map((spec) => [spec.family, spec] as const))('%s', (_family, spec) => {
  it('renders the reply prompt exactly as its template does, keeps typed special tokens as text, reads the sentiment label at the answer position, replies over a mentions-mode history, and a warm reply re-reads only the new message', async () => {
    const engine = await engineFor(spec);

    // The probe: a persona, a reply, an unanswered message and then a mention, the open turn.
    expect(render(engine.chatWrapper, engine.model, PROBE)).toBe(
      oracle(engine, spec, [
        { role: 'system', content: 'You are Mochi, a cheerful bot.' },
        { role: 'user', content: 'Ann: hi all' },
        { role: 'assistant', content: 'Hello Ann!' },
        { role: 'user', content: 'Bob: anyone here?\n\nAnn: Mochi, what is up?' },
      ], true) + offSwitch(spec),
    );

    // A family's special token typed in a message stays text: it adds none of that token to the prompt.
    const special = spec.specials!.at(-1)!;
    const [specialId] = engine.model.tokenize(special, true);
    const specialsIn = (text: string): number =>
      engine.chatWrapper.generateContextState({ chatHistory: [{ type: 'system', text: PERSONA }, { type: 'user', text }, { type: 'model', response: [] }] })
        .contextText.tokenize(engine.model.tokenizer)
        .filter((token) => token === specialId).length;
    expect(specialsIn(`a ${special} b`)).toBe(specialsIn('a b'));

    const suffix = engine.model.detokenize(engine.classifier.promptTokens('hello').slice(engine.classifier.prefixTokenCount), true);
    expect(suffix).toBe(`hello${answerPosition(engine, spec)}`);

    // Mentions mode: an unanswered message sits between answered ones; the templates that demand
    // alternation (Gemma 3, Mistral) would throw on it unmerged.
    const turns = [turn('Ann', 'hi all', 'Hello Ann!'), turn('Bob', 'anyone here?')];
    const first = await engine.reply({ channelId: 'c', turns, userName: 'Ann', userText: 'Mochi, what is up?' });
    expect(first.evaluatedTokens).toBeGreaterThan(0);

    const second = await engine.reply({
      channelId: 'c',
      turns: [...turns, turn('Ann', 'Mochi, what is up?', first.text)],
      userName: 'Cy',
      userText: 'and me?',
    });
    // Only the new message may be read: the next prompt's tokens from the message's text on. What
    // comes before it (the answer, the new user turn's markers, a persona Mistral moves to the last
    // user message) is the same whatever the message says, so it was settled after the first reply.
    const before = [...PROBE_MESSAGES(first.text)];
    const next = oracle(engine, spec, [...before, { role: 'user', content: 'Cy: and me?' }], true) + offSwitch(spec);
    const upToMessage = next.slice(0, next.indexOf('Cy: and me?'));
    expect(second.evaluatedTokens).toBeLessThanOrEqual(newTokens(engine, upToMessage, next) + 1);
  }, 60_000);
});

describe('DeepSeek-R1-Distill with THINKING on', () => {
  it('thinks inside the thought its template opens, a thought that never ends still leaves a non-empty reply within budget and reply cap, and the classifier still reads its label at an answer position', async () => {
    // The random model never writes </think>: every thought runs into its budget, the normal case
    // the issue found (without a budget the reply cap went to the thought and the reply was empty).
    const spec = familySpec('DeepSeek-R1-Distill');
    // R1's template prints no date, so the engine's day does not matter here.
    engine = await engineFor(spec, { thoughtTokens: 16 });
    const streamed: string[] = [];

    const result = await engine.reply({ channelId: 'r1', turns: [], userName: 'Ann', userText: 'why is the sky blue?', onText: (text) => streamed.push(text) });

    expect(render(engine.chatWrapper, engine.model, [{ type: 'system', text: PERSONA }, { type: 'user', text: 'Ann: hi' }, { type: 'model', response: [] }])).toBe(
      `<｜begin▁of▁sentence｜>${PERSONA}<｜User｜>Ann: hi<｜Assistant｜>`,
    );
    expect(result.text).not.toBe('');
    expect(result.text).not.toContain('think>');
    expect(streamed.join('')).not.toContain('think>');
    expect(result.generatedTokens).toBeGreaterThan(16);
    expect(result.generatedTokens).toBeLessThanOrEqual(16 + 6 + 4);
    // The classifier reads its label at once, thinking or not: its thought is closed empty.
    const suffix = engine.model.detokenize(engine.classifier.promptTokens('hello').slice(engine.classifier.prefixTokenCount), true);
    expect(suffix).toBe('hello<｜Assistant｜><think>\n\n</think>\n\n');
  }, 60_000);
});

describe.each([familySpec('Llama 3.2'), SMOLLM3_ORIGINAL_SPEC].map((spec) => [spec.family, spec] as const))('%s across midnight', (_family, spec) => {
  it('prints the day the process started in every prompt, so a warm reply after the date changed still re-reads only the new message', async () => {
    // The engine's default day: the one the process started.
    engine = await engineFor(spec, { today: undefined });
    const first = await engine.reply({ channelId: 'night', turns: [], userName: 'Ann', userText: 'still up?' });
    const before = engine.replies.contextText('night')!;
    try {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 36 * 3600_000);
      const second = await engine.reply({ channelId: 'night', turns: [turn('Ann', 'still up?', first.text)], userName: 'Cy', userText: 'and me?' });
      const wrapping = engine.model.tokenize(answerPosition(engine, spec), true).length;
      expect(second.evaluatedTokens).toBeLessThanOrEqual(engine.model.tokenize('Cy: and me?', false).length + 2 * wrapping + 2);
      expect(engine.replies.contextText('night')!.startsWith(before.slice(0, before.indexOf('Ann: still up?')))).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  }, 60_000);
});

describe.each(FAMILY_SPECS.filter((spec) => ['Qwen3', 'SmolLM3'].includes(spec.family)).map((spec) => [spec.family, spec] as const))('%s with THINKING on', (_family, spec) => {
  it('renders the prompt as its template does with reasoning on (the model decides whether to think)', async () => {
    engine = await engineFor(spec, { thoughtTokens: 32 });

    expect(render(engine.chatWrapper, engine.model, PROBE)).toBe(oracle(engine, spec, PROBE_MESSAGES('').slice(0, -1), true, true));
  }, 60_000);
});

describe('the endless thinkers', () => {
  // Scripted models (see endlessThinker): each opens a think block where its answer starts, or thinks
  // on in the one its template opens, and never closes it. Without a budget every reply of theirs
  // is empty: the reply cap goes to the thought.
  const r1January = endlessThinker(familySpec('DeepSeek-R1-Distill (January 2025 template)'), '<｜Assistant｜>');
  const thinkingOn = [
    ['Qwen3', endlessThinker(familySpec('Qwen3'))],
    ['SmolLM3', endlessThinker(familySpec('SmolLM3'))],
    ['DeepSeek-R1-Distill', endlessThinker(familySpec('DeepSeek-R1-Distill'))],
    ['DeepSeek-R1-Distill (January 2025 template)', r1January],
  ] as const;
  // With reasoning off a prompt ends after a closed think block, which Qwen3's thinker, whose thought
  // would open after any newline, cannot tell from the end of a thought cut short; the others can.
  const thinkingOff = thinkingOn.filter(([family]) => family !== 'Qwen3');

  it.each(thinkingOn)('%s with THINKING on: the thought is cut at its budget, hidden, and the reply is not empty', async (_family, spec) => {
    engine = await engineFor(spec, { thoughtTokens: 16 });
    const streamed: string[] = [];
    let thinking = 0;

    const result = await engine.reply({ channelId: 't', turns: [], userName: 'Ann', userText: 'why is the sky blue?', onText: (text) => streamed.push(text), onThinking: () => thinking++ });

    expect(thinking).toBe(1);
    // The reply keeps its cap (6 tokens; the text that closes a cut thought may take one of them):
    // the thought's budget and its opening and closing (`<think>\n`, `\n</think>`) come on top.
    expect(result.text).toMatch(/^ok( ok){4,5}$/);
    expect(streamed.join('').trim()).toBe(result.text);
    expect(result.generatedTokens).toBeGreaterThan(16 + 4);
    expect(result.generatedTokens).toBeLessThanOrEqual(16 + 6 + 4);
  }, 60_000);

  it.each(thinkingOff)('%s with THINKING off: a thought it starts anyway is closed at once and the reply is not empty', async (_family, spec) => {
    engine = await engineFor(spec);
    let thinking = 0;

    const result = await engine.reply({ channelId: 't', turns: [], userName: 'Ann', userText: 'why is the sky blue?', onThinking: () => thinking++ });

    expect(result.text).toMatch(/^ok( ok)+$/);
    expect(result.generatedTokens).toBeLessThanOrEqual(6 + 2);
    expect(thinking).toBe(0); // no "Thinking…" placeholder when thinking is off
  }, 60_000);
});

describe("DeepSeek-R1-Distill's two published templates", () => {
  it("render every conversation the bot makes alike, but for the `<think>\\n` that the later one's generation prompt opens", () => {
    const messages: Message[] = [...PROBE_MESSAGES('Hello again!'), { role: 'user', content: 'Cy: and me?' }];
    const renderOf = (source: string, open: boolean): string =>
      new Template(source).render({ messages, add_generation_prompt: open, bos_token: '<｜begin▁of▁sentence｜>', eos_token: '<｜end▁of▁sentence｜>' });

    expect(renderOf(R1_DISTILL_TEMPLATE, false)).toBe(renderOf(R1_DISTILL_JANUARY_2025_TEMPLATE, false));
    expect(renderOf(R1_DISTILL_TEMPLATE, true)).toBe(`${renderOf(R1_DISTILL_JANUARY_2025_TEMPLATE, true)}<think>\n`);
  });
});

describe('THINKING on with a model that does not think', () => {
  it("keeps the reply to REPLY_MAX_TOKENS: the thought's room is not the reply's", async () => {
    // The random Qwen3 model never writes <think>: all it says is reply.
    engine = await engineFor(familySpec('Qwen3'), { thoughtTokens: 32 });
    const result = await engine.reply({ channelId: 'q', turns: [], userName: 'Ann', userText: 'hello there' });
    expect(result.text).not.toBe('');
    expect(result.generatedTokens).toBeGreaterThanOrEqual(6);
    expect(result.generatedTokens).toBeLessThanOrEqual(6 + 1);
  }, 60_000);

  it('a reply stopped while the model thinks ends with the stop, as with THINKING off, and the channel answers the next message', async () => {
    engine = await engineFor(endlessThinker(familySpec('Qwen3')), { thoughtTokens: 200 });
    const stop = new AbortController();
    const reason = new Error('stopped by the Stop button');

    const stopped = engine.reply({ channelId: 's', turns: [], userName: 'Ann', userText: 'hi', signal: stop.signal, onThinking: () => stop.abort(reason) });

    await expect(stopped).rejects.toBe(reason);
    const next = await engine.reply({ channelId: 's', turns: [], userName: 'Ann', userText: 'hi again' });
    expect(next.text).not.toBe('');
  }, 60_000);
});
