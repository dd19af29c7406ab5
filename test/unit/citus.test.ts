// The Citus registry step (scripts/core/citus.ts): a table of situations, then properties over
// random ones (fast-check): only a coordinator primary acts, never on a group whose Lease is not
// valid, never removes a row, and applying the steps converges to the Leases in a few loops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideCitus, groupBlocked, rebalanceMode, type CitusAction, type CitusGroupView, type CitusObservation, type DistNode } from '../../scripts/core/citus.js';

const LEASE = 10_000;
const self = { host: '10.0.0.1', port: 5432 };
const coordRow: DistNode = { nodeId: 1, groupId: 0, host: self.host, port: 5432, role: 'primary', isActive: true };
const worker = (groupId: number, holder: string | null, host: string | null, o: Partial<CitusGroupView> = {}): CitusGroupView => ({
  groupId, name: `pg-worker-${groupId}`,
  lease: { holder, unchangedForMs: 1_000, durationMs: LEASE, problems: [] },
  holderAddress: host === null ? null : { host, port: 5432 }, ...o,
});
const row = (nodeId: number, groupId: number, host: string, o: Partial<DistNode> = {}): DistNode => ({ nodeId, groupId, host, port: 5432, role: 'primary', isActive: true, ...o });
const obs = (o: Partial<CitusObservation> = {}): CitusObservation => ({
  leaseMs: LEASE, coordinatorPrimary: true, self, extension: true, nodes: [coordRow], workers: [], ...o,
});

