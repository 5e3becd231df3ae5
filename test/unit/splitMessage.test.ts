import { describe, expect, it } from 'vitest';
import { splitMessage } from '../../src/discord/splitMessage.js';

describe('splitMessage', () => {
  it('keeps a short text as one piece', () => {
    expect(splitMessage('hello')).toEqual(['hello']);
  });

  it('splits 2500 characters of paragraphs at a paragraph boundary, each piece within 2000', () => {
    const paragraph = 'word '.repeat(99) + 'end.'; // 499 characters
    const text = Array.from({ length: 5 }, () => paragraph).join('\n\n'); // 2503 characters
    const pieces = splitMessage(text);
    expect(pieces).toHaveLength(2);
    expect(pieces[0]).toBe([paragraph, paragraph, paragraph].join('\n\n'));
    expect(pieces[1]).toBe([paragraph, paragraph].join('\n\n'));
  });

  it('falls back to a line, then a word boundary, and loses no words', () => {
    const words = Array.from({ length: 700 }, (_, i) => `w${i}`).join(' ');
    const pieces = splitMessage(words, 500);
    expect(pieces.every((piece) => piece.length <= 500)).toBe(true);
    expect(pieces.join(' ').split(' ')).toEqual(words.split(' '));
  });

  it('cuts a text without any space hard, within the limit, losing nothing', () => {
    const text = 'x'.repeat(4500);
    const pieces = splitMessage(text);
    expect(pieces.map((piece) => piece.length)).toEqual([1996, 1996, 508]);
    expect(pieces.join('')).toBe(text);
  });

  // Discord opens a code block at any ```, at the start of a line or in the middle of one.
  it.each([
    ['at the start of a line', 'Here:\n```js\n', '\n```\nDone.'],
    ['mid-line', 'Here it is: ```js\n', '\n``` and that is all.'],
  ])('closes a code block opened %s when it is cut in two, and reopens it with its language', (_where, opening, closing) => {
    const code = Array.from({ length: 120 }, (_, i) => `console.log(${i});`).join('\n');
    const pieces = splitMessage(opening + code + closing, 1000);
    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(1000);
      expect((piece.match(/```/g) ?? []).length % 2).toBe(0);
    }
    expect(pieces[0]!.startsWith(opening)).toBe(true);
    expect(pieces[0]!.endsWith('\n```')).toBe(true);
    expect(pieces[1]!.startsWith('```js\n')).toBe(true);
    expect(pieces.at(-1)!.endsWith(closing.slice(1))).toBe(true);
  });

  it('reopens a block whose fence had no language (text on the fence line) without inventing one', () => {
    const code = Array.from({ length: 120 }, (_, i) => `line ${i}`).join('\n');
    const pieces = splitMessage('see ```' + code + '```', 500);
    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) expect((piece.match(/```/g) ?? []).length % 2).toBe(0);
    expect(pieces[1]!.startsWith('```\n')).toBe(true);
  });

  it('never splits a surrogate pair', () => {
    const text = '😀'.repeat(1500); // 3000 UTF-16 units, no spaces
    const pieces = splitMessage(text);
    expect(pieces.join('')).toBe(text);
    for (const piece of pieces) expect(piece).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/);
  });
});
