// The holes of issue 11, each a row that failed on the old core (or could not even be stated in
// it: the shell kept the memory), and the classifiers every place shares (safety.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide as decideCore } from '../../scripts/core/decide.js';
import { initialMemory, remember, observeInto } from '../../scripts/core/memory.js';
import { watchdog, answerFailsafe, mayStayWritable } from '../../scripts/core/safety.js';
import { candidacy } from '../../scripts/core/candidacy.js';
import { parseLease, parseMemberStatus } from '../../scripts/core/wire.js';
import type { Action } from '../../scripts/core/types.js';
import { settings, member, primaryMember, lease, pgPrimary, pgReplica, pgDown, obs, decide, view, NOW, type Case } from './fixtures.js';

const types = (c: Case) => decide(c).actions.map((a) => a.type);
const sync = { ...settings, syncMode: 'on' as const };
const silent = { ...pgPrimary, accepting: false, inRecovery: null, lsn: null, streamingReplicas: [], replicaFlush: [], slots: null };

test('SLOTS TAKEN: a primary whose postgres stops answering keeps renewing while it finds out', () => {
  const c = obs('m0', { pg: silent, renewedAgoMs: 2100, mem: { pgUnknownSinceMs: NOW - 1000, lastKnownWritable: true } });
  const d = decide(c);
  assert.deepEqual(d.actions.map((a) => a.type), ['renew_lease']);
  assert.match(d.reason, /does not answer/);
});

test('SLOTS TAKEN: silent for the renew deadline: the primary stops postgres (the old core did nothing)', () => {
  const c = obs('m0', { pg: silent, renewedAgoMs: 500, mem: { pgUnknownSinceMs: NOW - 4600, lastKnownWritable: true } });
  assert.deepEqual(types(c), ['demote']);
});

test('SLOTS TAKEN: silent and the lease is someone else\'s: demote at once', () => {
  assert.deepEqual(types(obs('m0', { pg: silent, lease: lease({ holder: 'm1' }), mem: { lastKnownWritable: true } })), ['demote']);
});

test('SLOTS TAKEN: the watchdog stops a silent postgres at the deadline even while the tick renews', () => {
  const m = { ...initialMemory(), confirmedAtMs: NOW - 100, lastKnownWritable: true, pgUnknownSinceMs: NOW - 4500 };
  const v = watchdog(m, true, settings, NOW);
  assert.equal(v.stop, true);
  const early = watchdog({ ...m, pgUnknownSinceMs: NOW - 1000 }, true, settings, NOW);
  assert.deepEqual(early, { stop: false, checkAgainInMs: 3500 });
});

test('a postgres that is starting (crash recovery) is not "silent": no deadline, no demotion', () => {
  const c = obs('m0', { pg: { ...silent, serverState: 'starting' }, renewedAgoMs: 1000, mem: { lastKnownWritable: true } });
  const d = decide(c);
  assert.ok(!d.actions.some((a) => a.type === 'demote'));
  assert.equal(d.memory.pgUnknownSinceMs, null);
  assert.equal(watchdog(d.memory, true, settings, NOW).stop, false);
});

test('CRASH RESTART: the lease holder keeps its lease while the supervisor restarts postgres, for at most one lease', () => {
  const starting = { ...silent, serverState: 'starting' as const };
  const c = obs('m0', { pg: starting, renewedAgoMs: 2100, mem: { pgStartingSinceMs: NOW - 1000, lastKnownWritable: true } });
  assert.deepEqual(types(c), ['renew_lease']);
  assert.deepEqual(types(obs('m0', { pg: starting, renewedAgoMs: 2100, mem: { pgStartingSinceMs: NOW - 6000 } })), [], 'past a lease: let it lapse');
  assert.deepEqual(types(obs('m1', { pg: { ...pgReplica, inRecovery: null, accepting: false, serverState: 'starting' } })), [], 'a replica just waits');
});

