// The holes of issue 11 that holes.test.ts does not stage, each the process-level twin of a named
// simulation scenario (test/sim/scenarios.test.ts): a take-over on a stale view, failsafe with a
// lost reply, a hand-off whose shutdown checkpoint is slow. Real entrypoints, PostgreSQL 15 and a
// kube-apiserver; the faults come from the HTTP fault layer (http-faults.ts), cgroup link cuts
// (links.ts) and signals. Timings are figures; the assertions are about correctness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Cluster, Writer, sleep } from './cluster-harness.js';
import { scenarioFile, healthy, missing, watchSplitBrain, memberLog, isRoot, killPod, scaleDownPod } from './scenario.js';

const { kube, fig } = scenarioFile('holes-b-figures.json');
const FAILOVERS = 'pg-autopilot.io/failovers';
const LEADER_PUT = /\/leases\/pg-leader$/;

/** A member's structured log entries written after `from` (a length of memberLog taken earlier). */
function entries(c: Cluster, name: string, from = 0): Record<string, any>[] {
  return memberLog(c, name).slice(from).split('\n').flatMap((l) => {
    try { const e = JSON.parse(l); return e && typeof e === 'object' ? [e] : []; } catch { return []; }
  });
}

/** The pid of the child of `parent` whose command line contains `what` (a postgres auxiliary process). */
function childPid(parent: number, what: string): number {
  const line = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)]).toString().split('\n').find((l) => l.includes(what));
  if (!line) throw new Error(`no "${what}" process under pid ${parent}`);
  return Number(line.trim().split(/\s+/)[0]);
}

test('take-over on a stale view: replicas whose watch is 7 s late never take the lease from a primary that renews (slowly)', async (t) => {
  if (!isRoot) { t.skip('needs root (iptables, cgroups)'); return; }
  const c = await Cluster.start(kube(), { faults: true, cgroups: true });
  try {
    const p = await healthy(c, 3);
    const [r1, r2] = c.members.filter((m) => m.name !== p).map((m) => m.name) as [string, string];
    const l0 = await c.lease();
    const from = { [r1]: memberLog(c, r1).length, [r2]: memberLog(c, r2).length };
    // The primary's renewals reach the API server 1 s late (inside its 4.5 s deadline); each
    // replica's watch delivers every change 7 s (6.5 s) late, longer than the 6 s lease: for a
    // while it sees no renewal at all, judges the lease expired, and tries to take it.
    c.member(p).proxy.http!.faults.slow = { method: 'PUT', path: LEADER_PUT, ms: 1_000 };
    c.member(r1).proxy.http!.faults.watchDelayMs = 7_000;
    c.member(r2).proxy.http!.faults.watchDelayMs = 6_500;
    // A replica that judged the lease expired asks the other members for their state. The first
    // time, its late watch catches up while it asks (and the primary's next renewal waits until
    // it has written): the version it decided on is no longer the one it holds when it writes.
    // The next times its write goes out on the version it decided on, long since renewed.
    for (const [me, other] of [[r1, r2], [r2, r1]] as const) {
      await c.tapApi(me, other, async (n) => {
        if (n !== 1) return;
        c.member(p).proxy.http!.faults.slow!.until = Date.now() + 400; // a held renewal waits ≤ 1.4 s in all
        c.member(me).proxy.http!.flushWatches();
        await sleep(150);
      });
    }
    const at = Date.now();
    const holders = new Set<string>();
    const versions = new Set<string>();
    const replicaLog = (): Record<string, any>[] => [r1, r2].flatMap((r) => entries(c, r, from[r]).map((e) => ({ ...e, member: r })));
    const refusedIn = (log: Record<string, any>[]) => log.filter((e) => e.msg === 'lease changed under us; re-reading' && e.status === 409);
    const staleIn = (log: Record<string, any>[]) => log.filter((e) => e.msg === 'action take_lease skipped' && /changed since the decision/.test(String(e.why)));
    // at least 14 s (two lease durations and more), at most 22 s: until both kinds of refusal were seen
    const seenBoth = () => { const l = replicaLog(); return staleIn(l).length > 0 && refusedIn(l).length > 0; };
    const split = await watchSplitBrain(c, async () => {
      for (let i = 0; Date.now() - at < 22_000 && !(Date.now() - at >= 14_000 && i % 10 === 0 && seenBoth()); i++) {
        const l = await c.lease();
        holders.add(String(l?.spec?.holderIdentity));
        versions.add(String(l?.metadata?.resourceVersion));
        await sleep(100);
      }
    }, 100);
    const watched = Date.now() - at;
    for (const m of c.members) Object.assign(m.proxy.http!.faults, { slow: null, watchDelayMs: 0 });
    const log = replicaLog();
    const attempts = log.filter((e) => e.msg === 'decision' && /expired.*: taking it/.test(String(e.reason)));
    const refused = refusedIn(log);
    const stale = staleIn(log);
    const took = log.filter((e) => String(e.msg).startsWith('took the lease'));
    fig(t, 'stale view: watched for', watched);
    fig(t, 'stale view: take-over attempts (replicas that judged the lease expired)', attempts.map((e) => e.member).join(',') || 'none');
    fig(t, 'stale view: attempts refused by the conditional write (409)', refused.length, 'writes');
    fig(t, 'stale view: attempts dropped before the write (lease moved since the decision)', stale.length, 'attempts');
    fig(t, 'stale view: lease versions seen (renewals 1 s slow)', versions.size, 'versions');
    assert.ok(attempts.length >= 1, 'no replica judged the lease expired: the late watch staged nothing');
    assert.deepEqual(took.map((e) => e.member), [], 'a replica took the lease from a primary that renews');
    const trail = JSON.stringify(log.filter((e) => /lease|take/.test(String(e.msg)) || e.msg === 'decision').slice(-8));
    assert.ok(stale.length >= 1, `the watch never caught up between a take-over decision and its write: ${trail}`);
    assert.ok(refused.length >= 1, `no take-over write was refused by the API server: ${trail}`);
    assert.deepEqual([...holders], [p], 'the lease never leaves the primary');
    assert.ok(versions.size >= 5, `the primary renewed only ${versions.size - 1} times in ${watched} ms`);
    const l1 = await c.lease();
    assert.equal(l1.metadata.annotations?.[FAILOVERS] ?? '0', l0.metadata.annotations?.[FAILOVERS] ?? '0', 'no failover was counted');
    assert.equal(l1.spec.leaseTransitions ?? 0, l0.spec.leaseTransitions ?? 0);
    assert.deepEqual(split, [], 'never two writable members');
    assert.equal(await c.waitForPrimary(10_000), p);
  } finally {
    await c.stop();
  }
});

