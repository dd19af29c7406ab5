// Configuration of a member: environment variables + mounted files, validated once at start.
// Names and defaults are those of docs/contract.md. Pure apart from the injected FileReader.
//
// Every problem found is collected and reported at once in a single ConfigError, each line naming
// the variable or file, the value it got, what is accepted and how to fix it.

import { customCleanEnv, makeValidator, EnvError, EnvMissingError, str } from 'envalid';
import { validateParameters } from './render.js';
import { ConfigError } from './errors.js';

/** off: asynchronous. on: commits wait for PGA_SYNC_COUNT standbys; without a streaming standby the
 *  primary goes asynchronous and records an empty synchronous set (no automatic failover until a
 *  standby catches up). strict: the same, but without a standby the primary keeps waiting (writes
 *  block) instead of going asynchronous. */
export type SyncMode = 'off' | 'on' | 'strict';
export const SYNC_MODES: readonly SyncMode[] = ['off', 'on', 'strict'];

export interface BootstrapSpec {
  initdb: { encoding: string; locale: string; dataChecksums: boolean; args: string[] };
  users: { name: string; password: string | null; options: string[] }[];
  databases: { name: string; owner: string }[];
  scripts: { name: string; sql: string }[];
}

export interface Config {
  clusterName: string;
  namespace: string;
  podName: string;
  podIp: string;
  memberSelector: string;
  dataDir: string;
  walDir: string | null;
  binDir: string;
  runDir: string;
  configDir: string;
  secretsDir: string;
  pgPort: number;
  apiPort: number;
  loopMs: number;
  leaseMs: number;
  renewMs: number;
  renewDeadlineMs: number;
  maxLagBytes: number;
  syncMode: SyncMode;
  syncCount: number;
  /** PGA_MAX_SLOT_WAL_KEEP_SIZE in MB (PostgreSQL's unit): the default of max_slot_wal_keep_size;
   *  -1 = unlimited (only when set so explicitly) */
  maxSlotWalKeepSizeMb: number;
  nofailover: boolean;
  /** PGA_FAILSAFE: while the API is unreachable, a primary that every member confirms stays primary */
  failsafe: boolean;
  logFormat: LogFormat;
  logLevel: LogLevel;
  superuser: string;
  replicationUser: string;
  appUser: string | null;
  appDatabase: string;
  secrets: { superuserPassword: string; replicationPassword: string; appPassword: string | null; apiToken: string };
  /** from $PGA_CONFIG_DIR/parameters.json (values stringified) */
  parameters: Record<string, string>;
  /** from $PGA_CONFIG_DIR/pg_hba.conf ('' if absent) */
  pgHbaExtra: string;
  /** from bootstrap.json (+ initdb.d/* in name order; user passwords from secretsDir/<passwordKey>) */
  bootstrap: BootstrapSpec;
  tls: { certFile: string; keyFile: string; caFile: string | null } | null;
  /** KUBECONFIG; null = in-cluster configuration */
  kubeconfig: string | null;
}

export { ConfigError } from './errors.js';

