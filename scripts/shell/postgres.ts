// The PostgreSQL layer, as the rest of the entrypoint sees it: createPostgres() wires the parts
// below into one Postgres object.
//
//   pg/datadir.ts   state of the data directory, wipe, markers; initdb, pg_basebackup, pg_rewind
//   pg/files.ts     configuration files, atomic writes, ownership
//   pg/server.ts    the running server: start, stop, status, promote, reload
//   pg/session.ts   the member's own persistent connection to its postgres
//   pg/sql.ts       the status query, bootstrap SQL, promotion, checkpoints, slots
//   pg/commands.ts  the external programs (through zx)
//   supervisor.ts   the postmaster process: crash restarts, stop escalation, its log lines

import type { Config } from '../core/config.js';
import { confPaths, type DynamicConf } from '../core/render.js';
import type { Logger } from './log.js';
import { createDataDir } from './pg/datadir.js';
import { createFiles } from './pg/files.js';
import { createBackups } from './pg/backup.js';
import { createServer } from './pg/server.js';
import * as sql from './pg/sql.js';
import type { PgContext, Postgres, PostgresOptions } from './pg/types.js';

export type { Backups, ArchiverStatus, RepoInfo } from './pg/backup.js';
export type { DataDirState, Endpoint, PgStatus, Postgres, PostgresOptions, RewindOutcome, SettingsState, SlotHealth } from './pg/types.js';
export { PgCommandError } from './pg/commands.js';
export { scramVerifier } from './pg/sql.js';

export function createPostgres(cfg: Config, log: Logger, opts: PostgresOptions = {}): Postgres {
  const ctx: PgContext = { cfg, root: log, log: log.child({ component: 'postgres' }), paths: confPaths(cfg), runAs: opts.runAs };
  const files = createFiles(ctx);
  const server = createServer(ctx, opts, { files, dataDir: () => dataDir });
  const { sup, session } = server;
  let lastDyn: DynamicConf | null = null;
  let backupFiles = false;
  const writeConfig = async (dyn: DynamicConf): Promise<boolean> => {
    lastDyn = dyn;
    // pgBackRest's files before postgres may need them (archive_command, restore_command)
    if (!backupFiles) { await backups.prepare(); backupFiles = true; }
    return files.writeConfig(dyn);
  };
  const dataDir = createDataDir(ctx, {
    files,
    isRunning: () => sup.isRunning(),
    beforeWipe: () => session.close(),
    // without an earlier writeConfig() the caller must write the configuration before start()
    rewriteConfig: async () => {
      if (lastDyn) await writeConfig(lastDyn);
    },
  });

  const query = (text: string, params?: unknown[]) => sql.withClient(ctx, async (c) => (await c.query(text, params)).rows);
  // pg_stat_archiver is read every few seconds: over the member's own session, never a new
  // superuser connection (the same rule as /status: a full server must still answer us).
  const backups = createBackups(ctx, files, (text) => session.use(async (c) => (await c.query(text)).rows));
  return {
    backups,
    dataDirState: () => dataDir.state(),
    wipe: () => dataDir.wipe(),
    initdb: () => dataDir.initdb(),
    restore: (r) => dataDir.restore(r),
    bootstrapSql: async (after?: () => Promise<void>) => {
      const t0 = Date.now();
      await sql.bootstrapSql(ctx, files);
      // standalone mode's init scripts: inside the bootstrap window, so that a failure leaves the
      // data directory 'partial' (marked) rather than valid with half its scripts run
      if (after) await after();
      await dataDir.bootstrapDone();
      const b = cfg.bootstrap;
      ctx.log.info('bootstrap SQL done', { ms: Date.now() - t0, users: b.users.length, databases: b.databases.length, scripts: b.scripts.length });
    },
    basebackup: (from, onProgress) => dataDir.basebackup(from, onProgress),
    restoreStandby: async () => {
      if (!cfg.backup) throw new Error('backups are off: a replica cannot restore from the repository');
      await backups.prepare();
      await dataDir.restoreStandby(cfg.backup.stanza);
    },
    rewind: (from) => dataDir.rewind(from),
    writeConfig,
    setStandby: (on) => files.setStandby(on),
    start: server.start,
    stop: server.stop,
    isRunning: () => sup.isRunning(),
    restarting: () => sup.isWanted() && !sup.isRunning(),
    status: server.status,
    promote: server.promote,
    checkpoint: (timeoutMs) => sql.checkpoint(ctx, timeoutMs),
    reload: server.reload,
    rewriteConfig: async () => (lastDyn ? writeConfig(lastDyn) : false),
    settingsState: () => sql.settingsState(session),
    query,
    ensureSlots: (names) => sql.ensureSlots(ctx, session, names),
    dropSlotsExcept: (keep) => sql.dropSlotsExcept(ctx, session, keep),
    onExit: (cb) => sup.onExit(cb),
    setAutoRestart: (on) => sup.setAutoRestart(on),
    pid: () => sup.pid(),
    restarts: () => sup.restarts,
  };
}
