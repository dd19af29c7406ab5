// The backup figures of issue 12, printed, never asserted: `BENCH_SCENARIOS=backup npm run bench`
// (ours only: the Patroni subjects have no backups here). One 3-member pg-autopilot cluster with
// backups to SeaweedFS's S3 gateway on loopback (test/integration/s3-harness.ts, as the backup
// integration tests use it), pgbench's tables at a chosen scale, then:
//   throughput — a full pgBackRest backup (gz, its default, and zst) against tar of the same data
//                directory (plain, | gzip -6, | zstd -3: pgBackRest's default levels), MB/s;
//   restore    — pgbackrest restore of a full backup into an empty directory (files only), and to a
//                point in time (restore + postgres replaying the archive to the target + promote);
//   archive lag — seconds from a commit to its WAL segment being listed in the repository, under a
//                steady pgbench load, on the first primary's timeline and after a failover on the
//                new primary's.
// Every figure is the median and range over BENCH_BACKUP_RUNS runs (markers, for the lag).
//
// Environment: BENCH_BACKUP_SCALE (pgbench scale, default 10 ≈ 190 MB of data directory; 64 ≈ 1 GB),
// BENCH_BACKUP_RUNS (default 3), BENCH_BACKUP_TPS (the steady load's rate, default 200 transactions/s
// over 2 connections), BENCH_BACKUP_MARKERS (commits timed per timeline, default 5, 3 s apart).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, sleep } from '../integration/cluster-harness.js';
import type { Kube } from '../integration/kube-harness.js';
import { startS3, haveWeed, backupFiles, WEED } from '../integration/s3-harness.js';
import { sql, asPg, archiveLag, archivedSegments, backupRun, drop, pgbenchArgs, pgbr, PGENV, restoreFiles, restoreToTime, scratch, startLoad, tarRun, type Marker } from './backup-measure.js';