export interface FileReader {
  /** File content as UTF-8, null when the file does not exist. */
  readFile(path: string): string | null;
  /** Entry names of a directory, null when it does not exist. */
  listDir(path: string): string[] | null;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** An IPv4 or IPv6 address (pure: the core imports nothing from node:). */
export function isIpAddress(v: string): boolean {
  if (IPV4.test(v)) return true;
  if (!/^[0-9A-Fa-f:.]+$/.test(v) || !v.includes(':')) return false;
  const parts = v.split('::');
  if (parts.length > 2) return false;
  const groups = (x: string) => (x === '' ? [] : x.split(':'));
  const all = parts.flatMap(groups);
  const last = all[all.length - 1] ?? '';
  const v4 = last.includes('.') ? (IPV4.test(last) ? 2 : -100) : 0;
  const hex = (v4 ? all.slice(0, -1) : all).every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
  const n = (v4 ? all.length - 1 : all.length) + v4;
  return hex && v4 >= 0 && (parts.length === 2 ? n < 8 : n === 8);
}

// ---------------------------------------------------------------------------------------------
// validators: each throws EnvError("got …; accepted: …") so the reporter can print a full line.

const show = (v: string): string => JSON.stringify(v);
const bad = (got: string, accepted: string): never => {
  throw new EnvError(`got ${show(got)}; accepted: ${accepted}`);
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Role and database names: we always quote them in SQL, but keep them to a safe set so they can
 *  also appear unquoted in pg_hba.conf and conninfo strings. */
export const PG_IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

const dnsLabel = makeValidator<string>((v) =>
  DNS_LABEL.test(v) && v.length <= 63 ? v : bad(v, 'a DNS label: lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit'),
);
const dnsSubdomain = makeValidator<string>((v) =>
  DNS_SUBDOMAIN.test(v) && v.length <= 253 ? v : bad(v, 'a DNS subdomain name (lowercase letters, digits, "-" and ".", at most 253 characters)'),
);
const address = makeValidator<string>((v) =>
  isIpAddress(v) || (DNS_SUBDOMAIN.test(v) && v.length <= 253) ? v : bad(v, 'an IPv4/IPv6 address (or a DNS name) that peers can reach'),
);
const selector = makeValidator<string>((v) => {
  const parts = v.split(',').map((p) => p.trim());
  const ok =
    v.trim() !== '' &&
    parts.every((p) => /^[A-Za-z0-9_./-]+\s*(=|==|!=)\s*[A-Za-z0-9_.-]*$/.test(p) || /^!?[A-Za-z0-9_./-]+$/.test(p) || /^[A-Za-z0-9_./-]+\s+(in|notin)\s+\([A-Za-z0-9_.,\s-]*\)$/.test(p));
  return ok ? v : bad(v, 'a Kubernetes label selector such as "app.kubernetes.io/instance=pg,app.kubernetes.io/name=postgres"');
});
const absPath = makeValidator<string>((v) =>
  v.startsWith('/') && !v.includes('\0') && !/\s/.test(v) ? v.replace(/\/+$/, '') || '/' : bad(v, 'an absolute path without whitespace, e.g. /var/lib/postgresql/data/pgdata'),
);
const optAbsPath = makeValidator<string>((v) =>
  v === '' ? '' : v.startsWith('/') && !/\s/.test(v) ? v.replace(/\/+$/, '') || '/' : bad(v, 'empty (none) or an absolute path without whitespace'),
);
const tcpPort = makeValidator<number>((v) => {
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : bad(v, 'a TCP port, an integer from 1 to 65535');
});
const seconds = makeValidator<number>((v) => {
  const n = /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) && n > 0 && n <= 3600 ? Math.round(n * 1000) : bad(v, 'a number of seconds greater than 0 (decimals allowed, e.g. 1 or 0.5), at most 3600');
});
const nonNegInt = makeValidator<number>((v) => {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) ? n : bad(v, 'a whole number of bytes, 0 or more (e.g. 16777216 for 16 MiB)');
});
const posInt = makeValidator<number>((v) => {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 1 && n <= 100 ? n : bad(v, 'a whole number from 1 to 100');
});
/** PostgreSQL's largest max_slot_wal_keep_size, in MB (INT_MAX). */
export const MAX_SLOT_WAL_KEEP_SIZE_MB = 2147483647;
const SIZE_UNITS_MB: Record<string, number> = { MB: 1, GB: 1024, TB: 1024 * 1024 };
/** A WAL size for max_slot_wal_keep_size, in MB: "2560MB", "1GB", "2TB", or "-1" (unlimited). */
export function parseWalKeepSizeMb(v: string): number | null {
  const s = v.trim();
  if (s === '-1') return -1;
  const m = /^(\d+)(MB|GB|TB)$/.exec(s);
  if (!m) return null;
  const mb = Number(m[1]) * (SIZE_UNITS_MB[m[2] as string] as number);
  return Number.isSafeInteger(mb) && mb >= 1 && mb <= MAX_SLOT_WAL_KEEP_SIZE_MB ? mb : null;
}
const walKeepSize = makeValidator<number>((v) => {
  const mb = parseWalKeepSizeMb(v);
  return mb !== null ? mb : bad(v, `a WAL size with its unit, from 1MB to ${MAX_SLOT_WAL_KEEP_SIZE_MB}MB (e.g. "2560MB", "1GB"), or "-1" for unlimited (a member that cannot stream then keeps WAL on the primary until its disk is full)`);
});
const boolean = makeValidator<boolean>((v) => {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off', ''].includes(s)) return false;
  return bad(v, '"true" or "false"');
});
const oneOf = <T extends string>(choices: readonly T[]) =>
  makeValidator<T>((v) => ((choices as readonly string[]).includes(v) ? (v as T) : bad(v, choices.map((c) => show(c)).join(' | '))));
