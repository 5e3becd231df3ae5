/**
 * User turns reach the model as "Name: text", and a small model sometimes starts its reply the
 * same way ("assistant: …", "mood-bot: …", "Ann: …"). Such a speaker prefix is dropped, from the
 * returned text and from the streamed pieces alike.
 */
const MAX_LABEL = 32;
const ROLE_NAMES = ['assistant', 'bot', 'model'];
/** One or two words of letters, digits and _ . ' - : how display names look. */
const NAME_LIKE = /^[\p{L}\p{N}_.'-]+( [\p{L}\p{N}_.'-]+)?$/u;
const NAME_SO_FAR = /^[\p{L}\p{N}_.'-]*( [\p{L}\p{N}_.'-]*)?$/u;

/**
 * Length of the speaker prefix at the start of `text` (with the whitespace around it); 0 when
 * there is none; undefined while `text` is too short to tell (never when `final`).
 */
export function speakerPrefixLength(text: string, names: readonly string[], final = false): number | undefined {
  const [, lead = '', label = ''] = /^(\s*)([^\n:]*)/.exec(text)!;
  const after = lead.length + label.length;
  const known = (name: string) => names.some((n) => n.toLowerCase() === name.toLowerCase()) || ROLE_NAMES.includes(name.toLowerCase());
  if (text[after] === ':') {
    const next = text[after + 1];
    // "Name: text" only: "https://…" or "10:30" are no speakers.
    if (next === undefined && !final) return undefined;
    const isSpeaker = label.trim().length > 0 && label.length <= MAX_LABEL && (next === undefined || /\s/.test(next)) && (known(label.trim()) || NAME_LIKE.test(label.trim()));
    return isSpeaker ? after + 1 + /^[ \t]*/.exec(text.slice(after + 1))![0].length : 0;
  }
  if (final || text[after] === '\n' || label.length > MAX_LABEL) return 0;
  const couldBeName = NAME_SO_FAR.test(label) || [...names, ...ROLE_NAMES].some((n) => n.toLowerCase().startsWith(label.toLowerCase()));
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
