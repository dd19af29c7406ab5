// When the loop looks again. Pure: the shell (and the simulation) sleep for what this returns.
import type { Memory, Settings } from './types.js';

/** How soon a failed lease write of a primary is tried again (its deadline is running). */
export const RETRY_MS = 200;

/**
 * Milliseconds until the next tick. A primary's renewal is due `renewMs` after its last confirmed
 * one, and the tick is placed there: ticking on the loop alone let a renewal land a few ms short of
 * due, slip a whole loop, and eat into the margin that carries a primary through an API outage. A
 * primary whose last lease write failed (or whose renewal is overdue) tries again after RETRY_MS.
 */
export function nextTickInMs(m: Memory, s: Pick<Settings, 'renewMs'>, loopMs: number, nowMs: number): number {
  if (m.confirmedAtMs === null) return loopMs;
  if (m.leaseWriteFailed) return Math.min(loopMs, RETRY_MS);
  const due = m.confirmedAtMs + s.renewMs - nowMs;
  if (due <= 0) return Math.min(loopMs, RETRY_MS);
  return Math.min(loopMs, Math.ceil(due));
}