const roleName = makeValidator<string>((v) =>
  PG_IDENT.test(v) && !v.toLowerCase().startsWith('pg_') ? v : bad(v, 'a PostgreSQL role name: a letter or "_" then letters, digits or "_", at most 63 characters, not starting with "pg_"'),
);
const optRoleName = makeValidator<string>((v) =>
  v === '' || (PG_IDENT.test(v) && !v.toLowerCase().startsWith('pg_')) ? v : bad(v, 'empty (no application user) or a PostgreSQL role name: a letter or "_" then letters, digits or "_", at most 63 characters'),
);
const dbName = makeValidator<string>((v) =>
  PG_IDENT.test(v) ? v : bad(v, 'a database name: a letter or "_" then letters, digits or "_", at most 63 characters'),
);
const httpUrl = makeValidator<string>((v) => {
  try {
    const u = new URL(v);
    if (u.protocol === 'http:' || u.protocol === 'https:') return v.replace(/\/+$/, '');
  } catch {
    /* fall through */
  }
  return bad(v, 'an http:// or https:// URL such as http://127.0.0.1:8008');
});

/** Optional raw string; '' is kept so each caller decides what empty means. */
const optStr = () => str({ default: undefined });

const SECRET_VARS = {
  superuserPassword: 'PGA_SUPERUSER_PASSWORD',
  replicationPassword: 'PGA_REPLICATION_PASSWORD',
  appPassword: 'PGA_APP_PASSWORD',
  apiToken: 'PGA_API_TOKEN',
} as const;

function envSpecs() {
  return {
    PGA_CLUSTER_NAME: dnsLabel({ desc: 'the cluster name (prefix of the Lease names), a DNS label such as "pg"' }),
    PGA_NAMESPACE: dnsLabel({ desc: 'the namespace of the Lease and pods (downward API: metadata.namespace)' }),
    PGA_POD_NAME: dnsSubdomain({ desc: "this member's pod name (downward API: metadata.name)" }),
    PGA_POD_IP: address({ desc: 'the address peers use to reach this member (downward API: status.podIP)' }),
    PGA_MEMBER_SELECTOR: selector({ desc: "a label selector matching this cluster's pods" }),
    PGA_DATA_DIR: absPath({ default: '/var/lib/postgresql/data/pgdata' }),
    PGA_WAL_DIR: optAbsPath({ default: '' }),
    PGA_BIN_DIR: optAbsPath({ default: '' }),
    PGA_RUN_DIR: absPath({ default: '/var/run/postgresql' }),
    PGA_CONFIG_DIR: absPath({ default: '/etc/pg-autopilot' }),
    PGA_SECRETS_DIR: absPath({ default: '/etc/pg-autopilot/secrets' }),
    PGA_PG_PORT: tcpPort({ default: 5432 }),
    PGA_API_PORT: tcpPort({ default: 8008 }),
    PGA_LOOP_SECONDS: seconds({ default: 1000 }),
    PGA_LEASE_SECONDS: seconds({ default: 6000 }),
    PGA_RENEW_SECONDS: seconds({ default: 2000 }),
    PGA_RENEW_DEADLINE_SECONDS: seconds({ default: 4500 }),
    PGA_MAX_LAG_BYTES: nonNegInt({ default: 16777216 }),
    PGA_SYNC_MODE: oneOf<SyncMode>(SYNC_MODES)({ default: 'off' }),
    PGA_SYNC_COUNT: posInt({ default: 1 }),
    // 1GB: the chart always sets it (a quarter of the volume holding pg_wal)
    PGA_MAX_SLOT_WAL_KEEP_SIZE: walKeepSize({ default: 1024 }),
    PGA_NOFAILOVER: boolean({ default: false }),
    PGA_FAILSAFE: boolean({ default: true }),
    PGA_LOG_FORMAT: oneOf<LogFormat>(LOG_FORMATS)({ default: 'json' }),
    PGA_LOG_LEVEL: oneOf<LogLevel>(LOG_LEVELS)({ default: 'info' }),
    PGA_SUPERUSER: roleName({ default: 'postgres' }),
    PGA_REPLICATION_USER: roleName({ default: 'replicator' }),
    PGA_APP_USER: optRoleName({ default: 'app' }),
    PGA_APP_DATABASE: dbName({ default: 'app' }),
    PGA_TLS_CERT_FILE: optAbsPath({ default: '' }),
    PGA_TLS_KEY_FILE: optAbsPath({ default: '' }),
    PGA_TLS_CA_FILE: optAbsPath({ default: '' }),
    KUBECONFIG: optStr(),
    PGA_SUPERUSER_PASSWORD: optStr(),
    PGA_SUPERUSER_PASSWORD_FILE: optStr(),
    PGA_REPLICATION_PASSWORD: optStr(),
    PGA_REPLICATION_PASSWORD_FILE: optStr(),
    PGA_APP_PASSWORD: optStr(),
    PGA_APP_PASSWORD_FILE: optStr(),
    PGA_API_TOKEN: optStr(),
    PGA_API_TOKEN_FILE: optStr(),
  };
}

