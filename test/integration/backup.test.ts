// Backups on the real thing (issue 12): real PostgreSQL 15, Debian's pgBackRest, SeaweedFS's S3
// gateway over TLS, real kube-apiserver, members as processes. Figures are printed, not asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, sleep, TOKEN } from './cluster-harness.js';
import { startS3, haveWeed, backupFiles as repoFiles, type S3 } from './s3-harness.js';
import { scenarioFile } from './scenario.js';
import { run, pgbr, restoreAndCount } from './backup-harness.js';

const { kube, fig } = scenarioFile('backup-figures.json');
let s3: S3;
const skip = haveWeed() ? false : 'SeaweedFS not built: bash test/toolchain/install.sh seaweedfs';

before(async () => { if (skip) return; s3 = await startS3(); await s3.createBucket('backups'); });
after(async () => { await s3?.stop(); });

const backupFiles = (stanza: string, extra: Record<string, unknown> = {}) => repoFiles(s3, stanza, extra);

async function api(c: Cluster, name: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`http://127.0.0.1:${c.member(name).apiPort}${path}`, { method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await r.text();
  let json: any = text; try { json = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, json };
}

async function backupNow(c: Cluster, p: string, type: 'full' | 'diff' | 'incr'): Promise<number> {
  const t0 = Date.now();
  const before = (await c.status(p))?.backup?.lastSuccess?.[type]?.at ?? null;
  const r = await api(c, p, 'POST', '/backup', { type });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  await c.waitFor(`${type} backup on ${p}`, async () => { const s = await c.status(p); const at = s?.backup?.lastSuccess?.[type]?.at; return at && at !== before; }, 300_000, 250);
  return Date.now() - t0;
}

async function metric(c: Cluster, name: string, metricName: string): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${c.member(name).apiPort}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    const m = text.match(new RegExp(`^${metricName} ([0-9.e+-]+)$`, 'm'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}


const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('archive from bootstrap, full + incremental backups, PITR to a time between two batches, failover without a WAL gap', { skip }, async (t) => {
  const stanza = `pitr${Date.now() % 100000}`;
  const c = await Cluster.start(kube(), { files: backupFiles(stanza) });
  try {
    const p = await c.waitForPrimary(90_000);
    await c.waitForReplicas(p, 2, 120_000);
    // the stanza is created by the primary; the first WAL segment reaches the archive
    await c.waitFor('stanza ready and WAL archived', async () => { await c.sql(p, 'select pg_switch_wal()'); const s = await c.status(p); return s?.backup?.archive?.lastArchivedWal; }, 120_000, 1_000);
    await c.sql(p, 'create table t (id int primary key)');
    await c.sql(p, `insert into t select generate_series(1, 100)`);
    fig(t, 'full backup (small cluster)', await backupNow(c, p, 'full'));
    await c.sql(p, `insert into t select generate_series(101, 200)`);
    await sleep(1_500);
    const [{ now: target }] = await c.sql(p, `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as now`);
    await sleep(1_500);
    await c.sql(p, `insert into t select generate_series(201, 300)`);
    fig(t, 'incremental backup', await backupNow(c, p, 'incr'));
    await c.sql(p, 'select pg_switch_wal()');
    const info = await api(c, p, 'GET', '/backups');
    assert.equal(info.status, 200, JSON.stringify(info.json));
    assert.deepEqual(info.json.backups.map((b: any) => b.type), ['full', 'incr']);

    // PITR to the time between the second and the third batch: exactly the rows committed before it
    const rows = await restoreAndCount(c, p, stanza, ['--type=time', `--target=${target}`]);
    assert.deepEqual(rows, range(1, 200), 'PITR restored exactly the rows committed before the target');

    // failover: kill the primary's pod; the new primary archives its timeline to the same stanza
    const t0 = Date.now();
    await c.signal(p, 'SIGKILL', 5_000);
    const pm = c.postmasterPid(p); if (pm) { try { process.kill(pm, 'SIGKILL'); } catch { /* gone */ } }
    const np = await c.waitForPrimary(60_000, p);
    await c.sql(np, `insert into t select generate_series(301, 400)`);
    const [{ lsn }] = await c.sql(np, 'select pg_current_wal_lsn()::text as lsn');
    await c.waitFor('the new primary archived past the failover', async () => { await c.sql(np, 'select pg_switch_wal()'); const s = await c.status(np); return s?.backup?.archive?.lastArchivedAt && !s.backup.archive.failing && Date.parse(s.backup.archive.lastArchivedAt) > t0; }, 120_000, 1_000);
    fig(t, 'failover to the new timeline archived', Date.now() - t0);
    // pgbackrest check on the new primary, as an operator would run it
    const check = run([...pgbr(c, np, stanza), 'check'], 120_000);
    assert.equal(check.status, 0, `pgbackrest check on the new primary: ${check.stderr}${check.stdout}`);
    // PITR to a point after the failover: the rows of both timelines, no gap
    const after = await restoreAndCount(c, np, stanza, ['--type=lsn', `--target=${lsn}`]);
    assert.deepEqual(after, range(1, 400), 'PITR across the failover restored every row');
  } finally {
    await c.stop();
  }
});

test('a stopped S3 server: archiving fails visibly (status, metrics) while postgres keeps serving, and catches up when it returns', { skip }, async (t) => {
  const stanza = `outage${Date.now() % 100000}`;
  const c = await Cluster.start(kube(), { files: backupFiles(stanza), members: 1 });
  try {
    const p = await c.waitForPrimary(90_000);
    await c.waitFor('WAL archived', async () => { await c.sql(p, 'select pg_switch_wal()'); return (await c.status(p))?.backup?.archive?.lastArchivedWal; }, 120_000, 1_000);
    await c.sql(p, 'create table t (id int primary key)');
    await s3.pause();
    const t0 = Date.now();
    try {
      await c.sql(p, 'insert into t select generate_series(1, 50)');
      await c.sql(p, 'select pg_switch_wal()');
      await c.waitFor('archive failing in metrics', async () => (await metric(c, p, 'pga_archive_failing')) === 1, 120_000, 1_000);
      fig(t, 'S3 down → pga_archive_failing 1 after', Date.now() - t0);
      const s = await c.status(p);
      assert.equal(s.backup.archive.failing, true);
      await c.sql(p, 'insert into t select generate_series(51, 100)'); // postgres keeps serving
    } finally {
      await s3.resume();
    }
    const t1 = Date.now();
    await c.waitFor('archive caught up', async () => { await c.sql(p, 'select pg_switch_wal()'); return (await metric(c, p, 'pga_archive_failing')) === 0; }, 180_000, 1_000);
    fig(t, 'S3 back → archive caught up after', Date.now() - t1);
    assert.equal((await c.sql(p, 'select count(*)::int as n from t'))[0].n, 100);
  } finally {
    await c.stop();
  }
});

test('wrong S3 credentials: postgres serves, the stanza error and failing archive show in status and metrics, an on-demand backup says why', { skip }, async (t) => {
  const stanza = `creds${Date.now() % 100000}`;
  const files = { ...backupFiles(stanza), 'backup/s3-key-secret': 'not-the-secret' };
  const c = await Cluster.start(kube(), { files, members: 1 });
  try {
    const p = await c.waitForPrimary(90_000);
    const t0 = Date.now();
    await c.sql(p, 'create table t (id int primary key)');
    await c.sql(p, 'insert into t select generate_series(1, 10)');
    const err = await c.waitFor('the stanza error in /status', async () => (await c.status(p))?.backup?.lastError?.message as string | undefined, 60_000, 500);
    fig(t, 'wrong credentials: stanza error in /status after', Date.now() - t0);
    t.diagnostic(`stanza error: ${err.slice(0, 300)}`);
    assert.match(err, /403|AccessDenied|SignatureDoesNotMatch|InvalidAccessKeyId|credential|signature/i);
    await c.sql(p, 'select pg_switch_wal()');
    await c.waitFor('archive failing in metrics', async () => (await metric(c, p, 'pga_archive_failing')) === 1, 120_000, 1_000);
    fig(t, 'wrong credentials: pga_archive_failing 1 after', Date.now() - t0);
    const r = await api(c, p, 'POST', '/backup', { type: 'full' });
    assert.equal(r.status, 409);
    assert.match(JSON.stringify(r.json), /stanza is not created yet: the last attempt .* failed: .*credentials/s);
    assert.equal((await c.sql(p, 'select count(*)::int as n from t'))[0].n, 10, 'postgres keeps serving');
  } finally {
    await c.stop();
  }
});

test('bootstrap.fromBackup: a new cluster restored to a time holds exactly the rows before it, and archives to its own stanza', { skip }, async (t) => {
  const src = `src${Date.now() % 100000}`, dst = `dst${Date.now() % 100000}`;
  const a = await Cluster.start(kube(), { files: backupFiles(src), members: 1 });
  let target = '';
  try {
    const p = await a.waitForPrimary(90_000);
    await a.waitFor('stanza ready', async () => (await a.status(p))?.backup?.archive?.lastArchivedWal || (await a.sql(p, 'select pg_switch_wal()'), false), 120_000, 1_000);
    await a.sql(p, 'create table t (id int primary key)');
    await a.sql(p, 'insert into t select generate_series(1, 100)');
    await backupNow(a, p, 'full');
    await a.sql(p, 'insert into t select generate_series(101, 150)');
    await sleep(1_500);
    target = (await a.sql(p, `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as now`))[0].now;
    await sleep(1_500);
    await a.sql(p, 'insert into t select generate_series(151, 200)');
    const [{ w }] = await a.sql(p, 'select pg_walfile_name(pg_current_wal_lsn()) as w');
    await a.sql(p, 'select pg_switch_wal()');
    await a.waitFor('the WAL past the target archived', async () => { const s = await a.status(p); return s?.backup?.archive?.lastArchivedWal && s.backup.archive.lastArchivedWal >= w; }, 120_000, 500);
  } finally {
    await a.stop();
  }
  const restore = { 'restore.json': JSON.stringify({ stanza: src, s3: { endpoint: s3.endpoint, bucket: 'backups', region: 'us-east-1', path: `/${src}`, uriStyle: 'path', caFile: s3.caFile }, target: { type: 'time', value: target } }), 'restore/s3-key': s3.key, 'restore/s3-key-secret': s3.secret };
  const t0 = Date.now();
  const b = await Cluster.start(kube(), { files: { ...backupFiles(dst), ...restore }, members: 2 });
  try {
    const p = await b.waitForPrimary(300_000);
    fig(t, 'restored cluster: primary writable after', Date.now() - t0);
    await b.waitForReplicas(p, 1, 120_000);
    const rows = (await b.sql(p, 'select id from t order by id')).map((x) => x.id);
    assert.deepEqual(rows, range(1, 150), 'the restored cluster holds exactly the rows committed before the target');
    const [{ n }] = await b.sql(p, `select count(*)::int as n from pg_settings where name = 'restore_command' and setting <> ''`);
    assert.equal(n, 0, 'the source repository is not left as restore_command');
    await b.sql(p, 'insert into t values (1000)');
    await b.waitFor('the restored cluster archives to its own stanza', async () => { await b.sql(p, 'select pg_switch_wal()'); const s = await b.status(p); return s?.backup?.archive?.lastArchivedAt && !s.backup.archive.failing && s.backup.stanza === dst; }, 120_000, 1_000);
    const own = run([...pgbr(b, p, dst), 'info', '--output=json']);
    assert.equal(own.status, 0, own.stderr);
    assert.ok(JSON.parse(own.stdout)[0].archive.length > 0, 'WAL in the new stanza');
  } finally {
    await b.stop();
  }
});

test('scheduled backups: each scheduled minute runs once (recorded on the lease), retention keeps the newest two', { skip }, async (t) => {
  const stanza = `sched${Date.now() % 100000}`;
  const c = await Cluster.start(kube(), { files: backupFiles(stanza, { schedule: { full: '* * * * *' }, retention: { full: 2 } }), members: 1 });
  try {
    const p = await c.waitForPrimary(90_000);
    const seen = new Map<number, string>();
    const deadline = Date.now() + 200_000;
    while (Date.now() < deadline && [...seen.values()].filter((s) => s === 'done').length < 3) {
      const rec = (await c.status(p))?.backup?.schedule?.full;
      if (rec) seen.set(rec.at, rec.state);
      await sleep(1_000);
    }
    const done = [...seen.entries()].filter(([, s]) => s === 'done').map(([at]) => at);
    assert.ok(done.length >= 3, `three scheduled minutes done, saw ${JSON.stringify([...seen])}`);
    for (const at of done) assert.equal(at % 60_000, 0, 'recorded at the scheduled minute');
    await c.waitFor('no backup running', async () => !(await c.status(p))?.backup?.job, 120_000, 500);
    const info = JSON.parse(run([...pgbr(c, p, stanza), 'info', '--output=json']).stdout)[0];
    const fulls = info.backup.filter((b: any) => b.type === 'full');
    fig(t, 'scheduled full backups run / kept after retention', `${done.length} / ${fulls.length}`);
    assert.equal(fulls.length, 2, 'retention.full = 2 keeps the newest two');
    // one backup per scheduled minute: no minute ran twice
    const minutes = fulls.map((b: any) => Math.floor(b.timestamp.start / 60));
    assert.equal(new Set(minutes).size, minutes.length, 'two backups in one scheduled minute');
  } finally {
    await c.stop();
  }
});
