// pgBackRest for this member: its configuration files (secrets in a 0600 include, never in env),
// the stanza, backups, the repository's catalogue, and the archiver's health from postgres. The
// decisions (when, which type, who) are the core's (core/backup.ts); this only runs them.

import { existsSync } from 'node:fs';
import { renderPgBackRest, pgbackrestArgs } from '../../core/backup.js';
import type { BackupType } from '../../core/backup-config.js';
import type { RepoView } from '../../core/clone.js';
import { standbyBackupArgs, type StandbyTarget } from '../../core/backup-standby.js';
import { createBackupServer } from '../backup-server.js';
import { runProgram } from './commands.js';
import type { Files } from './files.js';
import type { PgContext } from './types.js';

/** Where pgbackrest is (Debian's package); PGA_PGBACKREST overrides it (tests). */
export const pgbackrestBin = (): string => process.env.PGA_PGBACKREST ?? (existsSync('/usr/bin/pgbackrest') ? '/usr/bin/pgbackrest' : 'pgbackrest');

export interface BackupInfo {
  label: string;
  type: BackupType;
  startedAt: string;
  stoppedAt: string;
  /** database size and what the repository holds for it (bytes) */
  size: number;
  repoSize: number;
  walStart: string;
  walStop: string;
}

export interface RepoInfo {
  stanza: string;
  status: string;
  backups: BackupInfo[];
  /** the archive's WAL range (first and last segment) */
  archive: { min: string | null; max: string | null };
}

export interface ArchiverStatus {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedAt: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
  /** failing: the last failure is newer than the last success */
  failing: boolean;
}

