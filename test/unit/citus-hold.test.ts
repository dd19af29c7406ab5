// The switchover hold (scripts/core/citus.ts decideHold): when the coordinator holds a worker
// group's distributed queries, when it re-points and releases, and when it gives up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideHold, type CitusGroupView, type DistNode, type HoldObservation } from '../../scripts/core/citus.js';

const LEASE = 10_000;
const rows: DistNode[] = [
  { nodeId: 1, groupId: 0, host: '10.0.0.1', port: 5432, role: 'primary', isActive: true },
  { nodeId: 2, groupId: 1, host: '10.0.1.1', port: 5432, role: 'primary', isActive: true },
];
const g1 = (holder: string, host: string, o: { switchoverTo?: string | null; primary?: boolean; unchangedForMs?: number } = {}): CitusGroupView => ({
  groupId: 1, name: 'w1', holderAddress: { host, port: 5432 }, holderPrimary: o.primary ?? true,
  lease: { holder, unchangedForMs: o.unchangedForMs ?? 500, durationMs: LEASE, problems: [], switchoverTo: o.switchoverTo ?? null },
});
const holding = (forMs: number) => ({ groupId: 1, nodeId: 2, from: { host: '10.0.1.1', port: 5432 }, forMs });
const obs = (o: Partial<HoldObservation>): HoldObservation => ({ leaseMs: LEASE, coordinatorPrimary: true, nodes: rows, workers: [], holding: null, maxHoldMs: 30_000, spent: [], ...o });

test('hold: a switchover asked for on a worker group holds its queries, on the row that points at the holder', () => {
  const d = decideHold(obs({ workers: [g1('w1-0', '10.0.1.1', { switchoverTo: 'w1-1' })] }));
  assert.equal(d.type, 'hold');
  assert.deepEqual(d.type === 'hold' && [d.groupId, d.nodeId], [1, 2]);
  assert.match(d.reason, /switchover from w1-0 to w1-1 was asked for: holding/);
});

test('hold: nothing without a switchover, on a replica of the coordinator, on an expired Lease, on a spent group, or when the row is already elsewhere', () => {
  assert.equal(decideHold(obs({ workers: [g1('w1-0', '10.0.1.1')] })).type, 'none');
  assert.equal(decideHold(obs({ coordinatorPrimary: false, workers: [g1('w1-0', '10.0.1.1', { switchoverTo: '*' })] })).type, 'none');
  assert.equal(decideHold(obs({ workers: [g1('w1-0', '10.0.1.1', { switchoverTo: '*', unchangedForMs: LEASE })] })).type, 'none');
  assert.equal(decideHold(obs({ spent: [1], workers: [g1('w1-0', '10.0.1.1', { switchoverTo: '*' })] })).type, 'none');
  assert.equal(decideHold(obs({ workers: [g1('w1-1', '10.0.1.2', { switchoverTo: '*' })] })).type, 'none');
});

test('hold: kept while the new holder is not yet a writable primary; re-pointed and released once it is', () => {
  assert.equal(decideHold(obs({ holding: holding(300), workers: [g1('w1-0', '10.0.1.1', { switchoverTo: 'w1-1' })] })).type, 'keep');
  assert.equal(decideHold(obs({ holding: holding(300), workers: [g1('w1-1', '10.0.1.2', { primary: false })] })).type, 'keep');
  const d = decideHold(obs({ holding: holding(800), workers: [g1('w1-1', '10.0.1.2')] }));
  assert.equal(d.type, 'release');
  assert.deepEqual(d.type === 'release' && d.to, { host: '10.0.1.2', port: 5432 });
  assert.match(d.reason, /new primary w1-1 at 10.0.1.2:5432 is writable: re-pointing node 2 and releasing its queries after 800 ms/);
});

test('hold: released without a move after switchoverHoldMs, when the switchover ends where it began, or when we stop being the coordinator primary', () => {
  const late = decideHold(obs({ holding: holding(30_000), workers: [g1('w1-0', '10.0.1.1', { switchoverTo: 'w1-1' })] }));
  assert.deepEqual([late.type, late.type === 'release' && late.to], ['release', null]);
  assert.match(late.reason, /did not complete within 30000 ms/);
  const refused = decideHold(obs({ holding: holding(100), workers: [g1('w1-0', '10.0.1.1')] }));
  assert.deepEqual([refused.type, refused.type === 'release' && refused.to], ['release', null]);
  const deposed = decideHold(obs({ coordinatorPrimary: false, holding: holding(100), workers: [g1('w1-1', '10.0.1.2')] }));
  assert.deepEqual([deposed.type, deposed.type === 'release' && deposed.to], ['release', null]);
  // a Lease expired mid-hold (the new holder died): kept until the limit, never re-pointed on a guess
  const expired = decideHold(obs({ holding: holding(5_000), workers: [g1('w1-1', '10.0.1.2', { unchangedForMs: LEASE })] }));
  assert.equal(expired.type, 'keep');
});

test('hold: a worker primary announcing a hand-off (SIGTERM, rolling update: no switchover on the Lease) is held too, and released without a move when the announcement goes', async () => {
  const d = decideHold(obs({ workers: [{ ...g1('w1-0', '10.0.1.1'), holderHandingOff: true }] }));
  assert.equal(d.type, 'hold');
  assert.match(d.reason, /its primary w1-0 is handing the group over: holding/);
  assert.equal(decideHold(obs({ holding: holding(200), workers: [{ ...g1('w1-0', '10.0.1.1'), holderHandingOff: true }] })).type, 'keep');
  assert.equal(decideHold(obs({ holding: holding(200), workers: [g1('w1-0', '10.0.1.1')] })).type, 'release');
});

test('hand-off of a Citus worker: stops once held, or when its budget is spent (said so), else waits', async () => {
  const { handoffMayStop } = await import('../../scripts/core/citus.js');
  assert.deepEqual(handoffMayStop({ held: false, waitedMs: 100, budgetMs: 2_000 }).stop, false);
  const held = handoffMayStop({ held: true, waitedMs: 120, budgetMs: 2_000 });
  assert.equal(held.stop, true);
  assert.match(held.reason, /the coordinator holds this group's queries \(after 120 ms\)/);
  const late = handoffMayStop({ held: false, waitedMs: 2_000, budgetMs: 2_000 });
  assert.equal(late.stop, true);
  assert.match(late.reason, /did not hold this group's queries within 2000 ms .* stopping postgres anyway/);
});
