import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenerationQueue } from '../../src/engine/GenerationQueue.js';
import { AbortedError, ModelUnavailableError, QueueFullError, UserError } from '../../src/errors.js';
import type { HistoryStore, HistoryTurn, MoodRecord } from '../../src/history/HistoryStore.js';
import { KeyvHistoryStore } from '../../src/history/KeyvHistoryStore.js';
import { ChannelSessions, STOPPED_MARKER, clampText, type TurnOutcome } from '../../src/sessions/ChannelSessions.js';
import { FakeEngine, letEventLoopTurn, until } from '../support/fakeEngine.js';
import { tempDirs } from '../support/tempDir.js';

/** A real store whose appends can be made to fail, as a full disk or a locked file would. */
class FlakyStore implements HistoryStore {
  failNextAppends = 0;
  readonly attempts: string[] = [];
  readonly moodWrites: Array<Promise<void>> = [];
  constructor(private readonly inner: HistoryStore) {}
  get maxTurns() {
    return this.inner.maxTurns;
  }
  load(channelId: string) {
    return this.inner.load(channelId);
  }
  async append(channelId: string, turn: HistoryTurn) {
    this.attempts.push(turn.userText);
    if (this.failNextAppends > 0) {
      this.failNextAppends--;
      throw new Error('SQLITE_FULL: database or disk is full');
    }
    return this.inner.append(channelId, turn);
  }
  clear(channelId: string) {
    return this.inner.clear(channelId);
  }
  getSetting(channelId: string, key: string) {
    return this.inner.getSetting(channelId, key);
  }
  setSetting(channelId: string, key: string, value: string | undefined) {
    return this.inner.setSetting(channelId, key, value);
  }
  appendMood(channelId: string, record: MoodRecord) {
    const write = this.inner.appendMood(channelId, record);
    this.moodWrites.push(write);
    return write;
  }
  loadMood(channelId: string, since: number) {
    return this.inner.loadMood(channelId, since);
  }
  clearMood(channelId: string) {
    return this.inner.clearMood(channelId);
  }
  dispose() {
    return this.inner.dispose();
  }
}

const dirs = tempDirs('channel-sessions-');
let engine: FakeEngine;
let queue: GenerationQueue;
let storeFile: string;
let realStore: KeyvHistoryStore;
let store: FlakyStore;
let sessions: ChannelSessions;

function setUp(options: { maxPending?: number; parallelReplies?: number; messageMaxChars?: number; cachedChannels?: number } = {}): void {
  queue = new GenerationQueue({ maxPending: options.maxPending, parallelReplies: options.parallelReplies });
  sessions = new ChannelSessions({ engine, queue, store, messageMaxChars: options.messageMaxChars, cachedChannels: options.cachedChannels });
}

/** Another connection to the file holds its write lock until release(): the store's writes wait (busy), as with a second process. */
async function lockFile(file: string): Promise<{ release(): Promise<void> }> {
  const other = new sqlite3.Database(file);
  const run = (sql: string) => new Promise<void>((resolve, reject) => other.run(sql, (error) => (error ? reject(error) : resolve())));
  await run('BEGIN EXCLUSIVE');
  return {
    async release() {
      await run('ROLLBACK');
      await new Promise<void>((resolve) => other.close(() => resolve()));
    },
  };
}

const say = (channelId: string, text: string, userName = 'ana') => sessions.handleMessage({ channelId, userName, text });
const userTexts = (turns: readonly HistoryTurn[]) => turns.map((t) => t.userText);

beforeEach(async () => {
  engine = new FakeEngine();
  storeFile = join(dirs.make(), 'h.sqlite');
  realStore = await KeyvHistoryStore.open({ url: `sqlite://${storeFile}` });
  store = new FlakyStore(realStore);
  setUp();
});
afterEach(async () => {
  engine.releaseReplies();
  await queue.close();
  await realStore.dispose();
});
afterAll(() => dirs.removeAll());

