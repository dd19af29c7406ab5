// The holes of issue 11 as fixed schedules on the simulated cluster (faults start after a 2 s
// warm-up; times below are relative to it). Each runs the real core under S1, S2, S3 (every step)
// and L1, plus the scenario's own assertion. How each was shown to fail on the old core (1e5df8b):
// see the note on each test; the old core's API (decide(o), shell-held memory) cannot drive this
// simulation, so the notes name the old code path the scenario exercises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World, Violation, WARMUP_MS, type WorldOptions } from './world.js';
import { LEASE_ANNOTATIONS as A } from '../../scripts/core/wire.js';
import { report } from './property.js';

const W = WARMUP_MS;
function sim(o: Partial<WorldOptions>): World {
  const opts: WorldOptions = { syncMode: 'off', failsafe: false, faults: [], ...o };
  const w = new World(opts);
  try { w.run(); } catch (e) {
    if (e instanceof Violation) assert.fail(report({ syncMode: opts.syncMode, failsafe: opts.failsafe, faults: opts.faults }, 0, 'named scenario') + `\n(named scenario's trace)\n${w.traceText(100)}`);
    throw e;
  }
  return w;
}
const writable = (w: World) => w.names.filter((n) => w.pgOf(n)!.writable && !w.frozen(n));

// old: decide.ts fell through with inRecovery unknown (no renew, no demote) and the watchdog returned
// without re-arming; m1 took the lease at ~6 s: two writable members for the rest of the 25 s (S1).
test('connection slots taken on the primary for 25 s: never two writable members', () => {
  for (const syncMode of ['off', 'on'] as const) sim({ syncMode, faults: [{ at: 0, kind: 'slots', m: 0, dur: 25_000 }] });
});

// old: stoppedTick renewed the lease and retried the start forever: no primary, ever (L1 fails).
test('unstartable primary: it gives the lease up and another member takes over while it stays broken', () => {
  let other: string | null = null;
  sim({
    faults: [{ at: 0, kind: 'crash', m: 0, dur: 1 }, { at: 0, kind: 'unstartable', m: 0, dur: 40_000 }],
    onStep: (w) => { if (w.T < W + 40_000) other ??= writable(w).find((n) => n !== 'm0') ?? null; },
  });
  assert.ok(other, 'a replica became primary while m0 could not start');
});

// old: the shell wrote take_lease on the resourceVersion cached after the probe: m1, whose watch is
// 7 s late, judges the lease expired, and its write lands on the renewal that arrived meanwhile.
test('take-over on a stale view: a late watch never deposes a primary that renews', () => {
  sim({
    faults: [{ at: 0, kind: 'slowWatch', m: 1, dur: 20_000, delay: 7_000 }, { at: 0, kind: 'slowWatch', m: 2, dur: 20_000, delay: 6_500 }],
    onStep: (w) => assert.equal(w.api.lease?.spec.holderIdentity, 'm0', `t=${w.T}: the lease moved off a healthy primary`),
  });
});

// old: m1's take-over PUT committed, its reply timed out; m1 then confirmed m0 over HTTP and promoted
// on its next tick anyway while m0, confirmed, stayed writable (S1).
test('failsafe: a take-over whose reply was lost is never followed by a promise to the old primary', () => {
  for (const d of [4_000, 6_500, 9_000]) {
    sim({ failsafe: true, faults: [{ at: 0, kind: 'apiCut', m: 0, dur: 12_000 }, { at: 0, kind: 'lostReplies', m: 1, dur: d }, { at: 0, kind: 'linkCut', m: 0, n: 1, dur: d - 1_000 }] });
  }
});

// old: POST /failsafe was honoured with failsafe mode off: a primary cut off from the API (or anyone
// with the token) kept every member from taking over (L1 fails).
test('failsafe off: requests to confirm a primary are refused, the failover happens', () => {
  const w = sim({
    failsafe: false, faults: [{ at: 0, kind: 'apiCut', m: 0, dur: 15_000 }],
    onStep: (w) => { if (w.T % 500 === 0) for (const n of ['m1', 'm2']) assert.equal(w.failsafe('m0', n, false), false, 'a member confirmed m0 with failsafe off'); },
  });
  assert.notEqual(w.api.lease?.spec.holderIdentity, 'm0');
});

