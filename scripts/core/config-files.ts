// Configuration, part 2: what comes from files: secrets given as NAME or NAME_FILE, the PostgreSQL
// bin directory, and the mounted configuration ($PGA_CONFIG_DIR/parameters.json, bootstrap.json,
// initdb.d/*). Pure apart from the injected FileReader; every problem is appended to `problems`
// as a full line (what, got, accepted, fix).

import { PG_IDENT, show } from './config-env.js';
import { parseDatabases, parseUsers, type DesiredDatabase, type DesiredUser } from './roles-config.js';

export interface FileReader {
  /** File content as UTF-8, null when the file does not exist. */
  readFile(path: string): string | null;
  /** Entry names of a directory, null when it does not exist. */
  listDir(path: string): string[] | null;
}

export interface BootstrapSpec {
  initdb: { encoding: string; locale: string; dataChecksums: boolean; args: string[] };
  users: DesiredUser[];
  databases: DesiredDatabase[];
  scripts: { name: string; sql: string }[];
}

/** Strip exactly one trailing newline (\n or \r\n): files made by `echo` or editors end with one,
 *  and that newline is not part of the secret. */
export function trimSecret(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/** Value of a secret given as NAME or NAME_FILE. Returns undefined when neither is set. */
export function readSecret(
  name: string,
  env: Record<string, string | undefined>,
  files: FileReader,
  problems: string[],
): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  const hasDirect = direct !== undefined && direct !== '';
  const hasFile = file !== undefined && file !== '';
  if (hasDirect && hasFile) {
    problems.push(`${name} and ${name}_FILE are both set; accepted: exactly one of them. Fix: unset one (the chart uses ${name}_FILE)`);
    return undefined;
  }
  if (hasFile) {
    if (!file.startsWith('/')) {
      problems.push(`${name}_FILE: got ${show(file)}; accepted: an absolute path to a file holding the secret. Fix: correct ${name}_FILE`);
      return undefined;
    }
    let content: string | null;
    try {
      content = files.readFile(file);
    } catch (e) {
      problems.push(`${name}_FILE: cannot read ${show(file)}: ${(e as Error).message}. Fix: make the file readable by this user`);
      return undefined;
    }
    if (content === null) {
      problems.push(`${name}_FILE: the file ${show(file)} does not exist. Fix: mount the secret there or correct ${name}_FILE`);
      return undefined;
    }
    const v = trimSecret(content);
    if (v === '') {
      problems.push(`${name}_FILE: the file ${show(file)} is empty; accepted: a non-empty secret. Fix: put the secret in the file`);
      return undefined;
    }
    return v;
  }
  if (hasDirect) return trimSecret(direct);
  return undefined;
}

/** Newest /usr/lib/postgresql/<major>/bin that contains `postgres`, or null. */
export function findBinDir(files: FileReader, root = '/usr/lib/postgresql'): string | null {
  let majors: string[] | null;
  try {
    majors = files.listDir(root);
  } catch {
    return null;
  }
  if (!majors) return null;
  const sorted = majors
    .filter((m) => /^\d+(\.\d+)?$/.test(m))
    .sort((a, b) => Number(b) - Number(a));
  for (const m of sorted) {
    const dir = `${root}/${m}/bin`;
    let entries: string[] | null = null;
    try {
      entries = files.listDir(dir);
    } catch {
      entries = null;
    }
    if (entries?.includes('postgres')) return dir;
  }
  return null;
}


// mounted files

export function readJsonFile(path: string, files: FileReader, problems: string[], what: string): unknown | undefined {
  let text: string | null;
  try {
    text = files.readFile(path);
  } catch (e) {
    problems.push(`${path}: cannot read (${(e as Error).message}). Fix: make ${what} readable`);
    return undefined;
  }
  if (text === null) return undefined;
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    problems.push(`${path}: not valid JSON (${(e as Error).message}); accepted: ${what}. Fix: correct the file (chart value behind it)`);
    return undefined;
  }
}

export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadParameters(path: string, files: FileReader, problems: string[]): Record<string, string> {
  const raw = readJsonFile(path, files, problems, 'a JSON object of parameter name → value');
  if (raw === undefined) return {};
  if (!isObj(raw)) {
    problems.push(`${path}: got ${JSON.stringify(raw).slice(0, 80)}; accepted: a JSON object of parameter name → value (postgresql.parameters). Fix: correct postgresql.parameters`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(k)) {
      problems.push(`${path}: parameter name ${show(k)} is not a valid PostgreSQL parameter name. Fix: correct postgresql.parameters`);
      continue;
    }
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[k] = String(v);
    else if (typeof v === 'boolean') out[k] = v ? 'on' : 'off';
    else problems.push(`${path}: parameter ${k} has value ${JSON.stringify(v)}; accepted: a string, number or boolean. Fix: correct postgresql.parameters.${k}`);
  }
  return out;
}

/** initdb options the entrypoint sets itself; users may not override them through args. */
const MANAGED_INITDB_ARGS = ['-D', '--pgdata', '-X', '--waldir', '-U', '--username', '--pwfile', '-W', '--pwprompt', '-E', '--encoding', '--locale', '-k', '--data-checksums', '-A', '--auth', '--auth-local', '--auth-host'];

