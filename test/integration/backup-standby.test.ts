// backup.fromStandby on the real thing: real PostgreSQL 15, Debian's pgBackRest (2.45) and its
// TLS server on every member, SeaweedFS's S3 gateway, a real kube-apiserver, members as processes.
// The primary's backup reads the files on a streaming replica through that replica's `pgbackrest
// server` (mutual TLS with certificates made here by openssl for localhost/127.0.0.1); a PITR
// restore of it is exact; with no replica to read from, the primary backs up and says why.
// Durations are printed as figures (never asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, chmodSync, chownSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, sleep } from './cluster-harness.js';
import { freePort } from './kube-harness.js';
import { startS3, haveWeed, backupFiles, type S3 } from './s3-harness.js';
import { scenarioFile, isRoot } from './scenario.js';
import { run, pgbr, restoreAndCount } from './backup-harness.js';

const { kube, fig } = scenarioFile('backup-standby-figures.json');
const skip = haveWeed() ? false : 'SeaweedFS not built: bash test/toolchain/install.sh seaweedfs';
/** Rows of ~300 bytes in the table the backups copy (PGA_BFS_ROWS; 100000 ≈ 40 MB database). */
const ROWS = Number(process.env.PGA_BFS_ROWS ?? 100_000);
const CN = 'pg-autopilot-backup';
let s3: S3;
let tlsDir = '';