// old: planSync shrank the recorded set to [m2] without checking m2 had flushed what m1 alone
// acknowledged; with m0 and m1 gone, m2 promoted without those commits (S2).
test('sync: set shrinks (m1 leaves) then the primary dies: no acknowledged commit lost', () => {
  for (const syncMode of ['on', 'strict'] as const) {
    sim({ syncMode, faults: [{ at: 0, kind: 'linkCut', m: 0, n: 2, dur: 8_000 }, { at: 3_000, kind: 'freeze', m: 1, dur: 20_000 }, { at: 7_000, kind: 'freeze', m: 0, dur: 20_000 }] });
  }
});

// old: the record's n was min(syncCount, |union|) while postgres still ran a smaller n: a member
// took over with fewer confirmations than the acknowledged commits had (S2).
test('sync: n mismatch (sync-count 2, a standby joins late) then the primary dies: nothing lost', () => {
  sim({ syncMode: 'on', syncCount: 2, faults: [{ at: 0, kind: 'linkCut', m: 0, n: 2, dur: 6_000 }, { at: 6_500, kind: 'freeze', m: 1, dur: 15_000 }, { at: 6_600, kind: 'freeze', m: 0, dur: 15_000 }] });
});

// old: a scale-down deleted synchronous standbys (their volumes kept) while the record still named
// them; the primary froze before it shrank the record, and the remaining members could never see
// enough of the set ("saw 2 of [m1..m4], need 4"): no primary, for good (L1). Now a leaving
// standby stays until the primary recorded a set without it, so the record never names a pod that
// is gone because the StatefulSet no longer wants it.
test('sync: scale 5 → 3 then the primary freezes the moment the last removed pod is gone: the others take over', () => {
  for (const syncMode of ['on', 'strict'] as const) {
    let froze = false;
    const w = sim({
      syncMode, members: 5,
      ops: [{ at: W + 1_000, run: (w) => w.scaleDown(3) }, { at: W + 45_000, run: () => undefined }],
      onStep: (w) => { if (!froze && w.T > W + 1_000 && !w.members.has('m3')) { froze = true; w.inject({ kind: 'freeze', m: 0, dur: 20_000 }); } },
    });
    assert.ok(froze, 'm3 was never removed');
    assert.notEqual(w.api.lease?.spec.holderIdentity, 'm0', `${syncMode}: nobody took over from the frozen m0`);
    assert.ok(w.stats.failovers >= 1, `${syncMode}: no failover`);
  }
});

// The lab e2e's "scale 5 → 2" with the primary among the removed pods (m2): m4 and m3 leave the
// set and go, then the primary hands over to m0 or m1 on SIGTERM, under a synchronous record.
test('sync: scale 5 → 2 with the primary among the removed: it hands over, no acknowledged commit lost', () => {
  for (const syncMode of ['on', 'strict'] as const) {
    const w = sim({
      syncMode, members: 5,
      faults: [{ at: 0, kind: 'switchover', m: 2, dur: 1 }],
      ops: [{ at: W + 6_000, run: (w) => { assert.equal(w.api.lease?.spec.holderIdentity, 'm2'); w.scaleDown(2); } }],
    });
    assert.ok(['m0', 'm1'].includes(w.api.lease?.spec.holderIdentity ?? ''), `${syncMode}: lease held by ${w.api.lease?.spec.holderIdentity}`);
  }
});

// old: with no standby the primary went asynchronous silently; here: `on` records the empty set
// first (no failover until a standby catches up), `strict` keeps waiting (no commit acknowledged).
test('sync: no standby left, then the primary dies: on = no failover on lost commits, strict = writes wait', () => {
  for (const syncMode of ['on', 'strict'] as const) {
    let ackedAlone = 0;
    const w0 = { n: 0 };
    sim({
      syncMode, faults: [{ at: 0, kind: 'linkCut', m: 0, n: 1, dur: 10_000 }, { at: 0, kind: 'linkCut', m: 0, n: 2, dur: 10_000 }, { at: 8_000, kind: 'freeze', m: 0, dur: 12_000 }],
      onStep: (w) => { if (w.T === W + 1_000) w0.n = w.stats.acked; if (w.T === W + 7_900) ackedAlone = w.stats.acked - w0.n; },
    });
    if (syncMode === 'strict') assert.equal(ackedAlone, 0, 'strict acknowledged a commit with no standby');
  }
});

