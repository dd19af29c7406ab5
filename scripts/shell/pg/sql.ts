// The SQL the autopilot needs: the status query, bootstrap (roles, databases, init scripts),
// promotion, checkpoints, replication slots, and the rewind source's pre-check.
//
// Two kinds of connections: the member's persistent session (session.ts) for everything asked
// every tick — status, slots, the promotion's signal and wait — so that they work while clients
// hold every connection slot; a short connection of its own for long statements (CHECKPOINT,
// bootstrap, ad-hoc queries) that must not hold up the status queued behind them.

import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Files } from './files.js';
import type { LocalSession } from './session.js';
import { STANDBY_BOUNDED } from '../../core/restart.js';
import type { Endpoint, PgContext, PgStatus } from './types.js';
import { psqlScript } from './commands.js';
import { reservedRoles, syncRoles } from './roles-sql.js';
import { systemUsers } from '../../core/roles-config.js';
import { nodeFileReader } from '../files.js';
import { scramVerifier } from './scram.js';

export { scramVerifier };

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;
const passwordClause = (pw: string) => `PASSWORD ${quoteLiteral(scramVerifier(pw) ?? pw)}`;
const SLOT_RE = /^[a-z0-9_]{1,63}$/;
const BOOTSTRAP_STATE = 'pga_bootstrap.json';

/** A short connection of its own to the local postgres (unix socket), closed after fn. */
export async function withClient<T>(ctx: PgContext, fn: (c: pg.Client) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const c = new pg.Client({
    host: ctx.cfg.runDir,
    port: ctx.cfg.pgPort,
    user: ctx.cfg.superuser,
    database: 'postgres',
    connectionTimeoutMillis: Math.min(timeoutMs, 5000),
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 1000,
    application_name: 'pg-autopilot',
  });
  c.on('error', () => undefined); // a server going away mid-query surfaces in the query's promise
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** One statement, one round trip: everything status() reports. */
const STATUS_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS wal_tli,
       pg_last_wal_receive_lsn()::text AS received_lsn,
       pg_last_wal_replay_lsn()::text AS replayed_lsn,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
       (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
       w.status AS wr_status, w.sender_host AS wr_host, w.received_tli AS wr_tli, w.latest_end_lsn::text AS wr_end,
       (SELECT coalesce(json_agg(json_build_object('applicationName', application_name, 'state', state,
                  'syncState', coalesce(sync_state, ''), 'flushLsn', flush_lsn::text, 'replayLsn', replay_lsn::text)
                ORDER BY application_name), '[]')
          FROM pg_stat_replication) AS replicas,
       CASE WHEN pg_is_in_recovery() THEN '[]'::json ELSE
         (SELECT coalesce(json_agg(json_build_object('name', slot_name, 'active', active, 'walStatus', wal_status)
                   ORDER BY slot_name), '[]')
            FROM pg_replication_slots) END AS slots
  FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true`;

/** Fill s from the session; throws when postgres cannot be asked. */
export async function readStatus(session: LocalSession, s: PgStatus): Promise<void> {
  const row = (await session.use((c) => c.query(STATUS_SQL))).rows[0] as Record<string, unknown>;
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
  s.replicas = ((row.replicas ?? []) as Record<string, unknown>[]).map((x) => ({
    applicationName: String(x.applicationName ?? ''),
    state: String(x.state ?? ''),
    syncState: String(x.syncState ?? ''),
    flushLsn: (x.flushLsn as string | null) ?? null,
    replayLsn: (x.replayLsn as string | null) ?? null,
  }));
  s.slots = ((row.slots ?? []) as Record<string, unknown>[]).map((x) => ({
    name: String(x.name ?? ''),
    active: x.active === true,
    walStatus: (x.walStatus as string | null) ?? null,
  }));
}

/** Roles, databases and init scripts, idempotent: a script that completed is not run again. */
export async function bootstrapSql(ctx: PgContext, files: Files): Promise<void> {
  const { cfg, log } = ctx;
  const statePath = `${cfg.dataDir}/${BOOTSTRAP_STATE}`;
  let done: string[] = [];
  try {
    done = (JSON.parse(readFileSync(statePath, 'utf8')) as { scripts?: string[] }).scripts ?? [];
  } catch {
    done = [];
  }
  await withClient(ctx, async (c) => {
    const exists = async (sql: string, name: string) => (await c.query(sql, [name])).rowCount === 1;
    const roleExists = (name: string) => exists('SELECT 1 FROM pg_roles WHERE rolname = $1', name);
    const dbExists = (name: string) => exists('SELECT 1 FROM pg_database WHERE datname = $1', name);
    const upsertRole = async (name: string, options: string[], password: string | null) => {
      const pw = password !== null ? ` ${passwordClause(password)}` : '';
      if (await roleExists(name)) {
        const alterable = options.filter((o) => !/^(IN ROLE|ROLE|ADMIN)\b/i.test(o));
        if (alterable.length || pw) await c.query(`ALTER ROLE ${quoteIdent(name)} WITH ${alterable.join(' ')}${pw}`);
      } else {
        await c.query(`CREATE ROLE ${quoteIdent(name)} WITH ${options.join(' ')}${pw}`);
      }
    };
    const ensureDb = async (name: string, owner: string) => {
      if (!(await dbExists(name))) await c.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)}`);
    };
    if (cfg.secrets.superuserPassword !== '') await c.query(`ALTER ROLE ${quoteIdent(cfg.superuser)} WITH ${passwordClause(cfg.secrets.superuserPassword)}`);
    await upsertRole(cfg.replicationUser, ['REPLICATION', 'LOGIN'], cfg.secrets.replicationPassword);
    if (cfg.appUser) {
      await upsertRole(cfg.appUser, ['LOGIN'], cfg.secrets.appPassword);
      await ensureDb(cfg.appDatabase, cfg.appUser);
    }
    // the exporter's role and the declared users and databases: the same planner the primary runs
    // on every change (shell/roles.ts)
    const problems: string[] = [];
    const system = systemUsers(cfg, nodeFileReader, problems);
    const r = await syncRoles(c, cfg.bootstrap.users, cfg.bootstrap.databases, reservedRoles(cfg), (a, error) => {
      if (error === null) log.info('roles: done', { kind: a.kind, subject: a.subject, reason: a.reason, sql: a.sql });
      else log.error('roles: failed', { kind: a.kind, subject: a.subject, reason: a.reason, sql: a.sql, error });
    }, system);
    for (const w of [...problems, ...r.plan.warnings]) log.warn('roles: refused', { why: w });
    if (r.failed.length) throw new Error(`bootstrap: ${r.failed.length} statement(s) for users/databases failed: ${r.failed.map((f) => `${f.action.sql}: ${f.error}`).join('; ')}`);
  }, 60_000);
  for (const s of cfg.bootstrap.scripts) {
    if (done.includes(s.name)) {
      log.info('init script already ran, skipped', { script: s.name });
      continue;
    }
    log.info('running init script', { script: s.name });
    await psqlScript(ctx, s.sql);
    done.push(s.name);
    await files.writeFileAtomic(statePath, JSON.stringify({ scripts: done }) + '\n', 0o600);
  }
  await files.writeFileAtomic(statePath, JSON.stringify({ scripts: done, completedAt: new Date().toISOString() }) + '\n', 0o600);
}

