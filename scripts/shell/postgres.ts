// The PostgreSQL layer: data directory lifecycle (initdb, pg_basebackup, pg_rewind, wipe), the
// configuration files, the supervised server process and the SQL the autopilot needs.
//
// Crash safety of the data directory: initdb, pg_basebackup and pg_rewind each first write a
// marker file *next to* the data directory (`<parent>/.<name>.pga-incomplete`; it cannot live
// inside, initdb and pg_basebackup want an empty directory) and remove it only when they
// succeeded. initdb's marker stays until bootstrapSql() completed. A data directory with the
// marker, or without PG_VERSION / global/pg_control / pg_wal, is 'partial': never started, to be
// wiped and redone.

import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync, existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import pg from 'pg';
import type { Config } from '../core/config.js';
import { confPaths, renderPgHba, renderPgpass, renderPostgresqlConf, type DynamicConf } from '../core/render.js';
import type { Logger } from './log.js';
import { Supervisor, runAsPrefix, type StopMode } from './supervisor.js';

export type DataDirState = 'missing' | 'empty' | 'valid' | 'partial';

export interface PgStatus {
  running: boolean;
  accepting: boolean;
  inRecovery: boolean | null;
  timeline: number | null;
  /** primary: pg_current_wal_lsn */
  currentLsn: string | null;
  receivedLsn: string | null;
  /** replica: the primary's WAL end as its sender last reported it (pg_stat_wal_receiver.latest_end_lsn) */
  upstreamLsn?: string | null;
  replayedLsn: string | null;
  /** wal receiver status = streaming */
  streaming: boolean;
  upstreamHost: string | null;
  replicas: { applicationName: string; state: string; syncState: string; flushLsn: string | null; replayLsn: string | null }[];
  systemIdentifier: string | null;
  error: string | null;
}

