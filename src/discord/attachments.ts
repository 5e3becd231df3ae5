/** Extensions of the attachments read into a message; other files are ignored. */
const TEXT_EXTENSIONS = ['.txt', '.md', '.csv', '.json', '.log'];

/** What the reader needs of an attachment (a discord.js Attachment has it). */
export interface AttachmentRef {
  name: string;
  url: string;
  /** Bytes, as Discord reports it. */
  size: number;
}

export interface ReadAttachmentsOptions {
  /** Largest file read, in bytes. */
  maxBytes: number;
  /** How long one file's fetch may take, in ms. */
  timeoutMs: number;
}

export interface ReadAttachments {
  /** The files' text, each under a `[file name]` line; undefined when none was read. */
  text?: string;
  /** Files that looked like text but could not be read (too large, fetch failed or timed out, not text). */
  unread: string[];
}

export function isTextAttachment(name: string): boolean {
  const lower = name.toLowerCase();
  return TEXT_EXTENSIONS.some((extension) => lower.endsWith(extension));
}

/**
 * Reads a message's text attachments, one after another. A file that fails loses nothing else:
 * it is listed in `unread` and the rest are read.
 */
export async function readTextAttachments(attachments: readonly AttachmentRef[], options: ReadAttachmentsOptions): Promise<ReadAttachments> {
  const parts: string[] = [];
  const unread: string[] = [];
  for (const attachment of attachments.filter((candidate) => isTextAttachment(candidate.name))) {
    const text = attachment.size <= options.maxBytes ? await fetchText(attachment.url, options) : undefined;
    if (text === undefined) unread.push(attachment.name);
    else parts.push(`[file ${attachment.name}]\n${text}`);
  }
  return { text: parts.length > 0 ? parts.join('\n\n') : undefined, unread };
}

/** The file's text, or undefined when it cannot be had in time, is larger than allowed, or is not UTF-8 text. */
async function fetchText(url: string, { maxBytes, timeoutMs }: ReadAttachmentsOptions): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return undefined;
    const bytes = new Uint8Array(await response.arrayBuffer());
    // The size Discord reports is checked first; this guards against a file that grew or lied.
    if (bytes.length > maxBytes || bytes.includes(0)) return undefined;
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The one line telling the user which files were not read. */
export function unreadNotice(unread: readonly string[], maxKb: number): string {
  const names = unread.map((name) => `\`${name.replace(/`/g, "'")}\``).join(', ');
  return `I could not read ${names} (text files up to ${maxKb} KB only); answering without ${unread.length > 1 ? 'them' : 'it'}.`;
}
