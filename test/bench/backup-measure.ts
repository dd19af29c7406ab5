// The measurements of the backup bench (backup-bench.ts), one function each: a plain tar of a data
// directory (optionally piped through gzip/zstd), a full pgBackRest backup, a pgBackRest restore
// (files only, or to a point in time with postgres replaying to the target), and the archive lag of
// a committed row (until its WAL segment is in the repository). Each returns what it measured; none
// asserts anything about speed. Everything pgBackRest runs as the postgres OS user, with the
// configuration a member rendered for itself (run/pgbackrest/), as an operator would run it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asPostgres, isRoot } from '../integration/scenario.js';
import { PASSWORD, type Cluster } from '../integration/cluster-harness.js';
import { freePort } from '../integration/kube-harness.js';

export const PGBIN = '/usr/lib/postgresql/15/bin';

/** A query on a member with generous timeouts (the harness's 2 s / 4 s are for failure detection; here the machine is loaded on purpose). */
export async function sql(c: Cluster, name: string, text: string): Promise<any[]> {
  const cl = c.client(name, 30_000);
  await cl.connect();
  try { return (await cl.query(text)).rows; } finally { await cl.end().catch(() => undefined); }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a program as the postgres OS user; throws with its output when it fails. */
export function asPg(cmd: string[], timeoutMs = 1_800_000, env: Record<string, string> = {}): string {
  const a = asPostgres(cmd);
  const r = spawnSync(a[0]!, a.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd.slice(0, 2).join(' ')} … ${cmd.at(-1)} failed (exit ${r.status ?? r.signal}): ${(r.stderr + r.stdout).trim().slice(0, 600)}`);
  return r.stdout;
}

/** pgbackrest with the member's own configuration (and --stanza). */
export const pgbr = (c: Cluster, member: string, stanza: string) => {
  const d = c.member(member).dir;
  return ['pgbackrest', `--config=${join(d, 'run/pgbackrest/pgbackrest.conf')}`, `--config-include-path=${join(d, 'run/pgbackrest/conf.d')}`, `--stanza=${stanza}`];
};

/** A fresh directory the postgres user owns (tar's output, a restore target). */
export function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  if (isRoot) execFileSync('chown', ['postgres:postgres', dir]);
  return dir;
}
export const drop = (dir: string) => { if (!process.env.PGA_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true }); };

export interface TarRun { ms: number; outBytes: number }

/**
 * tar of the data directory without pg_wal's contents (pgBackRest does not copy them either: the
 * WAL a backup needs comes from the archive), into a file on the same disk, through `filter`
 * ("" = none, "gzip -6", "zstd -3 -q"). GNU tar exits 1 when a file changed while it read it —
 * postgres is running, as it is for pgBackRest — which is not a failure here.
 */
export function tarRun(dataDir: string, outDir: string, filter: string): TarRun {
  const out = join(outDir, `data.tar${filter ? '.' + filter.split(' ')[0] : ''}`);
  const script = `tar -cf - -C '${dataDir}' --exclude='./pg_wal/*' . 2>'${out}.err' ${filter ? `| ${filter} ` : ''}> '${out}'; s=("\${PIPESTATUS[@]}"); [ "\${s[0]}" -le 1 ] && [ "\${s[1]:-0}" -eq 0 ]`;
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 1_800_000 });
  const ms = performance.now() - t0;
  const err = execFileSync('cat', [`${out}.err`]).toString().trim();
  if (r.status !== 0) throw new Error(`tar${filter ? ' | ' + filter : ''} of ${dataDir} failed: ${err.slice(0, 400)} ${r.stderr.trim()}`);
  const outBytes = statSync(out).size;
  rmSync(out, { force: true }); rmSync(`${out}.err`, { force: true });
  return { ms, outBytes };
}

export interface BackupRun { ms: number; label: string; dbBytes: number; repoBytes: number; type: string; stopLsn: string }

/** A full pgBackRest backup with the member's configuration; `compress` overrides compress-type, `extra` adds backup options, `repo` another repository (for backup and info). */
export function backupRun(c: Cluster, member: string, stanza: string, compress: 'gz' | 'zst', extra: string[] = [], repo: string[] = []): BackupRun {
  const t0 = performance.now();
  asPg([...pgbr(c, member, stanza), ...repo, '--type=full', `--compress-type=${compress}`, ...extra, 'backup']);
  const ms = performance.now() - t0;
  const info = JSON.parse(asPg([...pgbr(c, member, stanza), ...repo, '--output=json', 'info']))[0];
  const b = info.backup.at(-1);
  return { ms, label: b.label, dbBytes: b.info.size, repoBytes: b.info.repository.delta, type: b.type, stopLsn: b.lsn.stop };
}

export interface RestoreRun { ms: number; note: string }

/** pgbackrest restore of backup set `label` into an empty directory: the files only (no postgres started). */
export function restoreFiles(c: Cluster, member: string, stanza: string, label: string): RestoreRun {
  const dir = scratch('pga-bench-restore-');
  try {
    const t0 = performance.now();
    asPg([...pgbr(c, member, stanza), `--pg1-path=${join(dir, 'pgdata')}`, `--set=${label}`, '--type=immediate', 'restore']);
    const ms = performance.now() - t0;
    const du = execFileSync('du', ['-sb', join(dir, 'pgdata')]).toString().split('\t')[0];
    return { ms, note: `${(Number(du) / 1e6).toFixed(0)} MB restored` };
  } finally { drop(dir); }
}

/**
 * Point in time: pgbackrest restore --type=time --target=<target> --target-action=promote into an
 * empty directory, then postgres started on it (own port and socket, archive_mode off: a restored
 * copy never archives into the repository it came from) until recovery ended and it is writable.
 * Returns the whole time and the parts; `check` runs a query on the result before it is stopped.
 */
export async function restoreToTime(c: Cluster, member: string, stanza: string, target: string, check: string): Promise<{ ms: number; restoreMs: number; replayMs: number; checked: string }> {
  const dir = scratch('pga-bench-pitr-');
  const pgdata = join(dir, 'pgdata');
  const sock = join(dir, 'sock');
  const port = await freePort();
  let started = false;
  try {
    const t0 = performance.now();
    asPg([...pgbr(c, member, stanza), `--pg1-path=${pgdata}`, '--type=time', `--target=${target}`, '--target-action=promote', 'restore']);
    const restoreMs = performance.now() - t0;
    asPg(['mkdir', '-p', sock]);
    const opts = `-c port=${port} -c listen_addresses='' -c unix_socket_directories=${sock} -c archive_mode=off -c primary_conninfo='' -c synchronous_standby_names=''`;
    asPg([`${PGBIN}/pg_ctl`, '-D', pgdata, '-w', '-t', '600', '-o', opts, '-l', join(dir, 'pg.log'), 'start'], 660_000);
    started = true;
    const psql = (sql: string) => asPg([`${PGBIN}/psql`, '-h', sock, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', sql], 60_000).trim();
    const deadline = Date.now() + 600_000;
    while (psql('select pg_is_in_recovery()') === 't') {
      if (Date.now() > deadline) throw new Error(`restored copy in ${pgdata} still in recovery after 600 s: see ${join(dir, 'pg.log')}`);
      await sleep(50);
    }
    const ms = performance.now() - t0;
    return { ms, restoreMs, replayMs: ms - restoreMs, checked: psql(check) };
  } finally {
    if (started) spawnSync(asPostgres([`${PGBIN}/pg_ctl`, '-D', pgdata, '-m', 'immediate', 'stop'])[0]!, asPostgres([`${PGBIN}/pg_ctl`, '-D', pgdata, '-m', 'immediate', 'stop']).slice(1), { timeout: 60_000 });
    drop(dir);
  }
}

/** pgbench against a member, as the postgres superuser over TCP (as the harness's clients connect). */
export function pgbenchArgs(c: Cluster, member: string, args: string[]): string[] {
  return [`${PGBIN}/pgbench`, '-h', '127.0.0.1', '-p', String(c.member(member).pgPort), '-U', 'postgres', ...args, 'postgres'];
}
export const PGENV = { PGPASSWORD: PASSWORD };

/** A steady write load: pgbench at a fixed rate, in the background, until stop(). */
export function startLoad(c: Cluster, member: string, tps: number, clients: number): { stop(): Promise<void>; proc: ChildProcess } {
  const cmd = asPostgres(pgbenchArgs(c, member, ['-n', '-c', String(clients), '-j', '1', '-R', String(tps), '-T', '3600']));
  const proc = spawn(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...PGENV }, stdio: 'ignore' });
  return {
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGINT');
      await Promise.race([exited, sleep(5_000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

/**
 * The WAL segment names (24 hex digits) present in the repository's archive of `stanza`, in the
 * directories of the given segments (archive/<stanza>/<archive id>/<first 16 digits>/): one S3
 * listing per directory, so the cost does not grow with the archive.
 */
export function archivedSegments(c: Cluster, member: string, stanza: string, of: string[]): Set<string> {
  const d = c.member(member).dir;
  const ls = (path: string) => asPg(['pgbackrest', `--config=${join(d, 'run/pgbackrest/pgbackrest.conf')}`, `--config-include-path=${join(d, 'run/pgbackrest/conf.d')}`, 'repo-ls', path], 60_000).split('\n').filter(Boolean);
  const ids = ls(`archive/${stanza}`).filter((x) => /^\d+-\d+$/.test(x)); // e.g. 15-1
  const got = new Set<string>();
  for (const id of ids) {
    for (const dir of new Set(of.map((s) => s.slice(0, 16)))) {
      for (const line of ls(`archive/${stanza}/${id}/${dir}`)) { const m = line.match(/^([0-9A-F]{24})-[0-9a-f]{40}/); if (m) got.add(m[1]!); }
    }
  }
  return got;
}

export interface Marker { i: number; at: number; segment: string; archivedAt: number | null; closedAt: number | null }

/**
 * Archive lag under the load that is running: `count` rows committed `spacingMs` apart on the
 * primary, each with the name of the WAL segment its commit is in (pg_walfile_name of the write
 * position right after the commit); the repository's archive is listed every `pollMs` until every
 * segment is there. Lag of a row = first listing that showed its segment − its commit's
 * acknowledgement (resolution: pollMs + the time of one listing, printed with the figure). Each
 * row also gets when its segment was closed (postgres writing a later one): lag = filling + pushing.
 */
export async function archiveLag(c: Cluster, primary: string, stanza: string, count: number, spacingMs: number, pollMs: number, timeoutMs: number): Promise<{ markers: Marker[]; listMs: number[] }> {
  await sql(c, primary, 'create table if not exists bench_marker (i serial primary key, at timestamptz not null default clock_timestamp())');
  const markers: Marker[] = [];
  const listMs: number[] = [];
  let placing = true;
  let placeError: Error | null = null;
  const place = (async () => {
    for (let i = 0; i < count; i++) {
      if (i) await sleep(spacingMs);
      await sql(c, primary, 'insert into bench_marker default values');
      const at = Date.now();
      const [{ seg }] = await sql(c, primary, 'select pg_walfile_name(pg_current_wal_lsn()) as seg');
      markers.push({ i, at, segment: seg, archivedAt: null, closedAt: null });
    }
  })().catch((e: Error) => { placeError = e; }).finally(() => { placing = false; });
  const deadline = Date.now() + timeoutMs;
  while (placing || markers.some((m) => m.archivedAt === null)) {
    if (placeError) throw new Error(`archive lag: committing a timed row on ${primary} failed: ${(placeError as Error).message}`);
    if (Date.now() > deadline) throw new Error(`archive lag: after ${timeoutMs / 1000} s the repository still lacks ${markers.filter((m) => m.archivedAt === null).map((m) => m.segment).join(', ')}`);
    const t0 = Date.now();
    // the segment is closed once postgres writes to a later one (same timeline: names compare in order)
    const [{ cur }] = await sql(c, primary, 'select pg_walfile_name(pg_current_wal_lsn()) as cur');
    for (const m of markers) if (m.closedAt === null && cur > m.segment) m.closedAt = Date.now();
    const pending = markers.filter((m) => m.archivedAt === null).map((m) => m.segment);
    const got = pending.length ? archivedSegments(c, primary, stanza, pending) : new Set<string>();
    listMs.push(Date.now() - t0);
    for (const m of markers) if (m.archivedAt === null && got.has(m.segment)) { m.archivedAt = Date.now(); m.closedAt ??= t0; }
    await sleep(pollMs);
  }
  await place;
  return { markers, listMs };
}
