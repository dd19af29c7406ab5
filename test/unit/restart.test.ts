// Parameters pending a restart, rolled by the primary (core/restart.ts), as a table: the members'
// published pendingRestart flags, the expected actions and a word of the reason. Every safety rule
// of the rolling update holds: one member down at a time, never while one is not streaming,
// replicas first (highest ordinal first), the primary last and by a hand-off, nothing while paused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMemberStatus } from '../../scripts/core/wire.js';
import { belowBounds } from '../../scripts/core/restart.js';
import { member, primaryMember, lease, pgPrimary, pgReplica, obs, decide, type Case } from './fixtures.js';

const pending = (name: string, over = {}) => member(name, { pendingRestart: true, ...over });

interface Row { name: string; o: Case; want: string[]; reason?: RegExp; to?: string }
const rows: Row[] = [
  // --- the primary ---
  { name: 'nothing pending anywhere: a normal primary', o: obs('m0'), want: [], reason: /^primary, lease held$/ },
  { name: 'two replicas pending: the highest ordinal first', o: obs('m0', { members: [pending('m1'), pending('m2')] }), want: ['restart_member'], reason: /replica m2/, to: 'm2' },
  { name: 'one replica pending: that one', o: obs('m0', { members: [pending('m1'), member('m2')] }), want: ['restart_member'], to: 'm1' },
  { name: 'replicas before the primary, even when the primary is pending too', o: obs('m0', { pendingRestart: ['max_connections'], members: [member('m1'), pending('m2')] }), want: ['restart_member'], to: 'm2' },
  { name: 'a member not streaming (one is restarting): wait', o: obs('m0', { members: [pending('m1'), member('m2')], pg: { ...pgPrimary, streamingReplicas: ['m1'] } }), want: [], reason: /waiting/ },
  { name: 'a member unhealthy: wait', o: obs('m0', { members: [pending('m1'), member('m2', { healthy: false })] }), want: [], reason: /waiting/ },
  { name: 'a restarted member not Ready yet: wait', o: obs('m0', { members: [pending('m1'), member('m2', { ready: false })] }), want: [], reason: /waiting/ },
  { name: 'a member missing (StatefulSet wants 3): wait', o: obs('m0', { expectedMembers: 3, members: [pending('m1')] }), want: [], reason: /\(3\)/ },
  { name: 'paused: nothing', o: obs('m0', { lease: lease({ paused: true }), members: [pending('m1'), pending('m2')] }), want: [] },
  { name: 'only the primary pending, replicas settled: hand off', o: obs('m0', { pendingRestart: ['shared_buffers'], members: [member('m1', { lsn: 900n }), member('m2')] }), want: ['handoff'], reason: /before our own restart/, to: 'm2' },
  { name: 'only the primary pending, a replica not streaming: wait', o: obs('m0', { pendingRestart: ['shared_buffers'], pg: { ...pgPrimary, streamingReplicas: ['m2'] } }), want: [], reason: /waiting/ },
  { name: 'only the primary pending, no replica fit to take over: wait', o: obs('m0', { pendingRestart: ['shared_buffers'], members: [member('m1', { nofailover: true }), member('m2', { nofailover: true })] }), want: [], reason: /no healthy replica/ },
  { name: 'a lone primary pending: restart in place', o: obs('m0', { pendingRestart: ['shared_buffers'], members: [], pg: { ...pgPrimary, streamingReplicas: [] } }), want: ['restart_postgres'], reason: /in place/ },
  { name: 'a lone primary of a 3-member StatefulSet: never in place, wait for the others', o: obs('m0', { pendingRestart: ['shared_buffers'], expectedMembers: 3, members: [], pg: { ...pgPrimary, streamingReplicas: [] } }), want: [], reason: /waiting/ },
  { name: 'a rolling update goes first (it restarts every pod anyway)', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [pending('m1', { revision: 'old' }), pending('m2', { revision: 'old' })] }), want: ['evict_pod'], reason: /rolling update/ },
  // --- standby-bounded parameters (a hot standby needs them at least as high as its primary) ---
  { name: 'raising max_connections: replicas first (their next value is above our running one)', o: obs('m0', { pendingRestart: ['max_connections'], runningBounds: { max_connections: 100 }, nextBounds: { max_connections: 200 }, members: [pending('m1', { nextBounds: { max_connections: 200 } }), pending('m2', { nextBounds: { max_connections: 200 } })] }), want: ['restart_member'], to: 'm2' },
  { name: 'lowering max_connections: the primary restarts first, in place (replicas would not start below it)', o: obs('m0', { pendingRestart: ['max_connections'], runningBounds: { max_connections: 200 }, nextBounds: { max_connections: 100 }, members: [pending('m1', { nextBounds: { max_connections: 100 } }), pending('m2', { nextBounds: { max_connections: 100 } })] }), want: ['restart_postgres'], reason: /lower max_connections.*in place first/ },
  { name: 'lowering, a member not streaming: the primary waits before its own restart', o: obs('m0', { pendingRestart: ['max_connections'], runningBounds: { max_connections: 200 }, nextBounds: { max_connections: 100 }, members: [pending('m1'), pending('m2')], pg: { ...pgPrimary, streamingReplicas: ['m1'] } }), want: [], reason: /waiting/ },
  { name: 'lowering, primary restarted (runs the lower value): now the replicas', o: obs('m0', { runningBounds: { max_connections: 100 }, nextBounds: { max_connections: 100 }, members: [pending('m1', { nextBounds: { max_connections: 100 } }), pending('m2', { nextBounds: { max_connections: 100 } })] }), want: ['restart_member'], to: 'm2' },
  { name: 'a replica would start below us and we have not seen the change yet: wait, ask nobody', o: obs('m0', { runningBounds: { max_connections: 200 }, nextBounds: { max_connections: 200 }, members: [pending('m1', { nextBounds: { max_connections: 100 } }), member('m2')] }), want: [], reason: /m1 would start with max_connections below ours/ },
  { name: 'only the replica that can start is asked', o: obs('m0', { runningBounds: { max_connections: 200 }, members: [pending('m1', { nextBounds: { max_connections: 300 } }), pending('m2', { nextBounds: { max_connections: 100 } })] }), want: ['restart_member'], to: 'm1' },
  // --- the kubelet updates each pod's parameters.json in turn (up to a minute apart) ---
  { name: 'only the primary pending, a replica still on the old file: wait for it before handing off', o: obs('m0', { pendingRestart: ['shared_buffers'], parametersDigest: 'bbbbbbbb', members: [member('m1', { parametersDigest: 'bbbbbbbb' }), member('m2', { parametersDigest: 'aaaaaaaa' })] }), want: [], reason: /waiting until m2 runs on the parameters we do/ },
  { name: 'only the primary pending, every replica on our file: hand off', o: obs('m0', { pendingRestart: ['shared_buffers'], parametersDigest: 'bbbbbbbb', members: [member('m1', { parametersDigest: 'bbbbbbbb' }), member('m2', { parametersDigest: 'bbbbbbbb' })] }), want: ['handoff'], reason: /before our own restart/ },
  { name: 'a replica of an older version (no digest published): not waited for', o: obs('m0', { pendingRestart: ['shared_buffers'], parametersDigest: 'bbbbbbbb', members: [member('m1'), member('m2', { parametersDigest: 'bbbbbbbb' })] }), want: ['handoff'] },
  { name: 'a pending replica is restarted even while another still reads the old file', o: obs('m0', { pendingRestart: ['shared_buffers'], parametersDigest: 'bbbbbbbb', members: [pending('m1', { parametersDigest: 'bbbbbbbb' }), member('m2', { parametersDigest: 'aaaaaaaa' })] }), want: ['restart_member'], to: 'm1' },
  { name: 'lowering max_connections, a replica still on the old file: wait before our own restart', o: obs('m0', { pendingRestart: ['max_connections'], parametersDigest: 'bbbbbbbb', runningBounds: { max_connections: 200 }, nextBounds: { max_connections: 100 }, members: [member('m1', { parametersDigest: 'aaaaaaaa' }), pending('m2', { parametersDigest: 'bbbbbbbb', nextBounds: { max_connections: 100 } })] }), want: [], reason: /waiting until m1 runs/ },
  // --- a replica asked by the primary ---
  { name: 'replica asked by the holder, pending: restart in place, following it', o: obs('m1', { restartRequestedBy: 'm0', pendingRestart: ['max_connections'] }), want: ['restart_postgres'], reason: /m0 asked us/ },
  { name: 'replica asked but nothing pending (request repeated after our restart): nothing', o: obs('m1', { restartRequestedBy: 'm0', pendingRestart: [] }), want: [], reason: /streaming from m0/ },
  { name: 'replica pending but not asked: nothing (the primary picks the moment)', o: obs('m1', { pendingRestart: ['max_connections'] }), want: [] },
  { name: 'replica asked by a member that is not the lease holder: nothing', o: obs('m1', { restartRequestedBy: 'm2', pendingRestart: ['max_connections'] }), want: [] },
  { name: 'replica asked while paused: nothing', o: obs('m1', { restartRequestedBy: 'm0', pendingRestart: ['max_connections'], lease: lease({ paused: true }) }), want: [] },
  { name: 'replica asked while following someone else: follow the holder first', o: obs('m1', { restartRequestedBy: 'm0', pendingRestart: ['max_connections'], pg: { ...pgReplica, following: 'm2' } }), want: ['follow'] },
];