/** A CA and one certificate (CN = the client name the servers accept; SANs localhost and 127.0.0.1) for server and client use. */
function makeTls(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pga-test-ca');
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${CN}`);
  const ext = join(dir, 'ext.cnf');
  execFileSync('sh', ['-c', `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ${ext}`]);
  ossl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', ext);
  if (isRoot) for (const f of ['ca.crt', 'tls.crt', 'tls.key']) chownSync(join(dir, f), Number(execFileSync('id', ['-u', 'postgres'])), Number(execFileSync('id', ['-g', 'postgres'])));
  chmodSync(join(dir, 'tls.key'), 0o600);
  return { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
}

before(async () => {
  if (skip) return;
  s3 = await startS3();
  await s3.createBucket('backups');
  tlsDir = mkdtempSync(join(tmpdir(), 'pga-bfs-'));
  chmodSync(tlsDir, 0o755);
});
after(async () => {
  await s3?.stop();
  if (tlsDir && !process.env.PGA_KEEP_TEST_DIRS) rmSync(tlsDir, { recursive: true, force: true });
});

/** On-demand full backup on the primary; its duration and where /status says it read from. */
async function fullBackup(c: Cluster, p: string): Promise<{ ms: number; source: { standby: string | null; reason: string } }> {
  const before = (await c.status(p))?.backup?.lastSuccess?.full?.at ?? null;
  const t0 = Date.now();
  const r = await c.api(p, 'POST', '/backup', { type: 'full' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const ms = await c.waitFor('the full backup to end', async () => {
    const b = (await c.status(p))?.backup;
    if (b?.lastSuccess?.full?.at && b.lastSuccess.full.at !== before) return Date.now() - t0;
    if (b?.lastError && b.lastError.at > new Date(t0).toISOString() && !b.job) assert.fail(`the backup failed: ${b.lastError.message}`);
    return null;
  }, 600_000, 250);
  return { ms, source: (await c.status(p)).backup.lastSource };
}

/** CPU seconds and bytes read (utime + stime, rchar) of one process now; null when it is gone. */
function usage(pid: number): { cpuS: number; readB: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rchar = Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
    return { cpuS: (Number(f[11]) + Number(f[12])) / 100, readB: rchar };
  } catch { return null; }
}
const children = (pid: number): number[] => { try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };

/** Samples, every 200 ms, every pgbackrest process below `root` (its last reading per pid): what the backup cost on that member. */
function sampler(root: number) {
  const seen = new Map<number, { cpuS: number; readB: number }>();
  const walk = (pid: number) => { for (const c of children(pid)) { if (/pgbackrest/.test(readFileSafe(`/proc/${c}/cmdline`))) { const u = usage(c); if (u) seen.set(c, u); } walk(c); } };
  const timer = setInterval(() => walk(root), 200);
  return { stop: () => { clearInterval(timer); walk(root); const t = [...seen.values()].reduce((a, u) => ({ cpuS: a.cpuS + u.cpuS, readB: a.readB + u.readB }), { cpuS: 0, readB: 0 }); return `${t.cpuS.toFixed(2)} s CPU, ${(t.readB / 1048576).toFixed(1)} MiB read (${seen.size} pgbackrest processes)`; } };
}
const readFileSafe = (f: string) => { try { return readFileSync(f, 'utf8'); } catch { return ''; } };

/** Every WAL segment written so far archived (a loaded machine archives a bulk load slowly). */
async function archived(c: Cluster, p: string) {
  const [{ w }] = await c.sql(p, 'select pg_walfile_name(pg_current_wal_lsn()) as w');
  await c.waitFor('the WAL written so far archived', async () => { await c.sql(p, 'select pg_switch_wal()'); const a = (await c.status(p))?.backup?.archive; return a?.lastArchivedWal && a.lastArchivedWal >= w; }, 300_000, 1_000);
}

test('backup from a standby through its pgBackRest TLS server; PITR of it is exact; no standby → the primary, with the reason', { skip }, async (t) => {
  const stanza = `bfs${Date.now() % 100000}`;
  const standbyTls = makeTls(tlsDir);
  const files = backupFiles(s3, stanza, { fromStandby: true, serverHost: 'localhost', standbyTls: { ...standbyTls, clientCN: CN } });
  // members share one host here: each its own server port (in a cluster, one port on each pod's address)
  const memberFiles: Record<string, Record<string, string>> = {};
  for (const m of ['m0', 'm1', 'm2']) memberFiles[m] = { 'backup.json': JSON.stringify({ ...JSON.parse(files['backup.json']!), serverPort: await freePort() }) };
  const c = await Cluster.start(kube(), { files, memberFiles, members: 3 });
  try {
    const p = await c.waitForPrimary(90_000);
    await c.waitForReplicas(p, 2, 180_000);
    const replicas = ['m0', 'm1', 'm2'].filter((m) => m !== p);
    for (const m of ['m0', 'm1', 'm2']) await c.waitFor(`${m}'s pgBackRest server listening`, async () => (await c.status(m))?.backup?.server?.listening, 60_000, 250);
    const cl = c.client(p, 120_000);
    await cl.connect();
    try {
      await cl.query('create table t (id int primary key, pad text)');
      for (let i = 0; i < ROWS; i += 50_000) await cl.query(`insert into t select g, md5(g::text) || md5((g*7)::text) || md5((g*13)::text) || md5((g*17)::text) || md5((g*19)::text) || md5((g*23)::text) || md5((g*29)::text) || md5((g*31)::text) from generate_series(${i + 1}, ${Math.min(ROWS, i + 50_000)}) g`);
      fig(t, 'database size', (await cl.query(`select pg_size_pretty(pg_database_size('postgres')) as s`)).rows[0].s, '');
    } finally { await cl.end(); }
    await archived(c, p);

    // where the work lands: pgbackrest below the primary's member process (backup and its local workers) and below each standby's server
    const servers = Object.fromEntries(await Promise.all(replicas.map(async (r) => [r, (await c.status(r)).backup.server.pid as number])));
    const onPrimary = sampler(c.member(p).proc!.pid!);
    const onStandby = Object.fromEntries(replicas.map((r) => [r, sampler(servers[r])]));
    const a = await fullBackup(c, p);
    t.diagnostic(`source: ${JSON.stringify(a.source)}`);
    fig(t, 'backup from the standby: pgbackrest on the primary', onPrimary.stop(), '');
    for (const r of replicas) fig(t, `backup from the standby: pgbackrest under ${r}'s server${r === a.source.standby ? ' (the standby read)' : ''}`, onStandby[r]!.stop(), '');
    assert.ok(a.source.standby && replicas.includes(a.source.standby), `read from a replica: ${JSON.stringify(a.source)}`);
    assert.match(a.source.reason, new RegExp(`^backing up from standby ${a.source.standby}: streams from us, healthy, lag .*, pgBackRest server at localhost:\\d+$`));
    fig(t, 'full backup from the standby', a.ms);
    // pgBackRest's own log: the backup started on the primary and waited for the standby's replay
    const pgbLines = c.grep(p, '"pgbackrest: ');
    t.diagnostic(pgbLines.slice(0, 6).join('\n'));
    assert.ok(pgbLines.some((l) => /wait for replay on the standby to reach/.test(l)), 'pgBackRest waited for the standby to replay the backup start');
    assert.ok(pgbLines.some((l) => /replay on the standby reached/.test(l)), 'the standby reached it');
    assert.ok(c.grep(a.source.standby!, 'source":"pgbackrest-server').length > 0 || c.grep(a.source.standby!, 'pgbackrest-server').length > 0, 'the standby\'s server logged the session');
    const info = JSON.parse(run([...pgbr(c, p, stanza), 'info', '--output=json']).stdout)[0];
    assert.equal(info.backup.filter((b: any) => b.type === 'full').length, 1, 'pgbackrest info lists the backup');

    // PITR of it: exactly the rows committed before the target
    await c.sql(p, `insert into t select g, 'after the backup' from generate_series(${ROWS + 1}, ${ROWS + 50}) g`);
    await sleep(1_500);
    const target = (await c.sql(p, `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as now`))[0].now;
    await sleep(1_500);
    await c.sql(p, `insert into t select g, 'after the target' from generate_series(${ROWS + 51}, ${ROWS + 100}) g`);
    await archived(c, p);
    const rows = await restoreAndCount(c, p, stanza, ['--type=time', `--target=${target}`]);
    assert.equal(rows.length, ROWS + 50);
    assert.equal(rows[rows.length - 1], ROWS + 50, 'the restored copy ends at the last row committed before the target');

    // a standby's server that dies is started again by its autopilot
    const victim = a.source.standby!;
    const pid = (await c.status(victim)).backup.server.pid as number;
    process.kill(pid, 'SIGKILL');
    await c.waitFor(`${victim}'s server restarted`, async () => { const s = (await c.status(victim))?.backup?.server; return s?.restarts >= 1 && s.listening && s.pid !== pid; }, 30_000, 250);

    // no replica streams: the primary backs up itself, with the reason and a Warning event
    for (const r of replicas) await c.signal(r, 'SIGTERM');
    await c.waitFor('no replica streaming', async () => (await c.sql(p, 'select count(*)::int as n from pg_stat_replication'))[0].n === 0, 60_000, 250);
    await sleep(2_500); // a tick observes it
    const onPrimaryAlone = sampler(c.member(p).proc!.pid!);
    const b = await fullBackup(c, p);
    fig(t, 'backup from the primary: pgbackrest on the primary', onPrimaryAlone.stop(), '');
    t.diagnostic(`source: ${JSON.stringify(b.source)}`);
    assert.equal(b.source.standby, null);
    assert.match(b.source.reason, /^backing up from the primary: no replica can serve it \(m\d: not streaming from us; m\d: not streaming from us\)$/);
    assert.ok(c.grep(p, 'backup from the primary instead of a standby').length > 0, 'the fallback is logged');
    const ev = await c.kube.request('GET', `/api/v1/namespaces/${c.ns}/events`);
    assert.ok((ev.body as any).items.some((e: any) => e.reason === 'BackupFromPrimary' && e.type === 'Warning' && /no replica can serve it/.test(e.message)), 'a BackupFromPrimary Warning event');
    fig(t, 'full backup from the primary (same data)', b.ms);
  } finally {
    await c.stop();
  }
});

