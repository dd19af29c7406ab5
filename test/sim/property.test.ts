// Random fault schedules (fast-check: seeded, shrunk to a minimal counterexample on failure).
// PGA_SIM_RUNS (default 10,000) schedules, split evenly over the shards below, which run at once in
// worker threads so that one file keeps both cores busy. PGA_SIM_SEED fixes the base seed (default
// 1); each shard adds its own offset, so runs are replayable and the shards explore different
// schedules.
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Totals } from './property.js';

const SHARDS = [
  { name: 'A', seedOffset: 0 },
  { name: 'B', seedOffset: 1_000_003 },
] as const;

const runs = Math.ceil(Number(process.env.PGA_SIM_RUNS ?? 10_000) / SHARDS.length);
const baseSeed = Number(process.env.PGA_SIM_SEED ?? 1);

/** explore(runs, seed) on a worker thread (explore-worker.ts); a failure's report is the error. */
function exploreInWorker(n: number, seed: number): Promise<Totals> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./explore-worker.js', import.meta.url), { workerData: { runs: n, seed } });
    w.once('message', (t: Totals) => resolve(t));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`the simulation worker for seed ${seed} exited (code ${code}) without reporting its totals`)));
  });
}

const line = (t: Totals) =>
  `thaw window max ${t.thawWindowMaxMs} ms, ${t.thawAcked} async writes acknowledged in thaw windows; L1 max ${t.l1MaxMs} ms; wipes ${t.wipes}; evictions ${t.evictions}`;

describe(`${runs * SHARDS.length} random fault schedules in ${SHARDS.length} shards`, { concurrency: SHARDS.length }, () => {
  const t0 = Date.now();
  const c0 = process.cpuUsage();
  const done: Totals[] = [];

  for (const shard of SHARDS) {
    const seed = baseSeed + shard.seedOffset;
    test(`shard ${shard.name}: ${runs} random fault schedules (seed ${seed}): S1, S2, S3 at every step, L1 after the faults`, async () => {
      const s0 = Date.now();
      const t = await exploreInWorker(runs, seed);
      const s = (Date.now() - s0) / 1000;
      done.push(t);
      console.log(`sim ${shard.name}: ${t.runs} schedules in ${s.toFixed(1)} s wall (${(t.runs / s).toFixed(0)}/s, ${(t.simMs / 1000 / s).toFixed(0)}× real time); ${line(t)}`);
    });
  }

  // CPU for all shards together: a worker thread's own CPU time is not measurable on Node 20.
  after(() => {
    if (done.length !== SHARDS.length) return;
    const s = (Date.now() - t0) / 1000;
    const cpu = ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(c0));
    const n = done.reduce((a, t) => a + t.runs, 0);
    const simMs = done.reduce((a, t) => a + t.simMs, 0);
    console.log(`sim total: ${n} schedules in ${s.toFixed(1)} s wall, ${cpu.toFixed(1)} s CPU (${(n / cpu).toFixed(0)}/CPU-s, ${(n / s).toFixed(0)}/s, ${(simMs / 1000 / s).toFixed(0)}× real time)`);
  });
});