for (const r of rows) {
  test(`restart: ${r.name}`, () => {
    const d = decide(r.o);
    const types = d.actions.map((a) => a.type).filter((t) => t !== 'renew_lease' && t !== 'manage_slots');
    assert.deepEqual(types, r.want, d.reason);
    if (r.reason) assert.match(d.reason, r.reason);
    if (r.to) {
      const a = d.actions.find((x) => x.type === 'restart_member' || x.type === 'handoff');
      assert.equal(a && (a.type === 'restart_member' ? a.pod : a.type === 'handoff' ? a.to : null), r.to);
    }
  });
}

test('restart: a replica restarts following the holder it was asked by', () => {
  const d = decide(obs('m1', { restartRequestedBy: 'm0', pendingRestart: ['max_connections'], members: [primaryMember('m0', { host: '10.9.9.9' }), member('m2')] }));
  const a = d.actions[0];
  assert.ok(a && a.type === 'restart_postgres');
  assert.deepEqual(a.follow, { name: 'm0', host: '10.9.9.9', port: 5432 });
  assert.deepEqual(a.parameters, ['max_connections']);
});

test('restart: the published flag is validated (only true means pending)', () => {
  const base = { name: 'm1', host: 'h', port: 5432, apiUrl: 'u' };
  assert.deepEqual(parseMemberStatus({ ...base, nextBounds: { max_connections: 200 } })?.nextBounds, { max_connections: 200 });
  for (const bad of [{ max_connections: -1 }, { max_connections: '200' }, { work_mem: 4 }, [1], 'x']) assert.equal(parseMemberStatus({ ...base, nextBounds: bad })?.nextBounds, undefined, JSON.stringify(bad));
  assert.equal(parseMemberStatus({ ...base, pendingRestart: true })?.pendingRestart, true);
  for (const v of [undefined, false, 'true', 1, null]) assert.equal(parseMemberStatus({ ...base, pendingRestart: v })?.pendingRestart, false, String(v));
});