test('UNSTARTABLE PRIMARY: after two failed starts it gives the lease up (the old core renewed forever)', () => {
  const c = obs('m0', { pg: pgDown, controlRole: 'primary', mem: { startFailures: 2, startFailingSinceMs: NOW - 3000 } });
  const d = decide(c);
  assert.deepEqual(d.actions.map((a) => a.type), ['release_lease']);
  assert.equal((d.actions[0] as Extract<Action, { type: 'release_lease' }>).ifResourceVersion, '1');
  // and a released lease is free for the others at once
  const r = obs('m1', { lease: lease({ holder: null, unchangedForMs: 10 }) });
  assert.deepEqual(types(r), ['take_lease']);
});

test('UNSTARTABLE PRIMARY: start failures are counted by the core from the shell\'s outcomes', () => {
  let m = remember(initialMemory(), { type: 'start_failed', atMs: 1 }, 'm0');
  m = remember(m, { type: 'start_failed', atMs: 2 }, 'm0');
  assert.equal(m.startFailures, 2);
  assert.equal(m.startFailingSinceMs, 1);
  assert.equal(remember(m, { type: 'started', as: 'primary' }, 'm0').startFailures, 0);
});

test('STALE VIEW: a take-over is conditional on the resourceVersion the decision saw', () => {
  const d = decide(obs('m1', { lease: lease({ unchangedForMs: 7000, resourceVersion: '41' }) }));
  assert.deepEqual(d.actions, [{ type: 'take_lease', failover: true, ifResourceVersion: '41' }]);
});

test('FAILSAFE: a take-over whose reply was lost refuses to confirm the old primary', () => {
  const m = remember(initialMemory(), { type: 'lease_write_failed', takeover: true, ifResourceVersion: '41', inDoubt: true }, 'm1');
  const facts = { self: 'm1', failsafe: true, leaseHolder: 'm0', writable: false, takeoverInFlight: false };
  assert.equal(answerFailsafe(m, { leader: 'm0', release: false }, facts, NOW).status, 409);
  // once a newer lease version is seen, the doubt is settled
  const settled = observeInto(m, obs('m1', { lease: lease({ resourceVersion: '42' }) }).o);
  assert.equal(settled.takeoverInDoubtRv, null);
  assert.equal(answerFailsafe(settled, { leader: 'm0', release: false }, facts, NOW).status, 200);
});

test('FAILSAFE: a member that promised the primary does not promote on a lease naming it until the promise ran out', () => {
  const c = obs('m1', { lease: lease({ holder: 'm1' }), failsafeAckAgoMs: 1000 });
  const d = decide(c);
  assert.deepEqual(d.actions, []);
  assert.match(d.reason, /promised m0/);
  assert.ok(types(obs('m1', { lease: lease({ holder: 'm1' }), failsafeAckAgoMs: 7000 })).includes('promote'));
});

test('FAILSAFE: POST /failsafe is refused when failsafe mode is off', () => {
  const r = answerFailsafe(initialMemory(), { leader: 'm0', release: false }, { self: 'm1', failsafe: false, leaseHolder: 'm0', writable: false, takeoverInFlight: false }, NOW);
  assert.equal(r.status, 409);
  assert.match(r.message, /failsafe mode is off/);
  assert.equal(r.memory.failsafePromise, null);
});

test('SYNC SHRINK: the record shrinks only after the remaining members flushed past the switch', () => {
  const base = { settings: sync, lease: lease({ syncStandbys: ['m1', 'm2'] }) };
  const change = { names: ['m1'], count: 1, lsn: 2000n };
  const behind = obs('m0', { ...base, pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: ['m1'], replicaFlush: [{ name: 'm1', lsn: 1500n }] }, mem: { syncChange: change } });
  const d = decide(behind);
  assert.deepEqual(d.actions.map((a) => a.type), []);
  assert.match(d.reason, /waiting for \[m1\] to flush past 2000/);
  const caught = obs('m0', { ...base, pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: ['m1'], replicaFlush: [{ name: 'm1', lsn: 2100n }] }, mem: { syncChange: change } });
  const d2 = decide(caught);
  assert.deepEqual(d2.actions[0], { type: 'renew_lease', ifResourceVersion: '1', record: { syncStandbys: ['m1'], syncCount: 1 } });
});

