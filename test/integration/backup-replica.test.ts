// replication.bootstrapFrom: backup on the real thing: real PostgreSQL 15, Debian's pgBackRest,
// SeaweedFS's S3 gateway over TLS, a real kube-apiserver, members as processes. A new replica
// restores the cluster's latest backup as a standby, catches up from the archive and streams;
// without a backup, or when the restore fails, it clones with pg_basebackup and says why.
// Clone times are printed as figures (never asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, chmodSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, TOKEN } from './cluster-harness.js';
import { startS3, haveWeed, backupFiles as repoFiles, type S3 } from './s3-harness.js';
import { scenarioFile } from './scenario.js';

const { kube, fig } = scenarioFile('backup-replica-figures.json');
let s3: S3;
const skip = haveWeed() ? false : 'SeaweedFS not built: bash test/toolchain/install.sh seaweedfs';
/** Rows of ~300 bytes in the table the clones copy (PGA_BFB_ROWS; 100000 ≈ 40 MB database). */
const ROWS = Number(process.env.PGA_BFB_ROWS ?? 100_000);
const FROM_BACKUP = { PGA_REPLICA_BOOTSTRAP_FROM: 'backup' };
let scratch = '';

before(async () => {
  if (skip) return;
  s3 = await startS3();
  await s3.createBucket('backups');
  scratch = mkdtempSync(join(tmpdir(), 'pga-bfb-'));
  chmodSync(scratch, 0o755);
});
after(async () => {
  await s3?.stop();
  if (scratch && !process.env.PGA_KEEP_TEST_DIRS) rmSync(scratch, { recursive: true, force: true });
});

const backupFiles = (stanza: string) => repoFiles(s3, stanza, { options: { 'archive-timeout': 60 } });

async function fullBackup(c: Cluster, p: string): Promise<number> {
  const t0 = Date.now();
  // every WAL segment written so far archived first (a loaded machine archives a bulk load slowly)
  const [{ w }] = await c.sql(p, 'select pg_walfile_name(pg_current_wal_lsn()) as w');
  await c.waitFor('the WAL written so far archived', async () => { await c.sql(p, 'select pg_switch_wal()'); const a = (await c.status(p))?.backup?.archive; return a?.lastArchivedWal && a.lastArchivedWal >= w; }, 300_000, 1_000);
  for (let attempt = 1; ; attempt++) {
    const asked = new Date().toISOString();
    const r = await fetch(`http://127.0.0.1:${c.member(p).apiPort}/backup`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'full' }), signal: AbortSignal.timeout(30_000) });
    assert.equal(r.status, 202, await r.text());
    const b = await c.waitFor('the full backup to end', async () => { const x = (await c.status(p))?.backup; return x?.lastSuccess?.full?.at ? 'done' : x?.lastError && x.lastError.at > asked && !x.job ? x.lastError.message as string : null; }, 600_000, 500);
    if (b === 'done') return Date.now() - t0;
    if (attempt === 3) assert.fail(`the full backup failed 3 times, last: ${b}`);
  }
}

/** Add a member and wait until it streams from the primary; its clone as /status reports it, and the time to streaming. */
async function addReplica(c: Cluster, p: string, name: string, env: Record<string, string>): Promise<{ clone: any; toStreamingMs: number }> {
  const m = await c.addMember(name);
  Object.assign(m.env, env);
  const t0 = Date.now();
  c.startMember(name);
  await c.waitFor(`${name} streaming from ${p}`, async () => { const s = await c.status(name); return s?.member?.streaming && s.member.role === 'replica'; }, 600_000, 250);
  const toStreamingMs = Date.now() - t0;
  return { clone: (await c.status(name)).clone, toStreamingMs };
}

/** A table of ROWS rows that do not compress away (every row its own md5s). */
async function fill(c: Cluster, p: string): Promise<string> {
  const cl = c.client(p, 120_000); // Cluster.sql's read timeout (4 s) is for small statements on an idle machine
  await cl.connect();
  try {
    await cl.query('create table t (id int primary key, pad text)');
    for (let i = 0; i < ROWS; i += 50_000) {
      await cl.query(`insert into t select g, md5(g::text) || md5((g*7)::text) || md5((g*13)::text) || md5((g*17)::text) || md5((g*19)::text) || md5((g*23)::text) || md5((g*29)::text) || md5((g*31)::text) from generate_series(${i + 1}, ${Math.min(ROWS, i + 50_000)}) g`);
    }
    return (await cl.query(`select pg_size_pretty(pg_database_size('postgres')) as s`)).rows[0].s;
  } finally {
    await cl.end();
  }
}

const count = async (c: Cluster, name: string, where = 'true') => (await c.sql(name, `select count(*)::int as n from t where ${where}`))[0].n as number;