interface Row { name: string; o: CitusObservation; want: CitusAction | null; reason: RegExp; waiting?: RegExp }
const rows: Row[] = [
  { name: 'a replica of the coordinator group does nothing', o: obs({ coordinatorPrimary: false, extension: false, nodes: [] }), want: null, reason: /not the coordinator primary/ },
  { name: 'no extension yet: create it first', o: obs({ extension: false, nodes: null, workers: [worker(1, 'w1-0', '10.0.1.1')] }), want: { type: 'create_extension' }, reason: /does not exist/ },
  { name: 'extension unknown: wait', o: obs({ extension: null }), want: null, reason: /cannot tell/ },
  { name: 'pg_dist_node unreadable: wait', o: obs({ nodes: null }), want: null, reason: /cannot read pg_dist_node/ },
  { name: 'coordinator not registered: register ourselves as group 0', o: obs({ nodes: [], workers: [worker(1, 'w1-0', '10.0.1.1')] }), want: { type: 'set_coordinator', ...self }, reason: /not registered/ },
  { name: 'after a coordinator failover: group 0 moves to us', o: obs({ nodes: [row(1, 0, '10.0.0.2')] }), want: { type: 'set_coordinator', ...self }, reason: /former coordinator/ },
  { name: 'a worker group not registered: add it with its own group id', o: obs({ workers: [worker(1, 'w1-0', '10.0.1.1')] }), want: { type: 'add_node', groupId: 1, host: '10.0.1.1', port: 5432 }, reason: /not registered: adding its primary w1-0/ },
  { name: 'after a worker failover: re-point the row', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-1', '10.0.1.2')] }), want: { type: 'update_node', nodeId: 2, groupId: 1, host: '10.0.1.2', port: 5432 }, reason: /points at 10.0.1.1:5432, but its Lease is held by w1-1/ },
  { name: 'a repair goes before an addition', o: obs({ nodes: [coordRow, row(3, 2, '10.0.2.1')], workers: [worker(1, 'w1-0', '10.0.1.1'), worker(2, 'w2-1', '10.0.2.2')] }), want: { type: 'update_node', nodeId: 3, groupId: 2, host: '10.0.2.2', port: 5432 }, reason: /re-pointing node 3/ },
  { name: 'after a worker failover, the new holder still promoting: wait for it', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-1', '10.0.1.2', { holderPrimary: false })] }), want: null, reason: /waiting/, waiting: /w1-1 at 10.0.1.2:5432 is not writable yet/ },
  { name: 'after a worker failover, the new holder writable: re-point', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-1', '10.0.1.2', { holderPrimary: true })] }), want: { type: 'update_node', nodeId: 2, groupId: 1, host: '10.0.1.2', port: 5432 }, reason: /re-pointing node 2/ },
  { name: 'in step: nothing', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-0', '10.0.1.1')] }), want: null, reason: /matches every worker group/ },
  { name: 'an expired worker Lease: the row stays, said so', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-1', '10.0.1.2', { lease: { holder: 'w1-1', unchangedForMs: LEASE, durationMs: LEASE, problems: [] } })] }), want: null, reason: /1 group\(s\) waiting/, waiting: /expired/ },
  { name: 'a longer duration written by the holder counts', o: obs({ workers: [worker(1, 'w1-0', '10.0.1.1', { lease: { holder: 'w1-0', unchangedForMs: 15_000, durationMs: 20_000, problems: [] } })] }), want: { type: 'add_node', groupId: 1, host: '10.0.1.1', port: 5432 }, reason: /adding/ },
  { name: 'an unreadable worker Lease: unknown, left alone', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-1', '10.0.1.2', { lease: undefined })] }), want: null, reason: /waiting/, waiting: /could not be read/ },
  { name: 'no Lease yet', o: obs({ workers: [worker(1, null, null, { lease: null })] }), want: null, reason: /waiting/, waiting: /no Lease yet/ },
  { name: 'an invalid Lease', o: obs({ workers: [worker(1, 'w1-0', '10.0.1.1', { lease: { holder: 'w1-0', unchangedForMs: 0, durationMs: LEASE, problems: ['hand edit'] } })] }), want: null, reason: /waiting/, waiting: /invalid \(hand edit\)/ },
  { name: 'a released Lease (no holder)', o: obs({ workers: [worker(1, null, null)] }), want: null, reason: /waiting/, waiting: /no holder/ },
  { name: 'holder address unknown', o: obs({ workers: [worker(1, 'w1-0', null)] }), want: null, reason: /waiting/, waiting: /address of its primary w1-0 is unknown/ },
  { name: 'two primary rows for one group: no guess', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1'), row(3, 1, '10.0.1.3')], workers: [worker(1, 'w1-1', '10.0.1.2')] }), want: null, reason: /waiting/, waiting: /2 primary rows/ },
  { name: 'an address registered for another group', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.1')], workers: [worker(1, 'w1-0', '10.0.1.1'), worker(2, 'w2-0', '10.0.1.1')] }), want: null, reason: /waiting/, waiting: /registered for group 1/ },
  { name: 'two coordinator rows: no guess, said so', o: obs({ nodes: [coordRow, row(5, 0, '10.0.0.2')] }), want: null, reason: /waiting/, waiting: /coordinator\) has 2 primary rows/ },
  { name: 'a row of an unknown group is reported, never removed', o: obs({ nodes: [coordRow, row(9, 7, '10.0.7.1')], workers: [] }), want: null, reason: /waiting/, waiting: /group 7 .* left alone/ },
  { name: 'secondary rows are not primaries', o: obs({ nodes: [coordRow, row(2, 1, '10.0.1.9', { role: 'secondary' })], workers: [worker(1, 'w1-0', '10.0.1.1')] }), want: { type: 'add_node', groupId: 1, host: '10.0.1.1', port: 5432 }, reason: /adding/ },
  { name: 'group number 0 for a worker is refused', o: obs({ workers: [worker(0, 'x', '10.0.9.9')] }), want: null, reason: /waiting/, waiting: /whole number ≥ 1/ },
];

for (const r of rows) {
  test(`citus: ${r.name}`, () => {
    const d = decideCitus(r.o);
    assert.deepEqual(d.action, r.want);
    assert.match(d.reason, r.reason);
    if (r.waiting) assert.match(d.waiting.join(' | '), r.waiting);
  });
}

// ---- properties ----------------------------------------------------------------------------
const host = fc.constantFrom('10.0.1.1', '10.0.1.2', '10.0.2.1', '10.0.2.2', '10.0.3.1', '10.0.0.2');
const leaseArb = fc.oneof(
  fc.constant(undefined), fc.constant(null),
  fc.record({ holder: fc.option(fc.constantFrom('a', 'b'), { nil: null }), unchangedForMs: fc.integer({ min: 0, max: 30_000 }), durationMs: fc.option(fc.constantFrom(5_000, 10_000, 20_000), { nil: null }), problems: fc.constantFrom([], ['bad']) }),
);
const groupArb = (groupId: number) => fc.record({
  groupId: fc.constant(groupId), name: fc.constant(`g${groupId}`), lease: leaseArb,
  holderAddress: fc.option(fc.record({ host, port: fc.constant(5432) }), { nil: null }),
}) as fc.Arbitrary<CitusGroupView>;
const nodeArb = fc.record({ nodeId: fc.integer({ min: 1, max: 50 }), groupId: fc.integer({ min: 0, max: 4 }), host, port: fc.constant(5432), role: fc.constantFrom('primary', 'secondary'), isActive: fc.boolean() }) as fc.Arbitrary<DistNode>;
const obsArb = fc.record({
  leaseMs: fc.constant(LEASE), coordinatorPrimary: fc.boolean(), self: fc.constant(self),
  extension: fc.constantFrom(true, true, true, false, null), nodes: fc.option(fc.uniqueArray(nodeArb, { maxLength: 5, selector: (n) => n.nodeId }), { nil: null, freq: 8 }), // nodeid is pg_dist_node's primary key
  workers: fc.integer({ min: 0, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => groupArb(i + 1)))),
}) as fc.Arbitrary<CitusObservation>;

/** An independent statement of rule 2 (not groupBlocked, which is what is under test). */
const actionable = (g: CitusGroupView, leaseMs: number): boolean =>
  !!g.lease && g.lease.holder !== null && g.lease.problems.length === 0 && g.holderAddress !== null
  && g.lease.unchangedForMs < Math.max(leaseMs, g.lease.durationMs ?? 0);

test('citus property: only a coordinator primary acts, and never on a blocked group', () => {
  fc.assert(fc.property(obsArb, (o) => {
    const d = decideCitus(o);
    assert.ok(d.reason.length > 0 && !d.reason.includes('\n'), 'one line');
    if (!o.coordinatorPrimary) assert.equal(d.action, null);
    const a = d.action;
    if (a && (a.type === 'add_node' || a.type === 'update_node')) {
      const g = o.workers.find((w) => w.groupId === a.groupId)!;
      assert.ok(g, 'an action names a configured group');
      assert.ok(actionable(g, o.leaseMs), 'never on an expired, unknown or invalid Lease');
      assert.equal(groupBlocked(g, o.leaseMs), null);
      assert.deepEqual([a.host, a.port], [g.holderAddress!.host, g.holderAddress!.port], 'always the Lease holder\'s address');
    }
    if (a?.type === 'update_node') assert.ok(o.nodes!.some((n) => n.nodeId === a.nodeId && n.groupId === a.groupId && n.role === 'primary'));
  }), { numRuns: 2_000 });
});

/** What the catalog functions do to the rows (enough for convergence; Citus refuses duplicates). */
function apply(nodes: DistNode[], a: CitusAction): DistNode[] {
  switch (a.type) {
    case 'create_extension': return nodes;
    case 'set_coordinator': {
      const c = nodes.find((n) => n.groupId === 0 && n.role === 'primary');
      return c ? nodes.map((n) => (n === c ? { ...n, host: a.host, port: a.port } : n)) : [...nodes, { nodeId: 100, groupId: 0, host: a.host, port: a.port, role: 'primary', isActive: true }];
    }
    case 'add_node': return [...nodes, { nodeId: 200 + a.groupId, groupId: a.groupId, host: a.host, port: a.port, role: 'primary', isActive: true }];
    case 'update_node': return nodes.map((n) => (n.nodeId === a.nodeId ? { ...n, host: a.host, port: a.port } : n));
  }
}

test('citus property: applying the steps converges within groups+2 loops, rows of blocked groups untouched, nothing removed', () => {
  fc.assert(fc.property(obsArb, (o0) => {
    let o: CitusObservation = { ...o0, coordinatorPrimary: true, extension: o0.extension ?? true, nodes: o0.nodes ?? [] };
    const before = o.nodes!;
    const blocked = new Set(o.workers.filter((g) => !actionable(g, o.leaseMs)).map((g) => g.groupId));
    let steps = 0;
    for (let d = decideCitus(o); d.action; d = decideCitus(o)) {
      assert.ok(++steps <= o.workers.length + 2, `no fixed point after ${steps} steps: ${d.reason}`);
      o = d.action.type === 'create_extension' ? { ...o, extension: true } : { ...o, nodes: apply(o.nodes!, d.action) };
    }
    const after = o.nodes!;
    assert.ok(after.length >= before.length, 'nothing removed');
    for (const n of before) if (blocked.has(n.groupId)) assert.ok(after.some((m) => m.nodeId === n.nodeId && m.host === n.host), `row ${n.nodeId} of blocked group ${n.groupId} untouched`);
  }), { numRuns: 2_000 });
});

test('rebalance mode: as asked; else logical replication only where the members can decode', () => {
  assert.deepEqual(rebalanceMode('force_logical', 'replica').mode, 'force_logical');
  assert.equal(rebalanceMode(null, 'logical').mode, 'auto');
  const r = rebalanceMode(null, 'replica');
  assert.equal(r.mode, 'block_writes');
  assert.match(r.reason, /wal_level is replica.*wal_level: logical/);
});