test('SYNC N: growing the record never raises n above what postgres runs', () => {
  // postgres waits for ANY 1 (m1); the setting asks for 2: record [m1, m2] with n=1 first, then postgres, then n=2 after catch-up
  const c = obs('m0', { settings: { ...sync, syncCount: 2 }, lease: lease({ syncStandbys: ['m1'], syncCount: 1 }), pg: { ...pgPrimary, syncNames: ['m1'], syncCount: 1 } });
  const d = decide(c);
  assert.deepEqual((d.actions[0] as Extract<Action, { type: 'renew_lease' }>).record, { syncStandbys: ['m1', 'm2'], syncCount: 1 });
});

test('SYNC EMPTY (mode on): without a standby, the record is emptied before postgres goes asynchronous', () => {
  const c = obs('m0', { settings: sync, lease: lease({ syncStandbys: ['m1'] }), pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: [] } });
  const d = decide(c);
  assert.deepEqual(d.actions.map((a) => a.type), ['renew_lease']);
  assert.deepEqual((d.actions[0] as Extract<Action, { type: 'renew_lease' }>).record, { syncStandbys: [], syncCount: 1 });
  const next = obs('m0', { settings: sync, lease: lease({ syncStandbys: [] }), pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: [] } });
  assert.deepEqual(decide(next).actions, [{ type: 'set_sync', names: [], count: 1 }]);
});

test('SYNC STRICT: without a standby, postgres keeps waiting for its set (writes block, nothing recorded away)', () => {
  const c = obs('m0', { settings: { ...sync, syncMode: 'strict' }, lease: lease({ syncStandbys: ['m1'] }), pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: [] } });
  assert.deepEqual(types(c), []);
});

test('a primary restarting with the lease starts read-only, then promotes on a fresh confirmation (never writable behind a slow start)', () => {
  const d = decide(obs('m0', { pg: pgDown, controlRole: 'primary' }));
  assert.deepEqual(d.actions, [{ type: 'renew_lease', ifResourceVersion: '1' }, { type: 'start', as: 'replica', follow: null }]);
});

test('SYNC: a primary restarting under a record promotes waiting for the recorded synchronous set', () => {
  const d = decide(obs('m0', { settings: sync, pg: { ...pgReplica, following: null }, lease: lease({ syncStandbys: ['m1', 'm2'], syncCount: 1 }), renewedAgoMs: 100 }));
  assert.deepEqual(d.actions.at(-1), { type: 'promote', leaseVersion: '1', sync: { names: ['m1', 'm2'], count: 1 } });
});

test('WIPE: an unreachable rewind source never counts toward re-cloning', () => {
  let m = initialMemory();
  for (let i = 0; i < 5; i++) m = remember(m, { type: 'rewound', outcome: 'unreachable' }, 'm1');
  assert.equal(m.rewindFailures, 0);
  m = remember(remember(m, { type: 'rewound', outcome: 'failed' }, 'm1'), { type: 'rewound', outcome: 'failed' }, 'm1');
  assert.equal(m.rewindFailures, 2);
});

test('WIPE: a former primary never re-clones while the leader is not answering', () => {
  const c = obs('m1', { pg: pgDown, controlRole: 'primary', rewindFailures: 5, members: [primaryMember('m0', { healthy: false }), member('m2')] });
  assert.deepEqual(types(c), []);
});

test('ROLLING UPDATE: a member whose pod vanished before its replacement is listed blocks the next restart', () => {
  const c = obs('m0', { revision: 'old', updateRevision: 'new', expectedMembers: 3, members: [member('m1', { revision: 'old' })], pg: { ...pgPrimary, streamingReplicas: ['m1'] } });
  const d = decide(c);
  assert.ok(!d.actions.some((a) => a.type === 'evict_pod'));
  assert.match(d.reason, /waiting until every member \(3\)/);
});