// old: an unreachable rewind source counted as a failed rewind; after two the replicas wiped their
// data and re-cloned: a 60 s partition left one copy (wipes > 0).
test('replicas partitioned from the primary for 60 s: no wipe', () => {
  const w = sim({ faults: [{ at: 0, kind: 'linkCut', m: 0, n: 1, dur: 60_000 }, { at: 0, kind: 'linkCut', m: 0, n: 2, dur: 60_000 }] });
  assert.equal(w.stats.wipes, 0);
});

// old: rollingUpdate's `settled` looked only at listed pods: m2's pod vanished before its
// replacement was listed and m1 was deleted too (two members down at once).
test('rolling update: a deleted pod that vanished is not "settled": one member down at a time', () => {
  const w = sim({ ops: [{ at: W + 1_000, run: (w) => { w.api.updateRevision = 'r2'; w.api.putPod(w.api.pods.get('m0')!, 'm0'); } }, { at: W + 40_000, run: () => undefined }] });
  assert.ok(w.stats.evictions >= 2, `evictions: ${w.stats.evictions}`);
  assert.ok(w.stats.maxAbsent <= 1, `${w.stats.maxAbsent} pods absent at once`);
  assert.deepEqual([...w.api.pods.values()].map((p) => p.revision), ['r2', 'r2', 'r2']);
});

// old (shell): the watchdog SIGQUIT the slow shutdown and the catch-up check compared against the
// previous checkpoint, so a lagging target passed; here the hand-off must lose no acknowledged write.
test('hand-off with a slow checkpoint: a planned switchover loses no acknowledged write', () => {
  const w = sim({ faults: [{ at: 0, kind: 'slowCheckpoint', m: 0, dur: 30_000 }, { at: 500, kind: 'switchover', m: 1, dur: 1 }, { at: 500, kind: 'linkCut', m: 0, n: 1, dur: 3_000 }] });
  const p = writable(w)[0]!;
  const have = new Set(w.pgOf(p)!.wal);
  for (const id of w.acked.keys()) assert.ok(have.has(id), `commit ${id} lost by the switchover`);
});

// old: the system identifier was never compared: m2, holding another cluster's data far ahead in
// WAL, won the election on raw WAL position.
test('foreign data directory: never promoted, never started', () => {
  sim({
    exclude: ['m2'],
    faults: [{ at: 3_000, kind: 'freeze', m: 0, dur: 20_000 }],
    ops: [{ at: W + 500, run: (w) => { const p = w.pgOf('m2')!; p.stop(); p.systemId = '7399999999999999999'; p.wal = p.wal.concat(Array.from({ length: 5000 }, (_, i) => -1 - i)); p.wasPrimary = false; } }],
    onStep: (w) => assert.ok(!w.pgOf('m2')!.running || w.pgOf('m2')!.systemId !== '7399999999999999999', 'the foreign data directory was started'),
  });
});

// old: a hand-edited sync-count larger than the set made |set| - n + 1 ≤ 0: any member took over.
// The edit lands after the primary's last write before it freezes (a primary that lives on
// rewrites the count it runs with, and the failover that follows is legitimate).
test('hand-edited sync-count: no failover on a lease that cannot be trusted', () => {
  sim({
    syncMode: 'on', noL1: true,
    faults: [{ at: 1_000, kind: 'linkCut', m: 0, n: 2, dur: 30_000 }, { at: 3_000, kind: 'freeze', m: 0, dur: 30_000 }],
    ops: [{ at: W + 2_900, run: (w) => w.api.editLease((l) => { l.metadata.annotations[A.syncCount] = '5'; }) }],
    onStep: (w) => { if (w.T < W + 33_000) assert.deepEqual(writable(w).filter((n) => n !== 'm0'), [], 'a member took over on a bad sync-count'); },
  });
});

