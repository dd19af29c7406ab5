// The data directory's lifecycle: its state, wipe, and the ways it is made or remade (initdb,
// pg_basebackup, pgBackRest's restore for a new cluster or a new replica, pg_rewind).
//
// Crash safety: initdb, pg_basebackup and pg_rewind each first write a marker file *next to* the
// data directory (`<parent>/.<name>.pga-incomplete`; it cannot live inside, initdb and
// pg_basebackup want an empty directory) and remove it only when they succeeded. initdb's marker
// stays until bootstrapSql() completed. A data directory with the marker, or without PG_VERSION /
// global/pg_control / pg_wal, is 'partial': never started, to be wiped and redone.

import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { basebackupPercent, pmStatusOf, rewindConnectionFailure } from '../../core/pgoutput.js';
import { basebackupProgram, initdbProgram, PgCommandError, rewindProgram, runProgram } from './commands.js';
import { pgbackrestArgs, renderPgBackRest } from '../../core/backup.js';
import { restoreTargetArgs, type RestoreConfig } from '../../core/restore-config.js';
import { pgbackrestBin } from './backup.js';
import type { Files } from './files.js';
import { SourceUnreachableError, sourceCheckpoint } from './sql.js';
import type { DataDirState, Endpoint, PgContext, RewindOutcome } from './types.js';

export interface DataDirDeps {
  files: Files;
  /** the postmaster runs (then nothing here may touch the directory) */
  isRunning: () => boolean;
  /** before the directory is emptied: let go of the server's files and connections */
  beforeWipe: () => void;
  /** after a rewind: put our configuration back (pg_rewind copies the source's) */
  rewriteConfig: () => Promise<void>;
}

export type DataDir = ReturnType<typeof createDataDir>;

