// Citus: a worker group added later is registered by the coordinator's primary on its own, and its
// shards come only when asked (`autopilot citus rebalance`, never automatic). A coordinator of 1
// member whose citus.json already names worker groups 1 and 2; group 1 (1 member) runs, group 2 has
// no Lease yet (the coordinator waits for it and says so); a distributed table lands on group 1
// only; group 2 starts → registered, still no shard; the CLI starts the rebalance, `--status`
// follows it to the end; the shards are then spread over both groups and every row reads back.
// Real PostgreSQL 15 + Citus built from the vendored source (bash test/toolchain/install.sh citus).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Cluster, PASSWORD, TOKEN } from './cluster-harness.js';
import { scenarioFile, healthy } from './scenario.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = join(ROOT, '.tools', 'citus-pg15', 'usr/lib/postgresql/15/bin');
const skip = existsSync(join(BIN, 'postgres')) ? false : 'Citus not built: bash test/toolchain/install.sh citus';
const { kube, fig } = scenarioFile('citus-rebalance-figures.json');

async function onApp<T>(c: Cluster, member: string, fn: (cl: pg.Client) => Promise<T>): Promise<T> {
  const cl = new pg.Client({ host: '127.0.0.1', port: c.member(member).pgPort, user: 'postgres', password: PASSWORD, database: 'app', connectionTimeoutMillis: 3_000 });
  cl.on('error', () => undefined);
  await cl.connect();
  try { return await fn(cl); } finally { await cl.end().catch(() => undefined); }
}
/** The CLI as an operator runs it in the coordinator's pod: the built cli.js against that member's API. */
function cli(c: Cluster, member: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(ROOT, 'dist/scripts/cli.js'), ...args], {
      env: { ...process.env, PGA_API_URL: `http://127.0.0.1:${c.member(member).apiPort}`, PGA_API_TOKEN: TOKEN }, timeout: 30_000,
    }, (e, stdout, stderr) => done({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: `${stdout}${stderr}`.trim() }));
  });
}
/** Shard count per worker group of table w. */
const shardsPerGroup = (c: Cluster, m: string) => onApp(c, m, async (cl) => Object.fromEntries((await cl.query<{ g: number; n: string }>(
  "SELECT p.groupid AS g, count(*) AS n FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) WHERE s.logicalrelid = 'w'::regclass GROUP BY 1 ORDER BY 1")).rows.map((r) => [r.g, Number(r.n)])));

