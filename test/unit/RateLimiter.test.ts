import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/sessions/RateLimiter.js';

describe('RateLimiter', () => {
  it('allows the limit per window, notifies once, then allows again after the window', () => {
    let now = 0;
    const limiter = new RateLimiter({ limit: 3, windowMs: 10_000, now: () => now });
    expect([1, 2, 3].map(() => limiter.check('ann'))).toEqual(['allowed', 'allowed', 'allowed']);
    expect(limiter.check('ann')).toBe('limited');
    expect(limiter.check('ann')).toBe('limited-notified');
    expect(limiter.check('bob')).toBe('allowed');
    now = 10_001;
    expect(limiter.check('ann')).toBe('allowed');
  });

  it('is off with a limit of 0', () => {
    const limiter = new RateLimiter({ limit: 0, windowMs: 1000 });
    expect(Array.from({ length: 50 }, () => limiter.check('ann')).every((d) => d === 'allowed')).toBe(true);
  });

  it('prunes users with no recent messages, keeping those still in their window', () => {
    let now = 0;
    const limiter = new RateLimiter({ limit: 1, windowMs: 100, now: () => now });
    limiter.check('ann');
    expect(limiter.check('ann')).toBe('limited');
    now = 60;
    limiter.check('bob');
    expect(limiter.size).toBe(2);
    now = 120;
    limiter.prune();
    expect(limiter.size).toBe(1); // ann's hit is out of the window, bob's is not
    expect(limiter.check('bob')).toBe('limited');
    expect(limiter.check('ann')).toBe('allowed');
    now = 1000;
    limiter.prune();
    expect(limiter.size).toBe(0);
  });
});