export interface Postgres {
  dataDirState(): Promise<DataDirState>;
  wipe(): Promise<void>;
  initdb(): Promise<void>;
  bootstrapSql(): Promise<void>;
  basebackup(from: { host: string; port: number }, onProgress?: (pct: number) => void): Promise<void>;
  rewind(from: { host: string; port: number }): Promise<boolean>;
  writeConfig(dyn: DynamicConf): Promise<boolean>;
  setStandby(on: boolean): Promise<void>;
  start(): Promise<void>;
  stop(mode: 'smart' | 'fast' | 'immediate'): Promise<void>;
  isRunning(): boolean;
  status(): Promise<PgStatus>;
  promote(): Promise<void>;
  checkpoint(): Promise<void>;
  reload(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<unknown[]>;
  ensureSlots(names: string[]): Promise<void>;
  dropSlotsExcept(keep: string[]): Promise<void>;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  // --- additions
  /** Turn the automatic restart after a crash on or off (default on). */
  setAutoRestart(on: boolean): void;
  /** pid of the postmaster child, null when not running. */
  pid(): number | null;
  /** Number of automatic restarts after crashes so far. */
  restarts(): number;
}

export interface PostgresOptions {
  /** Run the binaries as this OS user through setpriv (tests that run as root). */
  runAs?: 'postgres' | string;
  /** How long start() waits for connections (default 600 s: crash recovery can be long). */
  startTimeoutMs?: number;
  /** Supervisor tuning (tests). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  resetAfterMs?: number;
  stopTimeoutsMs?: Partial<Record<StopMode | 'kill', number>>;
}

export class PgCommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly code: number | null,
    readonly signal: string | null,
    readonly stderr: string,
  ) {
    super(`${cmd} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ') || 'no output'}`);
    this.name = 'PgCommandError';
  }
}

/** SCRAM-SHA-256 verifier for `PASSWORD '…'`, computed here so the plaintext password never
 *  appears in a statement (and so in no server log). ASCII passwords only: PostgreSQL applies
 *  SASLprep, which is the identity for printable ASCII; other passwords are sent as literals. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string | null {
  if (!/^[\x20-\x7e]*$/.test(password)) return null;
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;
const passwordClause = (pw: string) => `PASSWORD ${quoteLiteral(scramVerifier(pw) ?? pw)}`;
const SLOT_RE = /^[a-z0-9_]{1,63}$/;
const BOOTSTRAP_STATE = 'pga_bootstrap.json';

/** Environment for child processes: no secrets of ours, no PG* variables that would redirect
 *  the tools somewhere else. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^PGA_.*(PASSWORD|TOKEN)/.test(k) || /^PG[A-Z]/.test(k)) continue;
    env[k] = v;
  }
  env.LC_ALL = env.LC_ALL ?? 'C.UTF-8';
  return { ...env, ...extra };
}

export function createPostgres(cfg: Config, log: Logger, opts: PostgresOptions = {}): Postgres {
  const plog = log.child({ component: 'postgres' });
  const paths = confPaths(cfg);
  const marker = `${dirname(cfg.dataDir)}/.${basename(cfg.dataDir)}.pga-incomplete`;
  const owner = opts.runAs
    ? {
        uid: Number(execFileSync('id', ['-u', opts.runAs]).toString().trim()),
        gid: Number(execFileSync('id', ['-g', opts.runAs]).toString().trim()),
      }
    : null;
  const sup = new Supervisor({
    binDir: cfg.binDir,
    dataDir: cfg.dataDir,
    log,
    env: childEnv(),
    ...(opts.runAs ? { runAs: opts.runAs } : {}),
    ...(opts.initialBackoffMs !== undefined ? { initialBackoffMs: opts.initialBackoffMs } : {}),
    ...(opts.maxBackoffMs !== undefined ? { maxBackoffMs: opts.maxBackoffMs } : {}),
    ...(opts.resetAfterMs !== undefined ? { resetAfterMs: opts.resetAfterMs } : {}),
    ...(opts.stopTimeoutsMs !== undefined ? { stopTimeoutsMs: opts.stopTimeoutsMs } : {}),
  });
  let lastDyn: DynamicConf | null = null;

  // ------------------------------------------------------------------ files
  async function own(path: string): Promise<void> {
    if (owner) await fsp.chown(path, owner.uid, owner.gid);
  }
  async function mkdirOwned(path: string, mode = 0o700): Promise<void> {
    // create missing parents one by one so each new one gets the right owner
    const missing: string[] = [];
    let p = path;
    while (!existsSync(p)) {
      missing.unshift(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
    }
    for (const d of missing) {
      await fsp.mkdir(d, { mode });
      await own(d);
    }
    if (missing.includes(path)) await fsp.chmod(path, mode);
  }
  /** Atomic write (temp file + rename) with mode and owner; returns true when the content changed. */
  async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<boolean> {
    let old: string | null = null;
    try {
      old = await fsp.readFile(path, 'utf8');
    } catch {
      old = null;
    }
    if (old === content) {
      await fsp.chmod(path, mode).catch(() => undefined);
      return false;
    }
    const tmp = `${path}.pga-tmp`;
    await fsp.writeFile(tmp, content, { mode });
    await fsp.chmod(tmp, mode);
    await own(tmp);
    await fsp.rename(tmp, path);
    return true;
  }
  async function isEmptyDir(path: string): Promise<boolean | null> {
    try {
      const entries = await fsp.readdir(path);
      return entries.filter((e) => e !== 'lost+found').length === 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
  async function setMarker(what: string): Promise<void> {
    await mkdirOwned(dirname(marker), 0o700);
    await fsp.writeFile(marker, `${what} ${new Date().toISOString()}\n`, { mode: 0o600 });
    await own(marker);
  }
  async function clearMarker(): Promise<void> {
    await fsp.rm(marker, { force: true });
  }
  async function writePgpass(): Promise<void> {
    await mkdirOwned(cfg.runDir, 0o700);
    await writeFileAtomic(paths.pgpass, renderPgpass(cfg), 0o600);
  }

  // ------------------------------------------------------------------ commands
  function run(
    bin: string,
    args: string[],
    o: { env?: Record<string, string>; input?: string; onStderrLine?: (l: string) => void; logLines?: boolean } = {},
  ): Promise<{ stdout: string; stderr: string }> {
    const argv = [...runAsPrefix(opts.runAs), `${cfg.binDir}/${bin}`, ...args];
    plog.debug('run', { cmd: bin, args });
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0] as string, argv.slice(1), {
        stdio: [o.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: childEnv(o.env),
        cwd: '/',
      });
      let stdout = '';
      let stderr = '';
      let partial = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => {
        const s = d.toString();
        stderr += s;
        if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
        partial += s;
        const lines = partial.split(/[\r\n]/);
        partial = lines.pop() ?? '';
        for (const l of lines) {
          if (l === '') continue;
          o.onStderrLine?.(l);
          if (o.logLines) plog.info(l, { source: bin });
        }
      });
      if (o.input !== undefined) {
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(o.input);
      }
      child.on('error', (err) => reject(new PgCommandError(bin, null, null, err.message)));
      child.on('close', (code, signal) => {
        if (partial) {
          o.onStderrLine?.(partial);
          if (o.logLines) plog.info(partial, { source: bin });
        }
        if (code === 0) resolve({ stdout, stderr });
        else reject(new PgCommandError(bin, code, signal, stderr || stdout));
      });
    });
  }

  function client(database = 'postgres', timeoutMs = 5000): pg.Client {
    return new pg.Client({
      host: cfg.runDir,
      port: cfg.pgPort,
      user: cfg.superuser,
      database,
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs + 1000,
      application_name: 'pg-autopilot',
    });
  }

  async function withClient<T>(fn: (c: pg.Client) => Promise<T>, database = 'postgres', timeoutMs = 5000): Promise<T> {
    const c = client(database, timeoutMs);
    c.on('error', () => undefined); // a server going away mid-query surfaces in the query's promise
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async function query(sql: string, params?: unknown[]): Promise<unknown[]> {
    return withClient(async (c) => (await c.query(sql, params)).rows);
  }

  // ------------------------------------------------------------------ data directory
  function markerKind(): string | null {
    try {
      return readFileSync(marker, 'utf8').split(' ')[0] ?? '';
    } catch {
      return null;
    }
  }

  async function dataDirState(opts2: { allowBootstrap?: boolean } = {}): Promise<DataDirState> {
    const empty = await isEmptyDir(cfg.dataDir);
    if (empty === null) return 'missing';
    if (empty) return 'empty';
    const kind = markerKind();
    if (kind !== null && !(opts2.allowBootstrap && kind === 'bootstrap')) return 'partial';
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

  async function emptyDir(dir: string): Promise<void> {
    let entries: string[];
    try {
      entries = await fsp.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      if (e === 'lost+found') continue;
      await fsp.rm(`${dir}/${e}`, { recursive: true, force: true });
    }
  }

  async function wipe(): Promise<void> {
    if (sup.isRunning()) throw new Error('wipe refused: postgres is running');
    plog.warn('wiping the data directory', { dataDir: cfg.dataDir, walDir: cfg.walDir });
    await emptyDir(cfg.dataDir);
    if (cfg.walDir) await emptyDir(cfg.walDir);
    await clearMarker();
  }

  async function prepareEmptyTarget(what: string): Promise<void> {
    const state = await dataDirState();
    // a non-empty directory (valid or partial) is only redone after an explicit wipe()
    if (state === 'valid' || state === 'partial') throw new Error(`${what} refused: the data directory ${cfg.dataDir} is ${state}; wipe it first`);
    await mkdirOwned(cfg.dataDir, 0o700);
    await fsp.chmod(cfg.dataDir, 0o700);
    if (cfg.walDir) {
      const walEmpty = await isEmptyDir(cfg.walDir);
      if (walEmpty === false) throw new Error(`${what} refused: the WAL directory ${cfg.walDir} is not empty; wipe first`);
      await mkdirOwned(dirname(cfg.walDir), 0o700);
    }
    await setMarker(what);
  }

  async function initdb(): Promise<void> {
    await prepareEmptyTarget('initdb');
    const b = cfg.bootstrap.initdb;
    await mkdirOwned(cfg.runDir, 0o700);
    const pwfile = `${cfg.runDir}/.pga-initdb-pw`;
    await writeFileAtomic(pwfile, cfg.secrets.superuserPassword + '\n', 0o600);
    const args = [
      '-D', cfg.dataDir,
      '-U', cfg.superuser,
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      `--encoding=${b.encoding}`,
      `--locale=${b.locale}`,
      ...(b.dataChecksums ? ['--data-checksums'] : []),
      ...(cfg.walDir ? [`--waldir=${cfg.walDir}`] : []),
      ...b.args,
    ];
    plog.info('initdb', { dataDir: cfg.dataDir, walDir: cfg.walDir, encoding: b.encoding, locale: b.locale, dataChecksums: b.dataChecksums });
    const t0 = Date.now();
    try {
      await run('initdb', args, { logLines: false });
    } finally {
      await fsp.rm(pwfile, { force: true });
    }
    // the marker stays until bootstrapSql() finished: a crash in between leaves a 'partial' dir
    await setMarker('bootstrap');
    plog.info('initdb done', { ms: Date.now() - t0 });
  }

  async function bootstrapSql(): Promise<void> {
    const t0 = Date.now();
    const statePath = `${cfg.dataDir}/${BOOTSTRAP_STATE}`;
    let done: string[] = [];
    try {
      done = (JSON.parse(readFileSync(statePath, 'utf8')) as { scripts?: string[] }).scripts ?? [];
    } catch {
      done = [];
    }
    await withClient(async (c) => {
      const roleExists = async (name: string) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
      const dbExists = async (name: string) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
      const upsertRole = async (name: string, options: string[], password: string | null) => {
        const pw = password !== null ? ` ${passwordClause(password)}` : '';
        if (await roleExists(name)) {
          const alterable = options.filter((o) => !/^(IN ROLE|ROLE|ADMIN)\b/i.test(o));
          if (alterable.length || pw) await c.query(`ALTER ROLE ${quoteIdent(name)} WITH ${alterable.join(' ')}${pw}`);
        } else {
          await c.query(`CREATE ROLE ${quoteIdent(name)} WITH ${options.join(' ')}${pw}`);
        }
      };
      await c.query(`ALTER ROLE ${quoteIdent(cfg.superuser)} WITH ${passwordClause(cfg.secrets.superuserPassword)}`);
      await upsertRole(cfg.replicationUser, ['REPLICATION', 'LOGIN'], cfg.secrets.replicationPassword);
      if (cfg.appUser) {
        await upsertRole(cfg.appUser, ['LOGIN'], cfg.secrets.appPassword);
        if (!(await dbExists(cfg.appDatabase))) await c.query(`CREATE DATABASE ${quoteIdent(cfg.appDatabase)} OWNER ${quoteIdent(cfg.appUser)}`);
      }
      for (const u of cfg.bootstrap.users) await upsertRole(u.name, u.options, u.password);
      for (const d of cfg.bootstrap.databases) {
        if (!(await dbExists(d.name))) await c.query(`CREATE DATABASE ${quoteIdent(d.name)} OWNER ${quoteIdent(d.owner)}`);
      }
    }, 'postgres', 60_000);
    for (const s of cfg.bootstrap.scripts) {
      if (done.includes(s.name)) {
        plog.info('init script already ran, skipped', { script: s.name });
        continue;
      }
      plog.info('running init script', { script: s.name });
      await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cfg.runDir, '-p', String(cfg.pgPort), '-U', cfg.superuser, '-d', 'postgres', '-f', '-'], {
        input: s.sql,
        logLines: true,
      });
      done.push(s.name);
      await writeFileAtomic(statePath, JSON.stringify({ scripts: done }) + '\n', 0o600);
    }
    await writeFileAtomic(statePath, JSON.stringify({ scripts: done, completedAt: new Date().toISOString() }) + '\n', 0o600);
    await clearMarker();
    plog.info('bootstrap SQL done', { ms: Date.now() - t0, users: cfg.bootstrap.users.length, databases: cfg.bootstrap.databases.length, scripts: cfg.bootstrap.scripts.length });
  }

  async function basebackup(from: { host: string; port: number }, onProgress?: (pct: number) => void): Promise<void> {
    await prepareEmptyTarget('pg_basebackup');
    await writePgpass();
    const args = [
      '-D', cfg.dataDir,
      '-h', from.host,
      '-p', String(from.port),
      '-U', cfg.replicationUser,
      '--no-password',
      '-X', 'stream',
      '-c', 'fast',
      '--progress',
      '--verbose',
      ...(cfg.walDir ? [`--waldir=${cfg.walDir}`] : []),
    ];
    plog.info('pg_basebackup', { from: `${from.host}:${from.port}` });
    const t0 = Date.now();
    let lastPct = -1;
    let lastLogged = -10;
    await run('pg_basebackup', args, {
      env: { PGPASSFILE: paths.pgpass, PGCONNECT_TIMEOUT: '10', PGAPPNAME: `${cfg.podName}-basebackup` },
      onStderrLine: (l) => {
        const m = /\((\d+)%\)/.exec(l);
        if (m) {
          const pct = Number(m[1]);
          if (pct !== lastPct) {
            lastPct = pct;
            onProgress?.(pct);
            if (pct >= lastLogged + 10 || pct === 100) {
              lastLogged = pct;
              plog.info('pg_basebackup progress', { percent: pct, detail: l.trim() });
            }
          }
        } else if (l.trim()) plog.info(l.trim(), { source: 'pg_basebackup' });
      },
    });
    await clearMarker();
    plog.info('pg_basebackup done', { ms: Date.now() - t0 });
  }

  async function rewind(from: { host: string; port: number }): Promise<boolean> {
    if (sup.isRunning()) throw new Error('pg_rewind refused: postgres is running; stop it first');
    if ((await dataDirState()) !== 'valid') {
      plog.warn('pg_rewind skipped: the data directory is not valid', { state: await dataDirState() });
      return false;
    }
    await writePgpass();
    const source = [
      `host=${from.host}`,
      `port=${from.port}`,
      `user=${cfg.superuser}`,
      'dbname=postgres',
      `passfile=${paths.pgpass}`,
      'connect_timeout=10',
      `application_name=${cfg.podName}-rewind`,
    ].join(' ');
    plog.info('pg_rewind', { from: `${from.host}:${from.port}` });
    const t0 = Date.now();
    // pg_rewind reads the source's timeline from its pg_control, which a promoted server only
    // updates at its first checkpoint after the promotion: without one, pg_rewind would find
    // both on the same timeline and do nothing ("no rewind required").
    try {
      await sourceCheckpoint(from);
    } catch (e) {
      plog.error('pg_rewind: cannot reach the source to check its checkpoint', { err: e });
      return false;
    }
    // The marker stays if pg_rewind fails: it may have changed files already, so the directory
    // must not be started as it is (the autopilot re-clones).
    await setMarker('pg_rewind');
    try {
      await run('pg_rewind', ['-D', cfg.dataDir, `--source-server=${source}`, '--progress'], { logLines: true });
    } catch (e) {
      plog.error('pg_rewind failed', { err: e, ms: Date.now() - t0 });
      return false;
    }
    await clearMarker();
    // pg_rewind copies the source's configuration files: put ours back (without an earlier
    // writeConfig() the caller must write the configuration before start())
    if (lastDyn) await writeConfig(lastDyn);
    plog.info('pg_rewind done', { ms: Date.now() - t0 });
    return true;
  }

  /** On the rewind source: CHECKPOINT when its control file still shows an older timeline than
   *  the one it writes WAL on (just promoted). */
  async function sourceCheckpoint(from: { host: string; port: number }): Promise<void> {
    const c = new pg.Client({
      host: from.host,
      port: from.port,
      user: cfg.superuser,
      password: cfg.secrets.superuserPassword,
      database: 'postgres',
      connectionTimeoutMillis: 10_000,
      query_timeout: 120_000,
      application_name: `${cfg.podName}-rewind`,
    });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const r = await c.query(`SELECT pg_is_in_recovery() AS rec,
          (SELECT timeline_id FROM pg_control_checkpoint()) AS cp_tli,
          CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli`);
      const row = r.rows[0] as { rec: boolean; cp_tli: number; tli: number | null };
      if (row.rec) throw new Error('the rewind source is in recovery, not a primary');
      if (row.tli !== null && row.tli !== row.cp_tli) {
        plog.info('rewind source: checkpoint so that its control file shows the new timeline', { timeline: row.tli, checkpointTimeline: row.cp_tli });
        await c.query('CHECKPOINT');
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async function writeConfig(dyn: DynamicConf): Promise<boolean> {
    lastDyn = dyn;
    await writePgpass();
    if (!existsSync(cfg.dataDir)) throw new Error(`writeConfig: the data directory ${cfg.dataDir} does not exist`);
    if (cfg.tls) {
      // re-copied at every write: a rotated key is picked up by the next reload
      await writeFileAtomic(paths.tlsKey, await fsp.readFile(cfg.tls.keyFile, 'utf8'), 0o600);
    }
    const changed = await writeFileAtomic(paths.postgresqlConf, renderPostgresqlConf(cfg, dyn), 0o600);
    await writeFileAtomic(paths.hbaFile, renderPgHba(cfg), 0o600);
    await writeFileAtomic(paths.identFile, '# pg_ident.conf written by pg-autopilot (no user name maps)\n', 0o600);
    // ALTER SYSTEM settings would silently override managed ones (primary_conninfo …)
    const auto = `${cfg.dataDir}/postgresql.auto.conf`;
    if (existsSync(auto)) {
      const text = readFileSync(auto, 'utf8');
      if (/^\s*(primary_conninfo|primary_slot_name|synchronous_standby_names|port|hot_standby|wal_level)\s*=/m.test(text)) {
        plog.warn('postgresql.auto.conf sets managed parameters (ALTER SYSTEM); resetting it', { file: auto });
        await writeFileAtomic(auto, '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n', 0o600);
      }
    }
    if (changed) plog.info('postgresql.conf written', { primary: dyn.primary ? `${dyn.primary.host}:${dyn.primary.port}` : null, slot: dyn.slotName, syncStandbyNames: dyn.syncStandbyNames });
    return changed;
  }

  async function setStandby(on: boolean): Promise<void> {
    const f = `${cfg.dataDir}/standby.signal`;
    if (on) {
      if (!existsSync(f)) {
        await fsp.writeFile(f, '', { mode: 0o600 });
        await own(f);
      }
    } else await fsp.rm(f, { force: true });
  }

  /** Remove a postmaster.pid left by a postgres that is gone (e.g. after a container restart the
   *  recorded pid can belong to an unrelated process, and postgres would refuse to start). */
  async function clearStalePid(): Promise<void> {
    const f = `${cfg.dataDir}/postmaster.pid`;
    let text: string;
    try {
      text = await fsp.readFile(f, 'utf8');
    } catch {
      return;
    }
    const pid = Number(text.split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return;
    let cmdline = '';
    try {
      cmdline = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
    } catch {
      cmdline = '';
    }
    if (cmdline.includes('postgres') && cmdline.includes(cfg.dataDir)) {
      throw new Error(`postgres is already running on ${cfg.dataDir} (pid ${pid}) outside this supervisor`);
    }
    if (cmdline === '' || !cmdline.includes('postgres')) {
      plog.warn('removing a stale postmaster.pid', { pid });
      await fsp.rm(f, { force: true });
    }
  }

  /** Line 8 of postmaster.pid: 'starting', 'stopping', 'ready' or 'standby' (the last two:
   *  connections are accepted). Checked before connecting so that startup and recovery do not
   *  fill the log with "FATAL: the database system is starting up" from our own polling. */
  async function pmStatus(): Promise<string | null> {
    try {
      const lines = (await fsp.readFile(`${cfg.dataDir}/postmaster.pid`, 'utf8')).split('\n');
      return lines[7]?.trim() || null;
    } catch {
      return null;
    }
  }

  async function canConnect(): Promise<boolean> {
    const pm = await pmStatus();
    if (pm !== 'ready' && pm !== 'standby') return false;
    try {
      await withClient(async (c) => c.query('SELECT 1'), 'postgres', 2000);
      return true;
    } catch {
      return false;
    }
  }

  async function start(): Promise<void> {
    // between initdb and the end of bootstrapSql() the directory is marked incomplete but must
    // start (bootstrapSql needs a running server)
    const state = await dataDirState({ allowBootstrap: true });
    if (state !== 'valid') throw new Error(`start refused: the data directory ${cfg.dataDir} is ${state}`);
    if (!sup.isRunning()) {
      await mkdirOwned(cfg.runDir, 0o700);
      await clearStalePid();
      sup.start();
    }
    const t0 = Date.now();
    const timeout = opts.startTimeoutMs ?? 600_000;
    let lastLog = t0;
    for (;;) {
      if (!sup.isRunning() && !sup.isWanted()) {
        throw new Error(`postgres exited during startup: ${sup.tail.slice(-5).join(' | ')}`);
      }
      if (sup.isRunning() && (await canConnect())) {
        sup.markReady();
        plog.info('postgres accepts connections', { ms: Date.now() - t0 });
        return;
      }
      if (Date.now() - t0 > timeout) throw new Error(`postgres did not accept connections within ${Math.round(timeout / 1000)} s`);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        plog.info('waiting for postgres to accept connections', { ms: Date.now() - t0 });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function status(): Promise<PgStatus> {
    const s: PgStatus = {
      running: sup.isRunning(),
      accepting: false,
      inRecovery: null,
      timeline: null,
      currentLsn: null,
      receivedLsn: null,
      replayedLsn: null,
      streaming: false,
      upstreamHost: null,
      replicas: [],
      systemIdentifier: null,
      error: null,
    };
    if (!s.running) {
      s.error = 'postgres is not running';
      return s;
    }
    const pm = await pmStatus();
    if (pm !== 'ready' && pm !== 'standby') {
      s.error = `postgres is not accepting connections (${pm ?? 'no postmaster.pid yet'})`;
      return s;
    }
    try {
      await withClient(
        async (c) => {
          const r = await c.query(`
            SELECT pg_is_in_recovery() AS in_recovery,
                   CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
                   CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS wal_tli,
                   pg_last_wal_receive_lsn()::text AS received_lsn,
                   pg_last_wal_replay_lsn()::text AS replayed_lsn,
                   (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
                   (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
                   (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS wr_status,
                   (SELECT sender_host FROM pg_stat_wal_receiver LIMIT 1) AS wr_host,
                   (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) AS wr_tli,
                   (SELECT latest_end_lsn::text FROM pg_stat_wal_receiver LIMIT 1) AS wr_end`);
          const row = r.rows[0] as Record<string, unknown>;
          s.accepting = true;
          s.inRecovery = row.in_recovery as boolean;
          s.currentLsn = (row.current_lsn as string | null) ?? null;
          s.receivedLsn = (row.received_lsn as string | null) ?? null;
          s.replayedLsn = (row.replayed_lsn as string | null) ?? null;
          s.systemIdentifier = (row.sysid as string | null) ?? null;
          s.streaming = row.wr_status === 'streaming';
          s.upstreamHost = (row.wr_host as string | null) ?? null;
          s.upstreamLsn = (row.wr_end as string | null) ?? null;
          const tli = s.inRecovery ? (row.wr_tli ?? row.checkpoint_tli) : (row.wal_tli ?? row.checkpoint_tli);
          s.timeline = tli === null || tli === undefined ? null : Number(tli);
          const reps = await c.query(
            `SELECT application_name, state, COALESCE(sync_state, '') AS sync_state, flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn
               FROM pg_stat_replication ORDER BY application_name`,
          );
          s.replicas = reps.rows.map((x: Record<string, unknown>) => ({
            applicationName: String(x.application_name ?? ''),
            state: String(x.state ?? ''),
            syncState: String(x.sync_state ?? ''),
            flushLsn: (x.flush_lsn as string | null) ?? null,
            replayLsn: (x.replay_lsn as string | null) ?? null,
          }));
        },
        'postgres',
        2000,
      );
    } catch (e) {
      s.error = (e as Error).message;
    }
    return s;
  }

  async function promote(): Promise<void> {
    const t0 = Date.now();
    const rows = (await withClient((c) => c.query('SELECT pg_promote(true, 60) AS ok'), 'postgres', 65_000)).rows as { ok: boolean }[];
    if (!rows[0]?.ok) throw new Error('pg_promote() returned false: the promotion did not finish within 60 s');
    await setStandby(false); // postgres removed it; keep our view consistent
    plog.info('promoted', { ms: Date.now() - t0 });
    // A checkpoint records the new timeline in pg_control, which pg_rewind of the former primary
    // reads. Not awaited: writes are already accepted; rewind() checks again anyway.
    void withClient((c) => c.query('CHECKPOINT'), 'postgres', 300_000).then(
      () => plog.info('post-promotion checkpoint done', { ms: Date.now() - t0 }),
      (e) => plog.warn('post-promotion checkpoint failed', { err: e }),
    );
  }

  async function checkpoint(): Promise<void> {
    await withClient((c) => c.query('CHECKPOINT'), 'postgres', 120_000);
  }

  /** SIGHUP to the postmaster. When postgres is not running this is a no-op: the files written
   *  by writeConfig() are read at its next start. */
  async function reload(): Promise<void> {
    if (!sup.signal('SIGHUP')) plog.info('reload skipped: postgres is not running (the configuration applies at the next start)');
  }

  async function ensureSlots(names: string[]): Promise<void> {
    for (const n of names) if (!SLOT_RE.test(n)) throw new Error(`invalid replication slot name ${JSON.stringify(n)}`);
    await withClient(async (c) => {
      const have = new Set((await c.query(`SELECT slot_name FROM pg_replication_slots`)).rows.map((r: { slot_name: string }) => r.slot_name));
      for (const n of names) {
        if (have.has(n)) continue;
        try {
          await c.query('SELECT pg_create_physical_replication_slot($1, true)', [n]);
          plog.info('replication slot created', { slot: n });
        } catch (e) {
          if ((e as { code?: string }).code !== '42710') throw e; // created concurrently
        }
      }
    });
  }

  async function dropSlotsExcept(keep: string[]): Promise<void> {
    await withClient(async (c) => {
      const rows = (await c.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT temporary AND NOT active`)).rows as { slot_name: string }[];
      for (const r of rows) {
        if (keep.includes(r.slot_name)) continue;
        try {
          await c.query('SELECT pg_drop_replication_slot($1)', [r.slot_name]);
          plog.info('replication slot dropped', { slot: r.slot_name });
        } catch (e) {
          // became active meanwhile, or dropped by someone else
          plog.warn('could not drop replication slot', { slot: r.slot_name, err: e });
        }
      }
    });
  }

  return {
    dataDirState: () => dataDirState(),
    wipe,
    initdb,
    bootstrapSql,
    basebackup,
    rewind,
    writeConfig,
    setStandby,
    start,
    stop: (mode) => sup.stop(mode),
    isRunning: () => sup.isRunning(),
    status,
    promote,
    checkpoint,
    reload,
    query,
    ensureSlots,
    dropSlotsExcept,
    onExit: (cb) => sup.onExit(cb),
    setAutoRestart: (on) => sup.setAutoRestart(on),
    pid: () => sup.pid(),
    restarts: () => sup.restarts,
  };
}