export function createBackups(ctx: PgContext, files: Files, query: (sql: string) => Promise<unknown[]>) {
  const { cfg, paths, log } = ctx;
  const b = cfg.backup;
  const bin = pgbackrestBin();

  /** Write pgbackrest.conf, the secrets include and the spool/lock directories. */
  async function prepare(): Promise<void> {
    if (!b) return;
    const r = renderPgBackRest(b, { dataDir: cfg.dataDir, pgPort: cfg.pgPort, runDir: cfg.runDir, spoolDir: paths.pgbackrestSpool, lockDir: paths.pgbackrestLock, superuser: cfg.superuser });
    await files.mkdirOwned(paths.pgbackrestInclude, 0o700);
    await files.mkdirOwned(paths.pgbackrestLock, 0o700);
    await files.mkdirOwned(paths.pgbackrestSpool, 0o700);
    await files.writeFileAtomic(paths.pgbackrestConf, r.conf, 0o600);
    await files.writeFileAtomic(`${paths.pgbackrestInclude}/secrets.conf`, r.secrets, 0o600);
  }

  async function run(command: string, extra: string[] = [], timeoutMs = 6 * 3_600_000): Promise<string> {
    if (!b) throw new Error('backups are off (no backup.json): set backup.enabled in the chart');
    const args = [...pgbackrestArgs(paths.pgbackrestConf, paths.pgbackrestInclude, b.stanza), ...extra, command];
    const out = await runProgram(ctx, bin, args, { timeoutMs, env: { PGBACKREST_LOG_LEVEL_CONSOLE: 'warn' } });
    return out.stdout;
  }

  /** backup.fromStandby: the `pgbackrest server` this member runs (any member may be the standby a backup reads from) */
  const server = b?.standby ? createBackupServer({
    backup: b, bin, podName: cfg.podName, podIp: cfg.podIp, dataDir: cfg.dataDir, runDir: cfg.runDir,
    confPath: paths.pgbackrestConf, includeDir: paths.pgbackrestInclude, ...(ctx.runAs ? { runAs: ctx.runAs } : {}), log,
  }) : null;

  return {
    enabled: !!b,
    prepare,
    server,
    /** Create (or verify) the stanza: idempotent, needs the local postgres running. */
    async stanzaCreate(): Promise<void> {
      const t0 = Date.now();
      await run('stanza-create', [], 120_000);
      log.info('pgBackRest stanza ready', { stanza: b?.stanza, ms: Date.now() - t0 });
    },
    /** Check that WAL reaches the repository (forces a segment switch on a primary). */
    async check(): Promise<void> {
      await run('check', [], 120_000);
    },
    /** A backup; from `standby` (pg2, through its pgBackRest server) when given. pgBackRest's
     *  info-level lines about the standby (which host it reads, its replay wait) are logged. */
    async backup(type: BackupType, standby: StandbyTarget | null = null): Promise<{ ms: number }> {
      const t0 = Date.now();
      const extra = standby ? [...standbyBackupArgs(b!, standby, cfg.superuser), '--log-level-console=info'] : [];
      const out = await run('backup', [`--type=${type}`, ...extra]);
      if (standby) {
        const lines = out.split('\n').map((l) => l.replace(/^\S+ \S+ P\d+\s+/, '').trim()).filter((l) => !/command begin/.test(l) && /standby|replay|backup start archive|new backup label/i.test(l));
        for (const l of lines) log.info(`pgbackrest: ${l}`, { source: 'pgbackrest', standby: standby.name });
      }
      return { ms: Date.now() - t0 };
    },
    /** The repository's catalogue of this stanza. */
    async info(): Promise<RepoInfo> {
      const raw = JSON.parse(await run('info', ['--output=json'], 60_000)) as any[];
      const s = raw[0] ?? {};
      const arch = (s.archive ?? [])[0] ?? {};
      return {
        stanza: s.name ?? b?.stanza ?? '',
        status: s.status?.message ?? 'unknown',
        archive: { min: arch.min ?? null, max: arch.max ?? null },
        backups: (s.backup ?? []).map((x: any) => ({
          label: x.label, type: x.type, startedAt: new Date(x.timestamp.start * 1000).toISOString(), stoppedAt: new Date(x.timestamp.stop * 1000).toISOString(),
          size: x.info?.size ?? 0, repoSize: x.info?.repository?.delta ?? x.info?.repository?.size ?? 0, walStart: x.archive?.start ?? '', walStop: x.archive?.stop ?? '',
        })),
      };
    },
    /** What a replica about to clone needs to know (core/clone.ts): the backups and whose they are. Never throws. */
    async forClone(): Promise<RepoView> {
      try {
        await prepare();
        // system-id is a 64-bit integer: quoted before parsing, or JSON.parse rounds it
        const text = (await run('info', ['--output=json'], 60_000)).replace(/"system-id"\s*:\s*(\d+)/g, '"system-id":"$1"');
        const s = (JSON.parse(text) as any[])[0] ?? {};
        const backups: any[] = s.backup ?? [];
        const code = Number(s.status?.code ?? 99);
        // 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data: nothing to restore
        if (!backups.length) return [0, 1, 2, 3].includes(code) ? { ok: true, backups: 0, systemIds: [] } : { ok: false, error: `pgbackrest info: ${s.status?.message ?? 'no status'}` };
        const dbs = new Map<number, string>(((s.db ?? []) as any[]).map((d) => [Number(d.id), String(d['system-id'])]));
        const ids = [...new Set(backups.map((x) => dbs.get(Number(x.database?.id))).filter((x): x is string => !!x))];
        return { ok: true, backups: backups.length, systemIds: ids };
      } catch (e) {
        return { ok: false, error: String((e as Error).message ?? e).split('\n').filter((l) => l.trim()).slice(-1)[0]?.slice(0, 300) ?? 'unknown error' };
      }
    },
    /** pg_stat_archiver of the local postgres. */
    async archiver(): Promise<ArchiverStatus> {
      const [r] = (await query(`select archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time from pg_stat_archiver`)) as any[];
      const la = r.last_archived_time ? new Date(r.last_archived_time) : null, lf = r.last_failed_time ? new Date(r.last_failed_time) : null;
      return {
        archivedCount: Number(r.archived_count), lastArchivedWal: r.last_archived_wal, lastArchivedAt: la?.toISOString() ?? null,
        failedCount: Number(r.failed_count), lastFailedWal: r.last_failed_wal, lastFailedAt: lf?.toISOString() ?? null,
        failing: lf !== null && (la === null || lf > la),
      };
    },
  };
}

export type Backups = ReturnType<typeof createBackups>;