/** Promote a standby and wait (up to 60 s) until it accepts writes. The signal and each check
 *  are short statements on the session: a promotion works while clients hold every slot.
 *
 *  The request is signalled again every RESIGNAL_MS while postgres is still in recovery. The
 *  startup process may take the request while it waits for a walreceiver that is (re)connecting
 *  — as right after a hand-off, whose old primary just closed the stream — and then sleep out the
 *  rest of wal_retrieve_retry_interval (1 s) before it acts on it; a second signal wakes it at
 *  once (measured: 0.9 s of a switchover spent so). PostgreSQL itself removes a request left
 *  behind at the next start, and setStandby(false) right after the promotion removes it too. */
export async function promote(session: LocalSession, log?: { info(msg: string, f?: Record<string, unknown>): void }, waitMs = 60_000): Promise<void> {
  // fails ("recovery is not in progress") on a primary
  const r = await session.use((c) => c.query('SELECT pg_promote(false) AS ok'));
  if (!(r.rows[0] as { ok: boolean }).ok) throw new Error('pg_promote() returned false: could not signal the promotion');
  const t0 = Date.now();
  let signalledAt = t0;
  let signals = 1;
  for (;;) {
    // Every 10 ms: a promotion ends within tens of milliseconds, and clients wait for this answer
    // (the label follows it). pg_promote(wait => true) would poll every 100 ms inside the server.
    await new Promise((res) => setTimeout(res, 10));
    const again = Date.now() - signalledAt >= RESIGNAL_MS;
    let rec: boolean | null = null;
    try {
      const q = again ? 'SELECT pg_is_in_recovery() AS rec, CASE WHEN pg_is_in_recovery() THEN pg_promote(false) END AS signalled' : 'SELECT pg_is_in_recovery() AS rec';
      const row = (await session.use((c) => c.query(q))).rows[0] as { rec: boolean; signalled?: boolean | null };
      rec = row.rec;
      if (again && row.signalled) { signalledAt = Date.now(); signals++; }
    } catch {
      rec = null; // keep waiting (the promotion may have finished between the two calls); the deadline below bounds it
    }
    if (rec === false) {
      if (signals > 1) log?.info('promotion signalled more than once before postgres acted on it', { signals, ms: Date.now() - t0 });
      return;
    }
    if (Date.now() - t0 > waitMs) throw new Error(`the promotion did not finish within ${Math.round(waitMs / 1000)} s`);
  }
}

/** How long a promotion request may go unanswered before it is signalled again. */
const RESIGNAL_MS = 50;