test('failsafe with a lost reply: a take-over that may have committed is never followed by a promise to the old primary', async (t) => {
  if (!isRoot) { t.skip('needs root (iptables, cgroups)'); return; }
  // m0 bootstraps alone, so it is the primary; m2 may not take over (nofailover), so the take-over
  // is m1's, the member whose replies are lost (in the simulation m1 wins the tie by name).
  const c = await Cluster.start(kube(), { members: 1, faults: true, cgroups: true, memberEnv: { m2: { PGA_NOFAILOVER: 'true' } } });
  try {
    assert.equal(await c.waitForPrimary(90_000), 'm0');
    for (const n of ['m1', 'm2']) { await c.addMember(n); c.startMember(n); }
    await c.waitForReplicas('m0', 2, 90_000);
    const rv = (await c.lease()).metadata.resourceVersion;
    await c.waitFor('a renewal', async () => (await c.lease()).metadata.resourceVersion !== rv, 5_000, 20);
    // m1 must have seen that renewal before its replies are lost: its take-over is then written on
    // the version m0 last wrote, and commits (the renewal before it is 2 s older than this bound)
    const renewedAt = Date.now();
    await c.waitFor('m1 saw the renewal', async () => { const age = (await c.status('m1'))?.leaseAgeMs; return typeof age === 'number' && age < Date.now() - renewedAt + 1_000; }, 3_000, 10);
    const from = Object.fromEntries(c.members.map((m) => [m.name, memberLog(c, m.name).length]));
    const m1 = c.member('m1').proxy.http!;
    // m0 loses the API; m0 and m1 lose each other (m0's failsafe rounds fail, it demotes at its
    // deadline); every reply to m1 is lost (its view freezes, its take-over commits unanswered).
    const at = Date.now();
    c.member('m0').proxy.cut('blackhole');
    const relink = c.cutLink('m0', 'm1');
    m1.faults.lostReplies = {};
    const answers: { ms: number; member: string; status: number; message: string }[] = [];
    // m0 itself has demoted before m1's take-over can be in doubt (its 4.5 s deadline runs out
    // before m1's 6 s lease), so the test sends what m0's failsafe round sends (same body, same
    // token): the answer is what m0 would get. The members do not log their answers.
    const ask = async (member: string) => {
      const r = await c.api(member, 'POST', '/failsafe', { leader: 'm0' });
      answers.push({ ms: Date.now() - at, member, status: r.status, message: String(r.body?.message ?? '') });
    };
    let doubtAt = 0;
    let np = '';
    const split = await watchSplitBrain(c, async () => {
      await c.waitFor("m1's take-over in doubt", async () => entries(c, 'm1', from.m1).some((e) => e.msg === 'lease write failed' && e.inDoubt === true), 25_000, 100);
      doubtAt = Date.now() - at;
      assert.equal((await c.lease())?.spec?.holderIdentity, 'm1', `m1's take-over did not commit (the API server answered ${JSON.stringify(m1.lost.map((l) => [l.method, l.path, l.status]))})`);
      for (let i = 0; i < 3; i++) { await ask('m1'); await ask('m2'); await sleep(300); }
      relink(); // the link comes back first, m1's replies a second later (as in the simulation)
      await ask('m1');
      await sleep(1_000);
      await ask('m1');
      m1.faults.lostReplies = null;
      await sleep(1_000);
      c.member('m0').proxy.restore();
      np = await c.waitForPrimary(30_000, 'm0');
    }, 100);
    fig(t, 'failsafe, lost reply: m1 take-over in doubt after the cut', doubtAt);
    fig(t, 'failsafe, lost reply: answers to "confirm m0"', answers.map((a) => `${a.member}@${a.ms}ms ${a.status}`).join('; '));
    fig(t, 'failsafe, lost reply: new primary writable after the cut', Date.now() - at);
    const lostPuts = m1.lost.filter((l) => l.method === 'PUT' && LEADER_PUT.test(l.path));
    assert.ok(lostPuts.some((l) => l.status === 200), `m1's take-over write did not commit unanswered: ${JSON.stringify(m1.lost.map((l) => [l.method, l.path, l.status]))}`);
    const inDoubt = answers.filter((a) => a.member === 'm1');
    for (const a of inDoubt) assert.deepEqual([a.status, /may have committed/.test(a.message)], [409, true], `m1 answered ${a.status} "${a.message}" at ${a.ms} ms while its take-over was in doubt`);
    for (const a of answers.filter((x) => x.member === 'm2')) assert.equal(a.status, 409, `m2 confirmed m0 while the lease names m1: "${a.message}"`);
    const m0log = entries(c, 'm0', from.m0);
    assert.ok(m0log.some((e) => e.msg === 'failsafe: not every member confirmed us'), 'm0 ran no failsafe round that m1 failed to confirm');
    assert.ok(m0log.some((e) => e.msg === 'demoting: stopping postgres immediately'), 'm0 never demoted');
    assert.deepEqual(split, [], 'never two writable members');
    assert.equal(np, 'm1');
    assert.equal((await c.lease()).metadata.annotations?.[FAILOVERS], '1');
    await c.waitForReplicas('m1', 2, 60_000);
    fig(t, 'failsafe, lost reply: all streaming from m1 after the cut', Date.now() - at);
  } finally {
    await c.stop();
  }
});