// Issue 11 item 10: the thaw window. Measured, not exempted beyond the autopilot's first run.
test('frozen primary: thaw window bounded, no acknowledged write in it in sync mode', () => {
  for (const syncMode of ['off', 'on', 'strict'] as const) {
    const w = sim({ syncMode, faults: [{ at: 0, kind: 'freeze', m: 0, dur: 10_000 }] });
    console.log(`thaw (${syncMode}): window ${w.stats.thawWindowMaxMs} ms, ${w.stats.thawAcked} writes acknowledged in it; L1 ${w.stats.l1Ms} ms`);
    if (syncMode !== 'off') assert.equal(w.stats.thawAcked, 0);
  }
});

// FOUND BY THE SIMULATION (property run, seed 1000004, shrunk): open, not fixed on this branch.
// m0 is cut off from the API and demotes; m1 takes the lease (rv 104) and promotes. m1's watch is
// slow: it then delivers the OLDER version (rv 103, holder m0) after m1's own write, the cache goes
// backwards (the shell's informer, like this simulation, applies every event it receives), m1
// demotes, rewinds against m0 (a replica) and drops its own WAL, then promotes again on rv 104.
// Between its first promote and its first primary tick m1 ran with synchronous_standby_names = ''
// (act.ts promote resets st.sync; the promote action carries no set), so in `strict` it had
// acknowledged a commit on itself alone: lost (S2). Two fixes are needed, both outside the core:
// the lease cache must never move to an older resourceVersion, and a promote must apply the
// recorded synchronous set before postgres leaves recovery (as start{sync} does).
test('FOUND: a stale watch event after our own take-over, with an asynchronous window after promote (strict)', () => {
  sim({ syncMode: 'strict', faults: [{ at: 2100, kind: 'apiCut', m: 0, dur: 6300 }, { at: 6200, kind: 'slowWatch', m: 1, dur: 1900, delay: 1300 }] });
});

// Found by the simulation (seed 1): a replica's pod is deleted and recreated (SIGTERM) just as the
// primary is cut off from the API server; the primary never sees the new pod, its failsafe rounds
// asked only the members its pod cache listed, so every round "confirmed" it while the recreated
// member, never asked, took the expired lease: two writable members. A failsafe round now asks
// every member a healthy pod list showed within two lease durations (core: updateKnownMembers).
test('FOUND: failsafe rounds must ask a member whose pod was recreated while the primary is cut off', () => {
  sim({ syncMode: 'off', failsafe: true, faults: [{ at: 5400, kind: 'apiCut', m: 0, dur: 6600 }, { at: 3400, kind: 'sigterm', m: 1, dur: 100 }] });
});

// Found by the CI (the process-level blip test failed 3 runs in 3 once the loop's phase shifted):
// the renewal was due `renewMs` after the last one, but the loop only looked every `loopMs`, so a
// tick landing a few ms early pushed it a whole loop later (every ~3 s, not 2 s), and a failed
// renewal waited a whole loop before its retry. An API outage of deadline - renew - 1 s (1.5 s at
// the defaults) in the worst phase, just before a renewal, then demoted the primary and failed over.
// Every phase of a renewal period is tried; requests hang for their whole timeout here (no reset
// when the API comes back), the pessimistic case.
test('failsafe off: an API outage of renewDeadline - renew - 1 s, in any phase, demotes nobody', () => {
  const blip = 4_500 - 2_000 - 1_000;
  for (let at = 0; at < 3_000; at += 100) {
    const w = sim({
      failsafe: false, faults: [0, 1, 2].map((m) => ({ at, kind: 'apiCut' as const, m, dur: blip })),
      onStep: (w) => { if (w.T > W) assert.deepEqual(writable(w), ['m0'], `outage at +${at} ms: at t=${w.T - W} the primary is not m0 alone`); },
    });
    assert.equal(w.stats.failovers, 0, `outage at +${at} ms: failover`);
  }
});
