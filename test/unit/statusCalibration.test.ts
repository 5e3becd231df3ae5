// /status's calibration line: which correction labels the reactions now, and how far learning is.
import { describe, expect, it } from 'vitest';
import { calibrationLine } from '../../commands/status.js';

describe('/status calibration line', () => {
  it('names the learned fit when it is in use', () => {
    expect(calibrationLine({ inUse: 'learned' })).toBe('learned for this model');
  });

  it('names the fallback and how far learning is, with the time left at the pace so far', () => {
    expect(calibrationLine({ inUse: 'raw', learning: { done: 0, total: 300 } })).toBe('raw probabilities (learning the calibration for this model: 0/300)');
    expect(calibrationLine({ inUse: 'raw', learning: { done: 120, total: 300, msLeft: 185_000 } })).toBe('raw probabilities (learning the calibration for this model: 120/300, about 3 min left)');
    expect(calibrationLine({ inUse: 'raw', learning: { done: 290, total: 300, msLeft: 9_200 } })).toBe('raw probabilities (learning the calibration for this model: 290/300, about 10 s left)');
  });
});