test('hand-off with a slow checkpoint: a planned switchover to a lagging target loses no acknowledged write', async (t) => {
  const c = await Cluster.start(kube());
  const stopped: number[] = [];
  const resume = () => { for (const pid of stopped.splice(0)) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } } };
  try {
    const p = await healthy(c, 3);
    const target = c.members.find((m) => m.name !== p)!.name;
    const w = await Writer.start(c, p, { everyMs: 20 });
    await w.warm();
    const sender = Number((await c.sql(p, 'select pid from pg_stat_replication where application_name = $1', [target]))[0]?.pid);
    const checkpointer = childPid(c.postmasterPid(p)!, 'checkpointer');
    let lagFrom = 0;
    let at = 0;
    let stall = 0;
    let np = '';
    const from = memberLog(c, p).length;
    const split = await watchSplitBrain(c, async () => {
      // The target lags: the primary's WAL sender to it stops, commits go on (asynchronous).
      process.kill(sender, 'SIGSTOP');
      stopped.push(sender);
      lagFrom = Date.now();
      await sleep(1_000);
      // The switchover starts while no shutdown checkpoint can be written, until the renew
      // deadline (4.5 s after the last renewal) has passed and the watchdog cut the slow shutdown
      // short: postgres stops without its final checkpoint, and the hand-off must notice.
      process.kill(checkpointer, 'SIGSTOP');
      stopped.push(checkpointer);
      at = Date.now();
      const r = await c.api(target, 'POST', '/switchover', { to: target });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      await c.waitFor(`${p}'s watchdog`, async () => entries(c, p, from).some((e) => e.msg === 'watchdog: stopping postgres now'), 15_000, 50).catch(() => undefined);
      await sleep(200);
      stall = Date.now() - at;
      resume();
      np = await c.waitForPrimary(40_000);
      await c.waitFor('writes through the primary', async () => w.acked.some((a) => a.at > at + 6_100), 30_000, 20);
      await sleep(1_000);
    }, 50);
    await w.stop();
    const lost = await missing(c, np, 'w', w.acked.map((a) => a.id));
    assert.ok(entries(c, p, from).some((e) => e.msg === 'watchdog: stopping postgres now'), `the watchdog never cut ${p}'s slow shutdown short: nothing staged`);
    const handoff = entries(c, p, from).filter((e) => /^hand-off/.test(String(e.msg))).map((e) => e.msg);
    fig(t, 'slow checkpoint hand-off: checkpointer stopped for', stall);
    fig(t, 'slow checkpoint hand-off: outcome', np === target ? `switched over to ${target}` : np === p ? `aborted, ${p} primary again` : `failover to ${np}`);
    fig(t, 'slow checkpoint hand-off: the old primary said', handoff.slice(-1)[0] ?? '(nothing)');
    fig(t, 'slow checkpoint hand-off: rows the target lacked when asked', w.acked.filter((a) => a.at >= lagFrom && a.at <= at).length, 'rows');
    fig(t, 'slow checkpoint hand-off: writes unavailable', w.longestGapMs(at));
    fig(t, 'slow checkpoint hand-off: acknowledged writes', w.acked.length, 'rows');
    fig(t, 'slow checkpoint hand-off: acknowledged writes lost', lost.length, 'rows');
    assert.deepEqual(split, [], 'one writable member at a time');
    assert.equal(lost.length, 0, `lost acknowledged ids: ${lost.slice(0, 10).join(', ')}`);
  } finally {
    resume();
    await c.stop();
  }
});

