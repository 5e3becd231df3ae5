import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { ChatWrapper, LlamaText, SpecialToken, SpecialTokensText, type ChatWrapperSettings, type ChatHistoryItem, type ChatWrapperGenerateContextStateOptions, type ChatWrapperGeneratedContextState, type LlamaModel } from 'node-llama-cpp';

export interface TemplateRenderOptions {
  /** Whether the model may reason before answering (see ChatTemplate for what off does). */
  thinking: boolean;
  /** The date every render prints (`strftime_now`, `date_string`): fixed, so a warm prompt survives midnight. */
  today: Date;
}

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';

/** A message as chat templates take them (transformers' `messages`). */
export interface TemplateMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * The model's chat template rendered the way transformers renders it (`apply_chat_template` with
 * `add_generation_prompt`), with reasoning switched off the template's own way when `thinking` is
 * false: `enable_thinking=false` (Qwen3, SmolLM3); where the template knows think blocks but the
 * generation prompt still leaves the answer to start with a thought, the thought is closed empty
 * (DeepSeek-R1-Distill's `<think>\n`; its first template opens none, the model does), so the
 * answer starts right after the prompt.
 */
/** Where a template's `bos_token` and `eos_token` come from: a loaded model, or an inference server's /props. */
export interface TemplateTokens {
  tokens: { bosString?: string | null; eosString?: string | null };
}

/** A piece of a rendered prompt: the template's own text (special tokens parsed) or a message's text (kept plain). */
export interface PromptPart {
  text: string;
  special: boolean;
}

export class ChatTemplate {
  private readonly template: Template;
  private readonly bos: string;
  private readonly eos: string;
  /** The template mentions think blocks: a reasoning model's. */
  readonly knowsThoughts: boolean;
  /** Message contents go in as lists of parts (see renderMessages). */
  private contentParts = false;

  constructor(
    source: string,
    model: TemplateTokens,
    private readonly options: TemplateRenderOptions,
  ) {
    this.template = new Template(source);
    this.bos = model.tokens.bosString ?? '';
    this.eos = model.tokens.eosString ?? '';
    this.knowsThoughts = THINK_TAG.test(source);
  }

  /** The prompt for `messages`; with `open`, it ends where the model's answer starts. */
  render(messages: readonly TemplateMessage[], open: boolean): string {
    const text = this.renderMessages(messages, open);
    return open && !this.options.thinking && this.knowsThoughts ? closeThought(text) : text;
  }

  /**
   * Contents as plain strings, as transformers passes chat text; a template that cannot take them
   * gets lists of text parts instead, transformers' multimodal form: the first Gemma 3 GGUFs'
   * template reads a system message as `content[0]['text']`. Decided once, by the first render.
   */
  private renderMessages(messages: readonly TemplateMessage[], open: boolean): string {
    if (this.contentParts) return this.renderWith(asParts(messages), open);
    try {
      return this.renderWith(messages, open);
    } catch (error) {
      try {
        const text = this.renderWith(asParts(messages), open);
        this.contentParts = true;
        return text;
      } catch {
        throw error;
      }
    }
  }

  private renderWith(messages: readonly unknown[], open: boolean): string {
    const { thinking, today } = this.options;
    const globals = {
      messages,
      add_generation_prompt: open,
      bos_token: this.bos,
      eos_token: this.eos,
      ...(thinking ? {} : { enable_thinking: false }),
      date_string: strftime(today, '%d %b %Y'),
    };
    return renderWithDate(this.template, globals, today);
  }

  /**
   * The prompt as node-llama-cpp tokenizes it: the template's own text as special tokens, each
   * message's text as plain text, so a typed `<|im_start|>` stays text. The messages go through the
   * template as placeholders; a template that edits a message's text (trims it, drops a `</think>`
   * part) sees only the placeholder, which the bot's messages never need.
   */
  renderText(messages: readonly TemplateMessage[], open: boolean): LlamaText {
    return LlamaText(this.renderParts(messages, open).map((part) => (part.special ? new SpecialTokensText(part.text) : part.text)));
  }

  /** The same prompt as pieces: what an inference server is sent (template text parsed for special tokens, message text not). */
  renderParts(messages: readonly TemplateMessage[], open: boolean): PromptPart[] {
    const marked = messages.map((message, index) => ({ ...message, content: `${CONTENT_MARK}${index}${CONTENT_MARK}` }));
    const parts = this.render(marked, open).split(new RegExp(`${CONTENT_MARK}(\\d+)${CONTENT_MARK}`));
    return parts.map((part, index) => (index % 2 === 1 ? { text: messages[Number(part)]!.content, special: false } : { text: part, special: true })).filter((part) => part.text !== '');
  }
}

// Stands for a message's text while the template renders (a control character no chat text has).
const CONTENT_MARK = '\u0002';

/**
 * Template.render() with the globals it sets itself (`@huggingface/jinja`'s setupGlobals), except
 * that `strftime_now` prints the fixed day rather than reading the clock.
 */
function renderWithDate(template: Template, globals: Record<string, unknown>, today: Date): string {
  const env = new Environment();
  const builtins: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (message: string) => { throw new Error(message); },
    range: (start: number, stop?: number, step = 1) => {
      const [from, to] = stop === undefined ? [0, start] : [start, stop];
      const out: number[] = [];
      for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
      return out;
    },
    strftime_now: (format: string) => strftime(today, format),
  };
  for (const [key, value] of Object.entries({ ...builtins, ...globals })) env.set(key, value);
  return new Interpreter(env).run(template.parsed).value as string;
}

