// Replies on the real engine (tiny generated model, 1 thread): what it says is meaningless, but
// tokenization, templating, KV-cache reuse and the LlamaChat lifecycle are real.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/Engine.js';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { windowTurns } from '../../src/engine/promptWindow.js';
import { SpeakerPrefixFilter, stripSpeakerPrefix } from '../../src/engine/speakerPrefix.js';
import type { HistoryTurn } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions, STOPPED_MARKER } from '../../src/sessions/ChannelSessions.js';
import { tempDirs } from '../support/tempDir.js';
import { ensureTinyModel, TEST_THREADS } from '../support/testModels.js';

const HISTORY_MAX_TOKENS = 256;
const CONTEXT_SIZE = 1024;
const dirs = tempDirs('chat-replies-');
let engine: Engine;

beforeAll(async () => {
  engine = await Engine.create({
    modelPath: await ensureTinyModel(),
    threads: TEST_THREADS,
    contextSize: CONTEXT_SIZE,
    warmChannels: 2,
    historyMaxTokens: HISTORY_MAX_TOKENS,
    replyMaxTokens: 12,
    systemPrompt: 'You are a friendly bot in a Discord channel.',
    seed: 42,
  });
});
afterAll(async () => {
  await engine?.dispose();
  dirs.removeAll();
});

const tokens = (text: string) => engine.model.tokenize(text).length;
const turn = (userText: string, reply = 'ok'): HistoryTurn => ({ userName: 'bob', userText, reply, at: 0 });

/** Words until the text takes at least `count` tokens, ending with `marker`. */
function textOfTokens(count: number, marker: string): string {
  let text = marker;
  while (tokens(text) < count) text = `word ${text}`;
  return text;
}

describe('ChatReplies on the real engine', () => {
  it('merges a history entry without a reply into the next user turn, and uses the channel persona instead of the default', async () => {
    const turns: HistoryTurn[] = [turn('hello there', 'hi bob'), { userName: 'cleo', userText: 'unanswered aside', at: 0 }];

    await engine.reply({ channelId: 'rendering', turns, userName: 'bob', userText: 'what did cleo say?', systemPrompt: 'You are a pirate.' });
    const text = engine.replies.contextText('rendering')!;

    expect(text).toContain('<|im_start|>system\nYou are a pirate.<|im_end|>');
    expect(text).not.toContain('friendly bot');
    expect(text).toContain('<|im_start|>user\nbob: hello there<|im_end|>\n<|im_start|>assistant\nhi bob<|im_end|>\n<|im_start|>user\ncleo: unanswered aside\n\nbob: what did cleo say?<|im_end|>');
    engine.forget('rendering');
  });

  it('stops a streaming reply at /reset: the text shown so far stays, marked stopped; it is not recorded and the warm slot is dropped', async () => {
    const store = await KeyvHistoryStore.open({ url: `sqlite://${join(dirs.make(), 'h.sqlite')}` });
    const sessions = new ChannelSessions({ engine, queue: new GenerationQueue(), store });
    try {
      await sessions.handleMessage({ channelId: 'r', userName: 'bob', text: 'secret from before the reset' });
      let reset: Promise<void> | undefined;
      const pieces: string[] = [];

      const during = await sessions.handleMessage(
        { channelId: 'r', userName: 'bob', text: 'during the reset' },
        { onText: (delta) => void (pieces.push(delta), (reset ??= sessions.reset('r'))) },
      );
      await reset;

      expect(reset).toBeDefined();
      expect(during.stopped).toBe(true);
      expect(during.reply).toBe(pieces.join('').trim() + STOPPED_MARKER);
      expect(await store.load('r')).toEqual([]);
      expect(await sessions.history('r')).toEqual([]);
      expect(engine.replies.isWarm('r')).toBe(false);
      await sessions.handleMessage({ channelId: 'r', userName: 'bob', text: 'after' });
      const context = engine.replies.contextText('r')!;
      expect(context).toContain('after');
      expect(context).not.toContain('secret');
      expect(context).not.toContain('during the reset');
    } finally {
      await sessions.close();
      await store.dispose();
    }
  });

  it('keeps a long newest turn in the prompt when the history crosses the budget, instead of cutting to nothing', async () => {
    const long = turn(textOfTokens(HISTORY_MAX_TOKENS * 0.87, 'walrus-marker'));
    const turns = [turn('hello'), turn('how are you', 'fine, and you?'), turn('good, thanks for asking', 'glad to hear it'), long];
    const historyTokens = turns.reduce((sum, t) => sum + tokens(`bob: ${t.userText}`) + tokens(t.reply ?? ''), 0);
    expect(historyTokens).toBeGreaterThan(HISTORY_MAX_TOKENS);

    const result = await engine.reply({ channelId: 'long-turn', turns, userName: 'bob', userText: 'what did I just say?' });

    expect(result.turnsInPrompt).toBe(1);
    expect(engine.replies.contextText('long-turn')).toContain('walrus-marker');
  });

  it('cuts a message over a quarter of the context to its first tokens, and returns the cut text as what the model read', async () => {
    const full = `${'word '.repeat(600)}zebra-tail`;
    expect(tokens(`bob: ${full}`)).toBeGreaterThan(CONTEXT_SIZE / 2);

    const result = await engine.reply({ channelId: 'cut', turns: [], userName: 'bob', userText: full });

    expect(result.messageTruncated).toBe(true);
    expect(result.userText).toMatch(/^word word .* …\(message cut\)$/);
    expect(tokens(`bob: ${result.userText}`)).toBeLessThanOrEqual(CONTEXT_SIZE / 4 + tokens(' …(message cut)'));
    expect(result.evaluatedTokens).toBeLessThan(tokens(full));
    expect(engine.replies.contextText('cut')).not.toContain('zebra-tail');
  });
});