export async function checkpoint(ctx: PgContext, timeoutMs = 120_000): Promise<void> {
  await withClient(ctx, (c) => c.query('CHECKPOINT'), timeoutMs);
}

export async function ensureSlots(ctx: PgContext, session: LocalSession, names: string[]): Promise<void> {
  for (const n of names) if (!SLOT_RE.test(n)) throw new Error(`invalid replication slot name ${JSON.stringify(n)}`);
  await session.use(async (c) => {
    const have = new Set((await c.query(`SELECT slot_name FROM pg_replication_slots`)).rows.map((r: { slot_name: string }) => r.slot_name));
    for (const n of names) {
      if (have.has(n)) continue;
      try {
        await c.query('SELECT pg_create_physical_replication_slot($1, true)', [n]);
        ctx.log.info('replication slot created', { slot: n });
      } catch (e) {
        if ((e as { code?: string }).code !== '42710') throw e; // created concurrently
      }
    }
  });
}

export async function dropSlotsExcept(ctx: PgContext, session: LocalSession, keep: string[]): Promise<void> {
  await session.use(async (c) => {
    const rows = (await c.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT temporary AND NOT active`)).rows as { slot_name: string }[];
    for (const r of rows) {
      if (keep.includes(r.slot_name)) continue;
      try {
        await c.query('SELECT pg_drop_replication_slot($1)', [r.slot_name]);
        ctx.log.info('replication slot dropped', { slot: r.slot_name });
      } catch (e) {
        // became active meanwhile, or dropped by someone else
        ctx.log.warn('could not drop replication slot', { slot: r.slot_name, err: e });
      }
    }
  });
}

/** Connecting to the rewind source failed: it is unreachable (or refuses us). */
export class SourceUnreachableError extends Error {}

/** On the rewind source: CHECKPOINT when its control file still shows an older timeline than
 *  the one it writes WAL on (just promoted). pg_rewind reads the source's timeline from its
 *  pg_control, which a promoted server only updates at its first checkpoint after promotion:
 *  without one, pg_rewind would find both on the same timeline and do nothing. */
export async function sourceCheckpoint(ctx: PgContext, from: Endpoint): Promise<void> {
  const c = new pg.Client({
    host: from.host,
    port: from.port,
    user: ctx.cfg.superuser,
    password: ctx.cfg.secrets.superuserPassword,
    database: 'postgres',
    connectionTimeoutMillis: 10_000,
    query_timeout: 120_000,
    application_name: `${ctx.cfg.podName}-rewind`,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (e) {
    void c.end().catch(() => undefined);
    throw new SourceUnreachableError(`cannot connect to the rewind source ${from.host}:${from.port}: ${(e as Error).message}`);
  }
  try {
    const r = await c.query(`SELECT pg_is_in_recovery() AS rec,
        (SELECT timeline_id FROM pg_control_checkpoint()) AS cp_tli,
        CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli`);
    const row = r.rows[0] as { rec: boolean; cp_tli: number; tli: number | null };
    if (row.rec) throw new SourceUnreachableError(`the rewind source ${from.host}:${from.port} is in recovery, not a primary`);
    if (row.tli !== null && row.tli !== row.cp_tli) {
      ctx.log.info('rewind source: checkpoint so that its control file shows the new timeline', { timeline: row.tli, checkpointTimeline: row.cp_tli });
      await c.query('CHECKPOINT');
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** See Postgres.settingsState: one round trip over the member's own session. */
export async function settingsState(session: LocalSession): Promise<import('./types.js').SettingsState> {
  return session.use(async (c) => {
    const t = (await c.query('SELECT pg_conf_load_time()::text AS t')).rows[0] as { t: string };
    const p = (await c.query('SELECT name, context FROM pg_settings WHERE pending_restart ORDER BY name')).rows as { name: string; context: string }[];
    const f = (await c.query('SELECT name, error FROM pg_file_settings WHERE error IS NOT NULL ORDER BY seqno')).rows as { name: string | null; error: string }[];
    const b = (await c.query(
      `SELECT s.name, s.setting AS running, COALESCE((SELECT f.setting FROM pg_file_settings f WHERE f.name = s.name AND f.error IS DISTINCT FROM 'syntax error' ORDER BY f.seqno DESC LIMIT 1), s.boot_val) AS next
         FROM pg_settings s WHERE s.name = ANY($1)`, [[...STANDBY_BOUNDED]])).rows as { name: string; running: string; next: string }[];
    const int = (v: string) => (/^\s*\d+\s*$/.test(v) ? Number(v) : null);
    const running: Record<string, number> = {}, next: Record<string, number> = {};
    for (const r of b) {
      const a = int(r.running), n = int(r.next);
      if (a !== null) running[r.name] = a;
      if (n !== null) next[r.name] = n;
    }
    return { loadedAt: t.t, pendingRestart: p, fileErrors: f, bounds: { running, next } };
  });
}