const THINK_TAG = /<\/?think>/;
/** A prompt that ends inside an open think block (`<think>`, `<think>\n`). */
const OPEN_THOUGHT_AT_END = /<think>\n?$/;

/**
 * A generation prompt whose answer would start with a thought, made to start after one: an open
 * think block is closed empty, and where none was opened (the model opens it itself) an empty one
 * is added. A prompt that already ends after a closed block (Qwen3, SmolLM3 with reasoning off) stays.
 */
function closeThought(prompt: string): string {
  if (/<\/think>\s*$/.test(prompt)) return prompt;
  if (OPEN_THOUGHT_AT_END.test(prompt)) return `${prompt.replace(/\n?$/, '\n')}\n</think>\n\n`;
  return `${prompt}<think>\n\n</think>\n\n`;
}

/** Messages with their text as one text part: `[{type: 'text', text}]`. */
function asParts(messages: readonly TemplateMessage[]): Array<{ role: TemplateMessage['role']; content: Array<{ type: 'text'; text: string }> }> {
  return messages.map(({ role, content }) => ({ role, content: [{ type: 'text', text: content }] }));
}

/** Consecutive user turns as one (mentions mode): templates such as Gemma's and Mistral's refuse non-alternating roles. */
export function mergeUserTurns(history: readonly ChatHistoryItem[]): ChatHistoryItem[] {
  const merged: ChatHistoryItem[] = [];
  for (const item of history) {
    const last = merged[merged.length - 1];
    if (item.type === 'user' && last?.type === 'user') merged[merged.length - 1] = { type: 'user', text: `${last.text}\n\n${item.text}` };
    else merged.push(item);
  }
  return merged;
}

/** node-llama-cpp's history as template messages, user turns merged; a trailing model turn is the one being generated, left out. */
export function templateMessages(history: readonly ChatHistoryItem[]): TemplateMessage[] {
  const items = mergeUserTurns(history);
  const done = items[items.length - 1]?.type === 'model' ? items.slice(0, -1) : items;
  return done.map((item): TemplateMessage =>
    item.type === 'model'
      ? { role: 'assistant', content: item.response.filter((part): part is string => typeof part === 'string').join('') }
      : { role: item.type, content: typeof item.text === 'string' ? item.text : LlamaText.fromJSON(item.text).toString() },
  );
}

/**
 * A chat wrapper that IS the template: every prompt is the template's own render, so nothing drifts
 * (system prompt placement, the generation prompt, the think block, the date). Used where none of
 * node-llama-cpp's wrappers renders like the template (see modelChatWrapper). The answer ends at
 * the text that follows an answer in the template (Mistral's `</s>`, Gemma's `<end_of_turn>`), or EOS.
 */
export class OwnTemplateChatWrapper extends ChatWrapper {
  readonly wrapperName = 'OwnTemplate';
  override readonly settings: ChatWrapperSettings;
  private readonly endOfAnswer: string;
  /** The think block the template's generation prompt opens itself (DeepSeek-R1-Distill's `<think>\n`), if any. */
  private readonly opensThought: string | undefined;

