import { describe, expect, it } from 'vitest';
import { replySpeakers } from '../../src/engine/ChatReplies.js';
import { stripSpeakerPrefix } from '../../src/engine/speakerPrefix.js';
import { RecentSpeakers } from '../../src/discord/RecentSpeakers.js';

describe('RecentSpeakers', () => {
  it('keeps the names seen per server, most recent last, and never another server\'s', () => {
    const speakers = new RecentSpeakers();
    speakers.seen('guild-a', 'ana');
    speakers.seen('guild-b', 'bo');
    speakers.seen('guild-a', 'cy');
    speakers.seen('guild-a', 'ana');

    expect(speakers.in('guild-a')).toEqual(['cy', 'ana']);
    expect(speakers.in('guild-b')).toEqual(['bo']);
    expect(speakers.in('guild-c')).toEqual([]);
  });

  it('is bounded: the least recent name of a server, and the least recently active server, go first', () => {
    const speakers = new RecentSpeakers({ namesPerPlace: 3, places: 2 });
    for (const name of ['a', 'b', 'c', 'd']) speakers.seen('one', name);
    speakers.seen('two', 'x');
    speakers.seen('one', 'e');
    speakers.seen('three', 'y');

    expect(speakers.in('one')).toEqual(['c', 'd', 'e']);
    expect(speakers.in('two')).toEqual([]);
    expect(speakers.in('three')).toEqual(['y']);
  });
});

describe('the names a reply may not open with', () => {
  it('strips the name of someone seen in the server but not in the prompt, and still keeps "Warning:" and "Step 1:"', () => {
    const inPrompt = replySpeakers({ userName: 'person1', window: [], botName: 'mood-bot' });
    const withServer = replySpeakers({ userName: 'person1', window: [], otherNames: ['person2', 'Zoë: the admin'], botName: 'mood-bot' });

    expect(stripSpeakerPrefix("person2: My cat's name is Fluffy.", inPrompt)).toBe("person2: My cat's name is Fluffy.");
    expect(stripSpeakerPrefix("person2: My cat's name is Fluffy.", withServer)).toBe("My cat's name is Fluffy.");
    expect(stripSpeakerPrefix('Zoë the admin: hello', withServer)).toBe('hello');
    expect(stripSpeakerPrefix('Warning: the oven is hot.', withServer)).toBe('Warning: the oven is hot.');
    expect(stripSpeakerPrefix('Step 1: preheat the oven.', withServer)).toBe('Step 1: preheat the oven.');
  });
});
