// Citus in the autopilot's loop: three autopilot groups — a coordinator group and two worker
// groups of 2 members, each its own Lease in its own namespace, synchronous replication on —
// running PostgreSQL 15 with Citus built from the vendored source (bash test/toolchain/install.sh
// citus). Every member reads its group from citus.json; the members do the rest themselves: each
// group's primary creates the extension, the coordinator's primary registers the coordinator and
// both worker groups in pg_dist_node and keeps the rows in step with the worker groups' Leases
// (scripts/shell/citus-loop.ts). The test only watches, with a client writing through the
// coordinator every 20 ms, across: SIGKILL of a worker group's primary, a planned switchover of the
// other worker group, SIGTERM of that group's new primary (its hand-off), SIGKILL of the
// coordinator's primary. Both hand-offs must cost the client no error (the coordinator holds the
// group's queries). At the end every acknowledged id is read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Cluster, PASSWORD, Writer, sleep } from './cluster-harness.js';
import type { WriteRoute } from './writer.js';
import { scenarioFile, healthy, killPod, type Diag, type Fig } from './scenario.js';
import { readCitusCatalog } from '../../scripts/shell/citus.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const TREE = join(ROOT, '.tools', 'citus-pg15');
const BIN = join(TREE, 'usr/lib/postgresql/15/bin');
const skip = existsSync(join(BIN, 'postgres')) ? false : 'Citus not built: bash test/toolchain/install.sh citus';
const { kube, fig } = scenarioFile('citus-figures.json');

const appClient = (c: Cluster, member: string, timeoutMs = 3_000): pg.Client => {
  const cl = new pg.Client({ host: '127.0.0.1', port: c.member(member).pgPort, user: 'postgres', password: PASSWORD, database: 'app', connectionTimeoutMillis: timeoutMs });
  cl.on('error', () => undefined);
  return cl;
};
async function onApp<T>(c: Cluster, member: string, fn: (cl: pg.Client) => Promise<T>): Promise<T> {
  const cl = appClient(c, member);
  await cl.connect();
  try { return await fn(cl); } finally { await cl.end().catch(() => undefined); }
}
/** The coordinator as clients reach it: the pod labelled primary (the rw Service), application database. */
const coordinatorRoute = (c: Cluster): WriteRoute => ({
  routed: () => c.routed(),
  client: (name, timeoutMs) => appClient(c, name, timeoutMs),
  sql: (name, text) => onApp(c, name, async (cl) => (await cl.query(text)).rows),
});

/** pg_dist_node's primary rows as [group, port], sorted. */
async function registry(coord: Cluster, cp: string): Promise<[number, number][]> {
  const cat = await onApp(coord, cp, (cl) => readCitusCatalog(cl));
  return (cat.nodes ?? []).filter((n) => n.role === 'primary').map((n) => [n.groupId, n.port] as [number, number]).sort((a, b) => a[0] - b[0]);
}
/** Waits until pg_dist_node names exactly these [group, port] rows; returns when it did. */
async function registryIs(coord: Cluster, want: () => Promise<[number, number][]>, timeoutMs: number): Promise<number> {
  let last: unknown = null;
  await coord.waitFor(`pg_dist_node = ${JSON.stringify(await want())}`, async () => {
    const cp = await coord.routed();
    if (!cp) return false;
    const got = await registry(coord, cp).catch((e) => String(e));
    last = got;
    return JSON.stringify(got) === JSON.stringify(await want());
  }, timeoutMs, 50).catch((e) => { throw new Error(`${(e as Error).message}; last seen ${JSON.stringify(last)}\n${coord.tails(30)}`); });
  return Date.now();
}

/** Which worker group holds each id's row (its shard's placement). */
async function idGroups(coord: Cluster, ids: number[]): Promise<Map<number, number>> {
  return onApp(coord, (await coord.routed())!, async (cl) => {
    const r = await cl.query<{ id: number; groupid: number }>(
      "SELECT x AS id, p.groupid FROM unnest($1::int[]) x JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('w', x)", [ids]);
    return new Map(r.rows.map((x) => [x.id, x.groupid]));
  });
}

