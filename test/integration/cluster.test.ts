// Scenarios with whole members (the real entrypoint, real PostgreSQL, a real kube-apiserver).
// Timings are printed as figures (t.diagnostic), never asserted: the assertions are about
// correctness — one writable primary, the right labels, no acknowledged write lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, readdirSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Cluster, Writer, sleep, TOKEN } from './cluster-harness.js';
import { scenarioFile, healthy, disrupt as disruptWith, missing, watchSplitBrain, type Diag } from './scenario.js';

const { kube, fig } = scenarioFile('integration-figures.json');
const CLI = fileURLToPath(new URL('../../scripts/cli.js', import.meta.url));
const disrupt = (c: Cluster, t: Diag, figure: string, disruption: (p: string) => Promise<void>, timeoutMs?: number) => disruptWith(c, t, fig, figure, disruption, timeoutMs);

/** Acknowledged writes missing on the member now primary. */
const lostWrites = async (c: Cluster, primary: string, w: Writer) => missing(c, primary, 'w', w.acked.map((a) => a.id));

test('bootstrap of 3: one primary, two streaming replicas, labels and API', async (t) => {
  const t0 = Date.now();
  const c = await Cluster.start(kube());
  try {
    const p = await c.waitForPrimary(90_000);
    fig(t, 'bootstrap: first primary writable', Date.now() - t0);
    await c.waitForReplicas(p, 2);
    fig(t, 'bootstrap: 3 members streaming', Date.now() - t0);
    const pods = await c.pods();
    const roles = Object.fromEntries(pods.map((x) => [x.metadata.name, x.metadata.labels['pg-autopilot.io/role']]));
    assert.equal(Object.values(roles).filter((r) => r === 'primary').length, 1, JSON.stringify(roles));
    await c.waitFor('replica labels', async () => (await c.pods()).filter((x) => x.metadata.labels['pg-autopilot.io/role'] === 'replica').length === 2);
    // data written on the primary reaches the replicas
    await c.sql(p, 'create table t (v text)');
    await c.sql(p, "insert into t values ('hello')");
    for (const m of c.members.filter((m) => m.name !== p)) {
      await c.waitFor(`row on ${m.name}`, async () => (await c.sql(m.name, 'select v from t').catch(() => [])).length === 1, 10_000);
    }
    // the app user and database exist
    const roles2 = await c.sql(p, "select rolname from pg_roles where rolname in ('app','replicator') order by 1");
    assert.deepEqual(roles2.map((r) => r.rolname), ['app', 'replicator']);
    // HTTP API
    assert.equal((await c.api(p, 'GET', '/primary')).status, 200);
    assert.equal((await c.api(p, 'GET', '/replica')).status, 503);
    const r = c.members.find((m) => m.name !== p)!.name;
    assert.equal((await c.api(r, 'GET', '/primary')).status, 503);
    await c.waitFor('replica endpoint', async () => (await c.api(r, 'GET', '/replica')).status === 200, 10_000);
    assert.equal((await c.api(r, 'GET', '/readyz')).status, 200);
    assert.equal((await c.api(p, 'POST', '/switchover', {}, null)).status, 401);
    assert.equal((await c.api(p, 'POST', '/switchover', {}, 'wrong')).status, 403);
    const metrics = (await c.api(p, 'GET', '/metrics')).body as string;
    assert.match(metrics, /pga_role\{role="primary"\} 1/);
    assert.match(metrics, /pga_lease_holder 1/);
    // readiness follows replication lag: a replica whose replay is paused falls behind by more
    // than PGA_MAX_LAG_BYTES (16 MiB) and leaves the Services; resumed, it comes back
    await c.sql(r, 'select pg_wal_replay_pause()');
    await c.sql(p, "create table big as select g, repeat('x', 200) as pad from generate_series(1, 120000) g");
    await c.waitFor('lagging replica not ready', async () => {
      const s = (await c.api(r, 'GET', '/status')).body;
      return s.member.lagBytes > 16 * 1024 * 1024 && (await c.api(r, 'GET', '/readyz')).status === 503;
    }, 20_000, 200);
    await c.sql(r, 'select pg_wal_replay_resume()');
    await c.waitFor('caught-up replica ready again', async () => (await c.api(r, 'GET', '/readyz')).status === 200, 20_000, 200);
  } finally {
    await c.stop();
  }
});

