// The decision core, as tables: a base observation, a change, the expected actions and a word of
// the reason. Includes the split-brain cases: lease lost, API unreachable, two candidates, stale
// leader, a writable member that is not the holder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidacy, handoffTarget, REWIND_AFTER_MS } from '../../scripts/core/decide.js';
import { settings, member, primaryMember, lease, pgPrimary, pgReplica, pgDown, obs, decide, view, type Case } from './fixtures.js';

interface Row { name: string; o: Case; want: string[]; reason?: RegExp }
const rows: Row[] = [
  // --- the primary ---
  { name: 'primary, lease fresh: nothing but slots', o: obs('m0'), want: [] },
  { name: 'primary renews when due', o: obs('m0', { renewedAgoMs: 2100 }), want: ['renew_lease'] },
  { name: 'SPLIT BRAIN: primary whose renewals fail past the deadline demotes', o: obs('m0', { renewedAgoMs: 4600 }), want: ['demote'], reason: /deadline/ },
  { name: 'SPLIT BRAIN: API unreachable, within the deadline: retry renewing (on the version last seen)', o: obs('m0', { lease: undefined, lastKnownLease: lease(), renewedAgoMs: 3000 }), want: ['renew_lease'] },
  { name: 'SPLIT BRAIN: API unreachable past the deadline: demote', o: obs('m0', { lease: undefined, renewedAgoMs: 4500 }), want: ['demote'] },
  { name: 'SPLIT BRAIN: lease taken by another: demote at once', o: obs('m0', { lease: lease({ holder: 'm1' }) }), want: ['demote'], reason: /held by m1/ },
  { name: 'SPLIT BRAIN: stale leader (we are writable, lease says m1 though expired): demote', o: obs('m0', { lease: lease({ holder: 'm1', unchangedForMs: 60_000 }) }), want: ['demote'] },
  { name: 'writable without any lease (fresh bootstrap): take it', o: obs('m0', { lease: null, renewedAgoMs: null }), want: ['take_lease'] },
  { name: 'writable without a lease for longer than the deadline: demote', o: obs('m0', { lease: null, renewedAgoMs: null, primaryWithoutLeaseMs: 5000 }), want: ['demote'] },
  { name: 'another pod still labelled primary: unlabel it', o: obs('m0', { members: [member('m1', { labelledPrimary: true }), member('m2')] }), want: ['unlabel'] },
  { name: 'switchover to m2 requested', o: obs('m0', { lease: lease({ switchoverTo: 'm2' }) }), want: ['handoff'], reason: /m2/ },
  { name: 'switchover to a member that does not stream: refused', o: obs('m0', { lease: lease({ switchoverTo: 'm2' }), pg: { ...pgPrimary, streamingReplicas: ['m1'] } }), want: ['clear_switchover'], reason: /refused/ },
  { name: 'switchover ignored while paused', o: obs('m0', { lease: lease({ switchoverTo: 'm2', paused: true }) }), want: [] },
  { name: 'SIGTERM on the primary: hand off', o: obs('m0', { terminating: true }), want: ['handoff'] },
  { name: 'SIGTERM on a primary with no replica: stop', o: obs('m0', { terminating: true, pg: { ...pgPrimary, streamingReplicas: [] } }), want: ['stop'] },
  // --- rolling update (OnDelete, driven by the primary) ---
  { name: 'update: outdated replicas, highest ordinal first', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [member('m1', { revision: 'old' }), member('m2', { revision: 'old' })] }), want: ['evict_pod'], reason: /replica m2/ },
  { name: 'update: a member is not streaming yet: wait', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [member('m1', { revision: 'old' }), member('m2', { revision: 'new' })], pg: { ...pgPrimary, streamingReplicas: ['m1'] } }), want: [], reason: /waiting/ },
  { name: 'update: a restarted member has not published yet (unhealthy): wait', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [member('m1', { revision: 'old' }), member('m2', { revision: 'new', healthy: false })] }), want: [], reason: /waiting/ },
  { name: 'update: replicas done, we are outdated: hand over to an updated one', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [member('m1', { revision: 'new' }), member('m2', { revision: 'new' })] }), want: ['handoff'] },
  { name: 'update: the restarted replica streams but the kubelet has not marked it Ready: wait', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [member('m1', { revision: 'new', ready: true }), member('m2', { revision: 'new', ready: false })] }), want: [], reason: /waiting/ },
  { name: 'update: a single member restarts itself', o: obs('m0', { revision: 'old', updateRevision: 'new', members: [] }), want: ['evict_pod'], reason: /ourselves/ },
  { name: 'update: everyone on the update revision: normal primary', o: obs('m0', { revision: 'new', updateRevision: 'new', members: [member('m1', { revision: 'new' }), member('m2', { revision: 'new' })] }), want: [] },
  { name: 'update: paused: nothing', o: obs('m0', { revision: 'old', updateRevision: 'new', lease: lease({ paused: true }), members: [member('m1', { revision: 'old' }), member('m2', { revision: 'old' })] }), want: [] },
  // --- sync mode on the primary ---
  { name: 'sync: from an empty record (it claims nothing), postgres first', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: [] }) }), want: ['set_sync'] },
  { name: 'sync: record new members in the lease before postgres uses them', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1'] }), pg: { ...pgPrimary, syncNames: ['m1'] } }), want: ['renew_lease'], reason: /recording synchronous set \[m1, m2\]/ },
  { name: 'sync: recorded, now set synchronous_standby_names', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }) }), want: ['set_sync'] },
  { name: 'sync: a member left: postgres first, then the record', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }), pg: { ...pgPrimary, syncNames: ['m1', 'm2'], streamingReplicas: ['m1'] } }), want: ['set_sync'] },
  { name: 'sync: postgres dropped it, now shrink the record', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }), pg: { ...pgPrimary, syncNames: ['m1'], streamingReplicas: ['m1'] } }), want: ['renew_lease'] },
  // --- replicas ---
  { name: 'replica following the holder: nothing', o: obs('m1'), want: [] },
  { name: 'replica following someone else: follow the holder', o: obs('m1', { pg: { ...pgReplica, following: 'm9' } }), want: ['follow'] },
  { name: 'replica following a former primary on the same host (other port): follow the holder', o: obs('m1', { pg: { ...pgReplica, following: 'm2' }, members: [primaryMember('m0', { host: '10.0.0.2' }), member('m2', { host: '10.0.0.2' })] }), want: ['follow'] },
  { name: 'replica not streaming for long: rewind', o: obs('m1', { pg: { ...pgReplica, streaming: false, notStreamingForMs: REWIND_AFTER_MS } }), want: ['rewind'] },
  { name: 'replica whose rewinds failed: reinit', o: obs('m1', { rewindFailures: 2, pg: { ...pgReplica, streaming: false, notStreamingForMs: REWIND_AFTER_MS } }), want: ['reinit'] },
  { name: 'we were handed the lease: confirm it, unlabel the old primary, promote', o: obs('m1', { lease: lease({ holder: 'm1' }) }), want: ['renew_lease', 'unlabel', 'promote'] },
  { name: 'we just took the lease: unlabel, promote (no second write)', o: obs('m1', { lease: lease({ holder: 'm1' }), renewedAgoMs: 100 }), want: ['unlabel', 'promote'] },
  { name: 'SPLIT BRAIN: stale cached lease naming us, no recent write of ours: confirm before promoting', o: obs('m1', { lease: lease({ holder: 'm1', unchangedForMs: 9000 }), renewedAgoMs: 9000 }), want: ['renew_lease', 'unlabel', 'promote'] },
  { name: 'lease expired, members not fresh: probe first', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }), members: [primaryMember('m0', { fresh: false }), member('m2', { fresh: false })] }), want: ['probe_members'] },
  { name: 'lease expired, we are the best: take it', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }), pg: { ...pgReplica, lsn: 3000n } }), want: ['take_lease'] },
  { name: 'TWO CANDIDATES: equal LSN: smaller name wins (m1)', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }) }), want: ['take_lease'] },
  { name: 'TWO CANDIDATES: equal LSN: m2 yields to m1', o: obs('m2', { lease: lease({ unchangedForMs: 7000 }) }), want: [], reason: /m1 is a better candidate/ },
  { name: 'TWO CANDIDATES: more advanced m2 beats m1', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }), members: [primaryMember('m0', { healthy: false }), member('m2', { lsn: 5000n })] }), want: [], reason: /m2 is a better/ },
  { name: 'nofailover member never takes the lease', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }), settings: { ...settings, nofailover: true } }), want: [], reason: /nofailover/ },
  { name: 'a nofailover peer does not block us', o: obs('m2', { lease: lease({ unchangedForMs: 7000 }), members: [primaryMember('m0'), member('m1', { nofailover: true })] }), want: ['take_lease'] },
  { name: 'lagging too far behind: no', o: obs('m1', { lease: lease({ unchangedForMs: 7000 }), members: [primaryMember('m0', { healthy: false }), member('m2', { lsn: 100_000_000n, nofailover: true })] }), want: [], reason: /behind/ },
  { name: 'lease valid (5.9 s unchanged): wait', o: obs('m1', { lease: lease({ unchangedForMs: 5900 }) }), want: [] },
  { name: 'API unreachable for a replica: stay', o: obs('m1', { lease: undefined }), want: [], reason: /cannot read/ },
  { name: 'FAILSAFE: API unreachable, failsafe on: ask the members (the next tick reads the lease again)', o: obs('m0', { lease: undefined, renewedAgoMs: 3000, settings: { ...settings, failsafe: true } }), want: ['failsafe'] },
  { name: 'FAILSAFE: not confirmed by every member past the deadline: demote', o: obs('m0', { lease: undefined, renewedAgoMs: 4600, settings: { ...settings, failsafe: true } }), want: ['demote'], reason: /not every member confirmed/ },
  { name: 'FAILSAFE: replica that promised the primary does not take an expired lease', o: obs('m1', { lease: lease({ unchangedForMs: 9000 }), failsafeAckAgoMs: 1000 }), want: [], reason: /failsafe/ },
  { name: 'FAILSAFE: an old promise (older than a lease) does not hold a replica back', o: obs('m1', { lease: lease({ unchangedForMs: 9000 }), failsafeAckAgoMs: 7000 }), want: ['take_lease'] },
  { name: 'paused: no failover', o: obs('m1', { lease: lease({ unchangedForMs: 60_000, paused: true }) }), want: [], reason: /paused/ },
  { name: 'sync: not in the recorded set: no', o: obs('m2', { settings: { ...settings, syncMode: 'on' }, lease: lease({ unchangedForMs: 7000, syncStandbys: ['m1'] }), members: [primaryMember('m0'), member('m1', { healthy: false })] }), want: [], reason: /not in the synchronous set/ },
  { name: 'sync: in the set but the other set member unseen: no (could hold the last commit)', o: obs('m1', { settings: { ...settings, syncMode: 'on' }, lease: lease({ unchangedForMs: 7000, syncStandbys: ['m1', 'm2'] }), members: [primaryMember('m0'), member('m2', { healthy: false })] }), want: [], reason: /need 2/ },
  { name: 'sync: both seen, we are best: take it', o: obs('m1', { settings: { ...settings, syncMode: 'on' }, lease: lease({ unchangedForMs: 7000, syncStandbys: ['m1', 'm2'] }) }), want: ['take_lease'] },
  { name: 'sync: empty set recorded (no sync standby was ever confirmed): no failover', o: obs('m1', { settings: { ...settings, syncMode: 'on' }, lease: lease({ unchangedForMs: 7000, syncStandbys: [] }) }), want: [], reason: /not in the synchronous set/ },
  { name: 'reinit requested', o: obs('m1', { reinitRequested: true }), want: ['reinit'] },
  // --- a replica whose pod is being deleted (scale-down, eviction) ---
  { name: 'SIGTERM on a replica (async): stop at once', o: obs('m1', { terminating: true }), want: ['stop'] },
  { name: 'SIGTERM on a replica the record names: wait for the primary to record a set without it', o: obs('m1', { terminating: true, settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }) }), want: [], reason: /once m0 records a synchronous set without us/ },
  { name: 'SIGTERM on a replica the record names, waited a lease: stop anyway', o: obs('m1', { terminating: true, settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }), mem: { leavingSinceMs: 100_000 - 6000 } }), want: ['stop'], reason: /still records us/ },
  { name: 'SIGTERM on a replica the record no longer names: stop', o: obs('m1', { terminating: true, settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m2'] }) }), want: ['stop'] },
  { name: 'SIGTERM on a replica named by an expired lease (no primary to wait for): stop', o: obs('m1', { terminating: true, settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'], unchangedForMs: 7000 }) }), want: ['stop'] },
  { name: 'sync: a streaming member whose pod is being deleted leaves postgres\' set first', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }), pg: { ...pgPrimary, syncNames: ['m1', 'm2'] }, members: [member('m1'), member('m2', { leaving: true })] }), want: ['set_sync'] },
  { name: 'sync: then the record drops it once the others have every commit', o: obs('m0', { settings: { ...settings, syncMode: 'on' }, lease: lease({ syncStandbys: ['m1', 'm2'] }), pg: { ...pgPrimary, syncNames: ['m1'] }, members: [member('m1'), member('m2', { leaving: true })] }), want: ['renew_lease'] },
  // --- postgres down ---
  { name: 'half-made data dir: wipe', o: obs('m1', { pg: pgDown, dataDir: 'partial' }), want: ['wipe'] },
  { name: 'empty dir, no init lease: claim it', o: obs('m1', { pg: pgDown, dataDir: 'empty', init: null, lease: null }), want: ['acquire_init'] },
  { name: 'empty dir, we hold the init lease: bootstrap', o: obs('m1', { pg: pgDown, dataDir: 'empty', init: { holder: 'm1', initialized: false, unchangedForMs: 0 }, lease: null }), want: ['bootstrap'] },
  { name: 'empty dir, another bootstraps: wait', o: obs('m1', { pg: pgDown, dataDir: 'missing', init: { holder: 'm0', initialized: false, unchangedForMs: 0 }, lease: null }), want: [], reason: /waiting for m0/ },
  { name: 'empty dir, the bootstrapping member\'s pod is gone for a minute: take the init lease over', o: obs('m1', { pg: pgDown, dataDir: 'empty', init: { holder: 'm9', initialized: false, unchangedForMs: 60_000 }, lease: null }), want: ['acquire_init'] },
  { name: 'empty dir, bootstrapping member gone but only just now: wait (pods may not be listed yet)', o: obs('m1', { pg: pgDown, dataDir: 'empty', init: { holder: 'm9', initialized: false, unchangedForMs: 5_000 }, lease: null }), want: [] },
  { name: 'empty dir, initialized, healthy leader: clone', o: obs('m1', { pg: pgDown, dataDir: 'empty' }), want: ['clone'] },
  { name: 'empty dir, leader unhealthy: wait', o: obs('m1', { pg: pgDown, dataDir: 'empty', members: [primaryMember('m0', { healthy: false }), member('m2')] }), want: [] },
  { name: 'valid dir, was a standby: start as replica', o: obs('m1', { pg: pgDown, controlRole: 'standby' }), want: ['start'] },
  { name: 'valid dir, was primary, another leads: rewind first', o: obs('m1', { pg: pgDown, controlRole: 'primary' }), want: ['rewind'] },
  { name: 'valid dir, the lease names us, were primary: confirm, start read-only, then promote', o: obs('m0', { pg: pgDown, controlRole: 'primary' }), want: ['renew_lease', 'start'], reason: /read-only, then promoting/ },
  { name: 'SPLIT BRAIN: demoted primary with a stale view naming it: does not start writable', o: obs('m0', { pg: pgDown, controlRole: 'primary', lease: lease({ unchangedForMs: 7000 }) }), want: ['start'], reason: /replica/ },
  { name: 'valid dir, no leader: start as replica to take part', o: obs('m1', { pg: pgDown, controlRole: 'primary', lease: lease({ unchangedForMs: 60_000 }) }), want: ['start'] },
  { name: 'SIGTERM on a stopped member: stop', o: obs('m1', { pg: pgDown, terminating: true }), want: ['stop'] },
];

for (const r of rows) {
  test(r.name, () => {
    const d = decide(r.o);
    assert.deepEqual(d.actions.map((a) => a.type), r.want, d.reason);
    assert.ok(d.reason.length > 0 && !d.reason.includes('\n'), 'one-line reason');
    if (r.reason) assert.match(d.reason, r.reason);
  });
}

test('a start as replica follows the holder; as primary follows nobody', () => {
  const d = decide(obs('m1', { pg: pgDown, controlRole: 'standby' }));
  assert.deepEqual(d.actions[0], { type: 'start', as: 'replica', follow: { name: 'm0', host: '10.0.0.0', port: 5432 } });
});

test('the promotion order: confirm, unlabel, then promote (the read-write Service never selects two pods)', () => {
  const acts = decide(obs('m1', { lease: lease({ holder: 'm1' }) })).actions.map((a) => a.type);
  assert.ok(acts.indexOf('renew_lease') < acts.indexOf('unlabel') && acts.indexOf('unlabel') < acts.indexOf('promote'));
});

test('decide is pure: the same observation gives the same decision', () => {
  const o = obs('m1', { lease: lease({ unchangedForMs: 7000 }) });
  assert.deepEqual(decide(o), decide(structuredClone(o)));
});

test('hand-off target: the most advanced streaming replica; named target honoured', () => {
  const o = view('m0', { members: [member('m1', { lsn: 10n }), member('m2', { lsn: 20n })] });
  assert.equal(handoffTarget(o, null), 'm2');
  assert.equal(handoffTarget(o, 'm1'), 'm1');
  assert.equal(handoffTarget(o, 'm9'), null);
});

test('the hand-off avoids a pod the kubelet does not report Ready (the Service would be empty)', () => {
  const o = view('m0', { members: [member('m1', { lsn: 20n, ready: false }), member('m2', { lsn: 10n, ready: true })] });
  assert.equal(handoffTarget(o, null), 'm2');
  assert.equal(handoffTarget(o, 'm1'), 'm1', 'an explicit target is honoured');
});

test('rolling update: the hand-off prefers a member already on the new revision', () => {
  const o = view('m0', { revision: 'old', members: [member('m1', { lsn: 20n, revision: 'old' }), member('m2', { lsn: 10n, revision: 'new' })] });
  assert.equal(handoffTarget(o, null), 'm2');
  assert.equal(handoffTarget({ ...o, revision: null }, null), 'm1');
});

test('candidacy reasons name the blocker', () => {
  assert.match(candidacy(view('m1', { pg: { ...pgReplica, accepting: false } })).reason, /not accepting/);
  assert.match(candidacy(view('m1', { pg: pgPrimary })).reason, /not a replica/);
});