test('a new replica restores from the repository (no pg_basebackup), streams, and holds rows written after the backup', { skip }, async (t) => {
  const stanza = `bfb${Date.now() % 100000}`;
  const c = await Cluster.start(kube(), { files: backupFiles(stanza), members: 2, env: FROM_BACKUP });
  try {
    const p = await c.waitForPrimary(90_000);
    await c.waitForReplicas(p, 1, 180_000);
    const size = await fill(c, p);
    fig(t, 'database size', size, '');
    fig(t, 'full backup', await fullBackup(c, p));
    // written after the backup: reach the new replica through the archive and the stream
    await c.sql(p, `insert into t values (${ROWS + 1}, 'after the backup, archived')`);
    await c.sql(p, 'select pg_switch_wal()');
    await c.sql(p, `insert into t values (${ROWS + 2}, 'after the backup, not archived yet')`);

    const r = await addReplica(c, p, 'm2', {});
    t.diagnostic(`m2 clone: ${JSON.stringify(r.clone)}`);
    assert.equal(r.clone?.method, 'restore', 'the new member restored from the repository');
    assert.match(r.clone.reason, /restoring the latest of 1 backup\(s\) from the repository as a standby, then streaming from m\d/);
    assert.equal(r.clone.restoreError, null);
    assert.ok(c.grep('m2', 'restoring a replica from the backup repository').length > 0, 'the restore is logged');
    assert.deepEqual(c.grep('m2', 'cloning with pg_basebackup'), [], 'pg_basebackup was not used');
    assert.deepEqual(c.grep('m2', '"pg_basebackup'), [], 'pg_basebackup was not used');
    fig(t, 'restore clone (pgbackrest restore --type=standby)', r.clone.ms);
    fig(t, 'restore: member start → streaming', r.toStreamingMs);

    await c.sql(p, `insert into t values (${ROWS + 3}, 'after the replica streams')`);
    await c.waitFor('m2 holds every row', async () => (await count(c, 'm2')) === ROWS + 3, 60_000, 250);
    assert.equal(await count(c, 'm2', `id > ${ROWS}`), 3, 'rows written after the backup are on the restored replica');
    // catching up through the repository is over once it streams: restore_command goes
    await c.waitFor('restore_command reset on m2', async () => (await c.sql('m2', `select setting from pg_settings where name = 'restore_command'`))[0].setting === '', 30_000, 250);

    // the same data through pg_basebackup, for the figure
    const b = await addReplica(c, p, 'm3', { PGA_REPLICA_BOOTSTRAP_FROM: 'basebackup' });
    assert.equal(b.clone?.method, 'basebackup');
    fig(t, 'pg_basebackup clone (same data)', b.clone.ms);
    fig(t, 'pg_basebackup: member start → streaming', b.toStreamingMs);
  } finally {
    await c.stop();
  }
});

test('no backup in the repository, or a restore that fails: pg_basebackup, with the reason in /status', { skip }, async (t) => {
  const stanza = `bfbnone${Date.now() % 100000}`;
  const c = await Cluster.start(kube(), { files: backupFiles(stanza), members: 2, env: FROM_BACKUP });
  try {
    const p = await c.waitForPrimary(90_000);
    await c.waitForReplicas(p, 1, 180_000);
    const other = p === 'm0' ? 'm1' : 'm0';
    const s = (await c.status(other)).clone;
    t.diagnostic(`${other} clone: ${JSON.stringify(s)}`);
    assert.equal(s?.method, 'basebackup');
    assert.match(s.reason, /the backup repository holds no backup of this cluster yet: cloning from m\d with pg_basebackup/);
    assert.ok(c.grep(other, 'holds no backup of this cluster yet').length > 0, 'the reason is logged');
    fig(t, 'fallback (no backup): pg_basebackup clone', s.ms);

    // a backup exists now, but this member's restore fails (a pgbackrest that breaks on restore,
    // after leaving a file behind): it wipes only its own half-restored directory, then clones
    await c.sql(p, 'create table t (id int primary key)');
    await c.sql(p, 'insert into t select generate_series(1, 100)');
    await fullBackup(c, p);
    const wrapper = join(scratch, 'pgbackrest-failing-restore');
    writeFileSync(wrapper, `#!/bin/sh\nfor a in "$@"; do last="$a"; case "$a" in --pg1-path=*) dir="\${a#--pg1-path=}";; esac; done\nif [ "$last" = restore ]; then echo half > "$dir/PG_VERSION"; echo "simulated restore failure" >&2; exit 56; fi\nexec /usr/bin/pgbackrest "$@"\n`, { mode: 0o755 });
    const r = await addReplica(c, p, 'm2', { PGA_PGBACKREST: wrapper });
    t.diagnostic(`m2 clone: ${JSON.stringify(r.clone)}`);
    assert.equal(r.clone?.method, 'basebackup');
    assert.match(r.clone.reason, /the restore from the backup repository failed on this member \(.*simulated restore failure.*\); not trying it again: cloning from m\d with pg_basebackup/);
    assert.match(r.clone.restoreError, /simulated restore failure/);
    assert.equal(c.grep('m2', 'restoring a replica from the backup repository').length, 1, 'one restore attempt, never a loop');
    assert.ok(c.grep('m2', 'half-made').length > 0, 'the half-restored directory was wiped before the clone');
    assert.equal(await count(c, 'm2'), 100);
    fig(t, 'fallback (restore failed): member start → streaming', r.toStreamingMs);
  } finally {
    await c.stop();
  }
});