describe('ChannelSessions', () => {
  it('answers a message with its sentiment and reply, and records the turn in the store', async () => {
    const outcome = await say('a', 'I love this server', 'Ana');

    expect(outcome).toEqual({
      sentiment: { label: 'positive', confidence: 0.9 },
      reply: 'reply to I love this server',
      saved: true,
      truncated: false,
    });
    expect(await realStore.load('a')).toEqual([{ userName: 'Ana', userText: 'I love this server', reply: 'reply to I love this server', at: expect.any(Number) }]);
  });

  it('calls the sentiment hook before the reply starts, for every message', async () => {
    const log: string[] = [];
    const texts = ['one', 'two', 'three'];

    await Promise.all(
      texts.map((text) =>
        sessions.handleMessage(
          { channelId: 'a', userName: 'ana', text },
          {
            onSentiment: (result) => void log.push(`sentiment:${text}:${result.label}`),
            onReplyStart: () => void log.push(`start:${text}`),
            onText: (delta) => void log.push(`text:${delta}`),
          },
        ),
      ),
    );

    for (const text of texts) {
      const sentimentAt = log.indexOf(`sentiment:${text}:neutral`);
      const startAt = log.indexOf(`start:${text}`);
      const textAt = log.indexOf(`text:reply to ${text}`);
      expect(sentimentAt).toBeGreaterThanOrEqual(0);
      expect(startAt).toBeGreaterThan(sentimentAt);
      expect(textAt).toBeGreaterThan(startAt);
    }
    expect(log.filter((entry) => entry.startsWith('start:'))).toEqual(['start:one', 'start:two', 'start:three']);
  });

  it('starts the reply while the sentiment hook is still showing the label: the model never waits on the front end', async () => {
    let finishHook!: () => void;
    const hookDone = new Promise<void>((resolve) => (finishHook = resolve));

    const pending = sessions.handleMessage({ channelId: 'a', userName: 'ana', text: 'hello' }, { onSentiment: () => hookDone });
    await until(() => engine.replyCalls.length === 1);
    expect(engine.replyCalls.map((call) => call.userText)).toEqual(['hello']);

    finishHook();
    await pending;
  });

  it('keeps arrival order within a channel: each reply sees the earlier turns, in order', async () => {
    // The first message's sentiment hook is the slowest, so a naive implementation would reply to it last.
    const slowFirst = (text: string) => ({ onSentiment: () => letEventLoopTurn(text === 'first' ? 50 : 1) });

    const outcomes = await Promise.all(['first', 'second', 'third'].map((text) => sessions.handleMessage({ channelId: 'a', userName: 'ana', text }, slowFirst(text))));

    expect(outcomes.map((o) => o.reply)).toEqual(['reply to first', 'reply to second', 'reply to third']);
    expect(engine.replyCalls.map((call) => [call.userText, userTexts(call.turns)])).toEqual([
      ['first', []],
      ['second', ['first']],
      ['third', ['first', 'second']],
    ]);
    expect(userTexts(await realStore.load('a'))).toEqual(['first', 'second', 'third']);
  });

  it("passes the bot's own name to the engine, which strips it as a speaker prefix", async () => {
    await sessions.handleMessage({ channelId: 'a', userName: 'ana', text: 'hi', botName: 'mood-bot' });

    expect(engine.replyCalls.map((call) => call.botName)).toEqual(['mood-bot']);
  });

  it('never gives the classifier any history: it gets exactly each message text', async () => {
    await say('a', 'I love pizza');
    await say('a', 'I hate rain');
    await Promise.all([say('a', 'and you?'), say('b', 'other channel')]);

    expect(engine.classifyInputs).toEqual(['I love pizza', 'I hate rain', 'and you?', 'other channel']);
    expect(engine.replyCalls.find((call) => call.userText === 'and you?')!.turns).toHaveLength(2);
  });

  it('classifies on demand without reading or writing history', async () => {
    await say('a', 'hello');
    const replyCallsBefore = engine.replyCalls.length;

    const result = await sessions.classify('a', 'this is awful');

    expect(result).toEqual({ label: 'negative', confidence: 0.8 });
    expect(engine.classifyInputs).toEqual(['hello', 'this is awful']);
    expect(engine.replyCalls).toHaveLength(replyCallsBefore);
    expect(userTexts(await realStore.load('a'))).toEqual(['hello']);
    expect(userTexts(await sessions.history('a'))).toEqual(['hello']);
  });

  it("adds each channel message's label to that channel's mood log (answered, unanswered, reaction only), and never an on-demand text", async () => {
    const labelled: string[] = [];
    sessions = new ChannelSessions({ engine, queue, store, observer: { sentimentLabelled: (label) => labelled.push(label) } });
    const before = Date.now();

    await say('a', 'I love this server', 'Ana');
    await sessions.handleUnanswered({ channelId: 'a', userName: 'Bo', text: 'this is awful' });
    await sessions.classifyMessage('a', 'what time is it');
    await sessions.classify('a', 'I hate on-demand texts');
    await say('b', 'great news');
    await until(() => store.moodWrites.length === 4);
    await Promise.all(store.moodWrites);

    const records = await realStore.loadMood('a', 0);
    expect(records.map(({ label, confidence }) => ({ label, confidence }))).toEqual([
      { label: 'positive', confidence: 0.9 },
      { label: 'negative', confidence: 0.8 },
      { label: 'neutral', confidence: 0.6 },
    ]);
    expect(records.every((r) => r.at >= before && r.at <= Date.now())).toBe(true);
    expect((await realStore.loadMood('b', 0)).map((r) => r.label)).toEqual(['positive']);
    expect(labelled).toEqual(['positive', 'negative', 'neutral', 'positive']);
  });

  it("writes a message's mood record once its own turn has ended, after the turn's history entry, even while a later turn of the channel still runs", async () => {
    engine.holdReplies = true;
    const first = say('a', 'I love this server');
    await until(() => engine.replyCalls.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.moodWrites).toHaveLength(0);

    engine.releaseReplies();
    await first;
    engine.holdReplies = true;
    const second = say('a', 'this is awful');
    await until(() => engine.replyCalls.length === 2);
    await until(() => store.moodWrites.length === 1);
    await Promise.all(store.moodWrites);
    expect((await realStore.loadMood('a', 0)).map((r) => r.label)).toEqual(['positive']);
    expect(userTexts(await realStore.load('a'))).toEqual(['I love this server']);

    engine.releaseReplies();
    await second;
    await sessions.moodWritten('a');
    expect((await realStore.loadMood('a', 0)).map((r) => r.label)).toEqual(['positive', 'negative']);
  });

  it('refuses a message at once with QueueFullError when the reply lane is full and its channel already waits, and records nothing of it', async () => {
    setUp({ maxPending: 1 });
    engine.holdReplies = true;
    const first = say('a', 'first');
    await until(() => engine.replyCalls.length === 1);

    expect(() => say('a', 'second')).toThrow(QueueFullError);

    engine.releaseReplies();
    await first;
    expect(engine.classifyInputs).toEqual(['first']);
    expect(engine.replyCalls.map((call) => call.userText)).toEqual(['first']);
    expect(userTexts(await realStore.load('a'))).toEqual(['first']);
  });

  it('still takes and answers a quiet channel while one busy channel fills the queue (QUEUE_MAX 4)', async () => {
    setUp({ maxPending: 4 });
    engine.holdReplies = true;
    const busy = ['b1', 'b2', 'b3', 'b4'].map((text) => say('busy', text));
    await until(() => engine.replyCalls.length === 1);
    expect(() => say('busy', 'b5')).toThrow(QueueFullError);

    const quiet = say('quiet', 'hello, anyone here?');
    expect(() => say('quiet', 'and again')).toThrow(QueueFullError);
    engine.releaseReplies();

    expect(await quiet).toMatchObject({ reply: 'reply to hello, anyone here?', saved: true });
    await Promise.all(busy);
    expect(engine.replyCalls.map((call) => call.userText)).toEqual(['b1', 'hello, anyone here?', 'b2', 'b3', 'b4']);
  });

  it('gives back its reply place when the sentiment lane is full, so the refused message holds up nothing', async () => {
    setUp({ maxPending: 1 });
    let releaseClassify: (() => void) | undefined;
    const busySentiment = queue.run(
      'sentiment',
      'a',
      (signal) =>
        new Promise<void>((resolve, reject) => {
          releaseClassify = resolve;
          signal.addEventListener('abort', () => reject(signal.reason));
        }),
    );
    await until(() => releaseClassify !== undefined);

    expect(() => say('a', 'refused')).toThrow(QueueFullError);
    expect(queue.pending('reply')).toBe(0);

    releaseClassify!();
    await busySentiment;
    await expect(say('a', 'accepted')).resolves.toMatchObject({ reply: 'reply to accepted', saved: true });
    expect(engine.classifyInputs).toEqual(['accepted']);
  });

  it('rejects a message with no text with a UserError before queueing anything', () => {
    expect(() => say('a', '   \n ')).toThrow(UserError);
    expect(() => sessions.classify('a', '  ')).toThrow(UserError);
    expect(queue.pending('reply')).toBe(0);
    expect(queue.pending('sentiment')).toBe(0);
  });

  it('leaves no half turn in the store when close() aborts a running reply', async () => {
    await say('a', 'before');
    engine.holdReplies = true;
    const streamed: string[] = [];
    const running = sessions.handleMessage({ channelId: 'a', userName: 'ana', text: 'during' }, { onText: (delta) => void streamed.push(delta) });
    const waiting = say('b', 'queued');
    const runningOutcome = running.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    const waitingOutcome = waiting.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await until(() => engine.replyCalls.length === 2);

    await sessions.close();

    expect(streamed).toEqual(['partial ']);
    expect(await runningOutcome).toBeInstanceOf(AbortedError);
    expect(await waitingOutcome).toBeInstanceOf(AbortedError);
    expect(userTexts(await realStore.load('a'))).toEqual(['before']);
    expect(await realStore.load('b')).toEqual([]);
    expect(() => say('a', 'after close')).toThrow(AbortedError);
  });

  it('returns the reply with saved=false when the store fails, and writes the kept turn with the next one, in order', async () => {
    await say('a', 'one');
    store.failNextAppends = 1;

    const second = await say('a', 'two');

    expect(second).toMatchObject({ reply: 'reply to two', saved: false });
    expect(userTexts(await realStore.load('a'))).toEqual(['one']);
    expect(userTexts(await sessions.history('a'))).toEqual(['one', 'two']);

    const third = await say('a', 'three');

    expect(third.saved).toBe(true);
    expect(userTexts(engine.replyCalls[2]!.turns)).toEqual(['one', 'two']);
    expect(userTexts(await realStore.load('a'))).toEqual(['one', 'two', 'three']);
    expect(store.attempts).toEqual(['one', 'two', 'two', 'three']);
  });

  it('answers while another process locks the SQLite file, then writes the kept turn once the lock is gone', async () => {
    const file = join(dirs.make(), 'locked.sqlite');
    const lockedStore = await KeyvHistoryStore.open({ url: `sqlite://${file}`, busyTimeoutMs: 50 });
    const locked = new ChannelSessions({ engine, queue, store: lockedStore });
    const other = new sqlite3.Database(file);
    const run = (sql: string) => new Promise<void>((resolve, reject) => other.run(sql, (error) => (error ? reject(error) : resolve())));
    try {
      await run('BEGIN EXCLUSIVE');
      const during = await locked.handleMessage({ channelId: 'c1', userName: 'ana', text: 'while locked' });
      expect(during).toMatchObject({ reply: FakeEngine.replyTo('while locked'), saved: false });
      await run('ROLLBACK');
      const after = await locked.handleMessage({ channelId: 'c1', userName: 'ana', text: 'after unlock' });
      expect(after.saved).toBe(true);
      expect(userTexts(await lockedStore.load('c1'))).toEqual(['while locked', 'after unlock']);
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
      await lockedStore.dispose();
    }
  });

  it('keeps unsaved turns through several failures and writes them all once the store recovers', async () => {
    // 'one' fails, then 'one' fails again when retried before 'two'; the third try works.
    store.failNextAppends = 2;

    const outcomes = [await say('a', 'one'), await say('a', 'two')];

    expect(outcomes.map((o) => o.saved)).toEqual([false, false]);
    expect(await realStore.load('a')).toEqual([]);
    expect(store.attempts).toEqual(['one', 'one']);
    expect(userTexts(engine.replyCalls[1]!.turns)).toEqual(['one']);
    const third = await say('a', 'three');
    expect(third.saved).toBe(true);
    expect(userTexts(await realStore.load('a'))).toEqual(['one', 'two', 'three']);
    expect(store.attempts).toEqual(['one', 'one', 'one', 'two', 'three']);
  });

  it('makes a last try at unsaved turns when it closes', async () => {
    store.failNextAppends = 1;
    expect((await say('a', 'one')).saved).toBe(false);

    await sessions.close();

    expect(userTexts(await realStore.load('a'))).toEqual(['one']);
  });

  it('does not record a turn whose reply could not be delivered, and the next message still gets answered', async () => {
    const failed = sessions.handleMessage(
      { channelId: 'c1', userName: 'ana', text: 'first' },
      { deliver: async () => Promise.reject(new Error('Discord said 502 five times')) },
    );
    await expect(failed).rejects.toThrow('502');
    const next = await say('c1', 'second');
    expect(next.saved).toBe(true);
    expect(userTexts(await realStore.load('c1'))).toEqual(['second']);
    expect(engine.replyCalls.map((call) => userTexts(call.turns))).toEqual([[], []]);
  });

  it("starts a channel's next reply only after the previous one was delivered and recorded, while other channels go on", async () => {
    let deliverFirst!: () => void;
    const firstDelivered = new Promise<void>((resolve) => (deliverFirst = resolve));
    const first = sessions.handleMessage({ channelId: 'c1', userName: 'ana', text: 'one' }, { deliver: () => firstDelivered });
    const second = say('c1', 'two');
    const other = await say('c2', 'elsewhere');
    expect(other.reply).toBe(FakeEngine.replyTo('elsewhere'));
    expect(engine.replyCalls.map((call) => call.userText)).toEqual(['one', 'elsewhere']);
    deliverFirst();
    await first;
    await second;
    expect(engine.replyCalls.map((call) => call.userText)).toEqual(['one', 'elsewhere', 'two']);
    expect(userTexts(engine.replyCalls[2]!.turns)).toEqual(['one']);
  });

  it('resets one channel only: its store, memory and warm cache, leaving other channels intact', async () => {
    await say('a', 'a1');
    await say('b', 'b1');

    await sessions.reset('a');

    expect(engine.forgotten).toEqual(['a']);
    expect(await realStore.load('a')).toEqual([]);
    expect(userTexts(await realStore.load('b'))).toEqual(['b1']);
    await say('a', 'a2');
    await say('b', 'b2');
    expect(userTexts(engine.replyCalls.find((call) => call.userText === 'a2')!.turns)).toEqual([]);
    expect(userTexts(engine.replyCalls.find((call) => call.userText === 'b2')!.turns)).toEqual(['b1']);
  });

  it('drops unsaved turns on reset, so they are not written back later', async () => {
    store.failNextAppends = 1;
    await say('a', 'old');

    await sessions.reset('a');
    await say('a', 'new');

    expect(userTexts(await realStore.load('a'))).toEqual(['new']);
  });

  it('does not write back a reply that was running while its channel was reset', async () => {
    engine.holdReplies = true;
    const running = say('a', 'in flight');
    await until(() => engine.replyCalls.length === 1);

    await sessions.reset('a');
    engine.releaseReplies();
    await running;

    expect(await realStore.load('a')).toEqual([]);
    expect(await sessions.history('a')).toEqual([]);
  });

  it('stops the reply running in a channel at /reset (the model stops at once) and keeps nothing of that turn', async () => {
    engine.holdReplies = true;
    const running = say('a', 'in flight');
    await until(() => engine.replying === 1);

    await sessions.reset('a');
    const outcome = await running;

    expect(engine.replying).toBe(0);
    expect(outcome.stopped).toBe(true);
    expect(outcome.reply).toBe(engine.partialText.trim() + STOPPED_MARKER);
    expect(await realStore.load('a')).toEqual([]);
    expect(await sessions.history('a')).toEqual([]);
  });

  it('drops a message that arrived before a /reset even when its reply starts after it', async () => {
    engine.holdReplies = true;
    const running = say('a', 'first');
    await until(() => engine.replyCalls.length === 1);
    const queued = say('a', 'my password is hunter2');

    await sessions.reset('a');
    engine.releaseReplies();
    await Promise.all([running, queued]);
    await say('a', 'after the reset');

    expect(userTexts(await sessions.history('a'))).toEqual(['after the reset']);
    expect(userTexts(await realStore.load('a'))).toEqual(['after the reset']);
  });

  it('cuts a long message to messageMaxChars, marks it truncated, and uses the cut text everywhere', async () => {
    setUp({ messageMaxChars: 10 });

    const outcome = await say('a', 'abcdefghijklmnopqrstuvwxyz');

    expect(outcome.truncated).toBe(true);
    expect(engine.classifyInputs).toEqual(['abcdefghij']);
    expect(engine.replyCalls[0]!.userText).toBe('abcdefghij');
    expect(userTexts(await realStore.load('a'))).toEqual(['abcdefghij']);
  });

  it('marks a message truncated when the engine had to cut it, and records the message as the model read it', async () => {
    engine.truncateMessages = true;

    const outcome: TurnOutcome = await say('a', 'a long message');

    expect(outcome.truncated).toBe(true);
    expect(userTexts(await realStore.load('a'))).toEqual(['a lo …(message cut)']);
    expect(userTexts(await sessions.history('a'))).toEqual(['a lo …(message cut)']);
  });

  it('records an unanswered message as the model reads it: cut to the token cap, like an answered one', async () => {
    engine.truncateMessages = true;

    const outcome = await sessions.handleUnanswered({ channelId: 'a', userName: 'ana', text: 'a long pasted log' });

    expect(outcome.truncated).toBe(true);
    expect(userTexts(await realStore.load('a'))).toEqual(['a lo …(message cut)']);
  });

  it('records a stopped reply with its message as the model read it, not the whole message', async () => {
    engine.truncateMessages = true;
    engine.holdReplies = true;
    const stop = new AbortController();
    const turn = sessions.handleMessage({ channelId: 'a', userName: 'ana', text: 'a long pasted log' }, { stopSignal: stop.signal });
    await until(() => engine.replyCalls.length === 1);

    stop.abort();

    expect(await turn).toMatchObject({ stopped: true, truncated: true, saved: true });
    expect(userTexts(await realStore.load('a'))).toEqual(['a lo …(message cut)']);
  });

  it('does not mark a message that fits as truncated', async () => {
    setUp({ messageMaxChars: 10 });

    expect((await say('a', 'abcdefghij')).truncated).toBe(false);
  });

  it('gives back the reply place of a message whose sentiment call fails, so the channel goes on', async () => {
    engine.failNextClassify = 1;

    await expect(say('a', 'first')).rejects.toThrow('the classifier broke');

    expect(queue.pending('reply')).toBe(0);
    expect(await say('a', 'second')).toMatchObject({ reply: 'reply to second', saved: true });
  });

  it('keeps a message the model server could not take (down at its sentiment call) as context, and the next reply sees it', async () => {
    engine.serverDown = true;
    await expect(say('a', 'my cat is called Tom')).rejects.toBeInstanceOf(ModelUnavailableError);
    expect(await realStore.load('a')).toEqual([{ userName: 'ana', userText: 'my cat is called Tom', at: expect.any(Number) }]);
    engine.serverDown = false;
    await say('a', 'what is my cat called?');
    expect(userTexts(engine.replyCalls[0]!.turns)).toEqual(['my cat is called Tom']);
  });

  it('keeps the message, not the cut reply, when the model server dies mid-reply', async () => {
    engine.dieMidReply = true;
    const streamed: string[] = [];
    await expect(sessions.handleMessage({ channelId: 'a', userName: 'ana', text: 'tell me a story' }, { onText: (piece) => streamed.push(piece) })).rejects.toBeInstanceOf(ModelUnavailableError);
    expect(streamed.join('')).toBe(engine.partialText);
    expect(await realStore.load('a')).toEqual([{ userName: 'ana', userText: 'tell me a story', at: expect.any(Number) }]);
    const outcome = await say('a', 'again please');
    expect(outcome.reply).toBe('reply to again please');
  });

  it('keeps unsaved turns in the history when a channel is loaded again from the store', async () => {
    setUp({ cachedChannels: 1 });
    store.failNextAppends = 1;
    expect((await say('a', 'one')).saved).toBe(false);
    await say('b', 'elsewhere'); // the one cached channel is now b: a is read from the store again

    await say('a', 'two');

    expect(userTexts(engine.replyCalls.at(-1)!.turns)).toEqual(['one']);
    expect(userTexts(await realStore.load('a'))).toEqual(['one', 'two']);
  });

  it('keeps at most cachedChannels histories in memory: a channel pushed out is read from the store again', async () => {
    setUp({ cachedChannels: 1 });
    await say('a', 'one');
    await realStore.append('a', { userName: 'bo', userText: 'written by another process', reply: 'ok', at: 1 });

    expect(userTexts(await sessions.history('a'))).toEqual(['one']);
    await say('b', 'elsewhere');

    expect(userTexts(await sessions.history('a'))).toEqual(['one', 'written by another process']);
  });

  it("keeps at most the store's maxTurns in memory, so the history is the same before and after a restart", async () => {
    const small = await KeyvHistoryStore.open({ url: `sqlite://${join(dirs.make(), 'small.sqlite')}`, maxTurns: 3 });
    const capped = new ChannelSessions({ engine, queue, store: small });
    try {
      for (const text of ['1', '2', '3', '4', '5']) await capped.handleMessage({ channelId: 'a', userName: 'ana', text });

      expect(userTexts(await capped.history('a'))).toEqual(['3', '4', '5']);
      expect(userTexts(engine.replyCalls.at(-1)!.turns)).toEqual(['2', '3', '4']);
      const restarted = new ChannelSessions({ engine, queue: new GenerationQueue(), store: small });
      expect(await restarted.history('a')).toEqual(await capped.history('a'));
    } finally {
      await small.dispose();
    }
  });

  it('does not bring erased history back when a reset lands while a cold channel loads it from the store', async () => {
    await realStore.append('a', { userName: 'ana', userText: 'secret from before the reset', reply: 'ok', at: 1 });

    const loading = sessions.history('a'); // cold: reads the store
    await sessions.reset('a');
    await loading;
    await say('a', 'after');

    expect(userTexts(engine.replyCalls[0]!.turns)).toEqual([]);
    expect(userTexts(await sessions.history('a'))).toEqual(['after']);
    expect(userTexts(await realStore.load('a'))).toEqual(['after']);
  });

  it('does not write kept turns back when a reset lands while they are being retried (SQLite busy)', async () => {
    store.failNextAppends = 1;
    expect((await say('a', 'one')).saved).toBe(false);
    const lock = await lockFile(storeFile);
    const two = say('a', 'two');
    await until(() => store.attempts.length === 2); // 'one' is retried, waiting for the lock

    const reset = sessions.reset('a');
    await lock.release();
    await Promise.all([two, reset]);

    expect(await realStore.load('a')).toEqual([]);
    expect(await sessions.history('a')).toEqual([]);
    expect(store.attempts).toEqual(['one', 'one']);
  });

  it('writes a turn once when close() comes while that turn is being written (SQLite busy)', async () => {
    const lock = await lockFile(storeFile);
    const outcome = say('a', 'hello');
    await until(() => store.attempts.length === 1);

    const closing = sessions.close();
    await letEventLoopTurn(20);
    await lock.release();

    expect((await outcome).saved).toBe(true);
    await closing;
    expect(userTexts(await realStore.load('a'))).toEqual(['hello']);
  });
});