test('the chart\'s certificate shape: pgBackRest accepts a wildcard DNS name ("*.<fullname>-headless.<ns>.svc") for a pod\'s name and refuses another name', { skip: skip || (isRoot ? false : 'needs root (a private /etc/hosts in a mount namespace)') }, async () => {
  // the pods' names resolve only in a cluster: here through a private /etc/hosts (unshare -m), bound for this script alone
  const dir = mkdtempSync(join(tmpdir(), 'pga-bfs-wild-'));
  try {
    chmodSync(dir, 0o755);
    const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pga-test-ca');
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${CN}`);
    execFileSync('sh', ['-c', `printf 'subjectAltName=DNS:*.pg-headless.db.svc,DNS:*.pg-headless.db.svc.cluster.local\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext.cnf`], { cwd: dir });
    ossl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf');
    execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    chmodSync(join(dir, 'tls.key'), 0o600);
    const port = await freePort();
    const tlsArgs = (side: string) => [`--${side}-ca-file=${dir}/ca.crt`, `--${side}-cert-file=${dir}/tls.crt`, `--${side}-key-file=${dir}/tls.key`].join(' ');
    const as = 'setpriv --reuid=postgres --regid=postgres --init-groups --';
    const script = [
      'set -e', `printf '127.0.0.1 pg-1.pg-headless.db.svc pg-1.pg-headless.db.svc.cluster.local pg-1.elsewhere.test\\n' > ${dir}/hosts`, `mount --bind ${dir}/hosts /etc/hosts`,
      `${as} pgbackrest --log-level-file=off --tls-server-address=127.0.0.1 --tls-server-port=${port} ${tlsArgs('tls-server')} --tls-server-auth=${CN}=demo server > ${dir}/server.log 2>&1 & srv=$!`,
      'sleep 1',
      'for h in pg-1.pg-headless.db.svc pg-1.pg-headless.db.svc.cluster.local pg-1.elsewhere.test; do',
      `  echo "== $h"; ${as} pgbackrest --log-level-console=warn --log-level-file=off --stanza=demo --lock-path=${dir} --repo1-host=$h --repo1-host-type=tls --repo1-host-port=${port} ${tlsArgs('repo1-host')} info 2>&1 || true`,
      'done', 'kill $srv',
    ].join('\n');
    const out = execFileSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    const answer = (h: string) => out.split('== ').find((s) => s.startsWith(`${h}\n`)) ?? '';
    // past TLS (hostname and client certificate verified), the server answers: this stanza has no repository there
    for (const h of ['pg-1.pg-headless.db.svc', 'pg-1.pg-headless.db.svc.cluster.local']) assert.match(answer(h), /missing stanza path/, `${h}: ${answer(h)}`);
    assert.match(answer('pg-1.elsewhere.test'), /unable to find hostname 'pg-1.elsewhere.test' in certificate/, 'a name outside the wildcard is refused');
  } finally {
    if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  }
});