test('SIGKILL of the primary\'s postgres: restarted in place, no failover', async (t) => {
  const c = await Cluster.start(kube());
  try {
    const p = await healthy(c, 3);
    const w = await Writer.start(c, p);
    await sleep(1_000);
    const pid = c.postmasterPid(p)!;
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await c.waitFor('a new postmaster', async () => { const n = c.postmasterPid(p); return n !== null && n !== pid; }, 20_000);
    await c.waitFor('writes again', async () => w.acked.some((a) => a.at > killedAt), 30_000, 20);
    await sleep(1_000);
    await w.stop();
    fig(t, 'postgres SIGKILL on primary: writes unavailable', w.longestGapMs(killedAt));
    assert.equal((await c.lease()).spec.holderIdentity, p, 'the same member stays primary');
    assert.equal(await c.waitForPrimary(10_000), p);
  } finally {
    await c.stop();
  }
});

test('planned switchover through the API, to a named member, then back with the CLI semantics (any)', async (t) => {
  const c = await Cluster.start(kube());
  try {
    let target = '';
    const { np, w } = await disrupt(c, t, 'switchover (API): writes unavailable', async (p) => {
      target = c.members.find((m) => m.name !== p)!.name;
      const r = await c.api(target, 'POST', '/switchover', { to: target });
      assert.equal(r.status, 202, JSON.stringify(r.body));
    }, 20_000);
    assert.equal(np, target);
    // the old primary rejoins as a replica; nothing acknowledged is missing
    await c.waitForReplicas(np, 2, 60_000);
    const lost = await lostWrites(c, np, w);
    assert.equal(lost.length, 0, `lost ${lost.length} acknowledged writes`);
    // unknown member → 400
    assert.equal((await c.api(np, 'POST', '/switchover', { to: 'nobody' })).status, 400);
  } finally {
    await c.stop();
  }
});

test('SIGTERM on the primary (pod delete, rolling update): hands over, then rejoins when restarted', async (t) => {
  const c = await Cluster.start(kube());
  try {
    const { p, np, w } = await disrupt(c, t, 'SIGTERM switchover: writes unavailable', async (p) => {
      const at = Date.now();
      await c.signal(p, 'SIGTERM');
      fig(t, 'SIGTERM on primary: entrypoint exit', Date.now() - at);
    }, 20_000);
    assert.notEqual(np, p);
    assert.equal((await c.lease()).metadata.annotations?.['pg-autopilot.io/failovers'] ?? '0', '0', 'a hand-off is not a failover');
    c.startMember(p);
    await c.waitForReplicas(np, 2, 60_000);
    assert.equal((await lostWrites(c, np, w)).length, 0);
  } finally {
    await c.stop();
  }
});

test('SIGKILL of the primary\'s entrypoint: failover within the lease, old primary rejoins by pg_rewind', async (t) => {
  const c = await Cluster.start(kube());
  try {
    let r: Awaited<ReturnType<typeof disrupt>> | undefined;
    const split = await watchSplitBrain(c, async () => {
      r = await disrupt(c, t, 'entrypoint SIGKILL on primary (failover): writes unavailable', (p) => c.signal(p, 'SIGKILL', 5_000));
    });
    assert.deepEqual(split, [], 'never two writable primaries');
    const { p, np, at } = r!;
    // The old primary had writes the others may not have had (async): it must rewind to rejoin.
    await c.sql(np, 'select 1');
    c.startMember(p);
    await c.waitForReplicas(np, 2, 90_000);
    fig(t, 'old primary rejoined as replica after restart', Date.now() - at);
    assert.equal(await c.waitForPrimary(5_000), np);
  } finally {
    await c.stop();
  }
});

test('frozen primary (entrypoint and postgres stopped, like a paused container): failover, then it demotes on thaw', async (t) => {
  const c = await Cluster.start(kube());
  try {
    const { p, np, at, writesBackAt } = await disrupt(c, t, 'frozen primary: writes unavailable', async (p) => c.freeze(p));
    fig(t, 'frozen primary: new primary writable after', writesBackAt - at);
    const thawAt = Date.now();
    c.freeze(p, false);
    await c.waitFor('thawed old primary read-only', async () => !(await c.writable()).includes(p), 10_000, 20);
    fig(t, 'frozen primary: read-only after thaw', Date.now() - thawAt);
    assert.deepEqual(await c.labelledPrimaries(), [np]);
    await c.waitForReplicas(np, 2, 90_000);
    fig(t, 'frozen primary: rejoined as replica after thaw', Date.now() - thawAt);
  } finally {
    await c.stop();
  }
});

