// CHAT_TEMPLATE_FILE: a Jinja chat template used instead of the model file's, for GGUFs without one
// or with a broken one. Through createCore, as `npm start` and `npm run chat` use it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it } from 'vitest';
import { createCore } from '../../src/app.js';
import { Engine } from '../../src/engine/Engine.js';
import { parseConfig } from '../../src/config.js';
import { UserError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { render } from '../../src/engine/modelChatWrapper.js';
import { tempDirs } from '../support/tempDir.js';
import { ensureFamilyModel, familySpec, TEST_THREADS } from '../support/testModels.js';

// Gemma 3's published template, changed to mark where it puts the persona: the prompt shows which template rendered it.
const MARKED_GEMMA3 = readFileSync(fileURLToPath(new URL('../fixtures/chat-templates/google-gemma-3-it.jinja', import.meta.url)), 'utf8').replace(
  "{%- set first_user_prefix = messages[0]['content'] + '",
  "{%- set first_user_prefix = '[persona] ' + messages[0]['content'] + '",
);
const dirs = tempDirs('chat-template-file-');
afterAll(() => dirs.removeAll());

async function configWith(chatTemplateFile: string): Promise<ReturnType<typeof parseConfig>> {
  const dir = dirs.make();
  return parseConfig({
    // The Gemma 3 model whose file carries the first GGUFs' template, which cannot take a string system message.
    MODEL: await ensureFamilyModel(familySpec('Gemma 3 (March 2025 template)')),
    THREADS: String(TEST_THREADS),
    CONTEXT_SIZE: '1024',
    HISTORY_MAX_TOKENS: '256',
    REPLY_MAX_TOKENS: '6',
    WARM_CHANNELS: '1',
    SENTIMENT_CALIBRATION: 'off',
    SYSTEM_PROMPT: 'You are Mochi.',
    DATABASE_URL: `sqlite://${join(dir, 'h.sqlite')}`,
    MODELS_DIR: dir,
    CHAT_TEMPLATE_FILE: chatTemplateFile,
  });
}

describe('CHAT_TEMPLATE_FILE', () => {
  it('renders every prompt with the given template instead of the one in the model file', async () => {
    expect(MARKED_GEMMA3).toContain('[persona]');
    const core = await createCore(await configWith(writeTemp(MARKED_GEMMA3)), silentLogger);
    try {
      const { engine } = core;
      if (!(engine instanceof Engine)) throw new Error('createCore without INFERENCE_URL runs the model in process');
      const prompt = render(engine.chatWrapper, engine.model, [{ type: 'system', text: 'You are Mochi.' }, { type: 'user', text: 'Ann: hi' }, { type: 'model', response: [] }]);
      const fromFile = new Template(MARKED_GEMMA3).render({
        messages: [{ role: 'system', content: 'You are Mochi.' }, { role: 'user', content: 'Ann: hi' }],
        add_generation_prompt: true,
        bos_token: '<bos>',
      });
      expect(prompt).toContain('[persona] You are Mochi.');
      expect(prompt).toBe(fromFile);
      const reply = await engine.reply({ channelId: 'c', turns: [], userName: 'Ann', userText: 'hi' });
      expect(reply.evaluatedTokens).toBeGreaterThan(0);
    } finally {
      await core.dispose();
    }
  });

  it.each([
    ['a missing file', () => join(dirs.make(), 'nope.jinja'), /^CHAT_TEMPLATE_FILE=.*nope\.jinja: cannot read it \(ENOENT\)/],
    ['an empty file', () => writeTemp(' \n'), /^CHAT_TEMPLATE_FILE=.* is empty/],
    ['a template that does not render', () => writeTemp('{% for message in messages %}{{ message.content }'), /^CHAT_TEMPLATE_FILE: the chat template does not render a conversation/],
  ])('stops the start on %s, saying so', async (_case, file, message) => {
    const start = createCore(await configWith(file()), silentLogger);
    await expect(start).rejects.toThrow(UserError);
    await expect(start).rejects.toThrow(message);
  });
});

function writeTemp(text: string): string {
  const path = join(dirs.make(), 'template.jinja');
  writeFileSync(path, text);
  return path;
}
