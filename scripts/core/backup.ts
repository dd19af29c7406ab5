// Backups, pure: pgBackRest's configuration for a member, the archive/restore commands postgres
// runs, and which scheduled backup is due. The shell writes the files and runs pgbackrest.
import type { BackupConfig, BackupType } from './backup-config.js';
import { previousRun } from './cron.js';
import type { Action, BackupView, MemberView, PgView } from './types.js';
import { backupSource } from './backup-standby.js';

export interface MemberPaths {
  dataDir: string;
  pgPort: number;
  /** unix socket directory */
  runDir: string;
  /** pgBackRest's asynchronous archive spool: on the data volume, so it survives restarts */
  spoolDir: string;
  /** where pgBackRest keeps its lock files (a tmpfs is fine) */
  lockDir: string;
  superuser: string;
}

export interface RenderedPgBackRest {
  /** pgbackrest.conf: everything but secrets */
  conf: string;
  /** conf.d/secrets.conf (mode 0600, owner postgres): repository key, secret, cipher passphrase */
  secrets: string;
}

const line = (k: string, v: string | number) => `${k}=${v}`;
/** Seconds archive-push waits for the asynchronous pusher (pgBackRest's default: 60); `backup.options` may override it. */
export const ARCHIVE_TIMEOUT_S = 10;
/** Seconds a backup waits for its last WAL segment to reach the repository (pgBackRest's default: 60):
 *  behind an archive backlog (a bulk load, a slow store) that segment comes after every queued one;
 *  the 1 GB bench's backup failed after 10 s with the archive 100 s behind. */
export const BACKUP_ARCHIVE_TIMEOUT_S = 600;