describe('ChannelSessions with several replies running at once (PARALLEL_REPLIES)', () => {
  /** A message whose hooks note a waiting notice and keep the Stop switch. */
  const send = (channelId: string, text: string, waited: string[] = [], stop?: AbortController) =>
    sessions.handleMessage({ channelId, userName: 'ana', text }, { onWaiting: () => void waited.push(text), stopSignal: stop?.signal });
  const started = () => engine.replyCalls.map((call) => call.userText);

  it('replies in two channels at once; a third channel waits, is told so, and starts when a slot frees', async () => {
    setUp({ parallelReplies: 2 });
    engine.holdReplies = true;
    const waited: string[] = [];
    const a = send('a', 'a1', waited);
    const b = send('b', 'b1', waited);
    await until(() => engine.replyCalls.length === 2);
    const c = send('c', 'c1', waited);
    await letEventLoopTurn(20);

    expect(started()).toEqual(['a1', 'b1']);
    expect(engine.replying).toBe(2);
    expect(queue.running('reply')).toBe(2);
    expect(waited).toEqual(['c1']);

    engine.releaseReply('b');
    expect((await b).reply).toBe(FakeEngine.replyTo('b1'));
    await until(() => engine.replyCalls.length === 3);
    expect(started()).toEqual(['a1', 'b1', 'c1']);
    engine.releaseReplies();
    await Promise.all([a, c]);

    expect(engine.mostReplyingAtOnce).toBe(2);
    for (const channel of ['a', 'b', 'c']) expect(userTexts(await realStore.load(channel))).toEqual([`${channel}1`]);
  });

  it('never runs two replies of one channel at once, keeps their order, and tells the second it waits though slots are free', async () => {
    setUp({ parallelReplies: 3 });
    engine.holdReplies = true;
    const waited: string[] = [];
    const a1 = send('a', 'a1', waited);
    const a2 = send('a', 'a2', waited);
    const b1 = send('b', 'b1', waited);
    await until(() => engine.replyCalls.length === 2);
    await letEventLoopTurn(20);

    expect(started()).toEqual(['a1', 'b1']);
    expect(waited).toEqual(['a2']);

    engine.releaseReply('a');
    await a1;
    await until(() => engine.replyCalls.length === 3);
    expect(started()).toEqual(['a1', 'b1', 'a2']);
    expect(userTexts(engine.replyCalls[2]!.turns)).toEqual(['a1']);
    engine.releaseReplies();
    await Promise.all([a2, b1]);
    expect(userTexts(await realStore.load('a'))).toEqual(['a1', 'a2']);
    expect(userTexts(await realStore.load('b'))).toEqual(['b1']);
  });

  it('gives each reply the earlier turns of its own channel only, in order, while channels run side by side', async () => {
    setUp({ parallelReplies: 2 });
    const turns = await Promise.all([send('a', 'a1'), send('b', 'b1'), send('a', 'a2'), send('b', 'b2'), send('a', 'a3')]);

    expect(turns.map((turn) => turn.reply)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3'].map(FakeEngine.replyTo));
    const seen = Object.fromEntries(engine.replyCalls.map((call) => [call.userText, userTexts(call.turns)]));
    expect(seen).toEqual({ a1: [], a2: ['a1'], a3: ['a1', 'a2'], b1: [], b2: ['b1'] });
    expect(userTexts(await realStore.load('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(userTexts(await realStore.load('b'))).toEqual(['b1', 'b2']);
  });

  it('stops one of two running replies: it ends with its text so far, marked, and the other runs to its end', async () => {
    setUp({ parallelReplies: 2 });
    engine.holdReplies = true;
    const stop = new AbortController();
    const stopped = send('a', 'a1', [], stop);
    const other = send('b', 'b1');
    await until(() => engine.replyCalls.length === 2);

    stop.abort();
    const outcome = await stopped;

    expect(outcome).toMatchObject({ reply: `partial${STOPPED_MARKER}`, stopped: true });
    expect(engine.replying).toBe(1);
    engine.releaseReply('b');
    expect((await other).reply).toBe(FakeEngine.replyTo('b1'));
    expect((await realStore.load('a')).map((turn) => turn.reply)).toEqual([`partial${STOPPED_MARKER}`]);
    expect((await realStore.load('b')).map((turn) => turn.reply)).toEqual([FakeEngine.replyTo('b1')]);
  });

  it('drops the reply of a channel reset mid-stream and keeps the one running beside it', async () => {
    setUp({ parallelReplies: 2 });
    engine.holdReplies = true;
    const reset = send('a', 'a1');
    const kept = send('b', 'b1');
    await until(() => engine.replyCalls.length === 2);

    await sessions.reset('a');
    engine.releaseReplies();
    await Promise.all([reset, kept]);

    expect(engine.forgotten).toEqual(['a']);
    expect(await realStore.load('a')).toEqual([]);
    expect(userTexts(await realStore.load('b'))).toEqual(['b1']);
  });

  it('close() aborts every running reply and the waiting one, and leaves no half turn of any of them', async () => {
    setUp({ parallelReplies: 2 });
    await send('a', 'before');
    engine.holdReplies = true;
    const outcomes = Promise.allSettled([send('a', 'a1'), send('b', 'b1'), send('c', 'c1')]);
    await until(() => engine.replyCalls.length === 3);
    await letEventLoopTurn(20);
    expect(engine.replying).toBe(2);

    await sessions.close();

    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(AbortedError);
    }
    expect(engine.replying).toBe(0);
    expect(started()).toEqual(['before', 'a1', 'b1']);
    expect(userTexts(await realStore.load('a'))).toEqual(['before']);
    expect(await realStore.load('b')).toEqual([]);
    expect(await realStore.load('c')).toEqual([]);
  });
});

describe('clampText', () => {
  it('cuts by characters without splitting an emoji', () => {
    expect(clampText('😀😀😀😀', 3)).toEqual({ text: '😀😀😀', truncated: true });
    expect(clampText('😀😀😀', 3)).toEqual({ text: '😀😀😀', truncated: false });
  });
});
