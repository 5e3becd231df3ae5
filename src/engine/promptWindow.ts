import type { HistoryTurn } from '../domain.js';

/**
 * The history turns of the prompt, given where the window started last time (`from`). Between cuts
 * the window only grows at its end, so the cached tokens stay reusable and the library's per-turn
 * context shift never runs; once the window exceeds the budget it is cut to half the budget in one
 * step. A turn too large for the whole budget on its own is skipped, never a reason to stop: the
 * turns before and after it stay. A cut never drops the newest turns that fit: when the newest turn
 * takes more than half the budget, the window keeps the newest turns that fit the whole budget.
 * `start` is the window's first turn, kept by the caller as the next `from`.
 */
export function windowTurns(
  turns: readonly HistoryTurn[],
  from: number,
  budget: number,
  tokensOf: (turn: HistoryTurn) => number,
): { start: number; turns: readonly HistoryTurn[] } {
  const fits = (turn: HistoryTurn) => tokensOf(turn) <= budget;
  // A skipped turn takes no room.
  const room = (turn: HistoryTurn) => (fits(turn) ? tokensOf(turn) : 0);
  let total = 0;
  for (let i = from; i < turns.length; i++) total += room(turns[i]!);
  let start = from;
  if (total > budget) {
    while (start < turns.length && total > budget / 2) total -= room(turns[start++]!);
    if (!turns.slice(start).some(fits)) {
      total = 0;
      while (start > 0 && total + room(turns[start - 1]!) <= budget) total += room(turns[--start]!);
    }
  }
  return { start, turns: turns.slice(start).filter(fits) };
}
