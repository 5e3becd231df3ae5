import type { HistoryTurn } from '../domain.js';

/**
 * Where the prompt's history starts, given where it started last time (`from`). Between cuts the
 * window only grows at its end, so the cached tokens stay reusable and the library's per-turn
 * context shift never runs; once the window exceeds the budget it is cut to half the budget in
 * one step. A cut never drops the newest turns that fit the whole budget: when even the newest
 * turn takes more than half of it, the window keeps the newest turns that fit the budget.
 */
export function windowStart(turns: readonly HistoryTurn[], from: number, budget: number, tokensOf: (turn: HistoryTurn) => number): number {
  let total = 0;
  for (let i = from; i < turns.length; i++) total += tokensOf(turns[i]!);
  if (total <= budget) return from;
  let start = from;
  while (start < turns.length && total > budget / 2) total -= tokensOf(turns[start++]!);
  if (start < turns.length) return start;
  total = 0;
  while (start > 0 && total + tokensOf(turns[start - 1]!) <= budget) total += tokensOf(turns[--start]!);
  return start;
}