export function loadBootstrap(cfgDir: string, secretsDir: string, superuser: string, files: FileReader, problems: string[]): BootstrapSpec {
  const path = `${cfgDir}/bootstrap.json`;
  const spec: BootstrapSpec = {
    initdb: { encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true, args: [] },
    users: [],
    databases: [],
    scripts: [],
  };
  const raw = readJsonFile(path, files, problems, 'a JSON object {"initdb":{…},"users":[…],"databases":[…]}');
  if (raw !== undefined && !isObj(raw)) {
    problems.push(`${path}: got ${JSON.stringify(raw).slice(0, 80)}; accepted: a JSON object {"initdb":{…},"users":[…],"databases":[…]}. Fix: correct the chart's initdb/users/databases values`);
  } else if (raw !== undefined) {
    const unknownTop = Object.keys(raw).filter((k) => !['initdb', 'users', 'databases'].includes(k));
    if (unknownTop.length) problems.push(`${path}: unknown key(s) ${unknownTop.join(', ')}; accepted: initdb, users, databases`);
    const i = raw.initdb;
    if (i !== undefined) {
      if (!isObj(i)) problems.push(`${path}: initdb must be an object {"encoding","locale","dataChecksums","args"}`);
      else {
        if (i.encoding !== undefined) {
          if (typeof i.encoding === 'string' && /^[A-Za-z0-9_-]{1,32}$/.test(i.encoding)) spec.initdb.encoding = i.encoding;
          else problems.push(`${path}: initdb.encoding got ${JSON.stringify(i.encoding)}; accepted: an encoding name such as "UTF8"`);
        }
        if (i.locale !== undefined) {
          if (typeof i.locale === 'string' && /^[A-Za-z0-9_.@-]{1,64}$/.test(i.locale)) spec.initdb.locale = i.locale;
          else problems.push(`${path}: initdb.locale got ${JSON.stringify(i.locale)}; accepted: a locale name such as "C.UTF-8" or "en_US.UTF-8"`);
        }
        if (i.dataChecksums !== undefined) {
          if (typeof i.dataChecksums === 'boolean') spec.initdb.dataChecksums = i.dataChecksums;
          else problems.push(`${path}: initdb.dataChecksums got ${JSON.stringify(i.dataChecksums)}; accepted: true or false`);
        }
        if (i.args !== undefined) {
          if (Array.isArray(i.args) && i.args.every((a) => typeof a === 'string')) {
            for (const a of i.args as string[]) {
              const opt = a.split('=')[0] ?? a;
              if (MANAGED_INITDB_ARGS.includes(opt) || /^-[DXUWEkA]./.test(a)) {
                problems.push(`${path}: initdb.args contains ${show(a)}, an option the entrypoint sets itself (data/WAL directory, superuser, password, encoding, locale, checksums, auth). Fix: use initdb.encoding/locale/dataChecksums or remove it`);
              }
            }
            spec.initdb.args = i.args as string[];
          } else problems.push(`${path}: initdb.args got ${JSON.stringify(i.args)}; accepted: an array of strings`);
        }
      }
    }
    spec.users = parseUsers(raw.users, path, secretsDir, files, problems);
    spec.databases = parseDatabases(raw.databases, path, superuser, problems);
  }
  // roles.json: the chart's users and databases, in a ConfigMap of their own (changing them
  // restarts nothing; the primary keeps them in sync, shell/roles.ts)
  const more = loadRoles(cfgDir, secretsDir, superuser, files, problems);
  for (const u of more.users) {
    if (spec.users.some((x) => x.name === u.name)) problems.push(`${cfgDir}/roles.json: users entry ${show(u.name)} is in bootstrap.json too. Fix: keep one`);
    else spec.users.push(u);
  }
  for (const d of more.databases) {
    if (spec.databases.some((x) => x.name === d.name)) problems.push(`${cfgDir}/roles.json: databases entry ${show(d.name)} is in bootstrap.json too. Fix: keep one`);
    else spec.databases.push(d);
  }
  // initdb.d/*: every visible regular entry, in byte order of the name. Kubernetes volume
  // mounts add hidden "..data" / "..<timestamp>" entries, which are skipped.
  const dir = `${cfgDir}/initdb.d`;
  let names: string[] | null = null;
  try {
    names = files.listDir(dir);
  } catch (err) {
    problems.push(`${dir}: cannot list (${(err as Error).message})`);
  }
  if (names) {
    for (const name of [...names].filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      let sql: string | null;
      try {
        sql = files.readFile(`${dir}/${name}`);
      } catch (err) {
        problems.push(`${dir}/${name}: cannot read (${(err as Error).message})`);
        continue;
      }
      if (sql === null) continue; // vanished or a directory
      spec.scripts.push({ name, sql });
    }
  }
  return spec;
}

/** roles.json ({"users":[…],"databases":[…]}): read at start and again by the primary whenever it
 *  changes. Missing or empty: nothing declared. */
export function loadRoles(cfgDir: string, secretsDir: string, superuser: string, files: FileReader, problems: string[]): { users: DesiredUser[]; databases: DesiredDatabase[] } {
  const path = `${cfgDir}/roles.json`;
  const raw = readJsonFile(path, files, problems, 'a JSON object {"users":[…],"databases":[…]}');
  if (raw === undefined) return { users: [], databases: [] };
  if (!isObj(raw)) {
    problems.push(`${path}: got ${JSON.stringify(raw).slice(0, 80)}; accepted: a JSON object {"users":[…],"databases":[…]}. Fix: correct the chart's users/databases values`);
    return { users: [], databases: [] };
  }
  const unknownTop = Object.keys(raw).filter((k) => !['users', 'databases'].includes(k));
  if (unknownTop.length) problems.push(`${path}: unknown key(s) ${unknownTop.join(', ')}; accepted: users, databases`);
  return { users: parseUsers(raw.users, path, secretsDir, files, problems), databases: parseDatabases(raw.databases, path, superuser, problems) };
}
