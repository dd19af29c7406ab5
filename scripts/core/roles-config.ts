// Declared roles and databases: the `users` and `databases` of roles.json (the chart's second
// ConfigMap, outside the pod template's checksum) and, for older mounts, of bootstrap.json. Pure
// apart from the injected FileReader (passwords are read from secretsDir/<passwordKey>); every
// problem is appended to `problems` as a full line (what, got, accepted, fix).

import { PG_IDENT, show } from './config-env.js';

export interface FileReaderLike {
  readFile(path: string): string | null;
}

/** The role attributes kept in sync. Unlisted ones take PostgreSQL's CREATE ROLE default. */
export const ROLE_FLAGS = ['SUPERUSER', 'CREATEDB', 'CREATEROLE', 'INHERIT', 'LOGIN', 'REPLICATION', 'BYPASSRLS'] as const;
export type RoleFlag = (typeof ROLE_FLAGS)[number];
export const FLAG_DEFAULTS: Record<RoleFlag, boolean> = { SUPERUSER: false, CREATEDB: false, CREATEROLE: false, INHERIT: true, LOGIN: false, REPLICATION: false, BYPASSRLS: false };

export type Ensure = 'present' | 'absent';

export interface DesiredUser {
  name: string;
  ensure: Ensure;
  /** null: the password is not managed (never set, never removed) */
  password: string | null;
  passwordKey: string | null;
  /** every flag, the options given overriding FLAG_DEFAULTS */
  flags: Record<RoleFlag, boolean>;
  connectionLimit: number;
  /** roles this one is a member of (inRoles and the legacy option "IN ROLE a,b") */
  inRoles: string[];
  /** applied on creation only: VALID UNTIL '…', ROLE a,b, ADMIN a,b */
  createOnly: string[];
  /** the options as written (log lines, bootstrap) */
  options: string[];
  /** a role the autopilot keeps itself (systemUsers): what it is for, named in each reason */
  system?: string;
}

export interface DesiredDatabase {
  name: string;
  ensure: Ensure;
  owner: string;
  connectionLimit: number;
}

const NAME_LIST = '[A-Za-z_][A-Za-z0-9_]*( *, *[A-Za-z_][A-Za-z0-9_]*)*';
const OPTION_HELP = "[NO]SUPERUSER, [NO]CREATEDB, [NO]CREATEROLE, [NO]INHERIT, [NO]LOGIN, [NO]REPLICATION, [NO]BYPASSRLS, CONNECTION LIMIT n, VALID UNTIL '…', IN ROLE a,b";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const trim1 = (s: string) => s.replace(/\r?\n$/, '');

function ensureOf(v: unknown, where: string, problems: string[]): Ensure {
  if (v === undefined || v === null || v === '') return 'present';
  if (v === 'present' || v === 'absent') return v;
  problems.push(`${where}.ensure got ${JSON.stringify(v)}; accepted: "present" (create and keep in sync) or "absent" (drop; a role that still owns objects is disabled with NOLOGIN instead)`);
  return 'present';
}

function limitOf(v: unknown, where: string, problems: string[]): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= -1) return v;
  problems.push(`${where}.connectionLimit got ${JSON.stringify(v)}; accepted: an integer, -1 for no limit`);
  return null;
}

