// Figures of one e2e step from the writer's log (test/e2e/writer.mjs):
//   node test/e2e/figures.mjs LOG FROM_MS TO_MS [IDS_FILE]
// prints one JSON object: attempts, acknowledged writes, failed attempts, the write
// unavailability (the longest time between two acknowledged writes within the step, and the sum
// of those gaps over 250 ms), and, given IDS_FILE (the ids the primary holds, one per line), the
// acknowledged ids that are missing from it ("lost").
import { readFileSync } from 'node:fs';

const [log, fromArg, toArg, idsFile] = process.argv.slice(2);
if (!log || !fromArg || !toArg) { console.error('usage: figures.mjs LOG FROM_MS TO_MS [IDS_FILE]'); process.exit(2); }
const from = Number(fromArg), to = Number(toArg);
const rows = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [t, kind, id] = l.split(' ');
  return { t: Number(t), ok: kind === 'ok', id: Number(id) };
});
const inStep = rows.filter((r) => r.t >= from && r.t <= to);
const oks = rows.filter((r) => r.ok);
// The last acknowledged write before the step starts the first gap.
let prev = oks.filter((r) => r.t < from).at(-1)?.t ?? from;
let longest = 0, over = 0;
for (const r of inStep.filter((r) => r.ok)) {
  const gap = r.t - prev; longest = Math.max(longest, gap); if (gap > 250) over += gap; prev = r.t;
}
const tail = to - prev; longest = Math.max(longest, tail); if (tail > 250) over += tail;
const out = {
  attempts: inStep.length,
  acknowledged: inStep.filter((r) => r.ok).length,
  failed: inStep.filter((r) => !r.ok).length,
  longestGapMs: longest,
  unavailableMs: over,
};
if (idsFile) {
  const held = new Set(readFileSync(idsFile, 'utf8').split('\n').filter(Boolean).map(Number));
  const lost = oks.filter((r) => r.t <= to && !held.has(r.id)).map((r) => r.id);
  out.acknowledgedTotal = oks.filter((r) => r.t <= to).length;
  out.lost = lost.length;
  if (lost.length) out.lostIds = lost.slice(0, 20);
}
console.log(JSON.stringify(out));
