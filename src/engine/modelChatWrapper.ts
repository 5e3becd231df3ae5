import { resolveChatWrapper, type ChatHistoryItem, type ChatWrapper, type LlamaModel } from 'node-llama-cpp';

// A conversation with every part a prompt of ours has: system, user, model, user, open model turn.
const PROBE: ChatHistoryItem[] = [
  { type: 'system', text: 'S' },
  { type: 'user', text: 'U1' },
  { type: 'model', response: ['M1'] },
  { type: 'user', text: 'U2' },
  { type: 'model', response: [] },
];

/**
 * The chat wrapper that renders prompts exactly as the model's own chat template does.
 * node-llama-cpp resolves a built-in wrapper for known template families, and that is faster to
 * render; but its ChatML wrapper starts every prompt with the BOS token, which the ChatML templates
 * of Qwen1.5 and SmolLM2 never emit (SmolLM2's BOS is `<|im_start|>`, so prompts began with it
 * twice). Where the built-in wrapper and the file's own Jinja template disagree on the probe, the
 * template wins.
 */
export function modelChatWrapper(model: LlamaModel): ChatWrapper {
  const resolved = resolveChatWrapper(model);
  if (!model.fileInfo.metadata.tokenizer?.chat_template) return resolved;
  let own: ChatWrapper;
  try {
    own = resolveChatWrapper(model, { type: 'jinjaTemplate', warningLogs: false, fallbackToOtherWrappersOnJinjaError: false });
  } catch {
    return resolved; // a template node-llama-cpp cannot run: its built-in wrapper is the best there is
  }
  return render(resolved, model) === render(own, model) ? resolved : own;
}

function render(wrapper: ChatWrapper, model: LlamaModel): string {
  const { contextText } = wrapper.generateContextState({ chatHistory: PROBE });
  return model.detokenize(contextText.tokenize(model.tokenizer), true);
}