  constructor(private readonly template: ChatTemplate) {
    super();
    this.endOfAnswer = endOfAnswerText(template);
    this.opensThought = OPEN_THOUGHT_AT_END.exec(template.render([{ role: 'user', content: 'u' }], true))?.[0];
    // A template that knows think blocks: node-llama-cpp then keeps thoughts out of the reply and
    // applies their budget. A thought starts as the template opens it, so a rendered one re-reads the same.
    this.settings = template.knowsThoughts
      ? { ...ChatWrapper.defaultSettings, segments: { thought: { prefix: LlamaText(new SpecialTokensText(this.opensThought ?? THINK_OPEN)), suffix: LlamaText(new SpecialTokensText(THINK_CLOSE)) } } }
      : ChatWrapper.defaultSettings;
  }

  override generateContextState({ chatHistory }: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
    const messages = templateMessages(chatHistory);
    const last = chatHistory[chatHistory.length - 1];
    const stopGenerationTriggers = [LlamaText(new SpecialToken('EOS')), ...(this.endOfAnswer ? [LlamaText(new SpecialTokensText(this.endOfAnswer))] : [])];
    if (last?.type !== 'model') return { contextText: this.template.renderText(messages, false), stopGenerationTriggers };
    const prompt = this.template.renderText(messages, true);
    // The answer so far, thoughts included: after a thought is cut at its budget, node-llama-cpp
    // renders the prompt again and the model must see its closed thought, or it starts another.
    const response = this.generateModelResponseText(last.response);
    const soFar = response.toString();
    const opened = this.opensThought && prompt.toString().endsWith(this.opensThought) ? this.opensThought : undefined;
    if (opened && this.settings.segments?.thought && (soFar === '' || soFar.startsWith(opened))) {
      // The template opens the thought itself (DeepSeek-R1-Distill): node-llama-cpp injects those
      // same tokens as the start of a thought segment, so the prompt is still exactly the template's
      // and the thought is hidden and held to its budget; a thought so far renders with that start.
      const lastValue = prompt.values[prompt.values.length - 1] as SpecialTokensText;
      const head = LlamaText([...prompt.values.slice(0, -1), new SpecialTokensText(lastValue.value.slice(0, -opened.length))]);
      if (soFar !== '') return { contextText: LlamaText([head, response]), stopGenerationTriggers };
      return { contextText: head, stopGenerationTriggers, noPrefixTrigger: { type: 'segment', segmentType: 'thought', inject: LlamaText(new SpecialTokensText(opened)) } };
    }
    return { contextText: LlamaText([prompt, response]), stopGenerationTriggers };
  }
}

/**
 * What a prompt holds before `marker` (the text of the next message, rendered after `history`):
 * the next prompt's exact start, in the wrapper's own pieces, so it tokenizes the same way.
 */
export function textBefore(text: LlamaText, marker: string): LlamaText | undefined {
  const values = text.values;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'string' || !value.includes(marker)) continue;
    return LlamaText([...values.slice(0, i), value.slice(0, value.indexOf(marker))]);
  }
  return undefined;
}

/** The special token the template writes right after an answer (`<|im_end|>`, `</s>`, `<end_of_turn>`); empty when none. */
export function endOfAnswerText(template: ChatTemplate): string {
  const marker = '\u0001ANSWER\u0001';
  const text = template.render([{ role: 'user', content: 'u' }, { role: 'assistant', content: marker }, { role: 'user', content: 'u' }], false);
  const after = text.slice(text.indexOf(marker) + marker.length).trimStart();
  return /^<[^<>\s]+>/.exec(after)?.[0] ?? '';
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's strftime for the fields chat templates print (local time, as transformers does). */
export function strftime(date: Date, format: string): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const fields: Record<string, string> = {
    d: pad(date.getDate()),
    m: pad(date.getMonth() + 1),
    Y: String(date.getFullYear()),
    y: pad(date.getFullYear() % 100),
    b: MONTHS[date.getMonth()]!.slice(0, 3),
    B: MONTHS[date.getMonth()]!,
    a: DAYS[date.getDay()]!.slice(0, 3),
    A: DAYS[date.getDay()]!,
    H: pad(date.getHours()),
    M: pad(date.getMinutes()),
    S: pad(date.getSeconds()),
    '%': '%',
  };
  return format.replace(/%(.)/g, (whole, field: string) => fields[field] ?? whole);
}
