// Random fault schedules (fast-check: seeded, shrunk to a minimal counterexample on failure).
// PGA_SIM_RUNS (default 10,000) schedules, split over two files so that `node --test` runs them
// on both cores; PGA_SIM_SEED fixes the seed (default: a fixed seed per file, so runs are replayable).
import { test } from 'node:test';
import { explore } from './property.js';

const runs = Math.ceil(Number(process.env.PGA_SIM_RUNS ?? 10_000) / 2);
const seed = Number(process.env.PGA_SIM_SEED ?? 1);

test(`${runs} random fault schedules (seed ${seed}): S1, S2, S3 at every step, L1 after the faults`, () => {
  const t0 = Date.now();
  const c0 = process.cpuUsage();
  const t = explore(runs, seed);
  const s = (Date.now() - t0) / 1000;
  const cpu = ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(c0));
  console.log(`sim A: ${t.runs} schedules in ${s.toFixed(1)} s wall, ${cpu.toFixed(1)} s CPU (${(t.runs / cpu).toFixed(0)}/CPU-s, ${(t.runs / s).toFixed(0)}/s, ${(t.simMs / 1000 / s).toFixed(0)}× real time); thaw window max ${t.thawWindowMaxMs} ms, ${t.thawAcked} async writes acknowledged in thaw windows; L1 max ${t.l1MaxMs} ms; wipes ${t.wipes}; evictions ${t.evictions}`);
});
