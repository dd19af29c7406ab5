// Citus, first step: three autopilot groups (a coordinator group and two worker groups, each its
// own Lease in its own namespace) running PostgreSQL 15 with Citus built from the vendored source
// (bash test/toolchain/install.sh citus). The registry step — observe every worker group's Lease
// and holder, read pg_dist_node, decideCitus, apply — is driven from here exactly as the
// coordinator primary's loop will run it (scripts/shell/citus.ts; not wired into the autopilot
// loop yet, see docs/citus.md). Shows: a distributed table written through the coordinator, and
// a worker group's failover re-pointing pg_dist_node to its new primary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Cluster, PASSWORD } from './cluster-harness.js';
import { scenarioFile, healthy, killPod } from './scenario.js';
import { createKube, loadConnection } from '../../scripts/shell/kube.js';
import { decideCitus, type CitusDecision } from '../../scripts/core/citus.js';
import { LeaseClock, observeWorkerGroup, readCitusCatalog, ensureCitusNode, applyCitusAction, type WorkerGroupSource } from '../../scripts/shell/citus.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const TREE = join(ROOT, '.tools', 'citus-pg15');
const BIN = join(TREE, 'usr/lib/postgresql/15/bin');
const skip = existsSync(join(BIN, 'postgres')) ? false : 'Citus not built: bash test/toolchain/install.sh citus';
const { kube, fig } = scenarioFile('citus-figures.json');
const LEASE_MS = 10_000; // the autopilot's default PGA_LEASE_SECONDS

const appClient = (c: Cluster, member: string): pg.Client => {
  const cl = new pg.Client({ host: '127.0.0.1', port: c.member(member).pgPort, user: 'postgres', password: PASSWORD, database: 'app', connectionTimeoutMillis: 3_000, query_timeout: 30_000 });
  cl.on('error', () => undefined);
  return cl;
};
async function onApp<T>(c: Cluster, member: string, fn: (cl: pg.Client) => Promise<T>): Promise<T> {
  const cl = appClient(c, member);
  await cl.connect();
  try { return await fn(cl); } finally { await cl.end().catch(() => undefined); }
}

/** One pass of the coordinator's registry loop: every group primary prepared, then steps until none is left. */
async function registryPass(coord: Cluster, workers: { c: Cluster; src: WorkerGroupSource }[], clock: LeaseClock): Promise<CitusDecision[]> {
  const cp = await coord.waitForPrimary(30_000);
  for (const w of workers) {
    const holder = (await w.c.lease())?.spec?.holderIdentity;
    if (holder && (await w.c.writable()).includes(holder)) await onApp(w.c, holder, (cl) => ensureCitusNode(cl, 'postgres', PASSWORD));
  }
  const steps: CitusDecision[] = [];
  await onApp(coord, cp, async (cl) => {
    for (let i = 0; i < 10; i++) {
      const views = await Promise.all(workers.map((w) => observeWorkerGroup(w.src, clock, performance.now())));
      const cat = await readCitusCatalog(cl);
      const d = decideCitus({ leaseMs: LEASE_MS, coordinatorPrimary: true, self: { host: '127.0.0.1', port: coord.member(cp).pgPort }, ...cat, workers: views });
      steps.push(d);
      if (!d.action) return;
      await applyCitusAction(cl, d.action, { superuser: 'postgres', password: PASSWORD, lockCooldownMs: 2_000 });
    }
    throw new Error(`no fixed point after 10 steps: ${steps.map((s) => s.reason).join(' | ')}`);
  });
  return steps;
}

