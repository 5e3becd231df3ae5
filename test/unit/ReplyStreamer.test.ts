import { describe, expect, it } from 'vitest';
import { EditBudget } from '../../src/discord/EditBudget.js';
import { EMPTY_REPLY_PLACEHOLDER, ReplyStreamer, type PostedMessage, type ReplyTarget } from '../../src/discord/ReplyStreamer.js';
import { silentLogger } from '../../src/logger.js';

/** Records what a channel would show: each posted message with its edit history. */
function fakeTarget(options: { failEditsOf?: number } = {}) {
  const messages: { kind: 'reply' | 'send'; contents: string[] }[] = [];
  /** When each edit happened, across all messages. */
  const editTimes: number[] = [];
  let typing = 0;
  const post = (kind: 'reply' | 'send') => async (content: string): Promise<PostedMessage> => {
    const record = { kind, contents: [content] };
    const index = messages.push(record) - 1;
    return {
      edit: async (next: string) => {
        if (index === options.failEditsOf) throw new Error('Unknown Message');
        editTimes.push(Date.now());
        record.contents.push(next);
      },
    };
  };
  const target: ReplyTarget = { reply: post('reply'), send: post('send'), typing: async () => void typing++ };
  return { target, messages, editTimes, typingCount: () => typing };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ReplyStreamer', () => {
  it('posts as soon as there is text, then edits at most once per interval, ending on the final text', async () => {
    const { target, messages } = fakeTarget();
    const streamer = new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 100 });
    streamer.push('Hel');
    await sleep(20);
    expect(messages).toEqual([{ kind: 'reply', contents: ['Hel'] }]);
    for (const piece of ['lo', ' the', 're', ' friend']) streamer.push(piece);
    await sleep(20);
    expect(messages[0]!.contents).toEqual(['Hel']); // within the interval: no edit yet
    await sleep(120);
    expect(messages[0]!.contents).toEqual(['Hel', 'Hello there friend']);
    await streamer.finish('Hello there friend!');
    expect(messages).toEqual([{ kind: 'reply', contents: ['Hel', 'Hello there friend', 'Hello there friend!'] }]);
  });

  it('holds its placeholder and text until every hold settles, then tells firstPost', async () => {
    const { target, messages } = fakeTarget();
    const streamer = new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 10 });
    let earlierPosted!: () => void;
    let reactionShown!: () => void;
    streamer.holdUntil(new Promise<void>((resolve) => (earlierPosted = resolve)));
    streamer.holdUntil(new Promise<void>((resolve) => (reactionShown = resolve)));
    let firstPostSeen = false;
    void streamer.firstPost.then(() => (firstPostSeen = true));
    streamer.showPlaceholder('Waiting…');
    reactionShown();
    await sleep(20);
    expect(messages).toEqual([]);
    earlierPosted();
    await sleep(20);
    expect(messages).toEqual([{ kind: 'reply', contents: ['Waiting…'] }]);
    expect(firstPostSeen).toBe(true);
  });

  it('continues past 2000 characters in further messages, the first one a reply', async () => {
    const { target, messages } = fakeTarget();
    const streamer = new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 10 });
    const paragraph = 'lorem ipsum '.repeat(100).trim(); // 1199 characters: two do not fit in one message
    const text = [paragraph, paragraph, paragraph].join('\n\n');
    await streamer.finish(text);
    expect(messages.map((m) => m.kind)).toEqual(['reply', 'send', 'send']);
    const shown = messages.map((m) => m.contents.at(-1)!);
    expect(shown.every((content) => content.length <= 2000)).toBe(true);
    expect(shown.join('\n\n')).toBe(text);
  });

  it('answers a blank reply with a placeholder instead of an empty message', async () => {
    const { target, messages } = fakeTarget();
    const streamer = new ReplyStreamer({ target, logger: silentLogger });
    streamer.push('\n\n  ');
    await streamer.finish('   ');
    expect(messages).toEqual([{ kind: 'reply', contents: [EMPTY_REPLY_PLACEHOLDER] }]);
  });

  it('posts the text anew when an edit is refused (message deleted)', async () => {
    const { target, messages } = fakeTarget({ failEditsOf: 0 });
    const streamer = new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 10 });
    streamer.push('first');
    await sleep(20);
    await streamer.finish('first and more');
    expect(messages.map((m) => m.contents.at(-1))).toEqual(['first', 'first and more']);
  });

  it('keeps the typing indicator going until the reply is finished', async () => {
    const { target, typingCount } = fakeTarget();
    const streamer = new ReplyStreamer({ target, logger: silentLogger, typingIntervalMs: 20 });
    streamer.startTyping();
    await sleep(70);
    await streamer.finish('done');
    const atFinish = typingCount();
    expect(atFinish).toBeGreaterThanOrEqual(2);
    await sleep(60);
    expect(typingCount()).toBe(atFinish);
  });

  it('never edits a piece whose text did not change: only the growing last message is edited', async () => {
    const { target, messages } = fakeTarget();
    const unlimited = new EditBudget({ edits: 1000, windowMs: 1 });
    const streamer = new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 10, editBudget: unlimited });
    const first = 'a'.repeat(1500);
    streamer.push(first + '\n\n' + 'b'.repeat(900)); // two pieces at once
    await sleep(30);
    for (const more of [' c', ' d', ' e']) {
      streamer.push(more);
      await sleep(30);
    }
    await streamer.finish(streamer.currentText);
    await streamer.finish(streamer.currentText); // the same text again: nothing to do
    expect(messages[0]).toEqual({ kind: 'reply', contents: [first] });
    expect(messages[1]!.contents.at(-1)).toBe('b'.repeat(900) + ' c d e');
    expect(new Set(messages[1]!.contents).size).toBe(messages[1]!.contents.length); // no edit repeats a text
  });

  it('shares one edit budget between the replies of a channel, the final edits included', async () => {
    const { target, editTimes } = fakeTarget();
    const budget = new EditBudget({ edits: 3, windowMs: 300 });
    const streamers = [0, 1].map(() => new ReplyStreamer({ target, logger: silentLogger, editIntervalMs: 10, editBudget: budget }));
    for (let i = 0; i < 6; i++) {
      for (const streamer of streamers) streamer.push(` word${i}`);
      await sleep(25);
    }
    await Promise.all(streamers.map((streamer) => streamer.finish(streamer.currentText + ' end')));
    expect(editTimes.length).toBeGreaterThan(3);
    for (const [index, time] of editTimes.entries()) {
      // Any 4 edits in a row span at least the window: never more than 3 in 300 ms.
      if (index >= 3) expect(time - editTimes[index - 3]!).toBeGreaterThanOrEqual(300);
    }
  });
});
