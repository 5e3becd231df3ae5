/**
 * User turns reach the model as "Name: text", and a small model sometimes starts its reply the
 * same way ("assistant: …", "mood-bot: …", "Ann: …"). Such a speaker prefix is dropped, from the
 * returned text and from the streamed pieces alike. Only real speakers count: the names given (those
 * that speak in the prompt, and the bot's own) and the role names; "Warning:", "Step 1:",
 * "Answer: Paris" or "Ingredients:" open a reply and are kept.
 */
const ROLE_NAMES = ['assistant', 'bot', 'model', 'user', 'system'];

/**
 * Length of the speaker prefix at the start of `text` (with the whitespace around it); 0 when
 * there is none; undefined while `text` is too short to tell (never when `final`).
 */
export function speakerPrefixLength(text: string, names: readonly string[], final = false): number | undefined {
  const [, lead = '', label = ''] = /^(\s*)([^\n:]*)/.exec(text)!;
  const after = lead.length + label.length;
  const speakers = [...names.map((name) => name.toLowerCase()), ...ROLE_NAMES];
  const known = label.trim().toLowerCase();
  if (text[after] === ':') {
    const next = text[after + 1];
    // "Name: text" only: "https://…" or "10:30" are no speakers.
    if (next === undefined && !final) return undefined;
    const isSpeaker = speakers.includes(known) && (next === undefined || /\s/.test(next));
    return isSpeaker ? after + 1 + /^[ \t]*/.exec(text.slice(after + 1))![0].length : 0;
  }
  if (final || text[after] === '\n') return 0;
  // Held back only while the text so far could still become one of the speakers' names.
  const couldBeName = speakers.some((speaker) => speaker.startsWith(label.trimStart().toLowerCase()));
  return couldBeName ? undefined : 0;
}

/** The text without its speaker prefix. */
export function stripSpeakerPrefix(text: string, names: readonly string[]): string {
  return text.slice(speakerPrefixLength(text, names, true));
}

/**
 * Filters streamed pieces: holds back the first characters until it is clear whether they are a
 * speaker prefix (usually after a word or two), then passes everything on. Together the pieces
 * are `stripSpeakerPrefix` of the whole text, but for leading spaces.
 */
export class SpeakerPrefixFilter {
  private held = '';
  private decided = false;
  private skipSpaces = false;

  constructor(private readonly names: readonly string[]) {}

  push(piece: string): string {
    if (this.decided) return this.pass(piece);
    this.held += piece;
    const length = speakerPrefixLength(this.held, this.names);
    return length === undefined ? '' : this.decide(length);
  }

  /** What is still held back, once the text is complete (or cut). */
  end(): string {
    return this.decided ? '' : this.decide(speakerPrefixLength(this.held, this.names, true)!);
  }

  private decide(length: number): string {
    this.decided = true;
    this.skipSpaces = length > 0;
    const rest = this.held.slice(length);
    this.held = '';
    return this.pass(rest);
  }

  private pass(piece: string): string {
    if (!this.skipSpaces) return piece;
    const text = piece.replace(/^[ \t]+/, '');
    if (text) this.skipSpaces = false;
    return text;
  }
}
