// `autopilot run` outside Kubernetes (core/mode.ts): standalone mode (one primary, the official
// postgres image's contract, core/standalone.ts) and replica mode (a static hot standby of
// PGA_PRIMARY_HOST). The same PostgreSQL layer (postgres.ts: supervisor, pg/*) and the same HTTP
// API (http.ts) as the autopilot; no Lease, no failover.
//
// Exit status: 2 on a configuration error (the message names the variable and the fix), 1 when the
// start fails (the log says why), 0 after SIGTERM/SIGINT (a fast shutdown: clients disconnected,
// a checkpoint, no recovery at the next start).

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { hostname } from 'node:os';
import { ConfigError, loadConfig, type Config } from '../core/config.js';
import { lsnDiff } from '../core/lsn.js';
import type { ModeDecision } from '../core/mode.js';
import type { DynamicConf } from '../core/render.js';
import { standaloneSettings, type StandaloneSettings } from '../core/standalone.js';
import { nodeFileReader } from './files.js';
import { startHttpApi, startMetricsApi, type HttpTarget } from './http.js';
import { runInitScripts } from './init-scripts.js';
import type { Logger } from './log.js';
import type { PgStatus, Postgres } from './postgres.js';

/** shell/postgres.js, loaded by main.ts (which hides a global from pg's import: see there) */
type PgModule = typeof import('./postgres.js');

/** Written in the data directory by a promotion: a promoted replica never becomes a standby again by itself. */
const PROMOTED = 'pga_promoted';

function configure(d: ModeDecision, env: Record<string, string | undefined>): { s: StandaloneSettings; cfg: Config } {
  const s = standaloneSettings(d.mode as StandaloneSettings['mode'], env, nodeFileReader, { hostname: hostname(), randomSecret: () => randomBytes(24).toString('base64url') });
  // every problem at once: standalone mode's own, then the rest of the configuration's
  let cfg: Config | null = null;
  const problems = [...s.problems];
  try {
    cfg = loadConfig(s.env, nodeFileReader, { standalone: { hostAuthMethod: s.hostAuthMethod, database: s.database, initdbArgs: s.initdbArgs } });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length || !cfg) throw new ConfigError(problems);
  return { s, cfg };
}

export interface StandaloneHooks {
  makeLog: (cfg: Config) => Logger;
  loadPg: () => Promise<PgModule>;
  /** `autopilot run -c NAME=VALUE` (exits 2 on a refused parameter) */
  applyParams: (cfg: Config) => void;
}

export async function runStandalone(d: ModeDecision, env: Record<string, string | undefined>, early: Logger, hooks: StandaloneHooks): Promise<void> {
  let s: StandaloneSettings, cfg: Config;
  try {
    ({ s, cfg } = configure(d, env));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    early.error('configuration refused', { problems: e.problems });
    process.stderr.write(`${e.problems.length === 1 && e.problems[0]!.startsWith('Error: ') ? e.problems[0] : e.message}\n`);
    process.exit(2);
  }
  hooks.applyParams(cfg);
  const log = hooks.makeLog(cfg);
  if (s.generated.length) log.info('generated for this run (not given)', { variables: s.generated, note: 'set them to use replicas or the API\'s POST endpoints' });
  if (s.hostAuthMethod === 'trust') log.warn('POSTGRES_HOST_AUTH_METHOD=trust: every network connection is accepted without a password; not recommended');
  const { createPostgres, scramVerifier } = await hooks.loadPg();
  const pg = createPostgres(cfg, log);
  const m = member(cfg, s, pg, log, scramVerifier);
  if (s.generated.includes('PGA_API_TOKEN')) {
    // for `autopilot promote` run in the same container (cli.ts reads it when no token is given)
    mkdirSync(cfg.runDir, { recursive: true, mode: 0o700 });
    writeFileSync(`${cfg.runDir}/.pga-api-token`, `${cfg.secrets.apiToken}\n`, { mode: 0o600 });
  }
  const server = await startHttpApi(m.target, { port: cfg.apiPort, token: cfg.secrets.apiToken, log });
  const metricsServer = cfg.metricsPort === null ? null : await startMetricsApi(m.target, { port: cfg.metricsPort, log });

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal: sig });
    m.stop();
    try {
      await pg.stop('fast');
    } catch (e) {
      log.error('shutdown failed', { error: (e as Error).message });
    }
    server.close();
    metricsServer?.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await m.bringUp();
  } catch (e) {
    if (stopping) return;
    log.error('start failed', { error: (e as Error).message });
    await pg.stop('fast').catch(() => undefined);
    process.exit(1);
  }
}

