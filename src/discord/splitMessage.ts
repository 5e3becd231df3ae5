/** Discord's limit for one message's content. */
export const DISCORD_MESSAGE_LIMIT = 2000;

// Discord opens or closes a code block at any ``` (not only at the start of a line); a language
// counts only when the word after the opening fence ends its line.
const FENCE = /```([^\s`]*)(\n?)/g;

/**
 * Splits text into Discord-sized pieces at the best boundary available: a paragraph, then a line,
 * then a word, and only as a last resort mid-word. A code block cut in two is closed at the end of
 * one piece and reopened (same language) at the start of the next, so both render as code.
 */
export function splitMessage(text: string, limit = DISCORD_MESSAGE_LIMIT): string[] {
  const pieces: string[] = [];
  let rest = text;
  let reopen = '';
  while (rest.length > 0) {
    rest = reopen + rest;
    if (rest.length <= limit) {
      pieces.push(rest);
      break;
    }
    // Room for a closing fence, in case this piece ends inside a code block.
    const room = limit - 4;
    const cut = bestCut(rest, room);
    let piece = rest.slice(0, cut).trimEnd();
    rest = rest.slice(cut).replace(/^\n+/, '');
    const openLanguage = openFenceLanguage(piece);
    if (openLanguage !== undefined) {
      piece += '\n```';
      reopen = '```' + openLanguage + '\n';
    } else {
      reopen = '';
    }
    pieces.push(piece);
  }
  return pieces.filter((piece) => piece.trim().length > 0);
}

function bestCut(text: string, room: number): number {
  const window = text.slice(0, room + 1);
  for (const boundary of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(boundary);
    // A boundary in the first quarter would leave a tiny piece; a hard cut is better then.
    if (at > room / 4) return at + (boundary === ' ' ? 1 : 0);
  }
  // No boundary: cut at the room, but never between the two halves of a surrogate pair.
  const code = text.charCodeAt(room - 1);
  return code >= 0xd800 && code <= 0xdbff ? room - 1 : room;
}

/** The language of a code block left open at the end of `text`, or undefined when all are closed. */
function openFenceLanguage(text: string): string | undefined {
  let open: string | undefined;
  for (const match of text.matchAll(FENCE)) open = open === undefined ? (match[2] ? (match[1] ?? '') : '') : undefined;
  return open;
}