test('citus: a worker group added later is registered by itself; its shards come with `autopilot citus rebalance`', { skip, timeout: 600_000 }, async (t) => {
  const k = kube();
  const one = (citus: unknown, ns?: string) => ({ members: 1, env: { PGA_BIN_DIR: BIN }, files: { 'citus.json': JSON.stringify(citus) }, ...(ns ? { namespace: ns } : {}) });
  const coordNs = await k.namespace('c'), w2Ns = await k.namespace('w');
  const coordinator = { namespace: coordNs, selector: 'app=pga-test' };
  const w1 = await Cluster.start(k, one({ role: 'worker', group: 1, coordinator }));
  const coord = await Cluster.start(k, one({
    role: 'coordinator',
    workers: [{ group: 1, lease: 'pg-leader', namespace: w1.ns, selector: 'app=pga-test' }, { group: 2, lease: 'pg-leader', namespace: w2Ns, selector: 'app=pga-test' }],
  }, coordNs));
  const all: Cluster[] = [coord, w1];
  try {
    await Promise.all(all.map((c) => healthy(c, 1)));
    const cp = (await coord.routed())!;
    // group 2 does not exist yet: registered groups 0 and 1, group 2 named as waiting, with why
    await coord.waitFor('coordinator and group 1 registered, group 2 waiting', async () => {
      const s = await coord.status(cp);
      return s?.citus?.waiting?.length === 1 && /group 2/.test(s.citus.waiting[0]) && (await onApp(coord, cp, (cl) => cl.query('SELECT count(*)::int AS n FROM pg_dist_node WHERE groupid IN (0, 1)'))).rows[0].n === 2;
    }, 90_000, 250);
    t.diagnostic(`waiting: ${JSON.stringify((await coord.status(cp))?.citus?.waiting)}`);
    await onApp(coord, cp, async (cl) => {
      await cl.query('CREATE TABLE w (id int PRIMARY KEY, v text)');
      await cl.query("SELECT create_distributed_table('w', 'id')");
      await cl.query("INSERT INTO w SELECT g, 'v' || g FROM generate_series(1, 2000) g");
    });
    assert.deepEqual(await shardsPerGroup(coord, cp), { 1: 32 }, 'one worker group: every shard on it');
    // nothing to move yet: the rebalance says so
    const none = await cli(coord, cp, ['citus', 'rebalance']);
    t.diagnostic(`with one group: ${none.out}`);
    assert.equal(none.code, 0, none.out);

    // group 2 comes: the coordinator registers it by itself, no shard moves by itself
    const added = Date.now();
    const w2 = await Cluster.start(k, one({ role: 'worker', group: 2, coordinator }, w2Ns));
    all.push(w2);
    await healthy(w2, 1);
    await coord.waitFor('group 2 registered', async () => (await onApp(coord, cp, (cl) => cl.query('SELECT count(*)::int AS n FROM pg_dist_node WHERE groupid = 2 AND isactive'))).rows[0].n === 1, 90_000, 250);
    fig(t, 'citus: worker group started → registered by the coordinator primary', Date.now() - added);
    assert.deepEqual(await shardsPerGroup(coord, cp), { 1: 32 }, 'no shard moves without the command');

    // the command, as an operator runs it; then its state until it is done
    const t0 = Date.now();
    const started = await cli(coord, cp, ['citus', 'rebalance']);
    t.diagnostic(`rebalance: ${started.out}`);
    assert.equal(started.code, 0, started.out);
    assert.match(started.out, /background job \d+ \(mode block_writes: wal_level is replica/);
    let last = '';
    await coord.waitFor('rebalance finished', async () => {
      const s = await cli(coord, cp, ['citus', 'rebalance', '--status']);
      last = s.out;
      if (/: (failed|cancelled)/.test(s.out)) throw new Error(`rebalance ended badly: ${s.out}`);
      return s.code === 0 && /: finished/.test(s.out);
    }, 300_000, 1_000);
    fig(t, 'citus: rebalance of 2000 rows in 32 shards onto a new group, start → finished', Date.now() - t0);
    t.diagnostic(`status: ${last}`);
    const after = await shardsPerGroup(coord, cp);
    t.diagnostic(`shards per group after: ${JSON.stringify(after)}`);
    // Citus' default strategy (by_shard_count, threshold 0.1) stops once every group is within 10 %
    // of the mean (16): 15..17 each (a run gave 17 + 15)
    assert.deepEqual(Object.keys(after).sort(), ['1', '2'], 'shards on both groups');
    assert.equal((after[1] ?? 0) + (after[2] ?? 0), 32);
    for (const g of [1, 2]) assert.ok((after[g] ?? 0) >= 15 && (after[g] ?? 0) <= 17, `group ${g} holds ${after[g]} shards: within 10 % of 16`);
    const rows = await onApp(coord, cp, (cl) => cl.query<{ n: number; s: string }>("SELECT count(*)::int AS n, sum(id)::text AS s FROM w"));
    assert.deepEqual(rows.rows[0], { n: 2000, s: String((2000 * 2001) / 2) }, 'every row reads back through the coordinator');
    // asked of a worker group's member: refused, saying where it runs
    const wrong = await cli(w1, (await w1.routed())!, ['citus', 'rebalance']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.out, /worker group 1: run it on the coordinator group's primary/);
  } finally {
    await Promise.all(all.map((c) => c.stop()));
  }
});
