// The running server: the postmaster under the Supervisor plus the member's own session to it.
// start() waits until postgres accepts connections (opening the session on the way), stop()
// lets go of the session first, status() asks over the session and never throws.

import { Supervisor } from '../supervisor.js';
import { childEnv } from './commands.js';
import type { DataDir } from './datadir.js';
import type { Files } from './files.js';
import { LocalSession } from './session.js';
import * as sql from './sql.js';
import type { PgContext, PgStatus, PostgresOptions } from './types.js';

export type Server = ReturnType<typeof createServer>;

/** What status() says when postgres could not be asked. */
function blank(running: boolean, error: string | null): PgStatus {
  return {
    running,
    accepting: false,
    inRecovery: null,
    timeline: null,
    currentLsn: null,
    receivedLsn: null,
    replayedLsn: null,
    streaming: false,
    upstreamHost: null,
    replicas: [],
    slots: [],
    systemIdentifier: null,
    error,
  };
}

export function createServer(ctx: PgContext, opts: PostgresOptions, parts: { files: Files; dataDir: () => DataDir }) {
  const { cfg, log } = ctx;
  const session = new LocalSession(ctx);
  const sup = new Supervisor({
    binDir: cfg.binDir,
    dataDir: cfg.dataDir,
    log: ctx.root,
    env: childEnv(),
    ...(opts.runAs ? { runAs: opts.runAs } : {}),
    ...(opts.initialBackoffMs !== undefined ? { initialBackoffMs: opts.initialBackoffMs } : {}),
    ...(opts.maxBackoffMs !== undefined ? { maxBackoffMs: opts.maxBackoffMs } : {}),
    ...(opts.resetAfterMs !== undefined ? { resetAfterMs: opts.resetAfterMs } : {}),
    ...(opts.stopTimeoutsMs !== undefined ? { stopTimeoutsMs: opts.stopTimeoutsMs } : {}),
  });

  // every postmaster gets a session of its own
  sup.onSpawn(() => session.reset());

  async function accepting(): Promise<boolean> {
    const pm = await parts.dataDir().pmStatus();
    if (pm !== 'ready' && pm !== 'standby') return false;
    try {
      await session.use((c) => c.query('SELECT 1'));
      return true;
    } catch {
      return false;
    }
  }

  async function start(): Promise<void> {
    const dataDir = parts.dataDir();
    // between initdb and the end of bootstrapSql() the directory is marked incomplete but must
    // start (bootstrapSql needs a running server)
    const state = await dataDir.state({ allowBootstrap: true });
    if (state !== 'valid') throw new Error(`start refused: the data directory ${cfg.dataDir} is ${state}`);
    session.open();
    if (!sup.isRunning()) {
      await parts.files.mkdirOwned(cfg.runDir, 0o700);
      await dataDir.clearStalePid();
      sup.start();
    }
    const t0 = Date.now();
    const timeout = opts.startTimeoutMs ?? 600_000;
    let lastLog = t0;
    for (;;) {
      if (!sup.isRunning() && !sup.isWanted()) {
        throw new Error(`postgres exited during startup: ${sup.tail.slice(-5).join(' | ')}`);
      }
      // the first successful question opens the session that status() keeps using
      if (sup.isRunning() && (await accepting())) {
        sup.markReady();
        log.info('postgres accepts connections', { ms: Date.now() - t0 });
        return;
      }
      if (Date.now() - t0 > timeout) throw new Error(`postgres did not accept connections within ${Math.round(timeout / 1000)} s`);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log.info('waiting for postgres to accept connections', { ms: Date.now() - t0 });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stop(mode: 'smart' | 'fast' | 'immediate'): Promise<void> {
    // our own session would hold up a smart shutdown, which waits for every session to end
    session.close();
    await sup.stop(mode);
  }

  async function status(): Promise<PgStatus> {
    if (!sup.isRunning()) return blank(false, 'postgres is not running');
    try {
      const pm = await parts.dataDir().pmStatus();
      if (pm !== 'ready' && pm !== 'standby') return blank(true, `postgres is not accepting connections (${pm ?? 'no postmaster.pid yet'})`);
      if (session.isClosed()) return blank(true, 'postgres is stopping');
      const pid = sup.pid();
      const s = blank(true, null);
      await sql.readStatus(session, s);
      // a backend can outlive its postmaster for a moment: an answer counts only when the
      // postmaster it came from is still the one running
      if (sup.pid() !== pid) return blank(sup.isRunning(), 'postgres exited while it was asked');
      return s;
    } catch (e) {
      return blank(sup.isRunning(), (e as Error).message);
    }
  }

  async function promote(): Promise<void> {
    const t0 = Date.now();
    await sql.promote(session, log);
    await parts.files.setStandby(false); // postgres removed it; keep our view consistent
    log.info('promoted', { ms: Date.now() - t0 });
    // A checkpoint records the new timeline in pg_control, which pg_rewind of the former primary
    // reads. Not awaited: writes are already accepted; rewind() checks again anyway.
    void sql.checkpoint(ctx, 300_000).then(
      () => log.info('post-promotion checkpoint done', { ms: Date.now() - t0 }),
      (e) => log.warn('post-promotion checkpoint failed', { err: e }),
    );
  }

  /** SIGHUP to the postmaster. When postgres is not running this is a no-op: the files written
   *  by writeConfig() are read at its next start. */
  async function reload(): Promise<void> {
    if (!sup.signal('SIGHUP')) log.info('reload skipped: postgres is not running (the configuration applies at the next start)');
  }

  return { sup, session, start, stop, status, promote, reload };
}