test('failsafe off: an API-server outage of renewDeadline - renew - 0.5 s (2 s), starting just before a renewal, demotes nobody', async (t) => {
  // Failsafe off: what is tested is the renew deadline's margin alone (with failsafe, the next test).
  // The worst phase: the cut starts just before the renewal is due, so the last confirmed renewal
  // is a whole renew interval old when the outage begins (the simulation tries every phase).
  const c = await Cluster.start(kube(), { env: { PGA_FAILSAFE: 'false' } });
  try {
    const p = await healthy(c, 3);
    const w = await Writer.start(c, p);
    await sleep(1_000);
    const rv = (await c.lease()).metadata.resourceVersion;
    const renewedAt = await c.waitFor('a renewal', async () => (await c.lease()).metadata.resourceVersion !== rv && Date.now(), 5_000, 10);
    await sleep(2_000 - 150 - (Date.now() - renewedAt));
    const at = Date.now();
    for (const m of c.members) m.proxy.cut('blackhole');
    const states: string[] = [];
    while (Date.now() - at < 2_000) { states.push(...(await c.roles()).filter((r) => r.name === p && r.role !== 'writable').map((r) => r.role)); await sleep(100); }
    for (const m of c.members) m.proxy.restore();
    await sleep(8_000); // past the lease: nobody may have taken over
    await w.stop();
    assert.deepEqual(states.filter((s) => s !== 'no answer'), [], 'the primary stayed writable through the outage');
    assert.equal(c.grep(p, 'demoting').length, 0, 'the primary never demoted');
    const l = await c.lease();
    assert.equal(l.spec.holderIdentity, p);
    assert.equal(l.metadata.annotations?.['pg-autopilot.io/failovers'] ?? '0', '0');
    assert.equal(await c.waitForPrimary(10_000), p);
    fig(t, 'API outage 2 s before a renewal: writes unavailable', w.longestGapMs(at));
  } finally {
    await c.stop();
  }
});

test('failsafe mode (the default): an API outage longer than the lease keeps the primary while every member confirms it', async (t) => {
  const c = await Cluster.start(kube(), { env: { PGA_FAILSAFE: 'true' } });
  try {
    const p = await healthy(c, 3);
    const w = await Writer.start(c, p);
    await sleep(1_000);
    // 1. the whole API is gone for 12 s (twice the lease)
    let at = Date.now();
    for (const m of c.members) m.proxy.cut('blackhole');
    let unwritable = 0;
    while (Date.now() - at < 12_000) { if (!(await c.writable()).includes(p)) unwritable++; await sleep(200); }
    for (const m of c.members) m.proxy.restore();
    assert.equal(unwritable, 0, 'the primary stayed writable through a 12 s API outage');
    fig(t, 'failsafe, 12 s API outage: writes unavailable', w.longestGapMs(at));
    await sleep(3_000);
    assert.equal((await c.lease()).spec.holderIdentity, p);
    // 2. only the primary loses the API for 12 s: the replicas still reach it and confirm it
    at = Date.now();
    c.member(p).proxy.cut('blackhole');
    unwritable = 0;
    while (Date.now() - at < 12_000) { if (!(await c.writable()).includes(p)) unwritable++; await sleep(200); }
    c.member(p).proxy.restore();
    assert.equal(unwritable, 0, 'the primary stayed writable while only it was cut off');
    assert.deepEqual(await c.writable(), [p]);
    await sleep(3_000);
    const l = await c.lease();
    assert.equal(l.spec.holderIdentity, p);
    assert.equal(l.metadata.annotations?.['pg-autopilot.io/failovers'] ?? '0', '0');
    await w.stop();
    fig(t, 'failsafe, primary alone cut off 12 s: writes unavailable', w.longestGapMs(at));
    // 3. a member that cannot answer breaks the failsafe: the primary demotes as usual
    c.freeze(c.members.find((m) => m.name !== p)!.name);
    c.member(p).proxy.cut('blackhole');
    const cutAt = Date.now();
    await c.waitFor('primary read-only without every confirmation', async () => !(await c.writable()).includes(p), 20_000, 100);
    fig(t, 'failsafe, one member silent: primary read-only after', Date.now() - cutAt);
    c.member(p).proxy.restore();
  } finally {
    await c.stop();
  }
});