test('citus: coordinator + two worker groups, a distributed table through the coordinator, a worker failover re-points pg_dist_node', { skip, timeout: 600_000 }, async (t) => {
  const k = kube();
  // citus.node_conninfo set explicitly: left at its default (sslmode=require), CREATE EXTENSION turns
  // ssl on by ALTER SYSTEM with a self-signed certificate in the primary's data directory only, and
  // a replica promoted later refuses the coordinator ("server does not support SSL"). TLS between
  // nodes is the chart's tls.* (every member gets the certificate); without it: prefer.
  const opts = (members: number) => ({ members, env: { PGA_BIN_DIR: BIN }, parameters: { shared_preload_libraries: 'citus', 'citus.node_conninfo': 'sslmode=prefer' } });
  const t0 = Date.now();
  const coord = await Cluster.start(k, opts(1));
  const w1 = await Cluster.start(k, opts(2));
  const w2 = await Cluster.start(k, opts(1));
  const all = [coord, w1, w2];
  try {
    await coord.waitForPrimary(120_000);
    const w1p = await healthy(w1, 2);
    await w2.waitForPrimary(120_000);
    fig(t, 'citus: three groups up (1 + 2 + 1 members)', Date.now() - t0);
    const src = (c: Cluster, groupId: number): WorkerGroupSource => ({
      groupId, name: `worker-${groupId}`, kube: createKube(loadConnection(k.kubeconfig('admin')), c.ns), leaseName: 'pg-leader', podSelector: 'app=pga-test',
    });
    const workers = [{ c: w1, src: src(w1, 1) }, { c: w2, src: src(w2, 2) }];
    const clock = new LeaseClock();
    const first = await registryPass(coord, workers, clock);
    t.diagnostic(`registry steps: ${first.map((d) => d.reason).join(' | ')}`);
    assert.deepEqual(first.map((d) => d.action?.type ?? null), ['create_extension', 'set_coordinator', 'add_node', 'add_node', null]);
    const cp = await coord.waitForPrimary();
    assert.equal((await onApp(coord, cp, (cl) => cl.query('SHOW ssl'))).rows[0].ssl, 'off', 'the autopilot, not Citus, owns ssl');
    const nodes = await onApp(coord, cp, (cl) => readCitusCatalog(cl));
    assert.deepEqual(nodes.nodes!.map((n) => [n.groupId, n.port]).sort(), [[0, coord.member(cp).pgPort], [1, w1.member(w1p).pgPort], [2, w2.member(w2.members[0]!.name).pgPort]].sort());

    // a distributed table, written and read through the coordinator; its shards on both worker groups
    await onApp(coord, cp, async (cl) => {
      await cl.query('CREATE TABLE events (id bigint PRIMARY KEY, v text)');
      await cl.query("SELECT create_distributed_table('events', 'id')");
      await cl.query("INSERT INTO events SELECT g, 'before' FROM generate_series(1, 1000) g");
      assert.equal(Number((await cl.query('SELECT count(*) AS n FROM events')).rows[0].n), 1000);
      const groups = (await cl.query("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'events'::regclass")).rows.map((r) => r.nodeport).sort();
      assert.deepEqual(groups, [w1.member(w1p).pgPort, w2.member(w2.members[0]!.name).pgPort].sort());
    });

    // worker group 1 loses its primary: the group fails over, the registry step re-points node of group 1
    const killedAt = Date.now();
    await killPod(w1, w1p);
    const np = await w1.waitForPrimary(60_000, w1p);
    fig(t, 'citus: worker primary SIGKILL → group has a new primary', Date.now() - killedAt);
    const second = await registryPass(coord, workers, clock);
    fig(t, 'citus: worker primary SIGKILL → pg_dist_node re-pointed', Date.now() - killedAt);
    t.diagnostic(`registry steps after the failover: ${second.map((d) => d.reason).join(' | ')}`);
    assert.deepEqual(second.map((d) => d.action?.type ?? null), ['update_node', null]);
    assert.match(second[0]!.reason, new RegExp(`held by ${np}`));
    await onApp(coord, cp, async (cl) => {
      // every acknowledged row survived (the failover was of an async pair that had caught up before the kill)
      await cl.query("INSERT INTO events SELECT g, 'after' FROM generate_series(1001, 2000) g");
      assert.equal(Number((await cl.query('SELECT count(*) AS n FROM events')).rows[0].n), 2000);
      const ports = (await cl.query("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'events'::regclass")).rows.map((r) => r.nodeport).sort();
      assert.deepEqual(ports, [w1.member(np).pgPort, w2.member(w2.members[0]!.name).pgPort].sort());
    });
    fig(t, 'citus: worker primary SIGKILL → writes through the coordinator succeed', Date.now() - killedAt);
  } finally {
    for (const c of all) await c.stop().catch(() => undefined);
  }
});
