/**
 * Text attachments through the real discord.js client: the emulator serves the files at their
 * URLs; the bot reads .txt/.md/.csv/.json/.log files up to ATTACHMENT_MAX_KB into the message, and
 * a file it cannot read costs one short line, never the answer.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedEngine, logEntries, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';

const fixture = useBotFixture({ tempPrefix: 'bot-files-' });

describe('text attachments', () => {
  it('reads text files into the message the model sees (and the history keeps); other files are ignored', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted });
    const message = emu.sendUserMessage({
      content: 'what is in these?',
      attachments: [
        { filename: 'notes.md', content: '# Plan\n- buy milk' },
        { filename: 'cat.png', content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0]) },
        { filename: 'DATA.CSV', content: 'a,b\n1,2' },
      ],
    });
    await whenAnswered(emu, bot, message.id);

    const read = 'what is in these?\n\n[file notes.md]\n# Plan\n- buy milk\n\n[file DATA.CSV]\na,b\n1,2';
    expect(scripted.replied).toEqual([read]);
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual([read]);
    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo(read)]);
    expect(emu.requests.filter((request) => request.path.startsWith('/attachments/')).map((request) => request.path.split('/').at(-1))).toEqual(['notes.md', 'DATA.CSV']);
  });

  it('answers a message whose only content is a text file', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu } = await fixture.boot({ engine: scripted });
    const message = emu.sendUserMessage({ content: '', attachments: [{ filename: 'error.log', content: 'TypeError: x is undefined' }] });
    await whenAnswered(emu, bot, message.id);
    expect(scripted.replied).toEqual(['\n\n[file error.log]\nTypeError: x is undefined']);
  });

  it.each([
    ['times out', { delayMs: 2000 }],
    ['fails (HTTP 404)', { status: 404 }],
    ['holds binary under a text name', { content: Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0xff, 0xfe]) }],
    ['is larger than ATTACHMENT_MAX_KB', { content: 'x'.repeat(2 * 1024 + 1) }],
    ['turns out larger than ATTACHMENT_MAX_KB though Discord reports it small', { content: 'x'.repeat(2 * 1024 + 1), size: 100 }],
  ])('when a file %s, says so in one short line and answers the message without it', async (_, file) => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted, attachmentTimeoutMs: 300, env: { ATTACHMENT_MAX_KB: '2' } });
    const message = emu.sendUserMessage({
      content: 'please read this',
      attachments: [{ filename: 'report.txt', content: 'unused', ...file }, { filename: 'ok.json', content: '{"ok":true}' }],
    });
    await whenAnswered(emu, bot, message.id);

    const replies = repliesTo(emu, channelId, message.id).map((reply) => reply.content);
    expect(replies).toEqual([
      'I could not read `report.txt` (text files up to 2 KB only); answering without it.',
      ScriptedEngine.replyTo('please read this\n\n[file ok.json]\n{"ok":true}'),
    ]);
    expect(scripted.replied).toEqual(['please read this\n\n[file ok.json]\n{"ok":true}']);
  });

  it('answers and stores a message whose file takes 800 ms before a plain one sent 50 ms after it', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted });
    const slow = emu.sendUserMessage({ content: 'first, with a file', attachments: [{ filename: 'slow.txt', content: 'the slow file', delayMs: 800 }] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const plain = emu.sendUserMessage({ content: 'second, plain' });
    await whenAnswered(emu, bot, slow.id);
    await whenAnswered(emu, bot, plain.id);

    const read = ['first, with a file\n\n[file slow.txt]\nthe slow file', 'second, plain'];
    expect(scripted.replied).toEqual(read);
    expect((await bot.store.load(channelId)).map((turn) => turn.userText)).toEqual(read);
    expect(scripted.historySeen[1]).toEqual([read[0]]);
  });

  it('answers a message whose only content is a file it cannot read with the one short line, and nothing else', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted, env: { ATTACHMENT_MAX_KB: '2' } });
    const message = emu.sendUserMessage({ content: '', attachments: [{ filename: 'big.txt', content: 'x'.repeat(3 * 1024) }] });
    await emu.waitFor(() => logEntries(bot, 'message not answered').length === 1, { timeoutMs: 10_000, description: 'the message given up' });

    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual(['I could not read `big.txt` (text files up to 2 KB only); answering without it.']);
    expect(scripted.replied).toEqual([]);
    expect(await bot.store.load(channelId)).toEqual([]);
    expect(bot.queue.pending('reply') + bot.queue.pending('sentiment')).toBe(0);
  });

  it('does not even fetch a file Discord reports larger than ATTACHMENT_MAX_KB', async () => {
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted, env: { ATTACHMENT_MAX_KB: '2' } });
    const message = emu.sendUserMessage({ content: 'read this', attachments: [{ filename: 'big.txt', content: 'small after all', size: 2 * 1024 + 1 }] });
    await whenAnswered(emu, bot, message.id);

    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([
      'I could not read `big.txt` (text files up to 2 KB only); answering without it.',
      ScriptedEngine.replyTo('read this'),
    ]);
    expect(emu.requests.filter((request) => request.path.startsWith('/attachments/'))).toEqual([]);
  });
});
