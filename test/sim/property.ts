// The property: under any fault schedule, S1, S2, S3 at every step and L1 after the faults stop.
// A failure prints fast-check's seed and path, the shrunk schedule as a literal and the step trace
// of its replay (time, member, decision reason → actions).
import fc from 'fast-check';
import { World, Violation, type Stats } from './world.js';
import { scheduleArb, type Schedule } from './faults.js';

export const HORIZON_MS = 20_000;
export const MAX_FAULTS = 6;

export interface Totals { runs: number; thawWindowMaxMs: number; thawAcked: number; l1MaxMs: number; wipes: number; evictions: number; simMs: number }

export function runSchedule(s: Schedule): World {
  return new World(s).run();
}

export function explore(numRuns: number, seed: number): Totals {
  const t: Totals = { runs: 0, thawWindowMaxMs: 0, thawAcked: 0, l1MaxMs: 0, wipes: 0, evictions: 0, simMs: 0 };
  const add = (st: Stats, w: World) => {
    t.runs++; t.thawWindowMaxMs = Math.max(t.thawWindowMaxMs, st.thawWindowMaxMs); t.thawAcked += st.thawAcked;
    t.l1MaxMs = Math.max(t.l1MaxMs, st.l1Ms ?? 0); t.wipes += st.wipes; t.evictions += st.evictions; t.simMs += w.T;
  };
  const r = fc.check(fc.property(scheduleArb(3, HORIZON_MS, MAX_FAULTS), (s) => {
    const w = new World(s);
    try { w.run(); } catch (e) { if (e instanceof Violation) return false; throw e; }
    add(w.stats, w);
    return true;
  }), { numRuns, seed });
  if (r.failed) throw new Error(report(r.counterexample![0], r.seed, r.counterexamplePath ?? ''));
  return t;
}

export function report(s: Schedule, seed: number, path: string): string {
  const w = new World(s);
  let why = '';
  try { w.run(); why = 'passed on replay?'; } catch (e) { why = (e as Error).message; }
  return [
    `simulation property failed: ${why}`,
    `fast-check seed ${seed}, path "${path}" (replay: PGA_SIM_SEED=${seed} PGA_SIM_PATH=${path})`,
    `shrunk schedule (faults start after the ${2000} ms warm-up; paste into replay()):`,
    JSON.stringify(s),
    'trace (last steps):',
    w.traceText(150),
  ].join('\n');
}