test('restart: a replica pending restarts through the primary one at a time (the next waits for the first to stream again)', () => {
  const first = decide(obs('m0', { members: [pending('m1'), pending('m2')] }));
  assert.equal(first.actions.find((a) => a.type === 'restart_member')?.type, 'restart_member');
  // m2 restarting: gone from pg_stat_replication, its annotation may still say healthy and pending
  const during = decide(obs('m0', { members: [pending('m1'), pending('m2')], pg: { ...pgPrimary, streamingReplicas: ['m1'] } }));
  assert.deepEqual(during.actions.filter((a) => a.type === 'restart_member'), []);
  const after = decide(obs('m0', { members: [pending('m1'), member('m2')] }));
  const a = after.actions.find((x) => x.type === 'restart_member');
  assert.ok(a && a.type === 'restart_member' && a.pod === 'm1');
});

test('restart: belowBounds compares only the bounded parameters both sides know', () => {
  assert.deepEqual(belowBounds({ max_connections: 50, max_wal_senders: 20 }, { max_connections: 100, max_wal_senders: 10 }), ['max_connections']);
  assert.deepEqual(belowBounds({ max_connections: 50 }, { max_wal_senders: 10 }), []);
  assert.deepEqual(belowBounds(undefined, { max_connections: 100 }), []);
});