test('IDENTITY: a member whose data directory belongs to another cluster never competes', () => {
  const c = view('m1', { lease: lease({ unchangedForMs: 7000, systemId: '111' }), pg: { ...pgReplica, systemId: '222' } });
  assert.match(candidacy(c).reason, /another cluster/);
  const peer = view('m2', { lease: lease({ unchangedForMs: 7000, systemId: '111' }), pg: { ...pgReplica, systemId: '111' }, members: [primaryMember('m0', { healthy: false }), member('m1', { systemId: '222', lsn: 9000n })] });
  assert.equal(candidacy(peer).ok, true, 'the foreign m1, further ahead, is ignored');
  const stopped = decide(obs('m1', { pg: { ...pgDown, systemId: '222' }, controlRole: 'standby', lease: lease({ systemId: '111' }) }));
  assert.deepEqual(stopped.actions, []);
  assert.match(stopped.reason, /another cluster/);
});

test('IDENTITY: the primary records the system identifier on the lease', () => {
  const d = decide(obs('m0', { pg: { ...pgPrimary, systemId: '111' } }));
  assert.deepEqual(d.actions[0], { type: 'renew_lease', ifResourceVersion: '1', stamp: { systemId: '111' } });
});

test('BAD INPUT: a hand-edited sync-count larger than the set is a problem, and problems block failover', () => {
  const l = parseLease({ metadata: { resourceVersion: '1', annotations: { 'pg-autopilot.io/sync-standbys': 'm1,m2', 'pg-autopilot.io/sync-count': '5' } }, spec: { holderIdentity: 'm0' } }, 7000);
  assert.equal(l.problems.length, 1);
  assert.match(candidacy(view('m1', { settings: sync, lease: l })).reason, /cannot trust/);
  const bads: Record<string, string>[] = [{ 'pg-autopilot.io/sync-count': '-1' }, { 'pg-autopilot.io/sync-count': 'x' }, { 'pg-autopilot.io/paused': 'yes' }, { 'pg-autopilot.io/switchover-to': 'Bad Name' }];
  for (const bad of bads) {
    assert.ok(parseLease({ metadata: { annotations: bad }, spec: { holderIdentity: 'm0' } }, 0).problems.length > 0, JSON.stringify(bad));
  }
  assert.ok(parseLease({ metadata: {}, spec: { holderIdentity: 'm0', leaseDurationSeconds: -3 } }, 0).problems.length > 0);
});

test('BAD INPUT: a longer leaseDurationSeconds on the Lease (written before an upgrade lowered ours) is honoured', () => {
  const c = obs('m1', { lease: lease({ unchangedForMs: 7000, durationMs: 20_000 }) });
  assert.deepEqual(types(c), []);
  assert.deepEqual(types(obs('m1', { lease: lease({ unchangedForMs: 21_000, durationMs: 20_000 }) })), ['take_lease']);
});

test('BAD INPUT: a peer status that is not one is unknown, never trusted', () => {
  assert.equal(parseMemberStatus({ name: 'm1', host: 'h', port: 'x', apiUrl: 'u' }), null);
  assert.equal(parseMemberStatus('nope'), null);
  const s = parseMemberStatus({ name: 'm1', host: 'h', port: 5432, apiUrl: 'u', lsn: 'garbage', healthy: 'yes' });
  assert.equal(s?.lsn, null);
  assert.equal(s?.healthy, false);
});

test('PAUSE: a paused primary that cannot renew still demotes, in the tick and in the watchdog', () => {
  assert.deepEqual(types(obs('m0', { lease: lease({ paused: true }), renewedAgoMs: 4600 })), ['demote']);
  const m = { ...initialMemory(), confirmedAtMs: NOW - 4600, lastKnownWritable: true };
  assert.equal(watchdog(m, true, settings, NOW).stop, true);
});

test('PAUSE: paused, no failover, switchover, rolling update, rewind or re-clone', () => {
  assert.deepEqual(types(obs('m1', { lease: lease({ unchangedForMs: 60_000, paused: true }) })), []);
  assert.deepEqual(types(obs('m0', { lease: lease({ paused: true, switchoverTo: 'm1' }) })), []);
  assert.deepEqual(types(obs('m1', { lease: lease({ paused: true }), pg: { ...pgReplica, streaming: false, notStreamingForMs: 60_000 } })), []);
});