test('failsafe off: a primary cut off from the API server demotes itself before anyone else takes over', async (t) => {
  // With failsafe (the default) the replicas, which still reach it over HTTP, would keep it
  // primary: this is the behaviour without failsafe (autopilot.failsafe: false). With failsafe, a
  // primary cut off from the API *and* a peer demotes likewise (the failsafe test, step 3).
  const c = await Cluster.start(kube(), { env: { PGA_FAILSAFE: 'false' } });
  try {
    const p = await healthy(c, 3);
    const w = await Writer.start(c, p);
    await sleep(1_000);
    const at = Date.now();
    let demotedAfter = -1;
    const split = await watchSplitBrain(c, async () => {
      c.member(p).proxy.cut('blackhole');
      await c.waitFor('old primary read-only', async () => !(await c.writable()).includes(p), 20_000, 50);
      demotedAfter = Date.now() - at;
      const np = await c.waitForPrimary(30_000, p);
      assert.notEqual(np, p);
    });
    assert.deepEqual(split, [], 'never two writable primaries');
    fig(t, 'API partition: primary read-only after', demotedAfter);
    await c.waitFor('writes through the new primary', async () => w.acked.some((a) => a.at > at + demotedAfter), 30_000, 20);
    await sleep(500);
    await w.stop();
    fig(t, 'API partition of primary: writes unavailable', w.longestGapMs(at));
    c.member(p).proxy.restore();
    const np = (await c.lease()).spec.holderIdentity;
    await c.waitForReplicas(np, 2, 90_000);
    fig(t, 'partitioned primary rejoined after restore', Date.now() - at);
  } finally {
    await c.stop();
  }
});

test('a replica whose volume is wiped clones again', async () => {
  const c = await Cluster.start(kube());
  try {
    const p = await healthy(c, 3);
    await c.sql(p, 'create table k (v int)');
    await c.sql(p, 'insert into k select generate_series(1, 1000)');
    const r = c.members.find((m) => m.name !== p)!;
    await c.signal(r.name, 'SIGTERM');
    for (const f of readdirSync(r.dataDir)) rmSync(join(r.dataDir, f), { recursive: true, force: true });
    c.startMember(r.name);
    await c.waitForReplicas(p, 2, 90_000);
    await c.waitFor('rows on the re-cloned replica', async () => (await c.sql(r.name, 'select count(*)::int as n from k').catch(() => [{ n: 0 }]))[0].n === 1000, 30_000);
  } finally {
    await c.stop();
  }
});

test('sync mode: a client writing every 20 ms loses no acknowledged write when the primary is killed', async (t) => {
  const c = await Cluster.start(kube(), { env: { PGA_SYNC_MODE: 'on' } });
  try {
    const p = await healthy(c, 3);
    await c.waitFor('synchronous set recorded', async () => ((await c.lease())?.metadata.annotations?.['pg-autopilot.io/sync-standbys'] ?? '').split(',').filter(Boolean).length === 2, 30_000);
    const w = await Writer.start(c, p, { everyMs: 20 });
    await sleep(2_000);
    const at = Date.now();
    await c.signal(p, 'SIGKILL', 5_000);
    const pm = c.postmasterPid(p);
    if (pm) process.kill(pm, 'SIGKILL'); // the whole pod dies
    const np = await c.waitForPrimary(30_000, p);
    await c.waitFor('writes through the new primary', async () => w.acked.some((a) => a.at > at + 50), 30_000, 20);
    await sleep(1_000);
    // The old primary restarts while the writes go on: pg_rewind copies the new primary's WAL as of
    // its copy, which the writes then outrun, so the rewound member needs streamed WAL before it is
    // consistent (accepts connections). Its slot must not wait for it to be healthy (a hole the
    // Citus test found: "replication slot m0 does not exist" for minutes).
    const back = Date.now();
    c.startMember(p);
    await c.waitForReplicas(np, 2, 90_000);
    fig(t, 'sync mode: killed primary restarted under writes → streaming again', Date.now() - back);
    await w.stop();
    fig(t, 'sync mode failover: writes unavailable', w.longestGapMs(at));
    const lost = await lostWrites(c, np, w);
    fig(t, 'sync mode failover: acknowledged writes', w.acked.length, 'rows');
    fig(t, 'sync mode failover: acknowledged writes lost', lost.length, 'rows');
    assert.equal(lost.length, 0, `lost acknowledged ids: ${lost.slice(0, 10).join(', ')}`);
  } finally {
    await c.stop();
  }
});

