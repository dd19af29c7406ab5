// The roles and databases planner: the declared `users` and `databases` (roles-config.ts) against
// what the primary's catalog holds → the SQL statements that bring the catalog in line, each with
// a one-line reason, plus warnings for what it refuses to do. Pure: the shell (shell/roles.ts)
// reads the catalog, decides per role whether the stored password matches the declared one
// (recomputing the SCRAM verifier with the stored salt and iterations), and runs the statements.
//
// Rules:
// - Only declared names are touched; a role or database not in the declaration is left alone.
// - Reserved roles (superuser, replication, application, exporter; pg_*) are never touched by a
//   declaration. The autopilot's own roles (`system`: the exporter's, roles-config.ts systemUsers)
//   are planned by the same rules, ahead of the declared ones, and their reasons say what they are.
// - ensure: absent drops a role only when it owns nothing and holds no privileges
//   (pg_shdepend is empty for it); otherwise it is disabled (NOLOGIN) and a warning says what
//   keeps it, and how to clear it (REASSIGN OWNED / DROP OWNED in each database).
// - ensure: absent on a database runs DROP DATABASE (without FORCE: it fails while clients are
//   connected, and is tried again on the next pass).
// - A role without passwordKey keeps whatever password it has (never set, never removed).
// - Memberships are declarative: a declared role is made a member of exactly its inRoles.

import { FLAG_DEFAULTS, ROLE_FLAGS, type DesiredDatabase, type DesiredUser, type RoleFlag } from './roles-config.js';

export interface ActualRole {
  name: string;
  flags: Record<RoleFlag, boolean>;
  connectionLimit: number;
  memberOf: string[];
  /** the stored password against the declared one: true matches, false differs or none is set,
   *  null cannot tell (no declared password, or one the shell cannot recompute) */
  passwordMatches: boolean | null;
  /** databases this role owns */
  ownsDatabases: string[];
  /** pg_shdepend entries naming this role other than the databases it owns (owned objects and
   *  privileges, in every database) */
  dependencies: number;
}

export interface ActualDatabase {
  name: string;
  owner: string;
  connectionLimit: number;
}

export interface Catalog {
  roles: ActualRole[];
  databases: ActualDatabase[];
}

export interface RoleAction {
  kind: 'create_role' | 'alter_role' | 'set_password' | 'grant' | 'revoke' | 'disable_role' | 'drop_role' | 'create_database' | 'alter_database' | 'drop_database';
  /** the role or database the statement is about */
  subject: string;
  /** the statement; a password appears as the token PASSWORD_TOKEN, which the shell replaces by
   *  `PASSWORD '<SCRAM verifier>'` (the plaintext never reaches a statement or a log) */
  sql: string;
  /** the declared user whose password replaces PASSWORD_TOKEN */
  passwordOf?: string;
  reason: string;
  /** CREATE DATABASE / DROP DATABASE cannot run inside a transaction block */
  outsideTransaction?: boolean;
}

export interface RolesPlan {
  actions: RoleAction[];
  /** what was refused or cannot be done, one line each */
  warnings: string[];
}

export const PASSWORD_TOKEN = '<password>';

export const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const q = quoteIdent;

function flagClauses(want: Record<RoleFlag, boolean>, have: Record<RoleFlag, boolean> | null): string[] {
  return ROLE_FLAGS.filter((f) => (have ? have[f] !== want[f] : want[f] !== FLAG_DEFAULTS[f])).map((f) => (want[f] ? f : `NO${f}`));
}