// Twin of the simulation's "scale 5 → 3 then the primary freezes": a scale-down deleted a
// synchronous standby whose name the lease's record still carried; the primary died before it
// shrank the record, and the last member could never see enough of the set to take over (the lab
// e2e's "scale 5 → 2": "saw 2 of [0, 1, 3, 4], need 4"). Fails on the old code at the first
// assertion (the standby stopped at once, still recorded) and then at the take-over.
test('sync mode: a scale-down removes a synchronous standby, the primary dies the moment it is gone: the last member takes over, 0 lost', async (t) => {
  const c = await Cluster.start(kube(), { env: { PGA_SYNC_MODE: 'on' } });
  let w: Writer | null = null;
  try {
    const p = await healthy(c, 3);
    const syncSet = async () => ((await c.lease())?.metadata.annotations?.['pg-autopilot.io/sync-standbys'] ?? '').split(',').filter(Boolean);
    await c.waitFor('synchronous set of 2', async () => (await syncSet()).length === 2, 30_000);
    w = await Writer.start(c, p, { everyMs: 20 });
    await w.warm();
    const [keep, leave] = c.members.filter((m) => m.name !== p).map((m) => m.name).sort() as [string, string];
    const stopMs = await scaleDownPod(c, leave);
    const recorded = await syncSet();
    fig(t, 'scale-down: the leaving synchronous standby stopped after', stopMs);
    fig(t, 'scale-down: synchronous set recorded when it was gone', recorded.join(',') || '(empty)');
    assert.ok(!recorded.includes(leave), `${leave} stopped while the record still named it: [${recorded.join(', ')}]`);
    const at = Date.now();
    await killPod(c, p);
    const np = await c.waitForPrimary(30_000, p);
    assert.equal(np, keep);
    const writer = w;
    await c.waitFor('writes through the new primary', async () => writer.acked.some((a) => a.at > at + 50), 30_000, 20);
    await sleep(500);
    await w.stop();
    fig(t, 'scale-down then primary kill: writes unavailable', w.longestGapMs(at));
    const lost = await missing(c, np, 'w', w.acked.map((a) => a.id));
    fig(t, 'scale-down then primary kill: acknowledged writes lost', lost.length, 'rows');
    assert.equal(lost.length, 0, `lost acknowledged ids: ${lost.slice(0, 10).join(', ')}`);
  } finally {
    await w?.stop();
    await c.stop();
  }
});