/** Variables where an empty value means something ("none"); for every other variable an empty
 *  value is treated as unset, so an `env: [{name: X, value: ""}]` falls back to the default. */
const EMPTY_MEANS_NONE = new Set(['PGA_APP_USER']);

/** Run envalid over `env` with `specs`; every failing variable is appended to `problems` as
 *  "NAME: got …; accepted: …" (or "NAME is required but not set: …") and added to `failed`. */
function runEnvalid<S extends Record<string, unknown>>(
  env: Record<string, string | undefined>,
  specs: S,
  problems: string[],
  failed: Set<string>,
) {
  // Only the variables we know are handed to envalid (NODE_ENV, which envalid treats specially,
  // never reaches it).
  const clean: Record<string, string> = {};
  for (const k of Object.keys(specs)) {
    const v = env[k];
    if (v !== undefined && (v !== '' || EMPTY_MEANS_NONE.has(k))) clean[k] = v;
  }
  // customCleanEnv with an identity middleware: a plain object (no strict proxy), so the values
  // of failed variables read as undefined and every check below can still run.
  return customCleanEnv(clean, specs, (cleaned) => ({ ...cleaned }), {
    reporter: ({ errors }) => {
      for (const [name, err] of Object.entries(errors as Record<string, Error | undefined>)) {
        if (!err) continue;
        failed.add(name);
        if (err instanceof EnvMissingError) {
          problems.push(`${name} is required but not set${err.message && err.message !== 'undefined' ? ` (${err.message})` : ''}. Fix: set ${name}`);
        } else {
          problems.push(`${name}: ${err.message}. Fix: correct ${name}`);
        }
      }
    },
  }) as unknown as { [K in keyof S]: S[K] extends { _parse: (i: string) => infer T } ? T : never };
}

/** Strip exactly one trailing newline (\n or \r\n): files made by `echo` or editors end with one,
 *  and that newline is not part of the secret. */