export function createDataDir(ctx: PgContext, d: DataDirDeps) {
  const { cfg, log } = ctx;
  const { files } = d;
  const marker = `${dirname(cfg.dataDir)}/.${basename(cfg.dataDir)}.pga-incomplete`;

  async function setMarker(what: string): Promise<void> {
    await files.mkdirOwned(dirname(marker), 0o700);
    await files.writeOwned(marker, `${what} ${new Date().toISOString()}\n`);
  }
  async function clearMarker(): Promise<void> {
    await fsp.rm(marker, { force: true });
  }
  function markerKind(): string | null {
    try {
      return readFileSync(marker, 'utf8').split(' ')[0] ?? '';
    } catch {
      return null;
    }
  }

  async function state(o: { allowBootstrap?: boolean } = {}): Promise<DataDirState> {
    const empty = await files.isEmptyDir(cfg.dataDir);
    if (empty === null) return 'missing';
    if (empty) return 'empty';
    const kind = markerKind();
    if (kind !== null && !(o.allowBootstrap && kind === 'bootstrap')) return 'partial';
    const f = (p: string) => existsSync(`${cfg.dataDir}/${p}`);
    if (!f('PG_VERSION') || !f('global/pg_control') || !f('base')) return 'partial';
    try {
      const st = await fsp.stat(`${cfg.dataDir}/global/pg_control`);
      if (st.size < 512) return 'partial';
      const wal = await fsp.stat(`${cfg.dataDir}/pg_wal`); // follows the --waldir symlink
      if (!wal.isDirectory()) return 'partial';
    } catch {
      return 'partial';
    }
    return 'valid';
  }

  async function wipe(): Promise<void> {
    if (d.isRunning()) throw new Error('wipe refused: postgres is running');
    d.beforeWipe();
    log.warn('wiping the data directory', { dataDir: cfg.dataDir, walDir: cfg.walDir });
    await files.emptyDir(cfg.dataDir);
    if (cfg.walDir) await files.emptyDir(cfg.walDir);
    await clearMarker();
  }

  async function prepareEmptyTarget(what: string): Promise<void> {
    const st = await state();
    // a non-empty directory (valid or partial) is only redone after an explicit wipe()
    if (st === 'valid' || st === 'partial') throw new Error(`${what} refused: the data directory ${cfg.dataDir} is ${st}; wipe it first`);
    await files.mkdirOwned(cfg.dataDir, 0o700);
    await fsp.chmod(cfg.dataDir, 0o700);
    if (cfg.walDir) {
      if ((await files.isEmptyDir(cfg.walDir)) === false) throw new Error(`${what} refused: the WAL directory ${cfg.walDir} is not empty; wipe first`);
      await files.mkdirOwned(dirname(cfg.walDir), 0o700);
    }
    await setMarker(what);
  }

  async function initdb(): Promise<void> {
    await prepareEmptyTarget('initdb');
    const b = cfg.bootstrap.initdb;
    await files.mkdirOwned(cfg.runDir, 0o700);
    // no password only in standalone mode with POSTGRES_HOST_AUTH_METHOD=trust (config.ts)
    const pwfile = cfg.secrets.superuserPassword === '' ? null : `${cfg.runDir}/.pga-initdb-pw`;
    if (pwfile) await files.writeFileAtomic(pwfile, cfg.secrets.superuserPassword + '\n', 0o600);
    log.info('initdb', { dataDir: cfg.dataDir, walDir: cfg.walDir, encoding: b.encoding, locale: b.locale, dataChecksums: b.dataChecksums });
    const t0 = Date.now();
    try {
      await initdbProgram(ctx, pwfile);
    } finally {
      if (pwfile) await fsp.rm(pwfile, { force: true });
    }
    // the marker stays until bootstrapDone(): a crash in between leaves a 'partial' directory
    await setMarker('bootstrap');
    log.info('initdb done', { ms: Date.now() - t0 });
  }

  /** bootstrapSql() completed: the directory made by initdb is whole. */
  async function bootstrapDone(): Promise<void> {
    await clearMarker();
  }

  async function basebackup(from: Endpoint, onProgress?: (pct: number) => void): Promise<void> {
    await prepareEmptyTarget('pg_basebackup');
    await files.writePgpass();
    log.info('pg_basebackup', { from: `${from.host}:${from.port}` });
    const t0 = Date.now();
    let lastPct = -1;
    let lastLogged = -10;
    await basebackupProgram(ctx, from, (l) => {
      const pct = basebackupPercent(l);
      if (pct === null) {
        if (l.trim()) log.info(l.trim(), { source: 'pg_basebackup' });
        return;
      }
      if (pct === lastPct) return;
      lastPct = pct;
      onProgress?.(pct);
      if (pct >= lastLogged + 10 || pct === 100) {
        lastLogged = pct;
        log.info('pg_basebackup progress', { percent: pct, detail: l.trim() });
      }
    });
    await clearMarker();
    log.info('pg_basebackup done', { ms: Date.now() - t0 });
  }

  async function rewind(from: Endpoint): Promise<RewindOutcome> {
    if (d.isRunning()) throw new Error('pg_rewind refused: postgres is running; stop it first');
    const st = await state();
    if (st !== 'valid') {
      log.warn('pg_rewind skipped: the data directory is not valid', { state: st });
      return { outcome: 'failed', detail: `the data directory is ${st}` };
    }
    await files.writePgpass();
    log.info('pg_rewind', { from: `${from.host}:${from.port}` });
    const t0 = Date.now();
    try {
      await sourceCheckpoint(ctx, from);
    } catch (e) {
      const detail = (e as Error).message;
      log.error('pg_rewind: cannot use the source', { err: e });
      return e instanceof SourceUnreachableError ? { outcome: 'unreachable', detail } : { outcome: 'unreachable', detail: `the pre-check on the source failed: ${detail}` };
    }
    // The marker stays if pg_rewind fails: it may have changed files already, so the directory
    // must not be started as it is.
    await setMarker('pg_rewind');
    try {
      await rewindProgram(ctx, from);
    } catch (e) {
      const detail = (e as Error).message;
      const conn = rewindConnectionFailure(e instanceof PgCommandError ? e.stderr : detail);
      log.error('pg_rewind failed', { err: e, ms: Date.now() - t0, connection: conn });
      // pg_rewind connects before it touches the target: when it never got a connection, the
      // directory is as it was
      if (conn === 'connect') await clearMarker();
      return conn ? { outcome: 'unreachable', detail } : { outcome: 'failed', detail };
    }
    await clearMarker();
    await d.rewriteConfig();
    log.info('pg_rewind done', { ms: Date.now() - t0 });
    return { outcome: 'done' };
  }

  /** Remove a postmaster.pid left by a postgres that is gone (e.g. after a container restart the
   *  recorded pid can belong to an unrelated process, and postgres would refuse to start). */
  async function clearStalePid(): Promise<void> {
    const f = `${cfg.dataDir}/postmaster.pid`;
    const text = await fsp.readFile(f, 'utf8').catch(() => null);
    if (text === null) return;
    const pid = Number(text.split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return;
    const cmdline = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    if (cmdline.includes('postgres') && cmdline.includes(cfg.dataDir)) {
      throw new Error(`postgres is already running on ${cfg.dataDir} (pid ${pid}) outside this supervisor`);
    }
    if (cmdline === '' || !cmdline.includes('postgres')) {
      log.warn('removing a stale postmaster.pid', { pid });
      await fsp.rm(f, { force: true });
    }
  }

  /** The postmaster's own status line ('starting', 'stopping', 'ready', 'standby'), read before
   *  connecting so that startup and recovery do not fill the log with "FATAL: the database
   *  system is starting up" from our own polling. */
  async function pmStatus(): Promise<string | null> {
    const text = await fsp.readFile(`${cfg.dataDir}/postmaster.pid`, 'utf8').catch(() => null);
    return text === null ? null : pmStatusOf(text);
  }

  /**
   * A new cluster's first member from a backup (bootstrap.fromBackup): pgBackRest restores the
   * source repository's backup into the empty data directory and sets the recovery target; the
   * marker stays until bootstrapDone(), after the promotion at the target. The source's
   * configuration is its own file: this member archives to its own stanza, never the source's.
   */
  async function restore(r: RestoreConfig): Promise<void> {
    if (cfg.walDir) throw new Error('bootstrap.fromBackup with a separate WAL volume (persistence.wal.enabled) is not supported yet: restore into a data directory with pg_wal inside it');
    await prepareEmptyTarget('restore');
    const conf = `${cfg.runDir}/pgbackrest/restore.conf`, include = `${cfg.runDir}/pgbackrest/restore.d`;
    const src = renderPgBackRest({ stanza: r.stanza, repo: r.repo, cipherPass: r.cipherPass, schedule: { full: null, diff: null, incr: null }, retention: { full: null, fullDays: null }, fromStandby: false, standby: null, options: {} },
      { dataDir: cfg.dataDir, pgPort: cfg.pgPort, runDir: cfg.runDir, spoolDir: `${cfg.runDir}/pgbackrest/restore-spool`, lockDir: `${cfg.runDir}/pgbackrest/lock`, superuser: cfg.superuser });
    // the source is read, never written: no asynchronous archiving, no retention on it
    await files.mkdirOwned(include, 0o700);
    await files.mkdirOwned(`${cfg.runDir}/pgbackrest/lock`, 0o700);
    await files.writeFileAtomic(conf, src.conf.replace(/^archive-async=y$/m, 'archive-async=n'), 0o600);
    await files.writeFileAtomic(`${include}/secrets.conf`, src.secrets, 0o600);
    log.info('restoring from the backup repository', { stanza: r.stanza, endpoint: r.repo.endpoint, path: r.repo.path, target: r.target });
    const t0 = Date.now();
    await runProgram(ctx, pgbackrestBin(), [`--config=${conf}`, `--config-include-path=${include}`, `--stanza=${r.stanza}`, `--pg1-path=${cfg.dataDir}`, ...restoreTargetArgs(r.target), 'restore'], { timeoutMs: 24 * 3_600_000, logLines: true });
    await setMarker('bootstrap');
    log.info('restore done: postgres replays to the target and promotes', { ms: Date.now() - t0 });
  }

  /**
   * A new replica from the cluster's own repository (replication.bootstrapFrom: backup): pgBackRest
   * restores the latest backup as a standby (standby.signal, and a restore_command fetching from
   * our own stanza to catch up to the primary). The marker stays until the restore succeeded: a
   * failed restore leaves a 'partial' directory, wiped by the next tick (the member had no data).
   * Needs the member's pgBackRest files (Backups.prepare) written.
   */
  async function restoreStandby(stanza: string): Promise<void> {
    if (cfg.walDir) throw new Error('a replica restore into a separate WAL volume (PGA_WAL_DIR) is not supported: use replication.bootstrapFrom basebackup');
    await prepareEmptyTarget('restore-standby');
    log.info('restoring a replica from the backup repository (pgbackrest restore --type=standby)', { stanza });
    const t0 = Date.now();
    await runProgram(ctx, pgbackrestBin(), [...pgbackrestArgs(ctx.paths.pgbackrestConf, ctx.paths.pgbackrestInclude, stanza), `--pg1-path=${cfg.dataDir}`, '--type=standby', 'restore'],
      { timeoutMs: 24 * 3_600_000, logLines: true, env: { PGBACKREST_LOG_LEVEL_CONSOLE: 'info' } });
    await clearMarker();
    log.info('replica restore done: postgres catches up from the archive, then streams', { ms: Date.now() - t0 });
  }

  return { state, wipe, initdb, bootstrapDone, basebackup, rewind, clearStalePid, pmStatus, restore, restoreStandby };
}