export function renderPgBackRest(b: BackupConfig, p: MemberPaths): RenderedPgBackRest {
  const r = b.repo;
  const global = [
    '[global]',
    line('repo1-type', 's3'),
    line('repo1-s3-endpoint', r.endpoint),
    ...(r.port !== null ? [line('repo1-storage-port', r.port)] : []),
    line('repo1-s3-bucket', r.bucket),
    line('repo1-s3-region', r.region),
    line('repo1-s3-uri-style', r.uriStyle),
    line('repo1-path', r.path),
    line('repo1-storage-verify-tls', r.verifyTls ? 'y' : 'n'),
    ...(r.caFile ? [line('repo1-storage-ca-file', r.caFile)] : []),
    ...(b.retention.full !== null ? [line('repo1-retention-full-type', 'count'), line('repo1-retention-full', b.retention.full)] : []),
    ...(b.retention.fullDays !== null ? [line('repo1-retention-full-type', 'time'), line('repo1-retention-full', b.retention.fullDays)] : []),
    ...(b.cipherPass !== null ? [line('repo1-cipher-type', 'aes-256-cbc')] : []),
    line('archive-async', 'y'),
    line('spool-path', p.spoolDir),
    line('lock-path', p.lockDir),
    line('log-level-console', 'warn'),
    line('log-level-stderr', 'off'),
    line('log-level-file', 'off'),
    line('start-fast', 'y'),
    ...Object.entries(b.options).sort(([a], [c]) => a.localeCompare(c)).map(([k, v]) => line(k, v)),
  ];
  const stanza = [
    `[${b.stanza}]`,
    line('pg1-path', p.dataDir),
    line('pg1-port', p.pgPort),
    line('pg1-socket-path', p.runDir),
    line('pg1-user', p.superuser),
  ];
  const secrets = [
    '[global]',
    line('repo1-s3-key', r.key),
    line('repo1-s3-key-secret', r.keySecret),
    ...(b.cipherPass !== null ? [line('repo1-cipher-pass', b.cipherPass)] : []),
  ];
  // Per command (a `backup.options` archive-timeout, in [global], replaces both): archive-push waits
  // this long for the asynchronous pusher before it reports a failure to postgres (pg_stat_archiver,
  // our alert): pgBackRest's 60 s default made a store that is down or refuses our credentials
  // visible only after a minute. The pusher keeps working meanwhile, so a slow store costs nothing:
  // postgres' retry finds the segment pushed. A backup, though, must wait for its last segment.
  const perCommand = 'archive-timeout' in b.options ? [] : [
    '[global:archive-push]', line('archive-timeout', ARCHIVE_TIMEOUT_S), '',
    '[global:backup]', line('archive-timeout', BACKUP_ARCHIVE_TIMEOUT_S), '',
  ];
  return { conf: [...global, '', ...perCommand, ...stanza, ''].join('\n'), secrets: secrets.join('\n') + '\n' };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The command line prefix every pgbackrest call uses (config and include path explicit). */
export function pgbackrestArgs(confPath: string, includeDir: string, stanza: string): string[] {
  return [`--config=${confPath}`, `--config-include-path=${includeDir}`, `--stanza=${stanza}`];
}

/** Parameters a member with backups runs with (archive_mode=on on every member: a replica archives
 *  nothing until promoted, and then needs no restart). */
export function archiveParameters(confPath: string, includeDir: string, stanza: string): Record<string, string> {
  const args = pgbackrestArgs(confPath, includeDir, stanza).map(q).join(' ');
  return {
    archive_mode: 'on',
    archive_command: `pgbackrest ${args} archive-push %p`,
    // A quiet primary still closes a WAL segment every minute: the archive is never more than that behind.
    archive_timeout: '60',
  };
}

/** restore_command for a member restoring from (or catching up through) the repository. */
export function restoreCommand(confPath: string, includeDir: string, stanza: string): string {
  return `pgbackrest ${pgbackrestArgs(confPath, includeDir, stanza).map(q).join(' ')} archive-get %f "%p"`;
}

/** The last scheduled run of each type, as recorded on the lease (epoch ms of the scheduled minute). */
export type BackupRecord = Partial<Record<BackupType, { at: number; by: string; state: 'running' | 'done' | 'failed' }>>;

/** A schedule with no run recorded yet starts with a time at most this old (no backlog from before the schedule existed). */
export const FIRST_RUN_WINDOW_MS = 3_600_000;

export interface DueBackup {
  type: BackupType;
  /** the scheduled minute (epoch ms, UTC) this run is for */
  at: number;
  reason: string;
}

/**
 * The scheduled backup to run now, if any: for each type, the latest scheduled minute at or before
 * now that has no run recorded, a full before a differential before an incremental (one run covers
 * the others due at the same time). Only the primary asks, so a run recorded as 'running' by
 * another member was started by a former primary and did not finish (a backup runs against its
 * own postgres, which is no longer the primary): the same scheduled time runs again. Our own
 * 'running' record is a run in progress. Wall clock: schedules are civil time.
 */
export function dueBackup(b: BackupConfig, rec: BackupRecord, nowWallMs: number, self: string): DueBackup | null {
  const due: DueBackup[] = [];
  for (const t of ['full', 'diff', 'incr'] as const) {
    const c = b.schedule[t];
    if (!c) continue;
    const at = previousRun(c, nowWallMs);
    if (at === null) continue;
    const last = rec[t];
    if (!last) {
      if (nowWallMs - at <= FIRST_RUN_WINDOW_MS) due.push({ type: t, at, reason: `${t} backup scheduled at ${new Date(at).toISOString()} (${c.source}), none recorded yet` });
      continue;
    }
    if (last.at < at) { due.push({ type: t, at, reason: `${t} backup scheduled at ${new Date(at).toISOString()} (${c.source}); the last ran for ${new Date(last.at).toISOString()}` }); continue; }
    if (last.at === at && last.state === 'running' && last.by !== self) {
      due.push({ type: t, at, reason: `${t} backup for ${new Date(at).toISOString()} was started by ${last.by}, which no longer runs it: running it again` });
    }
  }
  if (!due.length) return null;
  // A full covers a differential or incremental due at the same time, a differential an incremental.
  return due[0]!;
}

/** The record after a run of `type` for `at` changed state. A finished full (or differential) run
 *  also covers the lesser types due by then: they do not run right after it. */
export function recordRun(rec: BackupRecord, b: BackupConfig, type: BackupType, at: number, by: string, state: 'running' | 'done' | 'failed', nowWallMs: number): BackupRecord {
  const next: BackupRecord = { ...rec, [type]: { at, by, state } };
  if (state !== 'done') return next;
  const lesser: BackupType[] = type === 'full' ? ['diff', 'incr'] : type === 'diff' ? ['incr'] : [];
  for (const t of lesser) {
    const c = b.schedule[t];
    const p = c ? previousRun(c, nowWallMs) : null;
    if (p !== null && (next[t]?.at ?? -Infinity) < p) next[t] = { at: p, by, state: 'done' };
  }
  return next;
}

/** Parse the lease annotation holding the record; anything unreadable is an empty record (the worst
 *  case is one extra backup, never a skipped safety step). */
export function parseBackupRecord(text: string | undefined): BackupRecord {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const out: BackupRecord = {};
    for (const t of ['full', 'diff', 'incr'] as const) {
      const r = v[t] as { at?: unknown; by?: unknown; state?: unknown } | undefined;
      if (r && typeof r.at === 'number' && typeof r.by === 'string' && (r.state === 'running' || r.state === 'done' || r.state === 'failed')) out[t] = { at: r.at, by: r.by, state: r.state };
    }
    return out;
  } catch { return {}; }
}

/** The primary's backup duties this tick: the stanza first, then a scheduled backup that is due,
 *  read from the standby backupSource() picks (backup.fromStandby) or from us. */
export function backupActions(v: BackupView, self: string, leaseVersion: string, pg: PgView, members: MemberView[]): { actions: Action[]; reason: string | null } {
  if (v.busy) return { actions: [], reason: null };
  if (!v.stanzaReady) return { actions: [{ type: 'stanza_create' }], reason: `creating the pgBackRest stanza ${v.config.stanza}` };
  const due = dueBackup(v.config, v.record, v.wallNowMs, self);
  if (!due) return { actions: [], reason: null };
  const source = backupSource(v.config, pg, members);
  return { actions: [{ type: 'run_backup', backupType: due.type, at: due.at, ifResourceVersion: leaseVersion, source }], reason: `${due.reason}; ${source.reason}` };
}