const log = (m: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
const num = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${process.env[name]}: expected a positive number (default ${dflt})`);
  return v;
};

/** median and range of a list of figures */
export function stats(xs: number[]): { med: number; min: number; max: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const med = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { med, min: s[0]!, max: s.at(-1)!, n: s.length };
}

/** for each timed row, seconds from its segment's closing to its listing in the repository */
const pushed = (ms: Marker[]) => ms.filter((m) => m.closedAt !== null).map((m) => Math.max(0, m.archivedAt! - m.closedAt!) / 1000);

interface Row { figure: string; unit: string; xs: number[]; digits: number; note: string }
const MB = 1e6;

export async function runBackupBench(kube: Kube): Promise<{ md: string; json: unknown; problems: string[] }> {
  if (!haveWeed()) throw new Error(`BENCH_SCENARIOS=backup needs SeaweedFS: ${WEED} is missing (bash test/toolchain/install.sh seaweedfs)`);
  const scale = num('BENCH_BACKUP_SCALE', 10), runs = num('BENCH_BACKUP_RUNS', 3), tps = num('BENCH_BACKUP_TPS', 200), markers = num('BENCH_BACKUP_MARKERS', 5);
  const rows: Row[] = [];
  const problems: string[] = [];
  const row = (figure: string, unit: string, xs: number[], note = '', digits = 1) => { if (!xs.length) return; rows.push({ figure, unit, xs, digits, note }); log(`${figure}: ${xs.map((x) => x.toFixed(digits)).join(' / ')} ${unit}${note ? ` — ${note}` : ''}`); };
  const started = Date.now();
  const s3 = await startS3();
  await s3.createBucket('backups');
  const stanza = `bench${Date.now() % 100000}`;
  const files = backupFiles(s3, stanza, { retention: { full: 99 } });
  let c: Cluster | null = null;
  const out = scratch('pga-bench-tar-');
  let context = '';
  try {
    c = await Cluster.start(kube, { files });
    const cl = c;
    let p = await c.waitForPrimary(90_000);
    await c.waitForReplicas(p, 2, 120_000);
    await c.waitFor('stanza created and WAL archived', async () => { await sql(cl, p, 'select pg_switch_wal()'); return (await cl.status(p))?.backup?.archive?.lastArchivedWal; }, 120_000, 1_000);
    context = `pgBackRest ${execFileSync('pgbackrest', ['version']).toString().trim().replace('pgBackRest ', '')} (process-max 1), SeaweedFS S3 over TLS on loopback, PostgreSQL 15, 3 members; tar/gzip/zstd: ${execFileSync('bash', ['-c', 'tar --version | head -1; gzip --version | head -1; zstd --version']).toString().trim().split('\n').join('; ')}`;
    log(`cluster up, primary ${p}, stanza ${stanza}; pgbench -i -s ${scale}`);
    let t0 = Date.now();
    asPg(pgbenchArgs(c, p, ['-i', '-q', '-s', String(scale)]), 3_600_000, PGENV);
    const initS = (Date.now() - t0) / 1000;
    await sql(c, p, 'checkpoint');
    await c.waitForReplicas(p, 2, 300_000);
    const dataDir = c.member(p).dataDir;

    // --- throughput: tar and pgBackRest, the order rotated each run
    const tar: number[] = [], bgz: number[] = [], bzst: number[] = [], bundle: number[] = [];
    // a compressed tar's throughput is of the uncompressed stream (the plain tar's size)
    const gzMs: number[] = [], zstMs: number[] = [];
    const sizes = { tar: 0, gz: 0, zst: 0, db: 0, repoGz: 0, repoZst: 0, files: 0 };
    const labels = { gz: '', zst: '' };
    let lastStop = '0/0';
    const posixDir = scratch('pga-bench-repo-');
    // Its own lock path: pgBackRest's locks are per stanza, not per repository, so stanza-create for
    // this second repository waited on the member's asynchronous archive-push of the S3 one (the
    // 1 GB run failed on "unable to acquire lock … archive.lock" while pgbench -i's WAL drained).
    const posixLock = scratch('pga-bench-lock-');
    const posix = ['--repo1-type=posix', `--repo1-path=${posixDir}`, `--lock-path=${posixLock}`];
    const posixMBs: number[] = [];
    asPg([...pgbr(cl, p, stanza), ...posix, 'stanza-create'], 120_000);
    const steps: [string, () => void][] = [
      ['tar', () => { const r = tarRun(dataDir, out, ''); sizes.tar = r.outBytes; tar.push(r.outBytes / MB / (r.ms / 1000)); }],
      ['tar | gzip -6', () => { const r = tarRun(dataDir, out, 'gzip -6'); sizes.gz = r.outBytes; gzMs.push(r.ms); }],
      ['tar | zstd -3', () => { const r = tarRun(dataDir, out, 'zstd -3 -q'); sizes.zst = r.outBytes; zstMs.push(r.ms); }],
      ['pgBackRest full, gz', () => { const r = backupRun(cl, p, stanza, 'gz'); sizes.db = r.dbBytes; sizes.repoGz = r.repoBytes; labels.gz = r.label; lastStop = r.stopLsn; bgz.push(r.dbBytes / MB / (r.ms / 1000)); }],
      ['pgBackRest full, zst', () => { const r = backupRun(cl, p, stanza, 'zst'); sizes.repoZst = r.repoBytes; labels.zst = r.label; lastStop = r.stopLsn; bzst.push(r.dbBytes / MB / (r.ms / 1000)); }],
      // the same backup into a local directory (a posix repository on this disk, as tar writes): what S3 costs.
      // Its WAL goes to S3 only, so the end-of-backup archive check is off (it would wait for it in the wrong place).
      ['pgBackRest full, gz, posix', () => { const r = backupRun(cl, p, stanza, 'gz', ['--no-archive-check'], posix); posixMBs.push(r.dbBytes / MB / (r.ms / 1000)); }],
      // small files bundled into larger repository objects (a backup.options pass-through): fewer S3 requests
      ['pgBackRest full, gz, repo1-bundle', () => { const r = backupRun(cl, p, stanza, 'gz', ['--repo1-bundle']); lastStop = r.stopLsn; bundle.push(r.dbBytes / MB / (r.ms / 1000)); }],
    ];
    sizes.files = Number(execFileSync('bash', ['-c', `find '${dataDir}' -type f -not -path '*/pg_wal/*' | wc -l`]).toString().trim());
    for (let r = 0; r < runs; r++) {
      const order = [...steps.slice(r % steps.length), ...steps.slice(0, r % steps.length)];
      for (const [name, fn] of order) {
        t0 = Date.now();
        try { fn(); } catch (e) {
          // a variant that fails is reported; the ones the figures rest on (tar, pgBackRest to S3) abort the run
          if (!name.includes('posix') && !name.includes('bundle')) throw e;
          problems.push(`${name}: ${(e as Error).message}`);
        }
        log(`run ${r + 1}/${runs}: ${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
    drop(posixDir); drop(posixLock);
    const gz = gzMs.map((ms) => sizes.tar / MB / (ms / 1000)), zst = zstMs.map((ms) => sizes.tar / MB / (ms / 1000));
    const pct = (a: number) => `${((a / sizes.tar) * 100).toFixed(0)} %`;
    row(`data directory (pgbench scale ${scale}, pg_wal excluded)`, 'MB', [sizes.tar / MB], `pgBackRest counts ${(sizes.db / MB).toFixed(0)} MB; pgbench -i took ${initS.toFixed(0)} s`, 0);
    row('tar → file', 'MB/s', tar);
    row('tar | gzip -6 → file', 'MB/s', gz, `output ${pct(sizes.gz)} of the input`);
    row('tar | zstd -3 → file', 'MB/s', zst, `output ${pct(sizes.zst)} of the input`);
    row('pgBackRest full backup, gz (its default, level 6) → S3', 'MB/s', bgz, `repository ${pct(sizes.repoGz)} of the data directory; includes start-fast checkpoint and waiting for the end WAL segment's archive`);
    row('pgBackRest full backup, zst (level 3) → S3', 'MB/s', bzst, `repository ${pct(sizes.repoZst)}`);
    row('pgBackRest full backup, gz → a local directory (posix repository, no archive check)', 'MB/s', posixMBs, 'the same backup without S3: what the object store costs');
    row('pgBackRest full backup, gz, `repo1-bundle=y` → S3', 'MB/s', bundle, `the data directory has ${sizes.files} files; without bundling each is its own S3 object`);

    // --- archive lag, first timeline
    const phase = async (who: string, count: number, label: string): Promise<{ lag: Marker[]; walMBs: number }> => {
      const [{ l0 }] = await sql(cl, who, 'select pg_current_wal_lsn()::text as l0');
      const w0 = Date.now();
      const r = await archiveLag(cl, who, stanza, count, 3_000, 250, 300_000);
      const [{ d }] = await sql(cl, who, `select pg_wal_lsn_diff(pg_current_wal_lsn(), '${l0}') as d`);
      const walMBs = Number(d) / MB / ((Date.now() - w0) / 1000);
      const lag = r.markers;
      log(`${label}: segments ${lag.map((m) => m.segment).join(', ')}; one repository listing ${stats(r.listMs).med} ms (median of ${r.listMs.length})`);
      return { lag, walMBs };
    };
    let load = startLoad(c, p, tps, 2);
    await sleep(5_000);
    const before = await phase(p, markers, 'timeline before the failover');
    // a point in time for the PITR: now, with load before and after it; its WAL archived before restoring
    // one statement: now() and its snapshot are taken together (the snapshot a few ms later), so the count is of the rows committed before the target, give or take those ms
    const [{ target, tlsn, rowsAtTarget }] = await sql(c, p, `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as target, pg_current_wal_lsn()::text as tlsn, (select count(*) from pgbench_history) as "rowsAtTarget"`);
    await sleep(2_000);
    const [{ seg }] = await sql(c, p, 'select pg_walfile_name(pg_current_wal_lsn()) as seg');
    await sql(c, p, 'select pg_switch_wal()');
    await c.waitFor(`segment ${seg} archived`, async () => archivedSegments(cl, p, stanza, [seg]).has(seg), 120_000, 500);
    await load.stop();
    row(`archive lag, first primary's timeline (${before.lag[0]!.segment.slice(0, 8)})`, 's', before.lag.map((m) => (m.archivedAt! - m.at) / 1000), `${before.lag.length} commits 3 s apart under pgbench -R ${tps} -c 2 (${before.walMBs.toFixed(2)} MB/s of WAL); archive_timeout 60 s`, 2);
    row('… of which segment closed → in the repository (pgBackRest async push + S3)', 's', pushed(before.lag), '', 2);

    // --- restore
    const [{ replay }] = await sql(c, p, `select pg_wal_lsn_diff('${tlsn}', '${lastStop}') as replay`);
    const gb = sizes.db / 1e9;
    const rgz: number[] = [], rzst: number[] = [], pitr: number[] = [], pitrReplay: number[] = [];
    let checked = '';
    for (let r = 0; r < runs; r++) {
      rgz.push(restoreFiles(cl, p, stanza, labels.gz).ms / 1000 / gb);
      rzst.push(restoreFiles(cl, p, stanza, labels.zst).ms / 1000 / gb);
      const x = await restoreToTime(cl, p, stanza, target, 'select count(*) from pgbench_history');
      pitr.push(x.ms / 1000); pitrReplay.push(x.replayMs / 1000); checked = x.checked;
      log(`run ${r + 1}/${runs}: restores done (PITR ${(x.ms / 1000).toFixed(1)} s, of which postgres start + replay + promote ${(x.replayMs / 1000).toFixed(1)} s)`);
    }
    row('restore of the gz full backup into an empty directory (files only)', 's/GB', rgz, `${(sizes.db / MB).toFixed(0)} MB restored each time`);
    row('restore of the zst full backup into an empty directory (files only)', 's/GB', rzst);
    row('restore to a point in time: pgbackrest restore + replay to the target + promote', 's', pitr, `per GB of data directory: ${(stats(pitr).med / gb).toFixed(1)} s/GB (median); ${(Number(replay) / MB).toFixed(0)} MB of WAL from the last full backup's end to the target; pgbench_history rows counted by the statement that took the target ${rowsAtTarget} (its snapshot is a few ms after its now(): commits in between are after the target), in the restored copy ${checked}`);
    row('… of which postgres start + WAL replay + promote', 's', pitrReplay);

    // --- failover, then the new primary's timeline
    load = startLoad(c, p, tps, 2);
    await sleep(3_000);
    await load.stop(); // the load's connections go to the old primary: stop it before killing
    t0 = Date.now();
    await c.signal(p, 'SIGKILL', 5_000);
    const pm = c.postmasterPid(p); if (pm) { try { process.kill(pm, 'SIGKILL'); } catch { /* gone */ } }
    const old = p;
    p = await c.waitForPrimary(120_000, old);
    const failoverS = (Date.now() - t0) / 1000;
    row(`failover (${old} SIGKILLed) → ${p} writable and labelled`, 's', [failoverS], '', 2);
    // On an overloaded machine the API server can answer later than the renew deadline: the new
    // primary then stops postgres (as it must) and the cluster elects again. The step is repeated
    // on the primary of the moment (at most 3 times), and each repetition is listed under Problems.
    let first: Awaited<ReturnType<typeof phase>> | null = null, afterF: Awaited<ReturnType<typeof phase>> | null = null;
    for (let attempt = 1; !afterF; attempt++) {
      if (attempt > 1) p = await c.waitForPrimary(180_000);
      load = startLoad(c, p, tps, 2);
      try {
        first = await phase(p, 1, attempt === 1 ? 'first commit on the new primary' : `first commit on ${p} (attempt ${attempt})`);
        await sleep(3_000);
        afterF = await phase(p, markers, 'timeline after the failover');
      } catch (e) {
        if (attempt >= 3) throw e;
        problems.push(`archive lag after the failover, attempt ${attempt} on ${p}: ${(e as Error).message.split('\n')[0]} — repeated on the primary of the moment`);
        log(`attempt ${attempt} on ${p} failed (${(e as Error).message.split('\n')[0]}): again on the primary of the moment`);
      } finally { await load.stop(); }
    }
    first = first!;
    row(`archive lag, first commit on the new primary's timeline (${first.lag[0]!.segment.slice(0, 8)})`, 's', first.lag.map((m) => (m.archivedAt! - m.at) / 1000), `committed ${((first.lag[0]!.at - t0) / 1000).toFixed(1)} s after the kill`, 2);
    row(`archive lag, new primary's timeline (${afterF.lag[0]!.segment.slice(0, 8)})`, 's', afterF.lag.map((m) => (m.archivedAt! - m.at) / 1000), `${afterF.lag.length} commits 3 s apart, same load (${afterF.walMBs.toFixed(2)} MB/s of WAL)`, 2);
    row('… of which segment closed → in the repository', 's', pushed(afterF.lag), '', 2);
  } catch (e) {
    problems.push(`backup bench: ${(e as Error).message.split('\n').slice(0, 4).join(' / ')}`);
    log(`backup bench FAILED: ${(e as Error).message}${c ? `\n${c.tails()}` : ''}`);
  } finally {
    await c?.stop().catch((e) => log(`stop: ${(e as Error).message}`));
    await s3.stop().catch(() => undefined);
    drop(out);
  }

  const f = (x: number, d: number) => x.toFixed(d);
  const esc = (x: string) => x.replace(/\|/g, '\\|'); // a pipe inside a markdown table cell
  const cell = (r: Row) => { const s = stats(r.xs); return [f(s.med, r.digits), s.n > 1 ? `${f(s.min, r.digits)}–${f(s.max, r.digits)}` : '—', String(s.n)]; };
  const med = (name: string) => stats(rows.find((r) => r.figure.startsWith(name))?.xs ?? [NaN]).med;
  const ratio = (a: string, b: string) => `${(med(a) / med(b)).toFixed(2)}×`;
  const md = [
    `# Backup figures (pg-autopilot, pgBackRest) — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `${context || 'run failed, see Problems'}. Whole run ${Math.round((Date.now() - started) / 1000)} s. Printed, not asserted; the machine may be shared.`,
    '',
    '| figure | median | range | n | unit | note |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${esc(r.figure)} | ${cell(r).join(' | ')} | ${r.unit} | ${esc(r.note)} |`),
    '',
    rows.length > 7 ? `Ratios of the medians: pgBackRest gz ÷ tar | gzip -6 = **${ratio('pgBackRest full backup, gz', 'tar | gzip')}**, pgBackRest zst ÷ tar | zstd -3 = **${ratio('pgBackRest full backup, zst', 'tar | zstd')}**, pgBackRest gz ÷ plain tar = ${ratio('pgBackRest full backup, gz', 'tar →')}.` : '',
    ...(problems.length ? ['', '## Problems', '', ...problems.map((x) => `- ${x}`)] : []),
    '',
  ].join('\n');
  return { md, json: { rows: rows.map((r) => ({ ...r, ...stats(r.xs) })), problems }, problems };
}
