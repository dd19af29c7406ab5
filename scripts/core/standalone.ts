// Standalone and replica modes (core/mode.ts): the official postgres image's variables mapped onto
// the entrypoint's own. Pure apart from the injected FileReader (secrets given as *_FILE, the data
// directory's PG_VERSION, the init scripts' directory listing).
//
//   POSTGRES_USER[_FILE]          the superuser (default "postgres"; PGA_SUPERUSER is the same thing)
//   POSTGRES_PASSWORD[_FILE]      its password (PGA_SUPERUSER_PASSWORD[_FILE] is the same thing)
//   POSTGRES_DB[_FILE]            a database created on first start, owned by the superuser (default: the user's name)
//   POSTGRES_INITDB_ARGS[_FILE]   extra initdb arguments, split as a shell would (quotes honoured)
//   POSTGRES_INITDB_WALDIR        initdb --waldir (PGA_WAL_DIR is the same thing)
//   POSTGRES_HOST_AUTH_METHOD     pg_hba method of network connections (default scram-sha-256)
//   PGDATA                        the data directory (PGA_DATA_DIR is the same thing)
//   PGA_INITDB_DIR                the init scripts' directory (default /docker-entrypoint-initdb.d)
//   PGA_PRIMARY_HOST, PGA_PRIMARY_PORT   replica mode: the primary to clone and follow

import { readSecret, type FileReader } from './config-files.js';
import type { Mode } from './mode.js';

export const HOST_AUTH_METHODS = ['scram-sha-256', 'md5', 'password', 'trust', 'reject'] as const;
export type HostAuthMethod = (typeof HOST_AUTH_METHODS)[number];
export const DEFAULT_INITDB_DIR = '/docker-entrypoint-initdb.d';
export const DEFAULT_DATA_DIR = '/var/lib/postgresql/data/pgdata';

export type InitScriptKind = 'sh' | 'sql' | 'sql.gz';
export interface InitScript {
  name: string;
  kind: InitScriptKind;
}

export interface StandaloneSettings {
  mode: Exclude<Mode, 'kubernetes'>;
  /** the environment handed to loadConfig(…, { standalone: true }) */
  env: Record<string, string | undefined>;
  dataDir: string;
  /** no PG_VERSION in the data directory: initdb (or the clone) runs now */
  firstStart: boolean;
  /** POSTGRES_DB: created on first start, owned by the superuser */
  database: string;
  hostAuthMethod: HostAuthMethod;
  initdbArgs: string[];
  initdbDir: string;
  /** scripts of initdbDir to run on first start, in name order; other entries are ignored */
  scripts: InitScript[];
  ignored: string[];
  primary: { host: string; port: number } | null;
  /** what was generated because it was not given (names of the variables) */
  generated: string[];
  /** what is wrong (each line names the variable and the fix); the caller adds loadConfig's and throws */
  problems: string[];
}

/** Split a string into words as a POSIX shell would (no expansions): blanks separate words,
 *  '…' keeps everything, "…" and \ escape. Throws on an unterminated quote. */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1] as string)) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new Error('unterminated double quote');
      i = j;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** Init scripts in byte order of their names, as the official image runs them. */
export function classifyInitScripts(names: string[]): { scripts: InitScript[]; ignored: string[] } {
  const scripts: InitScript[] = [];
  const ignored: string[] = [];
  for (const name of [...names].filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (name.endsWith('.sh')) scripts.push({ name, kind: 'sh' });
    else if (name.endsWith('.sql')) scripts.push({ name, kind: 'sql' });
    else if (name.endsWith('.sql.gz')) scripts.push({ name, kind: 'sql.gz' });
    else ignored.push(name);
  }
  return { scripts, ignored };
}

/** initdb options the entrypoint sets itself: POSTGRES_INITDB_ARGS may not carry them. */
const OWN_INITDB_ARGS = ['-D', '--pgdata', '-U', '--username', '--pwfile', '-W', '--pwprompt', '-X', '--waldir'];

export const NO_PASSWORD_MESSAGE = [
  'Error: Database is uninitialized and superuser password is not specified.',
  '       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser.',
  '       For example, "-e POSTGRES_PASSWORD=password" on "docker run"',
  '       (or POSTGRES_PASSWORD_FILE=/run/secrets/… naming a file that holds it).',
  '',
  '       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all',
  '       connections without a password. This is *not* recommended.',
].join('\n');

