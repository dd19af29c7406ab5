// Declared roles and databases against the catalog, on one connection: read what the planner
// (core/roles.ts) needs, tell whether each stored password is the declared one without ever
// reading a secret back (the SCRAM verifier is recomputed with its own salt and iterations), and
// run the planned statements one by one (autocommit: CREATE/DROP DATABASE cannot run in a block).

import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Config } from '../../core/config.js';
import { planRoles, PASSWORD_TOKEN, type ActualRole, type Catalog, type RoleAction, type RolesPlan } from '../../core/roles.js';
import type { DesiredDatabase, DesiredUser, RoleFlag } from '../../core/roles-config.js';
import { scramVerifier } from './scram.js';

/** Roles no declaration may touch: the superuser, replication, application and exporter users. */
export const reservedRoles = (cfg: Config): string[] => [cfg.superuser, cfg.replicationUser, ...(cfg.appUser ? [cfg.appUser] : []), ...(cfg.monitorUser ? [cfg.monitorUser] : [])];

const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Is `stored` (pg_authid.rolpassword) the verifier of `password`? null: cannot tell (a password
 *  outside printable ASCII, whose SASLprep form is not recomputed here). */
export function passwordMatches(stored: string | null, password: string, role: string): boolean | null {
  if (stored === null || stored === '') return false;
  if (stored.startsWith('md5')) return stored === `md5${createHash('md5').update(password + role).digest('hex')}`;
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
  if (!m) return false;
  const v = scramVerifier(password, Buffer.from(m[2]!, 'base64'), Number(m[1]));
  return v === null ? null : v === stored;
}

const ROLES_SQL = `
SELECT a.rolname AS name, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolinherit, a.rolcanlogin, a.rolreplication, a.rolbypassrls,
       a.rolconnlimit AS connlimit, a.rolpassword AS verifier,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid ORDER BY 1) AS member_of,
       ARRAY(SELECT d.datname::text FROM pg_database d WHERE d.datdba = a.oid ORDER BY 1) AS owns,
       (SELECT count(*) FROM pg_shdepend s WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = a.oid
          AND NOT (s.classid = 'pg_database'::regclass AND s.deptype = 'o'))::int AS deps
  FROM pg_authid a WHERE a.rolname = ANY($1::text[])`;

const DBS_SQL = `SELECT d.datname AS name, r.rolname AS owner, d.datconnlimit AS connlimit
  FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = ANY($1::text[])`;

export async function readCatalog(c: pg.Client, users: DesiredUser[], databases: DesiredDatabase[]): Promise<Catalog> {
  // the declared roles, and those they name (memberships, owners): the planner checks they exist
  const names = [...new Set([...users.flatMap((u) => [u.name, ...u.inRoles]), ...databases.map((d) => d.owner)])];
  const roles = (await c.query(ROLES_SQL, [names])).rows as Record<string, unknown>[];
  const dbs = (await c.query(DBS_SQL, [databases.map((d) => d.name)])).rows as { name: string; owner: string; connlimit: number }[];
  return {
    roles: roles.map((r): ActualRole => {
      const name = String(r.name);
      const want = users.find((u) => u.name === name);
      const flags: Record<RoleFlag, boolean> = {
        SUPERUSER: r.rolsuper === true, CREATEDB: r.rolcreatedb === true, CREATEROLE: r.rolcreaterole === true, INHERIT: r.rolinherit === true,
        LOGIN: r.rolcanlogin === true, REPLICATION: r.rolreplication === true, BYPASSRLS: r.rolbypassrls === true,
      };
      return {
        name, flags, connectionLimit: Number(r.connlimit),
        memberOf: (r.member_of as string[]) ?? [],
        passwordMatches: want?.password != null ? passwordMatches((r.verifier as string | null) ?? null, want.password, name) : null,
        ownsDatabases: (r.owns as string[]) ?? [],
        dependencies: Number(r.deps),
      };
    }),
    databases: dbs.map((d) => ({ name: d.name, owner: d.owner, connectionLimit: Number(d.connlimit) })),
  };
}

export interface SyncReport {
  plan: RolesPlan;
  done: RoleAction[];
  failed: { action: RoleAction; error: string }[];
}

/** Plan against the catalog and run every action; a failed action is reported and the others
 *  still run (each is one statement of its own). `system`: the autopilot's own roles
 *  (roles-config.ts systemUsers), kept ahead of the declared ones. */
export async function syncRoles(c: pg.Client, users: DesiredUser[], databases: DesiredDatabase[], reserved: string[],
  onAction: (a: RoleAction, error: string | null) => void, system: DesiredUser[] = []): Promise<SyncReport> {
  const plan = planRoles(users, databases, await readCatalog(c, [...system, ...users], databases), reserved, system);
  const report: SyncReport = { plan, done: [], failed: [] };
  for (const a of plan.actions) {
    let sql = a.sql;
    if (a.passwordOf !== undefined) {
      const pw = [...system, ...users].find((u) => u.name === a.passwordOf)?.password;
      if (pw == null) continue;
      sql = sql.replace(PASSWORD_TOKEN, `PASSWORD ${quoteLiteral(scramVerifier(pw) ?? pw)}`);
    }
    try {
      await c.query(sql);
      report.done.push(a);
      onAction(a, null);
    } catch (e) {
      const error = (e as Error).message;
      report.failed.push({ action: a, error });
      onAction(a, error);
    }
  }
  return report;
}
