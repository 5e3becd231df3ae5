import { resolveChatWrapper, type ChatHistoryItem, type ChatWrapper, type LlamaModel } from 'node-llama-cpp';
import { UserError } from '../errors.js';
import { ChatTemplate, mergeUserTurns, OwnTemplateChatWrapper, templateMessages, type TemplateRenderOptions } from './OwnTemplateChatWrapper.js';

/**
 * A conversation with every part a prompt of ours has: a persona, a user and a model turn, two
 * consecutive user turns (mentions mode: a message the bot did not answer, then the one it does),
 * and the open model turn.
 */
export const PROBE: readonly ChatHistoryItem[] = [
  { type: 'system', text: 'You are Mochi, a cheerful bot.' },
  { type: 'user', text: 'Ann: hi all' },
  { type: 'model', response: ['Hello Ann!'] },
  { type: 'user', text: 'Bob: anyone here?' },
  { type: 'user', text: 'Ann: Mochi, what is up?' },
  { type: 'model', response: [] },
];

export interface ModelChatWrapper {
  wrapper: ChatWrapper;
  /** Why this wrapper: node-llama-cpp's own one renders exactly like the template, or ours renders the template itself. */
  source: 'built-in' | 'node-llama-cpp jinja' | 'template' | 'no template';
  /** The template's render of PROBE (absent without a template). */
  expected?: string;
}

/**
 * The chat wrapper whose prompts are exactly the model's own chat template rendered the way
 * transformers renders it (`add_generation_prompt` on), with reasoning on or off as configured.
 *
 * node-llama-cpp's built-in wrappers are kept where they render the probe exactly like the template:
 * they know the family's thought segments. Elsewhere they drift (issue 17): Mistral v0.3's persona
 * moves into the first user turn and the prompt gains a trailing space, DeepSeek-R1's prompt loses
 * the `<think>\n` its template opens, ChatML gains a BOS the template never emits. There, and for
 * every template that prints today's date (node-llama-cpp's wrappers read the clock on each render,
 * so a warm prompt would change at midnight), the template renders the prompt itself.
 */
export function modelChatWrapper(model: LlamaModel, { chatTemplate, ...options }: TemplateRenderOptions & { chatTemplate?: string }): ModelChatWrapper {
  const resolved = resolveChatWrapper(model);
  const source = chatTemplate ?? model.fileInfo.metadata.tokenizer?.chat_template;
  if (!source) return { wrapper: resolved, source: 'no template' };
  let template: ChatTemplate;
  let expected: string;
  try {
    template = new ChatTemplate(source, model, options);
    expected = template.render(templateMessages(PROBE), true);
  } catch (error) {
    // A template the operator chose must work; the file's own one that cannot run leaves node-llama-cpp's guess.
    if (chatTemplate !== undefined) throw new UserError(`CHAT_TEMPLATE_FILE: the chat template does not render a conversation (${(error as Error).message}). Point it at a model's Jinja chat template, or leave it empty to use the one in the model file.`);
    return { wrapper: resolved, source: 'no template' };
  }
  if (!printsDate(source, model, options)) {
    const jinja = (): ChatWrapper =>
      resolveChatWrapper(model, {
        type: 'jinjaTemplate',
        warningLogs: false,
        fallbackToOtherWrappersOnJinjaError: false,
        customWrapperSettings: { jinjaTemplate: { reasoning: options.thinking, ...(chatTemplate !== undefined && { template: chatTemplate }) } },
      });
    for (const [name, make] of [['built-in', () => resolved], ['node-llama-cpp jinja', jinja]] as const) {
      try {
        const wrapper = make();
        if (render(wrapper, model) === expected) return { wrapper, source: name, expected };
      } catch {
        // this wrapper cannot render the probe: try the next
      }
    }
  }
  return { wrapper: new OwnTemplateChatWrapper(template), source: 'template', expected };
}

/** The prompt a wrapper renders for the probe, as text with its special tokens spelled out. */
export function render(wrapper: ChatWrapper, model: LlamaModel, history: readonly ChatHistoryItem[] = PROBE): string {
  const { contextText } = wrapper.generateContextState({ chatHistory: mergeUserTurns(history) });
  return model.detokenize(contextText.tokenize(model.tokenizer), true);
}

/** Whether the template's render depends on the date (Llama 3.2, SmolLM3). */
function printsDate(source: string, model: LlamaModel, options: TemplateRenderOptions): boolean {
  const messages = templateMessages(PROBE);
  const on = (today: Date): string => new ChatTemplate(source, model, { ...options, today }).render(messages, true);
  return on(new Date(2020, 0, 1)) !== on(new Date(2021, 5, 15));
}