test('mayStayWritable: confirmed within the deadline, or briefly while taking a lease no one holds', () => {
  const s = { renewDeadlineMs: 4500 };
  assert.equal(mayStayWritable({ ...initialMemory(), confirmedAtMs: NOW - 100 }, s, NOW).ok, true);
  assert.equal(mayStayWritable({ ...initialMemory(), confirmedAtMs: NOW - 4500 }, s, NOW).ok, false);
  assert.equal(mayStayWritable({ ...initialMemory(), writableWithoutLeaseSinceMs: NOW - 100 }, s, NOW).ok, true);
  assert.equal(mayStayWritable(initialMemory(), s, NOW).ok, false);
});

test('decide carries memory: the same inputs give the same decision and memory', () => {
  const c = obs('m1', { lease: lease({ unchangedForMs: 7000 }) });
  assert.deepEqual(decideCore(c.o, c.m), decideCore(structuredClone(c.o), structuredClone(c.m)));
});

test('FAILSAFE: a member stays in the confirming set until healthy pod lists lacked it for the whole bound; nothing is forgotten without fresh lists', async () => {
  const { updateKnownMembers } = await import('../../scripts/core/memory.js');
  let k = updateKnownMembers({}, ['m0', 'm1', 'm2'], 'm0', 0, 12_000);
  assert.deepEqual(Object.keys(k).sort(), ['m1', 'm2']);
  k = updateKnownMembers(k, ['m0', 'm2'], 'm0', 1_000, 12_000); // m1's pod deleted
  assert.deepEqual(Object.keys(k).sort(), ['m1', 'm2'], 'recently gone: still asked');
  k = updateKnownMembers(k, ['m0', 'm2'], 'm0', 13_500, 12_000);
  assert.deepEqual(Object.keys(k), ['m2'], 'gone from healthy lists for the whole bound: forgotten');
});

// Found by the Citus integration test, reproduced by cluster.test.ts's sync-mode scenario: a killed
// primary restarted while writes go on is rewound, then needs streamed WAL before it is consistent
// (pg_rewind's copy is outrun by the writes). Until consistent it accepts no connection, so it was
// neither healthy nor streaming: the new primary made no slot for it, and its walreceiver was
// refused ("replication slot m1 does not exist") for as long as anyone waited.
test('REJOIN: a member that follows us gets its slot before its postgres accepts connections', () => {
  const rewound = member('m1', { role: 'unknown', healthy: false, inRecovery: null, streaming: false, lsn: null, following: 'm0' });
  const c = obs('m0', { members: [rewound, member('m2')], pg: { ...pgPrimary, streamingReplicas: ['m2'], replicaFlush: [{ name: 'm2', lsn: 2000n }], slots: ['m2'] } });
  const slots = decide(c).actions.find((a) => a.type === 'manage_slots');
  assert.deepEqual(slots && 'keep' in slots ? slots.keep : null, ['m1', 'm2']);
  // one that follows another member, or nobody, still gets none
  const other = obs('m0', { members: [{ ...rewound, following: 'm2' }, member('m2')], pg: { ...pgPrimary, streamingReplicas: ['m2'], replicaFlush: [{ name: 'm2', lsn: 2000n }], slots: ['m2'] } });
  assert.equal(decide(other).actions.find((a) => a.type === 'manage_slots'), undefined);
});

test('REJOIN: the published status carries whom a member follows (a name, else nothing)', () => {
  const base = { name: 'm1', host: '10.0.0.1', port: 5432, apiUrl: 'http://10.0.0.1:8008', role: 'unknown', healthy: false };
  assert.equal(parseMemberStatus({ ...base, following: 'm0' })?.following, 'm0');
  assert.equal(parseMemberStatus({ ...base, following: 'M0 bad' })?.following, null);
  assert.equal(parseMemberStatus(base)?.following, null);
});