export function trimSecret(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/** Value of a secret given as NAME or NAME_FILE. Returns undefined when neither is set. */
function readSecret(
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

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

// ---------------------------------------------------------------------------------------------
// mounted files

function readJsonFile(path: string, files: FileReader, problems: string[], what: string): unknown | undefined {
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

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function loadParameters(path: string, files: FileReader, problems: string[]): Record<string, string> {
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

const ROLE_OPTION_RES = [
  /^(NO)?(SUPERUSER|CREATEDB|CREATEROLE|INHERIT|LOGIN|REPLICATION|BYPASSRLS)$/i,
  /^CONNECTION LIMIT -?\d+$/i,
  /^VALID UNTIL '[^'\\]*'$/i,
  /^(IN ROLE|ROLE|ADMIN) [A-Za-z_][A-Za-z0-9_]*( *, *[A-Za-z_][A-Za-z0-9_]*)*$/i,
];

/** initdb options the entrypoint sets itself; users may not override them through args. */
const MANAGED_INITDB_ARGS = ['-D', '--pgdata', '-X', '--waldir', '-U', '--username', '--pwfile', '-W', '--pwprompt', '-E', '--encoding', '--locale', '-k', '--data-checksums', '-A', '--auth', '--auth-local', '--auth-host'];

function loadBootstrap(cfgDir: string, secretsDir: string, superuser: string, files: FileReader, problems: string[]): BootstrapSpec {
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
    if (raw.users !== undefined) {
      if (!Array.isArray(raw.users)) problems.push(`${path}: users must be an array of {"name","passwordKey"?,"options":[]}`);
      else
        raw.users.forEach((u: unknown, idx: number) => {
          const where = `${path}: users[${idx}]`;
          if (!isObj(u) || typeof u.name !== 'string') {
            problems.push(`${where}: accepted: an object {"name","passwordKey"?,"options":[]}`);
            return;
          }
          if (!PG_IDENT.test(u.name) || u.name.toLowerCase().startsWith('pg_')) {
            problems.push(`${where}.name got ${show(u.name)}; accepted: a role name (letter or "_", then letters, digits, "_"; at most 63; not "pg_…")`);
            return;
          }
          const options: string[] = [];
          if (u.options !== undefined) {
            if (!Array.isArray(u.options) || !u.options.every((o) => typeof o === 'string')) {
              problems.push(`${where}.options: accepted: an array of strings such as ["LOGIN","CREATEDB"]`);
            } else {
              for (const o of u.options as string[]) {
                if (ROLE_OPTION_RES.some((re) => re.test(o.trim()))) options.push(o.trim());
                else
                  problems.push(`${where}.options: ${show(o)} is not accepted; accepted: [NO]SUPERUSER, [NO]CREATEDB, [NO]CREATEROLE, [NO]INHERIT, [NO]LOGIN, [NO]REPLICATION, [NO]BYPASSRLS, CONNECTION LIMIT n, VALID UNTIL '…', IN ROLE a,b`);
              }
            }
          }
          let password: string | null = null;
          if (u.passwordKey !== undefined && u.passwordKey !== null && u.passwordKey !== '') {
            if (typeof u.passwordKey !== 'string' || !/^[A-Za-z0-9._-]+$/.test(u.passwordKey) || u.passwordKey.startsWith('.')) {
              problems.push(`${where}.passwordKey got ${JSON.stringify(u.passwordKey)}; accepted: a credential key (file name in ${secretsDir}: letters, digits, ".", "_", "-")`);
            } else {
              const f = `${secretsDir}/${u.passwordKey}`;
              let content: string | null = null;
              try {
                content = files.readFile(f);
              } catch (err) {
                problems.push(`${where}.passwordKey: cannot read ${show(f)} (${(err as Error).message}). Fix: make it readable by the postgres user`);
                return;
              }
              if (content === null) problems.push(`${where}.passwordKey: the file ${show(f)} does not exist (PGA_SECRETS_DIR=${secretsDir}). Fix: add the key ${show(u.passwordKey)} to the credentials Secret/Vault path`);
              else if (trimSecret(content) === '') problems.push(`${where}.passwordKey: the file ${show(f)} is empty. Fix: put the password in it`);
              else password = trimSecret(content);
            }
          }
          if (spec.users.some((x) => x.name === u.name)) problems.push(`${where}.name ${show(u.name)} appears twice`);
          spec.users.push({ name: u.name, password, options });
        });
    }
    if (raw.databases !== undefined) {
      if (!Array.isArray(raw.databases)) problems.push(`${path}: databases must be an array of {"name","owner"}`);
      else
        raw.databases.forEach((d: unknown, idx: number) => {
          const where = `${path}: databases[${idx}]`;
          if (!isObj(d) || typeof d.name !== 'string') {
            problems.push(`${where}: accepted: an object {"name","owner"}`);
            return;
          }
          if (!PG_IDENT.test(d.name) || ['postgres', 'template0', 'template1'].includes(d.name)) {
            problems.push(`${where}.name got ${show(d.name)}; accepted: a database name (letter or "_", then letters, digits, "_"; at most 63), not postgres/template0/template1`);
            return;
          }
          const owner = d.owner === undefined || d.owner === null || d.owner === '' ? superuser : d.owner;
          if (typeof owner !== 'string' || !PG_IDENT.test(owner)) {
            problems.push(`${where}.owner got ${JSON.stringify(d.owner)}; accepted: a role name`);
            return;
          }
          if (spec.databases.some((x) => x.name === d.name)) problems.push(`${where}.name ${show(d.name)} appears twice`);
          spec.databases.push({ name: d.name, owner });
        });
    }
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

// ---------------------------------------------------------------------------------------------

/** Load and validate the whole configuration. Throws one ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>, files: FileReader): Config {
  const problems: string[] = [];
  const failed = new Set<string>();
  const e = runEnvalid(env, envSpecs(), problems, failed);
  const has = (k: string) => !failed.has(k);

  // timing cross-checks (only between values that parsed)
  const loop = e.PGA_LOOP_SECONDS,
    lease = e.PGA_LEASE_SECONDS,
    renew = e.PGA_RENEW_SECONDS,
    deadline = e.PGA_RENEW_DEADLINE_SECONDS;
  const s = (ms: number) => `${ms / 1000}`;
  if (has('PGA_RENEW_DEADLINE_SECONDS') && has('PGA_LEASE_SECONDS') && !(deadline < lease)) {
    problems.push(`PGA_RENEW_DEADLINE_SECONDS (${s(deadline)}) must be less than PGA_LEASE_SECONDS (${s(lease)}): a primary has to demote itself before its lease can expire elsewhere. Fix: lower PGA_RENEW_DEADLINE_SECONDS or raise PGA_LEASE_SECONDS`);
  }
  if (has('PGA_RENEW_SECONDS') && has('PGA_RENEW_DEADLINE_SECONDS') && !(renew < deadline)) {
    problems.push(`PGA_RENEW_SECONDS (${s(renew)}) must be less than PGA_RENEW_DEADLINE_SECONDS (${s(deadline)}), so a renew can be retried before the deadline. Fix: lower PGA_RENEW_SECONDS`);
  }
  if (has('PGA_LOOP_SECONDS') && has('PGA_RENEW_SECONDS') && !(loop <= renew)) {
    problems.push(`PGA_LOOP_SECONDS (${s(loop)}) must be at most PGA_RENEW_SECONDS (${s(renew)}): the lease is renewed from the loop. Fix: lower PGA_LOOP_SECONDS`);
  }
  if (has('PGA_PG_PORT') && has('PGA_API_PORT') && e.PGA_PG_PORT === e.PGA_API_PORT) {
    problems.push(`PGA_PG_PORT and PGA_API_PORT are both ${e.PGA_PG_PORT}; accepted: two different ports. Fix: change one of them`);
  }

  // users
  const appUser = e.PGA_APP_USER === '' ? null : (e.PGA_APP_USER ?? null);
  if (has('PGA_SUPERUSER') && has('PGA_REPLICATION_USER') && e.PGA_SUPERUSER === e.PGA_REPLICATION_USER) {
    problems.push(`PGA_REPLICATION_USER is ${show(e.PGA_REPLICATION_USER)}, the same as PGA_SUPERUSER; accepted: a separate role. Fix: choose another name`);
  }
  if (appUser && (appUser === e.PGA_SUPERUSER || appUser === e.PGA_REPLICATION_USER)) {
    problems.push(`PGA_APP_USER is ${show(appUser)}, the same as PGA_SUPERUSER or PGA_REPLICATION_USER; accepted: a separate role or empty (none). Fix: choose another name`);
  }

  // directories
  const dataDir = e.PGA_DATA_DIR;
  const walDir = e.PGA_WAL_DIR ? e.PGA_WAL_DIR : null;
  if (walDir && dataDir && has('PGA_WAL_DIR') && has('PGA_DATA_DIR') && (isInside(walDir, dataDir) || isInside(dataDir, walDir))) {
    problems.push(`PGA_WAL_DIR: got ${show(walDir)}, which overlaps PGA_DATA_DIR (${dataDir}); accepted: a directory outside the data directory (e.g. /var/lib/postgresql/wal/pg_wal). Fix: correct PGA_WAL_DIR or leave it empty`);
  }
  if (dataDir && has('PGA_DATA_DIR') && dataDir === '/') problems.push(`PGA_DATA_DIR: got "/"; accepted: a dedicated directory. Fix: correct PGA_DATA_DIR`);
  let binDir = e.PGA_BIN_DIR ?? '';
  if (has('PGA_BIN_DIR')) {
    if (binDir === '') {
      const found = findBinDir(files);
      if (found) binDir = found;
      else problems.push('PGA_BIN_DIR is not set and no /usr/lib/postgresql/<major>/bin containing "postgres" was found. Fix: install the PostgreSQL server or set PGA_BIN_DIR');
    } else {
      let entries: string[] | null = null;
      try {
        entries = files.listDir(binDir);
      } catch {
        entries = null;
      }
      if (!entries) problems.push(`PGA_BIN_DIR: the directory ${show(binDir)} does not exist. Fix: correct PGA_BIN_DIR`);
      else if (!entries.includes('postgres')) problems.push(`PGA_BIN_DIR: ${show(binDir)} has no "postgres" binary; accepted: a PostgreSQL server bin directory such as /usr/lib/postgresql/15/bin`);
    }
  }

  // secrets
  const secret = (key: keyof typeof SECRET_VARS, required: boolean, why: string): string | null => {
    const name = SECRET_VARS[key];
    const before = problems.length;
    const v = readSecret(name, env, files, problems);
    if (v === undefined) {
      if (required && problems.length === before) {
        problems.push(`${name} is required but neither ${name} nor ${name}_FILE is set (${why}). Fix: set ${name}_FILE to a file holding it, e.g. ${e.PGA_SECRETS_DIR ?? '/etc/pg-autopilot/secrets'}/${key === 'apiToken' ? 'api-token' : key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
      }
      return null;
    }
    return v;
  };
  const superuserPassword = secret('superuserPassword', true, 'the superuser password');
  const replicationPassword = secret('replicationPassword', true, 'the replication role password');
  const appPassword = secret('appPassword', appUser !== null, `the password of PGA_APP_USER=${appUser ?? ''}`);
  const apiToken = secret('apiToken', true, 'the bearer token of the HTTP API and the CLI');
  if (apiToken !== null && /\s/.test(apiToken)) problems.push('PGA_API_TOKEN: the token contains whitespace; accepted: a token without spaces or newlines. Fix: regenerate the token');

  // TLS
  let tls: Config['tls'] = null;
  const cert = e.PGA_TLS_CERT_FILE ?? '',
    key = e.PGA_TLS_KEY_FILE ?? '',
    ca = e.PGA_TLS_CA_FILE ?? '';
  if (has('PGA_TLS_CERT_FILE') && has('PGA_TLS_KEY_FILE') && has('PGA_TLS_CA_FILE')) {
    if ((cert === '') !== (key === '')) {
      problems.push(`PGA_TLS_CERT_FILE (${show(cert)}) and PGA_TLS_KEY_FILE (${show(key)}) must be set together; accepted: both (TLS on) or neither (TLS off). Fix: set the missing one`);
    } else if (cert === '' && ca !== '') {
      problems.push(`PGA_TLS_CA_FILE is set (${show(ca)}) without PGA_TLS_CERT_FILE/PGA_TLS_KEY_FILE; accepted: a CA only together with a server certificate. Fix: set both or unset PGA_TLS_CA_FILE`);
    } else if (cert !== '') {
      for (const [n, f] of [
        ['PGA_TLS_CERT_FILE', cert],
        ['PGA_TLS_KEY_FILE', key],
        ['PGA_TLS_CA_FILE', ca],
      ] as const) {
        if (f === '') continue;
        let content: string | null;
        try {
          content = files.readFile(f);
        } catch (err) {
          problems.push(`${n}: cannot read ${show(f)} (${(err as Error).message}). Fix: make the file readable by the postgres user`);
          continue;
        }
        if (content === null) problems.push(`${n}: the file ${show(f)} does not exist. Fix: mount the TLS secret or correct ${n}`);
      }
      tls = { certFile: cert, keyFile: key, caFile: ca === '' ? null : ca };
    }
  }

  // sync
  if (has('PGA_SYNC_COUNT') && has('PGA_SYNC_MODE') && e.PGA_SYNC_COUNT < 1) {
    problems.push(`PGA_SYNC_COUNT: got ${e.PGA_SYNC_COUNT}; accepted: 1 or more`);
  }

  // mounted files
  const cfgDir = e.PGA_CONFIG_DIR ?? '/etc/pg-autopilot';
  const secretsDir = e.PGA_SECRETS_DIR ?? '/etc/pg-autopilot/secrets';
  const parameters = loadParameters(`${cfgDir}/parameters.json`, files, problems);
  try {
    validateParameters(parameters);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems.map((p) => `${cfgDir}/parameters.json: ${p}`));
    else throw err;
  }
  let pgHbaExtra = '';
  try {
    pgHbaExtra = files.readFile(`${cfgDir}/pg_hba.conf`) ?? '';
  } catch (err) {
    problems.push(`${cfgDir}/pg_hba.conf: cannot read (${(err as Error).message})`);
  }
  const bootstrap = loadBootstrap(cfgDir, secretsDir, e.PGA_SUPERUSER ?? 'postgres', files, problems);
  const reserved = [e.PGA_SUPERUSER, e.PGA_REPLICATION_USER, appUser].filter((x): x is string => !!x);
  for (const u of bootstrap.users) {
    if (reserved.includes(u.name)) problems.push(`${cfgDir}/bootstrap.json: users entry ${show(u.name)} is a role the entrypoint manages (superuser, replication or application user). Fix: remove it from users`);
  }
  for (const d of bootstrap.databases) {
    if (appUser && d.name === e.PGA_APP_DATABASE) problems.push(`${cfgDir}/bootstrap.json: databases entry ${show(d.name)} is PGA_APP_DATABASE, which the entrypoint creates for ${appUser}. Fix: remove it from databases`);
  }

  if (problems.length) throw new ConfigError(problems);

  return {
    clusterName: e.PGA_CLUSTER_NAME,
    namespace: e.PGA_NAMESPACE,
    podName: e.PGA_POD_NAME,
    podIp: e.PGA_POD_IP,
    memberSelector: e.PGA_MEMBER_SELECTOR,
    dataDir,
    walDir,
    binDir,
    runDir: e.PGA_RUN_DIR,
    configDir: cfgDir,
    secretsDir,
    pgPort: e.PGA_PG_PORT,
    apiPort: e.PGA_API_PORT,
    loopMs: loop,
    leaseMs: lease,
    renewMs: renew,
    renewDeadlineMs: deadline,
    maxLagBytes: e.PGA_MAX_LAG_BYTES,
    syncMode: e.PGA_SYNC_MODE,
    syncCount: e.PGA_SYNC_COUNT,
    maxSlotWalKeepSizeMb: e.PGA_MAX_SLOT_WAL_KEEP_SIZE,
    nofailover: e.PGA_NOFAILOVER,
    failsafe: e.PGA_FAILSAFE,
    logFormat: e.PGA_LOG_FORMAT,
    logLevel: e.PGA_LOG_LEVEL,
    superuser: e.PGA_SUPERUSER,
    replicationUser: e.PGA_REPLICATION_USER,
    appUser,
    appDatabase: e.PGA_APP_DATABASE,
    secrets: {
      superuserPassword: superuserPassword as string,
      replicationPassword: replicationPassword as string,
      appPassword: appUser ? appPassword : null,
      apiToken: apiToken as string,
    },
    parameters,
    pgHbaExtra,
    bootstrap,
    tls,
    kubeconfig: e.KUBECONFIG ? e.KUBECONFIG : null,
  };
}

export interface CliConfig {
  apiUrl: string;
  apiToken: string | null;
  namespace: string | null;
  clusterName: string | null;
  kubeconfig: string | null;
}

/** Configuration of the `autopilot` CLI: everything optional except what is malformed. */
export function loadCliConfig(env: Record<string, string | undefined>, files: FileReader): CliConfig {
  const problems: string[] = [];
  const opt = <T>(v: T) => v;
  const e = runEnvalid(
    env,
    {
      PGA_API_URL: httpUrl({ default: 'http://127.0.0.1:8008' }),
      PGA_NAMESPACE: opt(dnsLabel({ default: undefined })),
      PGA_CLUSTER_NAME: opt(dnsLabel({ default: undefined })),
      KUBECONFIG: optStr(),
      PGA_API_TOKEN: optStr(),
      PGA_API_TOKEN_FILE: optStr(),
    },
    problems,
    new Set<string>(),
  );
  const token = readSecret('PGA_API_TOKEN', env, files, problems);
  if (problems.length) throw new ConfigError(problems);
  return {
    apiUrl: e.PGA_API_URL,
    apiToken: token ?? null,
    namespace: e.PGA_NAMESPACE ?? null,
    clusterName: e.PGA_CLUSTER_NAME ?? null,
    kubeconfig: e.KUBECONFIG ? e.KUBECONFIG : null,
  };
}