function member(cfg: Config, s: StandaloneSettings, pg: Postgres, log: Logger, scramVerifier: PgModule['scramVerifier']) {
  let phase: 'starting' | 'running' | 'failed' = 'starting';
  let reason = 'starting';
  let last: PgStatus | null = null;
  let lastCheck = Date.now();
  let timer: NodeJS.Timeout | null = null;
  const dyn = (primary: StandaloneSettings['primary']): DynamicConf => ({ primary, slotName: null, syncStandbyNames: '', applicationName: cfg.podName });
  let asReplica = s.mode === 'replica';

  /** What the marker next to the data directory says was interrupted (datadir.ts), null without one. */
  const incompleteKind = (): string | null => {
    try {
      return readFileSync(`${dirname(cfg.dataDir)}/.${basename(cfg.dataDir)}.pga-incomplete`, 'utf8').split(' ')[0] ?? null;
    } catch {
      return null;
    }
  };

  async function bringUp(): Promise<void> {
    let st = await pg.dataDirState();
    if (st === 'partial' && asReplica && incompleteKind() === 'pg_basebackup') {
      // our own interrupted clone (its marker says so): a copy of the primary, nothing of its own
      log.warn('an earlier clone did not finish: cloning again', { dataDir: cfg.dataDir });
      await pg.wipe();
      st = await pg.dataDirState();
    }
    if (st === 'partial') {
      throw new Error(`the data directory ${cfg.dataDir} is incomplete: an earlier first start (initdb, an init script or the clone) did not finish, so it is not started. Nothing was changed. Fix: read that start's log, correct the cause, empty the directory (PGDATA) and start again`);
    }
    const fresh = st === 'missing' || st === 'empty';
    if (asReplica && !fresh && existsSync(`${cfg.dataDir}/${PROMOTED}`)) {
      log.warn('this replica was promoted earlier: it runs as a primary and does not follow PGA_PRIMARY_HOST again. Fix: set PGA_MODE=standalone (and unset PGA_PRIMARY_HOST), or empty PGDATA to clone again');
      asReplica = false;
    }
    if (asReplica && s.primary) {
      if (fresh) {
        reason = `cloning from ${s.primary.host}:${s.primary.port}`;
        await pg.basebackup(s.primary);
      }
      await pg.writeConfig(dyn(s.primary));
      await pg.setStandby(true);
      await startReplica();
    } else if (fresh) {
      reason = 'initdb';
      await pg.initdb();
      // as the official image: the init scripts run on a server that only listens on its private
      // socket, so no client sees the database before they are done; then the server restarts on TCP
      await pg.writeConfig({ ...dyn(null), localOnly: true });
      await pg.start();
      reason = 'running the init scripts';
      await pg.bootstrapSql(() => runInitScripts(cfg, s, log));
      await pg.stop('fast');
      await pg.writeConfig(dyn(null));
      await pg.start();
    } else {
      log.info('the data directory is initialised: initdb and the init scripts are skipped', { dataDir: cfg.dataDir });
      if (existsSync(`${cfg.dataDir}/standby.signal`)) log.warn('the data directory is a standby (standby.signal) with no primary to follow in standalone mode: it stays read-only until "autopilot promote" (or PGA_MODE=replica with PGA_PRIMARY_HOST to follow one)');
      await pg.writeConfig(dyn(null));
      await pg.start();
      await keepReplicationRole();
    }
    phase = 'running';
    log.info(asReplica ? 'replica started' : 'primary started', { dataDir: cfg.dataDir, port: cfg.pgPort, apiPort: cfg.apiPort, ...(asReplica ? { primary: `${s.primary!.host}:${s.primary!.port}` } : { database: s.database }) });
    await check();
    timer = setInterval(() => void check(), cfg.loopMs);
  }

  /** Start a standby; fail fast (instead of waiting for connections that can never succeed) when
   *  the member's superuser is not a role of the cloned data: the clone has the primary's roles. */
  async function startReplica(): Promise<void> {
    let wrongRole: string | null = null;
    const probe = setInterval(() => {
      pg.query('SELECT 1').catch((e: Error) => {
        if (/role ".*" does not exist/.test(e.message)) wrongRole = e.message;
      });
    }, 1000);
    let watch: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        pg.start(),
        new Promise<never>((_, reject) => {
          watch = setInterval(() => {
            if (wrongRole) reject(new Error(`${wrongRole}: the replica's superuser must be the primary's (the clone has the primary's roles). Fix: set POSTGRES_USER (or PGA_SUPERUSER) to the primary's POSTGRES_USER`));
          }, 200);
        }),
      ]);
    } finally {
      clearInterval(probe);
      clearInterval(watch);
    }
  }

  /** A replication password given later (after the first start) applies at the next start. */
  async function keepReplicationRole(): Promise<void> {
    if (s.generated.includes('PGA_REPLICATION_PASSWORD')) return;
    const st = await pg.status();
    if (st.inRecovery !== false) return;
    const name = `"${cfg.replicationUser.replace(/"/g, '""')}"`;
    const pw = `'${(scramVerifier(cfg.secrets.replicationPassword) ?? cfg.secrets.replicationPassword).replace(/'/g, "''")}'`;
    const exists = (await pg.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [cfg.replicationUser])).length === 1;
    await pg.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${name} WITH REPLICATION LOGIN PASSWORD ${pw}`);
  }

  /** After a promotion (ours, or pg_ctl promote / pg_promote() by hand): a primary from now on. */
  async function markPromoted(): Promise<void> {
    writeFileSync(`${cfg.dataDir}/${PROMOTED}`, `${new Date().toISOString()}\n`, { mode: 0o600 });
    asReplica = false;
    await pg.writeConfig(dyn(null));
    await pg.reload();
    log.warn('promoted: this member is a primary now and no longer follows its primary', { formerPrimary: `${s.primary?.host}:${s.primary?.port}` });
  }

  async function check(): Promise<void> {
    last = await pg.status();
    lastCheck = Date.now();
    if (asReplica && phase === 'running' && last.accepting && last.inRecovery === false) await markPromoted();
    if (!last.accepting) reason = `postgres is not accepting connections: ${last.error ?? 'unknown'}`;
    else if (last.inRecovery) reason = last.streaming ? `replica streaming from ${last.upstreamHost ?? '?'}` : `replica not streaming: waiting for the primary ${s.primary?.host}:${s.primary?.port}`;
    else reason = 'primary, accepting writes';
  }

  const lagBytes = (): number | null => {
    if (!last?.inRecovery || !last.upstreamLsn || !last.replayedLsn) return null;
    const d = lsnDiff(last.upstreamLsn, last.replayedLsn);
    return Number(d < 0n ? 0n : d);
  };
  const isPrimary = () => phase === 'running' && !!last?.accepting && last.inRecovery === false;
  const isReplica = () => phase === 'running' && !!last?.accepting && last.inRecovery === true && last.streaming;
  const role = () => (isPrimary() ? 'primary' : last?.accepting && last.inRecovery ? 'replica' : 'unknown');

  function snapshot() {
    const name = cfg.podName;
    return {
      mode: asReplica ? 'replica' : 'standalone',
      member: {
        name, role: role(), host: cfg.podIp, port: cfg.pgPort, apiUrl: `http://${cfg.podIp}:${cfg.apiPort}`, timeline: last?.timeline ?? null,
        lsn: last?.currentLsn ?? last?.replayedLsn ?? null, receivedLsn: last?.receivedLsn ?? null, replayedLsn: last?.replayedLsn ?? null,
        lagBytes: lagBytes(), healthy: isPrimary() || isReplica(), inRecovery: last?.inRecovery ?? null, streaming: last?.streaming ?? false,
        nofailover: true, syncStandby: false, systemId: last?.systemIdentifier ?? null, updatedAt: new Date(lastCheck).toISOString(),
      },
      leader: isPrimary() ? name : null, leaseHolder: isPrimary() ? name : null, leaseAgeMs: null, paused: false, failovers: 0, syncStandbys: null,
      reason, actions: [], decidedAt: new Date(lastCheck).toISOString(), members: [], kubeRequests: {}, leaseProblems: [],
      ...(asReplica && s.primary ? { upstream: `${s.primary.host}:${s.primary.port}` } : {}),
    };
  }

  const notHere = async () => ({ status: 409, message: 'not available in standalone mode: there is no cluster (use the Helm chart for high availability)' });
  const target: HttpTarget = {
    // alive while the status checks run (starting counts: initdb, a clone and init scripts take their time)
    alive: () => phase === 'starting' || Date.now() - lastCheck < 3 * cfg.loopMs + 10_000,
    ready: () => isPrimary() || (isReplica() && (lagBytes() ?? 0) <= cfg.maxLagBytes),
    snapshot,
    statusNow: async () => {
      if (phase === 'running') await check();
      return snapshot() as never;
    },
    isPrimary,
    isReplica,
    metrics: () => {
      const r = role();
      return [
        '# TYPE pga_role gauge', ...['primary', 'replica', 'unknown'].map((x) => `pga_role{role="${x}"} ${x === r ? 1 : 0}`),
        '# TYPE pga_postgres_up gauge', `pga_postgres_up ${last?.accepting ? 1 : 0}`,
        '# TYPE pga_lag_bytes gauge', `pga_lag_bytes ${lagBytes() ?? 0}`,
        '# TYPE pga_timeline gauge', `pga_timeline ${last?.timeline ?? 0}`,
      ].join('\n') + '\n';
    },
    backups: async () => ({ status: 404, body: { error: 'backups are not available in standalone mode' } }),
    failsafeAck: () => ({ status: 409, message: 'not available in standalone mode' }),
    requestBackup: () => ({ status: 409, message: 'backups are not available in standalone mode' }),
    setPaused: notHere,
    requestSwitchover: notHere,
    promote: async () => {
      if (phase !== 'running' || !last?.accepting) return { status: 503, message: 'postgres is not running yet' };
      if (!last.inRecovery) return { status: 409, message: 'already a primary: nothing to promote' };
      log.warn('promoting on request: this replica stops following its primary and accepts writes');
      await pg.promote();
      await markPromoted();
      await check();
      return { status: 200, message: `${cfg.podName} promoted: it accepts writes and no longer follows ${s.primary?.host}:${s.primary?.port}` };
    },
  };
  return { target, bringUp, stop: () => { if (timer) clearInterval(timer); phase = phase === 'running' ? 'running' : 'failed'; } };
}
