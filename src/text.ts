/**
 * Whitespace and invisible characters alone are no message: zero-width and other default-ignorable
 * characters (U+3164 Hangul filler, soft hyphen, ...) and U+2800 Braille blank, the usual ways to
 * post a "blank" Discord message.
 */
export function hasReadableText(content: string): boolean {
  return content.replace(/[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]/gu, '').length > 0;
}