export function planRoles(users: DesiredUser[], databases: DesiredDatabase[], actual: Catalog, reserved: string[], system: DesiredUser[] = []): RolesPlan {
  const actions: RoleAction[] = [];
  const warnings: string[] = [];
  const roles = new Map(actual.roles.map((r) => [r.name, r]));
  const dbs = new Map(actual.databases.map((d) => [d.name, d]));
  const isReserved = (n: string) => reserved.includes(n) || n.toLowerCase().startsWith('pg_');
  const managed = [...system, ...users.filter((u) => {
    if (!isReserved(u.name) && !system.some((s) => s.name === u.name)) return true;
    warnings.push(`role ${u.name}: left alone, a role the autopilot manages (remove it from users)`);
    return false;
  })];
  const present = managed.filter((u) => u.ensure === 'present');
  const absent = managed.filter((u) => u.ensure === 'absent');
  // roles that will exist once the creations below ran (memberships and owners may name them)
  const willExist = (n: string) => (roles.has(n) && !absent.some((u) => u.name === n)) || present.some((u) => u.name === n);

  // 1. create and alter roles
  // a system role's reasons say what it is: "role pga_monitor (the exporter's role)"
  const who = (u: DesiredUser) => (u.system ? `${u.name} (${u.system})` : u.name);
  for (const u of present) {
    const have = roles.get(u.name);
    if (!have) {
      const clauses = [...flagClauses(u.flags, null), ...(u.connectionLimit !== -1 ? [`CONNECTION LIMIT ${u.connectionLimit}`] : []), ...u.createOnly];
      const pw = u.password !== null ? ` ${PASSWORD_TOKEN}` : '';
      actions.push({ kind: 'create_role', subject: u.name, sql: `CREATE ROLE ${q(u.name)}${clauses.length ? ` WITH ${clauses.join(' ')}` : ''}${pw}`, passwordOf: pw ? u.name : undefined, reason: `role ${who(u)} is declared and does not exist: create it${pw ? ' with its password' : ''}` });
      continue;
    }
    const clauses = flagClauses(u.flags, have.flags);
    if (have.connectionLimit !== u.connectionLimit) clauses.push(`CONNECTION LIMIT ${u.connectionLimit}`);
    if (clauses.length) actions.push({ kind: 'alter_role', subject: u.name, sql: `ALTER ROLE ${q(u.name)} WITH ${clauses.join(' ')}`, reason: `role ${who(u)}: options differ from the declaration (${clauses.join(', ')})` });
    if (u.password !== null && have.passwordMatches === false) {
      actions.push({ kind: 'set_password', subject: u.name, sql: `ALTER ROLE ${q(u.name)} WITH ${PASSWORD_TOKEN}`, passwordOf: u.name, reason: `role ${who(u)}: the stored password is not the one in ${u.passwordKey ?? 'its passwordKey'}: set it` });
    }
  }
  // 2. memberships
  for (const u of present) {
    const have = roles.get(u.name)?.memberOf ?? [];
    for (const r of u.inRoles) {
      if (have.includes(r)) continue;
      if (!willExist(r)) {
        warnings.push(`role ${u.name}: cannot join ${r}, no such role (declare it in users or create it)`);
        continue;
      }
      actions.push({ kind: 'grant', subject: u.name, sql: `GRANT ${q(r)} TO ${q(u.name)}`, reason: `role ${who(u)}: declared a member of ${r}` });
    }
    for (const r of have) {
      if (u.inRoles.includes(r)) continue;
      actions.push({ kind: 'revoke', subject: u.name, sql: `REVOKE ${q(r)} FROM ${q(u.name)}`, reason: `role ${who(u)}: member of ${r}, which its inRoles does not list` });
    }
  }
  // 3. databases (after the roles: an owner may be new)
  for (const d of databases) {
    const have = dbs.get(d.name);
    if (d.ensure === 'absent') {
      if (have) actions.push({ kind: 'drop_database', subject: d.name, sql: `DROP DATABASE ${q(d.name)}`, outsideTransaction: true, reason: `database ${d.name} is declared ensure: absent: drop it` });
      continue;
    }
    if (!willExist(d.owner)) {
      warnings.push(`database ${d.name}: its owner ${d.owner} does not exist (declare it in users or create it); not ${have ? 'altered' : 'created'}`);
      continue;
    }
    if (!have) {
      const limit = d.connectionLimit !== -1 ? ` CONNECTION LIMIT ${d.connectionLimit}` : '';
      actions.push({ kind: 'create_database', subject: d.name, sql: `CREATE DATABASE ${q(d.name)} OWNER ${q(d.owner)}${limit}`, outsideTransaction: true, reason: `database ${d.name} is declared and does not exist: create it, owned by ${d.owner}` });
      continue;
    }
    if (have.owner !== d.owner) actions.push({ kind: 'alter_database', subject: d.name, sql: `ALTER DATABASE ${q(d.name)} OWNER TO ${q(d.owner)}`, reason: `database ${d.name}: owned by ${have.owner}, declared owner ${d.owner}` });
    if (have.connectionLimit !== d.connectionLimit) actions.push({ kind: 'alter_database', subject: d.name, sql: `ALTER DATABASE ${q(d.name)} WITH CONNECTION LIMIT ${d.connectionLimit}`, reason: `database ${d.name}: connection limit ${have.connectionLimit}, declared ${d.connectionLimit}` });
  }
  // 4. roles declared absent, last (a database dropped above no longer holds them)
  for (const u of absent) {
    const have = roles.get(u.name);
    if (!have) continue;
    const ownedDbs = have.ownsDatabases.filter((n) => !databases.some((d) => d.name === n && d.ensure === 'absent'));
    const movedDbs = databases.filter((d) => d.ensure === 'present' && dbs.get(d.name)?.owner === u.name && d.owner !== u.name).map((d) => d.name);
    const stillOwns = ownedDbs.filter((n) => !movedDbs.includes(n));
    const deps = have.dependencies;
    if (stillOwns.length === 0 && deps <= 0) {
      actions.push({ kind: 'drop_role', subject: u.name, sql: `DROP ROLE ${q(u.name)}`, reason: `role ${u.name} is declared ensure: absent and owns nothing: drop it` });
      continue;
    }
    const what = [stillOwns.length ? `owns database(s) ${stillOwns.join(', ')}` : '', deps > 0 ? `${deps} object(s) or privilege(s) depend on it` : ''].filter(Boolean).join('; ');
    warnings.push(`role ${u.name} is declared ensure: absent but ${what}: not dropped. Fix: REASSIGN OWNED BY ${u.name} TO <role>; DROP OWNED BY ${u.name}; in each database (or drop or re-own the databases), then it is dropped on the next pass`);
    if (have.flags.LOGIN) actions.push({ kind: 'disable_role', subject: u.name, sql: `ALTER ROLE ${q(u.name)} WITH NOLOGIN`, reason: `role ${u.name} is declared ensure: absent but still ${what}: disable it (NOLOGIN) until it can be dropped` });
  }
  return { actions, warnings };
}

/** When the primary runs a pass: the reason, or null for not now. */
export const ROLES_RETRY_MS = 30_000;
export const ROLES_RESYNC_MS = 60_000;
export function rolesPassDue(s: { primary: boolean; wasPrimary: boolean; changed: boolean; sinceLastMs: number; lastFailed: boolean }): string | null {
  if (!s.primary) return null;
  if (!s.wasPrimary) return 'this member became the primary: check every declared role and database';
  if (s.changed) return 'the declaration or a password file changed';
  if (s.lastFailed && s.sinceLastMs >= ROLES_RETRY_MS) return `the last pass failed ${Math.round(s.sinceLastMs / 1000)} s ago: try again`;
  if (!s.lastFailed && s.sinceLastMs >= ROLES_RESYNC_MS) return 'periodic check for changes made by hand';
  return null;
}