test('the CLI against a live cluster: status, switchover --to, pause/resume, reinit', async () => {
  const c = await Cluster.start(kube());
  try {
    const p = await healthy(c, 3);
    const [r1, r2] = c.members.filter((m) => m.name !== p).map((m) => m.name) as [string, string];
    const cli = (member: string, ...args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
      const m = c.member(member);
      execFile(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH, PGA_API_URL: `http://127.0.0.1:${m.apiPort}`, PGA_API_TOKEN: TOKEN, PGA_NAMESPACE: c.ns, KUBECONFIG: m.proxy.kubeconfig },
      }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }));
    });
    const st = await cli(r1, 'status');
    assert.equal(st.code, 0, st.out);
    assert.match(st.out, new RegExp(`${p} \\*\\s+primary`));
    assert.match(st.out, /lease holder: /);
    const json = JSON.parse((await cli(r1, 'status', '--json')).out);
    assert.equal(json.leaseHolder, p);

    const sw = await cli(r1, 'switchover', '--to', r2);
    assert.equal(sw.code, 0, sw.out);
    assert.equal(await c.waitForPrimary(20_000, p), r2);
    await c.waitForReplicas(r2, 2, 60_000);

    // pause: killing the primary's entrypoint does not fail over
    assert.equal((await cli(r1, 'pause')).code, 0);
    await c.waitFor('paused annotation', async () => (await c.lease())?.metadata.annotations?.['pg-autopilot.io/paused'] === 'true', 10_000);
    await c.signal(r2, 'SIGKILL', 5_000);
    await sleep(9_000); // longer than the lease
    assert.equal((await c.lease()).spec.holderIdentity, r2, 'no failover while paused');
    assert.equal((await cli(r1, 'resume')).code, 0);
    const np = await c.waitForPrimary(30_000, r2);
    assert.ok(np === p || np === r1);
    c.startMember(r2);
    await c.waitForReplicas(np, 2, 90_000);

    // reinit: a replica wipes its data and clones again (its timeline history restarts at the clone)
    const victim = np === p ? r1 : p;
    const sysBefore = (await c.sql(victim, 'select pg_postmaster_start_time() as t'))[0].t;
    const ri = await cli(np, 'reinit', victim);
    assert.equal(ri.code, 0, ri.out);
    await c.waitFor('reinit done', async () => {
      const rows = await c.sql(victim, 'select pg_postmaster_start_time() as t').catch(() => null);
      return rows && rows[0].t > sysBefore && !(await c.pods()).find((x) => x.metadata.name === victim)?.metadata.annotations?.['pg-autopilot.io/reinit'];
    }, 60_000, 200);
    await c.waitForReplicas(np, 2, 60_000);
    // the primary refuses to be reinitialised
    const bad = await cli(np, 'reinit', np);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /is the primary/);
  } finally {
    await c.stop();
  }
});

test('idle cluster: Kubernetes API requests per minute', async (t) => {
  const c = await Cluster.start(kube());
  try {
    await healthy(c, 3);
    await sleep(3_000);
    const total = async () => {
      let n = 0;
      for (const m of c.members) {
        const s = await c.status(m.name);
        n += Object.values((s?.kubeRequests ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
      }
      return n;
    };
    const before = await total();
    const window = Number(process.env.PGA_IDLE_WINDOW_MS ?? 30_000);
    await sleep(window);
    const perMinute = ((await total()) - before) * 60_000 / window;
    fig(t, 'idle 3-member cluster: API requests per minute', Math.round(perMinute * 10) / 10, 'req/min');
    assert.ok(perMinute > 0, 'the primary renews its lease, so some requests are expected');
  } finally {
    await c.stop();
  }
});