export function parseUsers(raw: unknown, where0: string, secretsDir: string, files: FileReaderLike, problems: string[]): DesiredUser[] {
  const out: DesiredUser[] = [];
  if (raw === undefined) return out;
  if (!Array.isArray(raw)) {
    problems.push(`${where0}: users must be an array of {"name","ensure"?,"passwordKey"?,"options":[],"inRoles":[],"connectionLimit"?}`);
    return out;
  }
  raw.forEach((u: unknown, idx: number) => {
    const where = `${where0}: users[${idx}]`;
    if (!isObj(u) || typeof u.name !== 'string') {
      problems.push(`${where}: accepted: an object {"name","ensure"?,"passwordKey"?,"options":[],"inRoles":[],"connectionLimit"?}`);
      return;
    }
    if (!PG_IDENT.test(u.name) || u.name.toLowerCase().startsWith('pg_')) {
      problems.push(`${where}.name got ${show(u.name)}; accepted: a role name (letter or "_", then letters, digits, "_"; at most 63; not "pg_…")`);
      return;
    }
    const unknown = Object.keys(u).filter((k) => !['name', 'ensure', 'passwordKey', 'options', 'inRoles', 'connectionLimit'].includes(k));
    if (unknown.length) problems.push(`${where}: unknown key(s) ${unknown.join(', ')}; accepted: name, ensure, passwordKey, options, inRoles, connectionLimit`);
    const user: DesiredUser = { name: u.name, ensure: ensureOf(u.ensure, where, problems), password: null, passwordKey: null, flags: { ...FLAG_DEFAULTS }, connectionLimit: -1, inRoles: [], createOnly: [], options: [] };
    const addRoles = (list: string[]) => { for (const r of list) if (!user.inRoles.includes(r)) user.inRoles.push(r); };
    if (u.options !== undefined) {
      if (!Array.isArray(u.options) || !u.options.every((o) => typeof o === 'string')) {
        problems.push(`${where}.options: accepted: an array of strings such as ["LOGIN","CREATEDB"]`);
      } else {
        for (const o0 of u.options as string[]) {
          const o = o0.trim().replace(/\s+/g, ' ');
          let m: RegExpMatchArray | null;
          if ((m = /^(NO)?(SUPERUSER|CREATEDB|CREATEROLE|INHERIT|LOGIN|REPLICATION|BYPASSRLS)$/i.exec(o))) user.flags[m[2]!.toUpperCase() as RoleFlag] = !m[1];
          else if ((m = /^CONNECTION LIMIT (-?\d+)$/i.exec(o))) user.connectionLimit = Number(m[1]);
          else if (/^VALID UNTIL '[^'\\]*'$/i.test(o)) user.createOnly.push(o);
          else if ((m = new RegExp(`^IN ROLE (${NAME_LIST})$`, 'i').exec(o))) addRoles(m[1]!.split(',').map((s) => s.trim()));
          else if (new RegExp(`^(ROLE|ADMIN) ${NAME_LIST}$`, 'i').test(o)) user.createOnly.push(o);
          else {
            problems.push(`${where}.options: ${show(o0)} is not accepted; accepted: ${OPTION_HELP}`);
            continue;
          }
          user.options.push(o);
        }
      }
    }
    if (u.inRoles !== undefined) {
      if (!Array.isArray(u.inRoles) || !u.inRoles.every((r) => typeof r === 'string' && PG_IDENT.test(r))) problems.push(`${where}.inRoles got ${JSON.stringify(u.inRoles)}; accepted: an array of role names such as ["pg_read_all_data"]`);
      else addRoles(u.inRoles as string[]);
    }
    if (user.inRoles.includes(user.name)) problems.push(`${where}.inRoles: ${show(user.name)} cannot be a member of itself. Fix: remove it from inRoles`);
    const limit = limitOf(u.connectionLimit, where, problems);
    if (limit !== null) user.connectionLimit = limit;
    if (u.passwordKey !== undefined && u.passwordKey !== null && u.passwordKey !== '') {
      if (typeof u.passwordKey !== 'string' || !/^[A-Za-z0-9._-]+$/.test(u.passwordKey) || u.passwordKey.startsWith('.')) {
        problems.push(`${where}.passwordKey got ${JSON.stringify(u.passwordKey)}; accepted: a credential key (file name in ${secretsDir}: letters, digits, ".", "_", "-")`);
      } else if (user.ensure === 'present') {
        user.passwordKey = u.passwordKey;
        const f = `${secretsDir}/${u.passwordKey}`;
        let content: string | null = null;
        try {
          content = files.readFile(f);
        } catch (err) {
          problems.push(`${where}.passwordKey: cannot read ${show(f)} (${(err as Error).message}). Fix: make it readable by the postgres user`);
        }
        if (content === null) problems.push(`${where}.passwordKey: the file ${show(f)} does not exist (PGA_ROLES_SECRETS_DIR or PGA_SECRETS_DIR: ${secretsDir}). Fix: add the key ${show(u.passwordKey)} to the credentials Secret/Vault path`);
        else if (trim1(content) === '') problems.push(`${where}.passwordKey: the file ${show(f)} is empty. Fix: put the password in it`);
        else user.password = trim1(content);
      }
    }
    if (out.some((x) => x.name === u.name)) problems.push(`${where}.name ${show(u.name)} appears twice`);
    out.push(user);
  });
  return out;
}

