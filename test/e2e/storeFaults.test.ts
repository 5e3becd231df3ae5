/**
 * The history store failing or slow under the real discord.js client (a {@link FaultyStore} in
 * front of the SQLite one, through the bot's deps): a message is never dropped silently, and a
 * slash command is answered within Discord's 3 s.
 */
import { describe, expect, it } from 'vitest';
import { SORRY_NOTICE } from '../../src/discord/answerMessage.js';
import { ScriptedEngine, logEntries, repliesTo, whenAnswered } from '../support/botHarness.js';
import { useBotFixture } from '../support/e2eFixture.js';
import { FaultyStore } from '../support/FaultyStore.js';

const fixture = useBotFixture({ tempPrefix: 'bot-store-faults-' });

function faultyStore() {
  let faulty: FaultyStore | undefined;
  return {
    wrapStore: (store: ConstructorParameters<typeof FaultyStore>[0]) => (faulty = new FaultyStore(store)),
    get store(): FaultyStore {
      return faulty!;
    },
  };
}

describe('a failing or slow store', () => {
  it('when the channel settings cannot be read (Redis stopped), reacts and answers in REPLY_MODE, and logs it without the password', async () => {
    const faults = faultyStore();
    const scripted = new ScriptedEngine();
    const { bot, emu, channelId } = await fixture.boot({ engine: scripted, wrapStore: faults.wrapStore });
    faults.store.failing = 'settings';

    const message = emu.sendUserMessage({ channelId, content: 'is anyone there?' });
    await whenAnswered(emu, bot, message.id);

    expect(emu.reactions(channelId, message.id).map((reaction) => reaction.emoji)).toEqual(['😐']);
    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([ScriptedEngine.replyTo('is anyone there?')]);
    expect(logEntries(bot, 'reading the reply mode failed; answering in REPLY_MODE')).toMatchObject([{ level: 'warn', channelId, mode: 'all' }]);
    expect(logEntries(bot, 'reading the persona failed; replying with the default persona')).toMatchObject([{ level: 'warn', channelId }]);
    expect(bot.logs.join('\n')).not.toContain('s3cret-pw');
    expect(bot.logs.join('\n')).toContain('redis://***@127.0.0.1:6379');
  });

  // Without its history the bot would answer as if the channel were new, and could not keep the turn: it says so instead.
  it('when nothing can be read from the store, a message in a channel not seen since start is reacted to and told something went wrong, never dropped', async () => {
    const faults = faultyStore();
    const { bot, emu, channelId } = await fixture.boot({ engine: new ScriptedEngine(), wrapStore: faults.wrapStore });
    faults.store.failing = 'reads';

    const message = emu.sendUserMessage({ channelId, content: 'hello?' });
    await emu.waitFor(() => repliesTo(emu, channelId, message.id)[0]);

    expect(emu.reactions(channelId, message.id).map((reaction) => reaction.emoji)).toEqual(['😐']);
    expect(repliesTo(emu, channelId, message.id).map((reply) => reply.content)).toEqual([SORRY_NOTICE]);
    expect(bot.logs.join('\n')).not.toContain('s3cret-pw');
  });
});