describe('windowTurns', () => {
  const sizes = new Map<HistoryTurn, number>();
  const sized = (n: number) => {
    const t = turn(`turn of ${n}`);
    sizes.set(t, n);
    return t;
  };
  const tokensOf = (t: HistoryTurn) => sizes.get(t)!;
  const window = (turns: HistoryTurn[], from = 0) => {
    const { start, turns: kept } = windowTurns(turns, from, 256, tokensOf);
    return { start, kept: kept.map(tokensOf) };
  };

  it('keeps the window while it fits, and then cuts it to half the budget in one step', () => {
    const turns = [sized(60), sized(61), sized(62), sized(63), sized(64)];
    expect(window(turns.slice(0, 4))).toEqual({ start: 0, kept: [60, 61, 62, 63] });
    expect(window(turns)).toEqual({ start: 3, kept: [63, 64] });
  });

  it('never cuts below the newest turn when it alone takes more than half the budget', () => {
    expect(window([sized(40), sized(41), sized(220)])).toEqual({ start: 2, kept: [220] });
  });

  it('skips a turn too large for the whole budget and keeps the turns before and after it', () => {
    expect(window([sized(40), sized(300), sized(41)])).toEqual({ start: 0, kept: [40, 41] });
    expect(window([sized(40), sized(41), sized(300)])).toEqual({ start: 0, kept: [40, 41] });
  });

  it('never drops the newest turns because an older one is huge, also when it cuts', () => {
    expect(window([sized(100), sized(300), sized(100), sized(100)])).toEqual({ start: 3, kept: [100] });
    expect(window([sized(30), sized(300), sized(50), sized(400), sized(60)], 0)).toEqual({ start: 0, kept: [30, 50, 60] });
  });
});

describe('a history window with CONTEXT_SIZE=4096 and the other settings at their defaults', () => {
  let wide: Engine;
  beforeAll(async () => {
    wide = await Engine.create({
      modelPath: await ensureTinyModel(),
      threads: TEST_THREADS,
      contextSize: 4096,
      warmChannels: 1,
      historyMaxTokens: 1280,
      replyMaxTokens: 256,
      systemPrompt: 'You are a friendly bot in a Discord channel.',
      seed: 42,
    });
  });
  afterAll(async () => {
    await wide?.dispose();
  });

  it('keeps the earlier turns in the prompt after a message cut to its full token cap, which alone overflows the history budget', async () => {
    const pasted = wide.fitMessage('bob', 'word '.repeat(3000));
    expect(pasted.truncated).toBe(true);
    const longTurn: HistoryTurn = { userName: 'bob', userText: pasted.userText, reply: 'word '.repeat(250).trim(), at: 0 };
    expect(wide.model.tokenize(`bob: ${longTurn.userText}`).length + wide.model.tokenize(longTurn.reply!).length).toBeGreaterThan(1280);
    const turns = [turn('my cat is called Miso', 'what a lovely name'), longTurn];

    const result = await wide.reply({ channelId: 'wide', turns, userName: 'bob', userText: 'what is my cat called?' });

    expect(result.turnsInPrompt).toBe(1);
    expect(wide.replies.contextText('wide')).toContain('bob: my cat is called Miso');
  });
});

describe('speaker prefixes in replies', () => {
  // The names that speak in the prompt's window, and the bot's own (mood-bot).
  const names = ['Ann', 'Zoë 🌸 the Great', 'Bo Lee', 'mood-bot'];

  it.each([
    ['assistant: Hello there', 'Hello there'],
    ['User: hi again', 'hi again'],
    ['mood-bot: sure thing', 'sure thing'],
    ['  Ann:  you passed!', 'you passed!'],
    ['bo lee: hi', 'hi'],
    ['Zoë 🌸 the Great: welcome back', 'welcome back'],
    ['Ann:', ''],
  ])('strips the prefix of %j', (reply, expected) => {
    expect(stripSpeakerPrefix(reply, names).trim()).toBe(expected);
  });

  it.each([
    'https://example.com is the link',
    '10:30 works for me',
    'Here is the plan: first we eat',
    'Hello! How are you?',
    'Ann\nsays: hi',
    'Warning: do not run this as root',
    'Step 1: open the settings',
    'Answer: Paris',
    'Ingredients:\n- 2 eggs\n- flour',
    'Cleo: a name that does not speak here',
  ])('keeps %j as it is', (reply) => {
    expect(stripSpeakerPrefix(reply, names)).toBe(reply);
  });

  it('holds streamed pieces back only until it is clear, and streams the same text as the whole reply', () => {
    for (const reply of ['assistant: Hello there', ' Ann: you passed!', 'Hello there, friend', 'https://x.y', 'Ann', 'Warning: do not run this as root', 'Step 1: open it', 'Answer: Paris']) {
      const filter = new SpeakerPrefixFilter(names);
      const streamed = [...reply].map((char) => filter.push(char)).join('') + filter.end();
      expect(streamed.trim()).toBe(stripSpeakerPrefix(reply, names).trim());
    }
    const filter = new SpeakerPrefixFilter(names);
    expect(filter.push('assi')).toBe('');
    expect(filter.push('stant: Hi')).toBe('Hi');
    expect(filter.push(' there')).toBe(' there');
    const plain = new SpeakerPrefixFilter(names);
    expect(plain.push('Sure,')).toBe('Sure,');
    const warning = new SpeakerPrefixFilter(names);
    expect(warning.push('Warn')).toBe('Warn');
  });
});