export function parseDatabases(raw: unknown, where0: string, superuser: string, problems: string[]): DesiredDatabase[] {
  const out: DesiredDatabase[] = [];
  if (raw === undefined) return out;
  if (!Array.isArray(raw)) {
    problems.push(`${where0}: databases must be an array of {"name","owner"?,"ensure"?,"connectionLimit"?}`);
    return out;
  }
  raw.forEach((d: unknown, idx: number) => {
    const where = `${where0}: databases[${idx}]`;
    if (!isObj(d) || typeof d.name !== 'string') {
      problems.push(`${where}: accepted: an object {"name","owner"?,"ensure"?,"connectionLimit"?}`);
      return;
    }
    if (!PG_IDENT.test(d.name) || ['postgres', 'template0', 'template1'].includes(d.name)) {
      problems.push(`${where}.name got ${show(d.name)}; accepted: a database name (letter or "_", then letters, digits, "_"; at most 63), not postgres/template0/template1`);
      return;
    }
    const unknown = Object.keys(d).filter((k) => !['name', 'owner', 'ensure', 'connectionLimit'].includes(k));
    if (unknown.length) problems.push(`${where}: unknown key(s) ${unknown.join(', ')}; accepted: name, owner, ensure, connectionLimit`);
    const owner = d.owner === undefined || d.owner === null || d.owner === '' ? superuser : d.owner;
    if (typeof owner !== 'string' || !PG_IDENT.test(owner)) {
      problems.push(`${where}.owner got ${JSON.stringify(d.owner)}; accepted: a role name`);
      return;
    }
    if (out.some((x) => x.name === d.name)) problems.push(`${where}.name ${show(d.name)} appears twice`);
    out.push({ name: d.name, owner, ensure: ensureOf(d.ensure, where, problems), connectionLimit: limitOf(d.connectionLimit, where, problems) ?? -1 });
  });
  return out;
}

/** Roles the autopilot owns and that no declaration may touch. */
export function reservedProblems(users: DesiredUser[], databases: DesiredDatabase[], reserved: string[], appDatabase: string | null, where: string): string[] {
  const out: string[] = [];
  for (const u of users) if (reserved.includes(u.name)) out.push(`${where}: users entry ${show(u.name)} is a role the entrypoint manages (superuser, replication, application or exporter user). Fix: remove it from users`);
  for (const d of databases) if (appDatabase && d.name === appDatabase) out.push(`${where}: databases entry ${show(d.name)} is PGA_APP_DATABASE, which the entrypoint creates for the application user. Fix: remove it from databases`);
  return out;
}

/** Connections the exporter's role may hold: postgres_exporter keeps one per collector set (two),
 *  plus room for a reconnect; a leaked password cannot take more. */
export const MONITOR_CONNECTION_LIMIT = 5;

export interface SystemRolesConfig {
  monitorUser: string | null;
  monitorPasswordFile: string | null;
  secrets: { monitorPassword: string | null };
}

/** The roles the autopilot keeps besides the declared ones, planned like them (core/roles.ts) but
 *  never refused as reserved: the exporter's role (PGA_MONITOR_USER), LOGIN, a member of pg_monitor
 *  and of nothing else, no other attribute. Its password is read again from
 *  PGA_MONITOR_PASSWORD_FILE on each pass (a rotated Secret or Vault file is applied); when that
 *  file cannot be read the problem is reported and the stored password is left as it is. */
export function systemUsers(cfg: SystemRolesConfig, files: FileReaderLike, problems: string[]): DesiredUser[] {
  if (!cfg.monitorUser) return [];
  let password = cfg.secrets.monitorPassword;
  const f = cfg.monitorPasswordFile;
  if (f) {
    const kept = `the stored password of ${cfg.monitorUser} is kept`;
    let content: string | null = null;
    let why: string | null = null;
    try {
      content = files.readFile(f);
      if (content === null) why = `${show(f)} does not exist; ${kept}. Fix: add the key to the credentials Secret or Vault path`;
      else if (trim1(content) === '') why = `${show(f)} is empty; ${kept}. Fix: put the password in it`;
    } catch (err) {
      why = `cannot read ${show(f)} (${(err as Error).message}); ${kept}. Fix: make it readable by the postgres user`;
    }
    if (why !== null) problems.push(`PGA_MONITOR_PASSWORD_FILE: ${why}`);
    password = why === null && content !== null ? trim1(content) : null;
  }
  return [{
    name: cfg.monitorUser, ensure: 'present', password, passwordKey: cfg.monitorPasswordFile ?? 'PGA_MONITOR_PASSWORD',
    flags: { ...FLAG_DEFAULTS, LOGIN: true }, connectionLimit: MONITOR_CONNECTION_LIMIT, inRoles: ['pg_monitor'], createOnly: [], options: ['LOGIN', 'IN ROLE pg_monitor'],
    system: "the exporter's role",
  }];
}