/** The client's view of a disruption: the longest gap between acknowledged writes after `at`, and the errors inside it. */
function report(t: Diag, w: Writer, at: number, figure: string): { ms: number; errors: number } {
  const gap = w.longestGap(at);
  const errs = w.errors.filter((e) => e.at >= at);
  const kinds = new Map<string, number>();
  for (const e of errs) kinds.set(e.error.slice(0, 90), (kinds.get(e.error.slice(0, 90)) ?? 0) + 1);
  for (const [k, n] of kinds) t.diagnostic(`${figure}: client error ${n}×: ${k}`);
  fig(t, figure, gap.ms);
  return { ms: gap.ms, errors: errs.length };
}

/** Waits for the writer to get `n` more writes through after `at`. */
const flowing = (c: Cluster, w: Writer, at: number, timeoutMs = 60_000, n = 25) =>
  c.waitFor(`${n} writes through the coordinator after the disruption`, async () => w.acked.filter((a) => a.at > at).length >= n, timeoutMs, 20);

test('citus: members keep pg_dist_node in step themselves — worker SIGKILL, worker switchover, worker SIGTERM, coordinator SIGKILL under a writer, nothing acknowledged lost', { skip, timeout: 900_000 }, async (t) => {
  const k = kube();
  const t0 = Date.now();
  const group = (n: number, citus: unknown) => ({
    members: 2,
    env: { PGA_BIN_DIR: BIN, PGA_SYNC_MODE: 'on' },
    files: { 'citus.json': JSON.stringify(citus) },
  });
  // each worker group knows where the coordinator's pods are: its hand-offs wait for the coordinator's hold
  const coordNs = await k.namespace('c');
  const coordinator = { namespace: coordNs, selector: 'app=pga-test' };
  const w1 = await Cluster.start(k, group(2, { role: 'worker', group: 1, coordinator }));
  const w2 = await Cluster.start(k, group(2, { role: 'worker', group: 2, coordinator }));
  const coord = await Cluster.start(k, { namespace: coordNs, ...group(2, {
    role: 'coordinator', lockCooldownMs: 2_000,
    workers: [{ group: 1, lease: 'pg-leader', namespace: w1.ns, selector: 'app=pga-test' }, { group: 2, lease: 'pg-leader', namespace: w2.ns, selector: 'app=pga-test' }],
  }) });
  const all = [coord, w1, w2];
  let w: Writer | null = null;
  try {
    await Promise.all(all.map((c) => healthy(c, 2)));
    fig(t, 'citus: three groups of 2 up (primary + sync replica each)', Date.now() - t0);
    const port = (c: Cluster, m: string) => c.member(m).pgPort;
    const primaryPort = async (c: Cluster) => port(c, (await c.routed()) ?? (await c.waitForPrimary()));
    const want = async (): Promise<[number, number][]> => [[0, await primaryPort(coord)], [1, await primaryPort(w1)], [2, await primaryPort(w2)]];
    await registryIs(coord, want, 90_000);
    fig(t, 'citus: start → every group registered by the coordinator primary itself', Date.now() - t0);
    const cp = (await coord.routed())!;
    const st = await coord.status(cp);
    t.diagnostic(`coordinator /status citus: ${JSON.stringify(st?.citus)}`);
    assert.equal(st?.citus?.role, 'coordinator');
    assert.match(st?.citus?.reason ?? '', /pg_dist_node matches every worker group's Lease/);
    assert.deepEqual(st?.citus?.waiting, []);
    assert.match(await (await fetch(`http://127.0.0.1:${coord.member(cp).apiPort}/metrics`)).text(), /pga_citus_registry_in_step 1/);
    assert.equal((await onApp(coord, cp, (cl) => cl.query('SHOW ssl'))).rows[0].ssl, 'off', 'the autopilot, not Citus, owns ssl');
    for (const c of [w1, w2]) {
      const s = await c.status((await c.routed())!);
      assert.equal(s?.citus?.nodeReady, true, 'every worker group primary prepared itself');
    }

    // a distributed table; its shards on both worker groups; a client writing every 20 ms through the coordinator
    await onApp(coord, cp, async (cl) => {
      await cl.query('CREATE TABLE w (id int PRIMARY KEY, at timestamptz DEFAULT now())');
      await cl.query("SELECT create_distributed_table('w', 'id')");
      const ports = (await cl.query("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'w'::regclass")).rows.map((r) => r.nodeport).sort();
      assert.deepEqual(ports, [await primaryPort(w1), await primaryPort(w2)].sort());
    });
    w = await Writer.start(coordinatorRoute(coord), cp);
    await w.warm();
    const calmFrom = Date.now();
    await sleep(3_000);
    // how fast the client gets acknowledgements when nothing happens (the gaps below are measured in its steps)
    const calm = w.acked.filter((a) => a.at >= calmFrom);
    const steps = calm.slice(1).map((a, i) => a.at - calm[i]!.at).sort((a, b) => a - b);
    fig(t, 'citus: undisturbed write through the coordinator, median interval between acknowledgements (target 20 ms)', steps[Math.floor(steps.length / 2)] ?? -1);

    const killAt = await workerKill(t, fig, coord, w1, w, want);
    const sw = await workerSwitchover(t, fig, coord, w2, w, want);
    const term = await workerSigterm(t, fig, coord, w2, w, want);
    const coordAt = await coordinatorKill(t, fig, coord, w, want);

    await sleep(500);
    await w.stop();
    // the rows of one group: the client's view of that group's disruption (the other group's rows kept flowing)
    const groupOf = await idGroups(coord, w.acked.map((a) => a.id));
    const gapOf = (g: number, from: number, to: number) => {
      const acks = w!.acked.filter((a) => groupOf.get(a.id) === g && a.at >= from - 5_000 && a.at <= to);
      let gap = 0;
      for (let i = 1; i < acks.length; i++) if (acks[i]!.at >= from) gap = Math.max(gap, acks[i]!.at - acks[i - 1]!.at);
      return gap;
    };
    mkdirSync(join(process.cwd(), 'test-results'), { recursive: true });
    writeFileSync(join(process.cwd(), 'test-results', 'citus-acks.json'), JSON.stringify({ killAt, switchoverAt: sw.at, acked: w.acked.map((a) => [a.id, a.at, groupOf.get(a.id) ?? null]), errors: w.errors }) + '\n');
    fig(t, 'citus: worker primary SIGKILL → write gap of that group\'s rows', gapOf(1, killAt, sw.at));
    fig(t, 'citus: worker switchover → longest wait of that group\'s rows', gapOf(2, sw.at, term.at));
    if (sw.hold) assert.equal(sw.hold.moved, true, `the hold ended with the row re-pointed: ${JSON.stringify(sw.hold)}`);
    assert.equal(sw.errors, 0, 'a planned worker switchover: the client waits, it sees no error');
    fig(t, 'citus: worker primary SIGTERM → longest wait of that group\'s rows', gapOf(2, term.at, coordAt));
    assert.equal(term.errors, 0, 'a worker primary stopped by SIGTERM hands over: the client waits, it sees no error');
    // synchronous replication in every group: each acknowledged id is on the current primaries
    const ids = new Set((await coordinatorRoute(coord).sql((await coord.routed())!, 'SELECT id FROM w')).map((r: { id: number }) => r.id));
    const lost = w.acked.filter((a) => !ids.has(a.id));
    fig(t, 'citus: acknowledged writes', w.acked.length, 'rows');
    fig(t, 'citus: acknowledged writes lost', lost.length, 'rows');
    assert.equal(lost.length, 0, `acknowledged ids missing: ${lost.slice(0, 20).map((a) => a.id).join(', ')}`);
    fig(t, 'citus: whole test', Date.now() - t0);
  } finally {
    await w?.stop().catch(() => undefined);
    for (const c of all) await c.stop().catch(() => undefined);
  }
});

/** SIGKILL of worker group 1's primary: the group fails over, the coordinator re-points group 1, writes flow again. */
async function workerKill(t: Diag, fig: Fig, coord: Cluster, w1: Cluster, w: Writer, want: () => Promise<[number, number][]>) {
  const p = (await w1.routed())!;
  await sleep(1_000);
  const at = Date.now();
  await killPod(w1, p);
  const np = await w1.waitForPrimary(60_000, p);
  fig(t, 'citus: worker primary SIGKILL → the group has a new primary', Date.now() - at);
  const repointed = await registryIs(coord, want, 60_000);
  fig(t, 'citus: worker primary SIGKILL → pg_dist_node re-pointed by the coordinator', repointed - at);
  await flowing(coord, w, at);
  report(t, w, at, 'citus: worker primary SIGKILL → write gap through the coordinator');
  const st = await coord.status((await coord.routed())!);
  assert.equal(st?.citus?.lastAction?.type, 'update_node');
  assert.match(st?.citus?.lastAction?.reason ?? '', new RegExp(`held by ${np}`));
  return at;
}

/** A planned switchover of worker group 2 (its API, as `autopilot switchover` calls it). */
async function workerSwitchover(t: Diag, fig: Fig, coord: Cluster, w2: Cluster, w: Writer, want: () => Promise<[number, number][]>) {
  const p = (await w2.routed())!;
  const to = w2.members.map((m) => m.name).find((n) => n !== p)!;
  await sleep(1_000);
  const at = Date.now();
  const r = await w2.api(p, 'POST', '/switchover', { to });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await w2.waitForPrimary(60_000, p);
  const repointed = await registryIs(coord, want, 60_000);
  fig(t, 'citus: worker switchover → pg_dist_node re-pointed', repointed - at);
  await flowing(coord, w, at);
  const { errors } = report(t, w, at, 'citus: worker switchover → longest client wait');
  // the old primary stopped postgres only once the coordinator held the group (not by luck of timing)
  assert.ok(w2.grep(p, 'hand-off: the coordinator holds this group').length > 0, `${p} did not wait for the coordinator's hold:\n${w2.tails(20)}`);
  fig(t, 'citus: worker switchover → client errors', errors, 'errors');
  const st = await coord.status((await coord.routed())!);
  t.diagnostic(`coordinator /status citus after the switchover: ${JSON.stringify(st?.citus)}`);
  return { at, errors, hold: st?.citus?.lastHold };
}

/** SIGTERM of worker group 2's primary (a pod deleted, a node drained): its hand-off is held like a switchover. */
async function workerSigterm(t: Diag, fig: Fig, coord: Cluster, w2: Cluster, w: Writer, want: () => Promise<[number, number][]>) {
  const p = (await w2.routed())!;
  await w2.waitForReplicas(p, 1, 120_000); // the former primary follows again: someone to hand over to
  await sleep(1_000);
  const at = Date.now();
  await w2.signal(p, 'SIGTERM');
  await w2.waitForPrimary(60_000, p);
  const repointed = await registryIs(coord, want, 60_000);
  fig(t, 'citus: worker primary SIGTERM → pg_dist_node re-pointed', repointed - at);
  await flowing(coord, w, at);
  const { errors } = report(t, w, at, 'citus: worker primary SIGTERM → longest client wait');
  fig(t, 'citus: worker primary SIGTERM → client errors', errors, 'errors');
  assert.ok(w2.grep(p, 'hand-off: the coordinator holds this group').length > 0, `${p} did not wait for the coordinator's hold:\n${w2.tails(20)}`);
  return { at, errors };
}

/** SIGKILL of the coordinator's primary: the coordinator group fails over; the new primary re-asserts group 0. */
async function coordinatorKill(t: Diag, fig: Fig, coord: Cluster, w: Writer, want: () => Promise<[number, number][]>) {
  const p = (await coord.routed())!;
  await sleep(1_000);
  const at = Date.now();
  await killPod(coord, p);
  const np = await coord.waitForPrimary(60_000, p);
  fig(t, 'citus: coordinator primary SIGKILL → the group has a new primary', Date.now() - at);
  const done = await registryIs(coord, want, 60_000);
  fig(t, 'citus: coordinator primary SIGKILL → group 0 re-asserted at the new primary', done - at);
  await flowing(coord, w, at);
  report(t, w, at, 'citus: coordinator primary SIGKILL → write gap');
  const st = await coord.status(np);
  assert.equal(st?.citus?.lastAction?.type, 'set_coordinator', JSON.stringify(st?.citus));
  return at;
}