export function standaloneSettings(
  mode: Exclude<Mode, 'kubernetes'>,
  env: Record<string, string | undefined>,
  files: FileReader,
  facts: { hostname: string; randomSecret: () => string },
): StandaloneSettings {
  const problems: string[] = [];
  const has = (k: string) => env[k] !== undefined && env[k] !== '';
  const out: Record<string, string | undefined> = { ...env };
  const generated: string[] = [];

  // both names of one setting: they must agree
  const same = (official: string, ours: string, value: string | undefined): string | undefined => {
    if (value !== undefined && has(ours) && env[ours] !== value) {
      problems.push(`${official} (${JSON.stringify(value)}) and ${ours} (${JSON.stringify(env[ours])}) are both set and differ; accepted: one of them. Fix: unset ${ours} (or make them equal)`);
    }
    return value ?? (has(ours) ? env[ours] : undefined);
  };

  const user = same('POSTGRES_USER', 'PGA_SUPERUSER', readSecret('POSTGRES_USER', env, files, problems)) ?? 'postgres';
  out.PGA_SUPERUSER = user;
  const dataDir = (same('PGDATA', 'PGA_DATA_DIR', has('PGDATA') ? env.PGDATA : undefined) ?? DEFAULT_DATA_DIR).replace(/\/+$/, '') || '/';
  out.PGA_DATA_DIR = dataDir;
  const walDir = same('POSTGRES_INITDB_WALDIR', 'PGA_WAL_DIR', has('POSTGRES_INITDB_WALDIR') ? env.POSTGRES_INITDB_WALDIR : undefined);
  if (walDir !== undefined) out.PGA_WAL_DIR = walDir;

  let firstStart = true;
  try {
    firstStart = !(files.listDir(dataDir) ?? []).includes('PG_VERSION');
  } catch (e) {
    problems.push(`PGDATA: cannot list ${JSON.stringify(dataDir)} (${(e as Error).message}). Fix: make it readable by the user the container runs as (uid 10001 in the image, or any uid with group 0 when the directory is group-0 writable)`);
  }

  // the superuser's password
  const officialPw = readSecret('POSTGRES_PASSWORD', env, files, problems);
  const oursPw = has('PGA_SUPERUSER_PASSWORD') || has('PGA_SUPERUSER_PASSWORD_FILE');
  if (officialPw !== undefined && oursPw) {
    problems.push('POSTGRES_PASSWORD[_FILE] and PGA_SUPERUSER_PASSWORD[_FILE] are both set; accepted: one of them. Fix: unset PGA_SUPERUSER_PASSWORD[_FILE]');
  }
  if (officialPw !== undefined) {
    out.PGA_SUPERUSER_PASSWORD = officialPw;
    delete out.PGA_SUPERUSER_PASSWORD_FILE;
  }

  const rawMethod = (env.POSTGRES_HOST_AUTH_METHOD ?? '').trim();
  let hostAuthMethod: HostAuthMethod = 'scram-sha-256';
  if (rawMethod !== '') {
    if ((HOST_AUTH_METHODS as readonly string[]).includes(rawMethod)) hostAuthMethod = rawMethod as HostAuthMethod;
    else problems.push(`POSTGRES_HOST_AUTH_METHOD: got ${JSON.stringify(rawMethod)}; accepted: ${HOST_AUTH_METHODS.join(', ')}. Fix: correct POSTGRES_HOST_AUTH_METHOD or unset it (scram-sha-256)`);
  }
  if (mode === 'standalone' && firstStart && officialPw === undefined && !oursPw && hostAuthMethod !== 'trust' && !problems.some((p) => p.startsWith('POSTGRES_PASSWORD'))) {
    problems.push(NO_PASSWORD_MESSAGE);
  }

  const database = readSecret('POSTGRES_DB', env, files, problems) ?? user;
  for (const [name, v] of [['POSTGRES_USER', user], ['POSTGRES_DB', database]] as const) {
    if (v.includes('\0') || new TextEncoder().encode(v).length > 63) problems.push(`${name}: got ${JSON.stringify(v)}; accepted: at most 63 bytes, no NUL character. Fix: correct ${name}`);
  }

  let initdbArgs: string[] = [];
  const argsText = readSecret('POSTGRES_INITDB_ARGS', env, files, problems);
  if (argsText !== undefined) {
    try {
      initdbArgs = shellWords(argsText);
    } catch (e) {
      problems.push(`POSTGRES_INITDB_ARGS: ${(e as Error).message} in ${JSON.stringify(argsText)}. Fix: close the quote`);
    }
    for (const a of initdbArgs) {
      const opt = a.split('=')[0] ?? a;
      if (OWN_INITDB_ARGS.includes(opt) || /^-[DUWX]./.test(a)) {
        problems.push(`POSTGRES_INITDB_ARGS: ${JSON.stringify(a)} is set by the entrypoint (data directory: PGDATA, WAL directory: POSTGRES_INITDB_WALDIR, superuser: POSTGRES_USER, password: POSTGRES_PASSWORD). Fix: use those variables instead`);
      }
    }
  }

  // application user: none unless asked for (the official image has only the superuser)
  if (!has('PGA_APP_USER')) out.PGA_APP_USER = '';
  // what only a cluster needs: fixed values, unless given
  const fill = (k: string, v: string) => { if (!has(k)) out[k] = v; };
  fill('PGA_CLUSTER_NAME', 'postgres');
  fill('PGA_NAMESPACE', 'standalone');
  fill('PGA_POD_NAME', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(facts.hostname) && facts.hostname.length <= 63 ? facts.hostname : 'postgres');
  fill('PGA_POD_IP', '127.0.0.1');
  fill('PGA_MEMBER_SELECTOR', 'app=standalone');

  let primary: StandaloneSettings['primary'] = null;
  if (mode === 'replica') {
    const port = (env.PGA_PRIMARY_PORT ?? '').trim() === '' ? 5432 : /^\d+$/.test(env.PGA_PRIMARY_PORT!.trim()) ? Number(env.PGA_PRIMARY_PORT!.trim()) : NaN;
    if (!(port >= 1 && port <= 65535)) problems.push(`PGA_PRIMARY_PORT: got ${JSON.stringify(env.PGA_PRIMARY_PORT)}; accepted: a TCP port, 1 to 65535. Fix: correct PGA_PRIMARY_PORT or unset it (5432)`);
    const host = (env.PGA_PRIMARY_HOST ?? '').trim();
    if (!/^[A-Za-z0-9_.:-]+$/.test(host)) problems.push(`PGA_PRIMARY_HOST: got ${JSON.stringify(env.PGA_PRIMARY_HOST)}; accepted: a host name or IP address. Fix: correct PGA_PRIMARY_HOST`);
    if (!has('PGA_REPLICATION_PASSWORD') && !has('PGA_REPLICATION_PASSWORD_FILE')) {
      problems.push('replica mode needs the replication password: neither PGA_REPLICATION_PASSWORD nor PGA_REPLICATION_PASSWORD_FILE is set. Fix: set one of them to the password the primary was given (its PGA_REPLICATION_PASSWORD)');
    }
    primary = { host, port };
  } else if (!has('PGA_REPLICATION_PASSWORD') && !has('PGA_REPLICATION_PASSWORD_FILE')) {
    // without it no replica can connect; a random one keeps the role unusable
    out.PGA_REPLICATION_PASSWORD = facts.randomSecret();
    generated.push('PGA_REPLICATION_PASSWORD');
  }
  if (!has('PGA_API_TOKEN') && !has('PGA_API_TOKEN_FILE')) {
    out.PGA_API_TOKEN = facts.randomSecret();
    generated.push('PGA_API_TOKEN');
  }

  const initdbDir = (has('PGA_INITDB_DIR') ? (env.PGA_INITDB_DIR as string) : DEFAULT_INITDB_DIR).replace(/\/+$/, '') || '/';
  let names: string[] = [];
  if (mode === 'standalone' && firstStart) {
    try {
      names = files.listDir(initdbDir) ?? [];
    } catch (e) {
      problems.push(`PGA_INITDB_DIR: cannot list ${JSON.stringify(initdbDir)} (${(e as Error).message}). Fix: make the mounted directory readable by the user the container runs as (uid 10001 in the image)`);
    }
  }
  const { scripts, ignored } = classifyInitScripts(names);

  return { mode, env: out, dataDir, firstStart, database, hostAuthMethod, initdbArgs, initdbDir, scripts, ignored, primary, generated, problems };
}
