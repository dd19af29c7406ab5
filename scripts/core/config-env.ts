// Configuration, part 1: the environment variables' schema and their parsing (envalid). Each
// validator rejects a value with "got …; accepted: …", and runEnvalid turns every failure into one
// problem line naming the variable, so loadConfig (config.ts) can report them all at once. Pure.

import { customCleanEnv, makeValidator, EnvError, EnvMissingError, str } from 'envalid';

/** off: asynchronous. on: commits wait for PGA_SYNC_COUNT standbys; without a streaming standby the
 *  primary goes asynchronous and records an empty synchronous set (no automatic failover until a
 *  standby catches up). strict: the same, but without a standby the primary keeps waiting (writes
 *  block) instead of going asynchronous. */
export type SyncMode = 'off' | 'on' | 'strict';
export const SYNC_MODES: readonly SyncMode[] = ['off', 'on', 'strict'];

/** How a new replica gets its data: pg_basebackup from the primary, or the backup repository plus streaming. */
export type ReplicaBootstrapFrom = 'basebackup' | 'backup';
export const REPLICA_BOOTSTRAP_FROM: readonly ReplicaBootstrapFrom[] = ['basebackup', 'backup'];

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

export const show = (v: string): string => JSON.stringify(v);
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
const optMonitorName = makeValidator<string>((v) =>
  v === '' || (PG_IDENT.test(v) && !v.toLowerCase().startsWith('pg_')) ? v : bad(v, 'empty (no exporter role) or a PostgreSQL role name: a letter or "_" then letters, digits or "_", at most 63 characters, not starting with "pg_"'),
);
/** Standalone mode: any name the official postgres image accepts (we always quote it). */
const anyName = makeValidator<string>((v) =>
  v !== '' && !v.includes('\0') && new TextEncoder().encode(v).length <= 63 ? v : bad(v, 'a name of 1 to 63 bytes without a NUL character'),
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

export const SECRET_VARS = {
  superuserPassword: 'PGA_SUPERUSER_PASSWORD',
  replicationPassword: 'PGA_REPLICATION_PASSWORD',
  appPassword: 'PGA_APP_PASSWORD',
  apiToken: 'PGA_API_TOKEN',
  monitorPassword: 'PGA_MONITOR_PASSWORD',
} as const;

export function envSpecs(o: { anyNames?: boolean } = {}) {
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
    PGA_ROLES_SECRETS_DIR: optAbsPath({ default: '' }),
    PGA_PG_PORT: tcpPort({ default: 5432 }),
    PGA_API_PORT: tcpPort({ default: 8008 }),
    // unset: no metrics-only listener (GET /metrics stays on PGA_API_PORT); the chart sets it
    PGA_METRICS_PORT: tcpPort({ default: undefined }),
    PGA_LOOP_SECONDS: seconds({ default: 1000 }),
    PGA_LEASE_SECONDS: seconds({ default: 6000 }),
    PGA_RENEW_SECONDS: seconds({ default: 2000 }),
    PGA_RENEW_DEADLINE_SECONDS: seconds({ default: 4500 }),
    PGA_MAX_LAG_BYTES: nonNegInt({ default: 16777216 }),
    PGA_SYNC_MODE: oneOf<SyncMode>(SYNC_MODES)({ default: 'off' }),
    PGA_SYNC_COUNT: posInt({ default: 1 }),
    PGA_REPLICA_BOOTSTRAP_FROM: oneOf<ReplicaBootstrapFrom>(REPLICA_BOOTSTRAP_FROM)({ default: 'basebackup' }),
    // 1GB: the chart always sets it (a quarter of the volume holding pg_wal)
    PGA_MAX_SLOT_WAL_KEEP_SIZE: walKeepSize({ default: 1024 }),
    PGA_NOFAILOVER: boolean({ default: false }),
    PGA_FAILSAFE: boolean({ default: true }),
    PGA_LOG_FORMAT: oneOf<LogFormat>(LOG_FORMATS)({ default: 'json' }),
    PGA_LOG_LEVEL: oneOf<LogLevel>(LOG_LEVELS)({ default: 'info' }),
    PGA_SUPERUSER: (o.anyNames ? anyName : roleName)({ default: 'postgres' }),
    PGA_REPLICATION_USER: roleName({ default: 'replicator' }),
    PGA_APP_USER: optRoleName({ default: 'app' }),
    PGA_APP_DATABASE: dbName({ default: 'app' }),
    PGA_MONITOR_USER: optMonitorName({ default: '' }),
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
    PGA_MONITOR_PASSWORD: optStr(),
    PGA_MONITOR_PASSWORD_FILE: optStr(),
  };
}

/** The `autopilot` CLI's variables: everything optional except what is malformed. */
export function cliEnvSpecs() {
  const opt = <T>(v: T) => v;
  return {
    PGA_API_URL: httpUrl({ default: 'http://127.0.0.1:8008' }),
    PGA_NAMESPACE: opt(dnsLabel({ default: undefined })),
    PGA_CLUSTER_NAME: opt(dnsLabel({ default: undefined })),
    KUBECONFIG: optStr(),
    PGA_API_TOKEN: optStr(),
    PGA_API_TOKEN_FILE: optStr(),
  };
}

/** Variables where an empty value means something ("none"); for every other variable an empty
 *  value is treated as unset, so an `env: [{name: X, value: ""}]` falls back to the default. */
const EMPTY_MEANS_NONE = new Set(['PGA_APP_USER']);

/** Run envalid over `env` with `specs`; every failing variable is appended to `problems` as
 *  "NAME: got …; accepted: …" (or "NAME is required but not set: …") and added to `failed`. */
export function runEnvalid<S extends Record<string, unknown>>(
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
