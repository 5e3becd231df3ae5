import { UserError } from '../errors.js';
import type { HistoryStore } from '../history/HistoryStore.js';
import { REPLY_MODES, type ReplyMode } from '../domain.js';
import { hasReadableText } from '../text.js';


/** Longest `/persona` text, in characters. */
export const PERSONA_MAX_CHARS = 1000;

/** Chat-template control tokens (ChatML, Llama, Mistral, Gemma): a persona that holds one could forge turns. */
const TEMPLATE_TOKEN = /<\|[^|<>\s]{1,40}\|>|<\/?s>|\[\/?INST\]|<\/?(?:start|end)_of_turn>/i;

export interface ChannelSettingsOptions {
  store: HistoryStore;
  /** The mode of a channel that never set one (`REPLY_MODE`). */
  defaultMode: ReplyMode;
  /** Channels whose settings stay in memory. Default 1024. */
  cachedChannels?: number;
}

interface Settings {
  mode?: ReplyMode;
  persona?: string;
}

/**
 * Per-channel settings (reply mode, persona), stored through the history store so they survive
 * restarts, and cached: the mode is read for every message.
 */
export class ChannelSettings {
  private readonly cache = new Map<string, Settings>();

  constructor(private readonly options: ChannelSettingsOptions) {}

  async replyMode(channelId: string): Promise<ReplyMode> {
    return (await this.load(channelId)).mode ?? this.options.defaultMode;
  }

  /** The channel's own mode, if it set one. */
  async ownReplyMode(channelId: string): Promise<ReplyMode | undefined> {
    return (await this.load(channelId)).mode;
  }

  async setReplyMode(channelId: string, mode: ReplyMode): Promise<void> {
    await this.options.store.setSetting(channelId, 'mode', mode);
    (await this.load(channelId)).mode = mode;
  }

  /** The channel's system prompt, if it set one. */
  async persona(channelId: string): Promise<string | undefined> {
    return (await this.load(channelId)).persona;
  }

  /** Stores the channel's persona (undefined clears it); throws UserError for a text it refuses. */
  async setPersona(channelId: string, text: string | undefined): Promise<void> {
    const persona = text === undefined ? undefined : checkPersona(text);
    await this.options.store.setSetting(channelId, 'persona', persona);
    (await this.load(channelId)).persona = persona;
  }

  private async load(channelId: string): Promise<Settings> {
    let settings = this.cache.get(channelId);
    if (settings) return settings;
    const [mode, persona] = await Promise.all([this.options.store.getSetting(channelId, 'mode'), this.options.store.getSetting(channelId, 'persona')]);
    // Loaded by someone else meanwhile: keep theirs, it may hold a newer write.
    settings = this.cache.get(channelId);
    if (settings) return settings;
    settings = { mode: REPLY_MODES.find((known) => known === mode), persona };
    if (this.cache.size >= (this.options.cachedChannels ?? 1024)) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(channelId, settings);
    return settings;
  }
}

/** The persona as stored (trimmed), or a UserError saying what is wrong with it. */
export function checkPersona(text: string): string {
  const persona = text.trim();
  if (!hasReadableText(persona)) throw new UserError('The persona is empty. Describe how I should talk here, for example: `You are a cheerful pirate who answers in one sentence.`');
  if ([...persona].length > PERSONA_MAX_CHARS) throw new UserError(`The persona is too long (${[...persona].length} characters); keep it to ${PERSONA_MAX_CHARS}.`);
  if (TEMPLATE_TOKEN.test(persona)) throw new UserError('The persona contains chat-template tokens such as `<|im_start|>`; write it as plain text.');
  return persona;
}
