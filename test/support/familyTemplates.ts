// Chat templates for the test models of each family of issue 17.
//
// Where they come from. This machine reaches only package registries. Two templates are the
// published files themselves: Qwen/Qwen3-0.6B's and meta-llama/Llama-3.2-3B-Instruct's (the 1B
// model's is the same), as llama.cpp keeps them in models/templates (fetched from the model
// repositories by its scripts/get_chat_template.py), taken from the vendored llama.cpp inside
// the llama-cpp-python 0.3.36 sdist on PyPI and stored unchanged in test/fixtures/chat-templates.
// The others are NOT the published files: no package here carries Gemma 3's, Mistral v0.3's or
// Phi-4-mini's, and the copies of SmolLM3's (edited by Unsloth) and DeepSeek-R1-Distill's (edited
// by llama.cpp) in that sdist are altered. So each of those is written here, by hand, to do what
// the published template (named on each) does to the parts of a prompt this bot uses: where the
// system prompt goes, the generation prompt, how reasoning is switched off, the date line and the
// alternation check; tool calling and the other branches the bot never reaches are left out. For
// those, a passing test says the bot renders the way these templates do, not that it equals the
// published file byte for byte.
import { readFileSync } from 'node:fs';

const published = (file: string): string => readFileSync(new URL(`../fixtures/chat-templates/${file}`, import.meta.url), 'utf8');

/** Qwen/Qwen3-0.6B, published: ChatML, thoughts dropped from earlier answers, `enable_thinking=false` closes an empty think block. */
export const QWEN3_TEMPLATE = published('Qwen-Qwen3-0.6B.jinja');

/** meta-llama/Llama-3.2-3B-Instruct, published: BOS, a system turn with the knowledge cutoff and today's date (`strftime_now`), header-delimited turns. */
export const LLAMA32_TEMPLATE = published('meta-llama-Llama-3.2-3B-Instruct.jinja');

/**
 * google/gemma-3-1b-it: BOS, the system prompt folded into the first user turn, "model" for the
 * assistant, and an exception when roles do not alternate.
 */
export const GEMMA3_TEMPLATE = String.raw`{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
{%- set first_user_prefix = messages[0]['content'] + '\n\n' %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set first_user_prefix = "" %}
{%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
{%- endif %}
{%- if message['role'] == 'assistant' %}{%- set role = "model" %}{%- else %}{%- set role = message['role'] %}{%- endif %}
{{- '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<start_of_turn>model\n' }}
{%- endif %}`;

/**
 * mistralai/Mistral-7B-Instruct-v0.3: BOS, the system prompt appended to the LAST user message,
 * `[INST] … [/INST]` with no trailing space, answers followed by EOS, strict alternation, and no
 * generation prompt at all (the prompt ends at `[/INST]`).
 */
export const MISTRAL03_TEMPLATE = String.raw`{%- if messages[0]["role"] == "system" %}
{%- set system_message = messages[0]["content"] %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set loop_messages = messages %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}
{{- bos_token }}
{%- for message in loop_messages %}
{%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
{{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
{%- endif %}
{%- if message["role"] == "user" %}
{%- if loop.last and system_message is defined %}
{{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
{%- else %}
{{- "[INST] " + message["content"] + "[/INST]" }}
{%- endif %}
{%- else %}
{{- " " + message["content"] | trim + eos_token }}
{%- endif %}
{%- endfor %}`;

/** microsoft/Phi-4-mini-instruct: `<|system|>`, `<|user|>`, `<|assistant|>` turns closed by `<|end|>`. */
export const PHI4_MINI_TEMPLATE = String.raw`{%- for message in messages %}
{{- '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|assistant|>' }}
{%- else %}
{{- eos_token }}
{%- endif %}`;

/**
 * HuggingFaceTB/SmolLM3-3B: ChatML with a metadata block in the system turn (today's date and the
 * reasoning mode); reasoning is on unless the system prompt says `/no_think` or `enable_thinking`
 * is false, and then the generation prompt closes an empty think block.
 */
export const SMOLLM3_TEMPLATE = String.raw`{%- set reasoning_mode = "/think" %}
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
 * deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B: BOS and the system prompt first, `<｜User｜>` and
 * `<｜Assistant｜>` markers, past answers lose their thought, and the generation prompt opens a
 * think block (the model always thinks).
 */
export const R1_DISTILL_TEMPLATE = String.raw`{%- set ns = namespace(system_prompt="") %}
{%- for message in messages %}{%- if message['role'] == 'system' %}{%- set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}
{{- bos_token + ns.system_prompt }}
{%- for message in messages %}
{%- if message['role'] == 'user' %}
{{- '<｜User｜>' + message['content'] }}
{%- elif message['role'] == 'assistant' %}
{%- set content = message['content'] %}
{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}
{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<｜Assistant｜><think>\n' }}
{%- endif %}`;
