// The primary keeps the declared users and databases in sync (planner: core/roles.ts; SQL:
// pg/roles-sql.ts). Called after every tick; it runs a pass, on a short connection of its own and
// never awaited by the tick, when:
//   - this member just became the primary (start, promotion, failover),
//   - roles.json, bootstrap.json or a file of the secrets directory changed (the kubelet rewrites
//     ConfigMap and Secret volumes in place about a minute after the object changed),
//   - the last pass failed (again after 30 s), or 60 s passed (drift made by hand)
// (core/roles.ts rolesPassDue decides).
// Each action is a log line and a Kubernetes Event on the pod; refusals are a warning and a
// Warning Event, once per distinct set.

import { createHash } from 'node:crypto';
import { loadBootstrap } from '../core/config-files.js';
import type { Config, FileReader } from '../core/config.js';
import { confPaths } from '../core/render.js';
import { reservedProblems, systemUsers, type DesiredDatabase, type DesiredUser } from '../core/roles-config.js';
import { rolesPassDue, type RoleAction } from '../core/roles.js';
import { cachedFileReader, nodeFileReader } from './files.js';
import type { Kube } from './kube.js';
import type { Logger } from './log.js';
import { reservedRoles, syncRoles } from './pg/roles-sql.js';
import type { PgContext } from './pg/types.js';


const EVENT_REASON: Record<RoleAction['kind'], string> = {
  create_role: 'RoleCreated', alter_role: 'RoleAltered', set_password: 'RolePasswordSet', grant: 'RoleGranted', revoke: 'RoleRevoked',
  disable_role: 'RoleDisabled', drop_role: 'RoleDropped', create_database: 'DatabaseCreated', alter_database: 'DatabaseAltered', drop_database: 'DatabaseDropped',
};

export interface RolesSync {
  /** after each tick: primary = this member holds the lease and postgres accepts writes */
  afterTick(primary: boolean, now: number): void;
  /** resolves when the pass in flight (if any) ended (tests, shutdown) */
  idle(): Promise<void>;
}

/** Everything a pass depends on, as one hash: the two JSON files, every secret file and the
 *  exporter's password file. Computed on every tick of the primary, through `files` (a
 *  cachedFileReader): a file is read again only when its stat signature changed. */
function fingerprint(cfg: Config, files: FileReader): string {
  const h = createHash('sha256');
  for (const f of [`${cfg.configDir}/roles.json`, `${cfg.configDir}/bootstrap.json`, cfg.monitorPasswordFile ?? '']) h.update(`${f}\0${(f && files.readFile(f)) ?? '(none)'}\0`);
  const names = (files.listDir(cfg.rolesSecretsDir) ?? []).filter((n) => !n.startsWith('.')).sort();
  for (const n of names) h.update(`${n}\0${files.readFile(`${cfg.rolesSecretsDir}/${n}`) ?? ''}\0`);
  return h.digest('hex');
}

export function createRolesSync(cfg: Config, log0: Logger, kube: Kube | null): RolesSync {
  const log = log0.child({ component: 'roles' });
  const ctx: PgContext = { cfg, root: log0, log, paths: confPaths(cfg), runAs: undefined };
  let wasPrimary = false;
  const files = cachedFileReader();
  let lastFp: string | null = null; // fingerprint of the last pass
  let lastPassAt = -Infinity;
  let failed = false;
  let lastRefusal = '';
  let running: Promise<void> | null = null;
  const event = (reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal') => void kube?.event('Pod', cfg.podName, reason, message, type);
  const refuse = (lines: string[]) => {
    const key = lines.join('\n');
    if (key === lastRefusal) return;
    lastRefusal = key;
    for (const w of lines) log.warn('roles: refused', { why: w });
    if (lines.length) event('RolesRefused', lines.join(' | '), 'Warning');
  };

  async function pass(): Promise<void> {
    const t0 = Date.now();
    const problems: string[] = [];
    const b = loadBootstrap(cfg.configDir, cfg.rolesSecretsDir, cfg.superuser, nodeFileReader, problems);
    problems.push(...reservedProblems(b.users, b.databases, reservedRoles(cfg), cfg.appUser ? cfg.appDatabase : null, `${cfg.configDir}/roles.json`));
    // the exporter's role is kept even while the declaration is refused
    const sysProblems: string[] = [];
    const system = systemUsers(cfg, nodeFileReader, sysProblems);
    let users: DesiredUser[] = b.users;
    let databases: DesiredDatabase[] = b.databases;
    if (problems.length) {
      // the last good declaration stays in force; nothing declared is changed while it is wrong
      users = [];
      databases = [];
    }
    // loaded here, not at the top: main.ts loads pg (through postgres.ts) with the global Response
    // hidden, and autopilot.ts, which imports this file, is loaded before that
    const { withClient } = await import('./pg/sql.js');
    const report = await withClient(ctx, (c) => syncRoles(c, users, databases, reservedRoles(cfg), (a, error) => {
      if (error === null) {
        log.info(`roles: ${a.reason}`, { kind: a.kind, subject: a.subject, sql: a.sql });
        event(EVENT_REASON[a.kind], a.reason);
      } else {
        log.error(`roles: failed: ${a.reason}`, { kind: a.kind, subject: a.subject, sql: a.sql, error });
        event('RoleSyncFailed', `${a.reason}: ${error}`, 'Warning');
      }
    }, system), 60_000);
    refuse([...problems.map((p) => `${p} (nothing declared is changed until it is fixed)`), ...sysProblems, ...report.plan.warnings]);
    if (report.done.length || report.failed.length) log.info('roles: pass done', { actions: report.done.length, failed: report.failed.length, ms: Date.now() - t0 });
    failed = report.failed.length > 0;
  }

  return {
    afterTick(primary, now) {
      if (!primary) { wasPrimary = false; return; }
      if (running) return;
      let fp: string;
      try {
        fp = fingerprint(cfg, files);
      } catch (e) {
        log.warn('roles: cannot read the declaration files', { error: (e as Error).message });
        return;
      }
      const why = rolesPassDue({ primary, wasPrimary, changed: fp !== lastFp, sinceLastMs: now - lastPassAt, lastFailed: failed });
      if (why === null) return;
      log[why.startsWith('periodic') ? 'debug' : 'info']('roles: pass', { why });
      wasPrimary = true;
      lastFp = fp;
      lastPassAt = now;
      running = pass()
        .catch((e: unknown) => { failed = true; log.warn('roles: pass failed, retried later', { error: (e as Error).message }); })
        .finally(() => { running = null; });
    },
    idle: () => running ?? Promise.resolve(),
  };
}
