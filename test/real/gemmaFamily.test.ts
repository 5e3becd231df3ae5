// A model family of issue 17 on real weights: Gemma 3 270M from `npm run fetch-test-model`, its real
// tokenizer and special tokens. It is the base model, and its file carries no chat template, the
// case CHAT_TEMPLATE_FILE is for: with Gemma 3's published template the bot's prompts must be that
// template's render, token for token, and a warm reply must re-read only the new message. Its
// replies are a base model's (no instruction tuning), so nothing here judges what they say.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it } from 'vitest';
import type { HistoryTurn } from '../../src/domain.js';
import { Engine } from '../../src/engine/Engine.js';
import { modelChatWrapper, PROBE, render } from '../../src/engine/modelChatWrapper.js';
import { realGemma3Path } from '../support/realModel.js';
import { threadsUnderLoad } from '../support/limitUnderLoad.js';

const modelPath = realGemma3Path();
if (!modelPath) console.warn('the Gemma 3 part of the real tier is skipped: run `npm run fetch-test-model -- --only gemma3`');

const GEMMA3_TEMPLATE = readFileSync(fileURLToPath(new URL('../fixtures/chat-templates/google-gemma-3-it.jinja', import.meta.url)), 'utf8');
const PERSONA = 'You are Mochi, a cheerful bot.';
const turn = (userName: string, userText: string, reply?: string): HistoryTurn => ({ userName, userText, ...(reply !== undefined && { reply }), at: 0 });

let engine: Engine | undefined;
afterAll(async () => {
  await engine?.dispose();
});

// Both cores when the machine is otherwise idle; one on a busy one, where two wait for each other.
// Measured once for the file (it takes half a second).
const THREADS = threadsUnderLoad();

async function engineWith(chatTemplate?: string): Promise<Engine> {
  await engine?.dispose();
  engine = await Engine.create({
    modelPath: modelPath!,
    threads: THREADS,
    contextSize: 1024,
    warmChannels: 1,
    historyMaxTokens: 256,
    replyMaxTokens: 16,
    systemPrompt: PERSONA,
    seed: 5,
    ...(chatTemplate !== undefined && { chatTemplate }),
  });
  return engine;
}

describe.skipIf(!modelPath)('Gemma 3 270M (real weights, no chat template in its file)', () => {
  it("with CHAT_TEMPLATE_FILE set to Gemma 3's published template: prompts are its render token for token, the label is read where the answer starts, and a warm reply re-reads only the new message", async () => {
    const engine = await engineWith(GEMMA3_TEMPLATE);
    const expected = new Template(GEMMA3_TEMPLATE).render({
      messages: [
        { role: 'system', content: PERSONA },
        { role: 'user', content: 'Ann: hi all' },
        { role: 'assistant', content: 'Hello Ann!' },
        { role: 'user', content: 'Bob: anyone here?\n\nAnn: Mochi, what is up?' },
      ],
      add_generation_prompt: true,
      bos_token: '<bos>',
    });
    expect(render(engine.chatWrapper, engine.model, PROBE)).toBe(expected);
    // Token for token: one BOS (the template prints it; none is added twice), and each turn marker one special token.
    const tokens = engine.chatWrapper.generateContextState({ chatHistory: [...PROBE] }).contextText.tokenize(engine.model.tokenizer);
    const [startOfTurn] = engine.model.tokenize('<start_of_turn>', true);
    expect(tokens.filter((token) => token === engine.model.tokens.bos)).toHaveLength(1);
    expect(tokens[0]).toBe(engine.model.tokens.bos);
    expect(tokens.filter((token) => token === startOfTurn)).toHaveLength(4);
    expect(engine.model.tokenize('<start_of_turn>', true)).toHaveLength(1);

    const suffix = engine.model.detokenize(engine.classifier.promptTokens('hello').slice(engine.classifier.prefixTokenCount), true);
    expect(suffix).toBe('hello<end_of_turn>\n<start_of_turn>model\n');

    const history = [turn('Ann', 'hi all', 'Hello Ann!'), turn('Bob', 'anyone here?')];
    const first = await engine.reply({ channelId: 'c', turns: history, userName: 'Ann', userText: 'Mochi, what is up?' });
    const second = await engine.reply({ channelId: 'c', turns: [...history, turn('Ann', 'Mochi, what is up?', first.text)], userName: 'Cy', userText: 'and me?' });
    // The new message and what follows it: `<end_of_turn>\n<start_of_turn>model\n` (5 tokens), plus one.
    const message = engine.model.tokenize('Cy: and me?', false).length;
    expect(second.evaluatedTokens).toBeGreaterThanOrEqual(message);
    expect(second.evaluatedTokens).toBeLessThanOrEqual(message + 6);
    console.log(`Gemma 3 270M warm reply: ${second.evaluatedTokens} tokens evaluated for a ${message}-token message (first reply: ${first.evaluatedTokens})`);
  }, 300_000);

  it("without it, node-llama-cpp's Gemma wrapper is used, which folds the persona in with a separator the template does not have; the bot still answers", async () => {
    const engine = await engineWith();
    expect(engine.model.fileInfo.metadata.tokenizer?.chat_template).toBeUndefined();
    expect(modelChatWrapper(engine.model, { thinking: false, today: new Date() }).source).toBe('no template');
    const prompt = render(engine.chatWrapper, engine.model, PROBE);
    expect(prompt.startsWith('<bos><start_of_turn>user\nYou are Mochi, a cheerful bot.\n\n---\n\nAnn: hi all<end_of_turn>')).toBe(true);

    const reply = await engine.reply({ channelId: 'c', turns: [], userName: 'Ann', userText: 'hi there' });
    expect(reply.evaluatedTokens).toBeGreaterThan(0);
    expect(reply.generatedTokens).toBeGreaterThan(0);
  }, 300_000);
});
