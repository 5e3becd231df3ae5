import { describe, expect, it } from 'vitest';
import { TurnLine } from '../../src/turnLine.js';

/** Whether a promise has settled by the time every queued microtask and a macrotask have run. */
async function settled(promise: Promise<unknown> | undefined): Promise<boolean> {
  let done = false;
  void promise?.then(() => (done = true));
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

describe('TurnLine', () => {
  it('ends an entry that finished early only once every entry before it has ended', async () => {
    const line = new TurnLine();
    const first = line.enter('channel');
    const second = line.enter('channel');
    const third = line.enter('channel');

    second.done();
    third.done();

    expect(await settled(second.ended)).toBe(false);
    expect(await settled(third.previous)).toBe(false);
    expect(await settled(third.ended)).toBe(false);
    expect(await settled(line.tail('channel'))).toBe(false);

    first.done();

    expect(await settled(second.ended)).toBe(true);
    expect(await settled(third.previous)).toBe(true);
    expect(await settled(third.ended)).toBe(true);
    expect(line.tail('channel')).toBeUndefined();
  });

  it('keeps channels apart: an entry waits for its own channel alone', async () => {
    const line = new TurnLine();
    const busy = line.enter('a');
    const other = line.enter('b');

    expect(await settled(other.previous)).toBe(true);
    other.done();
    expect(await settled(other.ended)).toBe(true);
    expect(await settled(busy.ended)).toBe(false);
    expect(line.tail('a')).toBeDefined();
    busy.done();
    expect(await settled(busy.ended)).toBe(true);
  });
});
