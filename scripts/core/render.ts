// Rendering of postgresql.conf, pg_hba.conf and the replication passfile. Pure.
//
// postgresql.conf = sound defaults for a replicated cluster, then the user's parameters
// (validated: nothing that breaks replication or that the entrypoint manages), then the managed
// and dynamic settings (ports, paths, TLS, primary_conninfo, slot, synchronous_standby_names),
// last so that they always win (PostgreSQL takes the last occurrence of a setting).

import { archiveParameters } from './backup.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { parameterProblems } from './parameters.js';
import { citusParameters } from './citus-config.js';

export interface DynamicConf {
  /** null → we are primary / no upstream */
  primary: { host: string; port: number } | null;
  slotName: string | null;
  /** '' = async */
  syncStandbyNames: string;
  applicationName: string;
  /** only the unix socket, no TCP (standalone mode's first start, while the init scripts run) */
  localOnly?: boolean;
}

/** Files the entrypoint writes (all inside the data directory, except the passfile which holds
 *  passwords and lives in the private socket directory). */
export function confPaths(cfg: Pick<Config, 'dataDir' | 'runDir'>) {
  return {
    postgresqlConf: `${cfg.dataDir}/postgresql.conf`,
    hbaFile: `${cfg.dataDir}/pg_hba.conf`,
    identFile: `${cfg.dataDir}/pg_ident.conf`,
    pgpass: `${cfg.runDir}/.pga-pgpass`,
    /** private copy of the TLS key (0600, owned by the postgres user): postgres refuses a key
     *  file with group/world access unless root owns it, which mounted secrets do not guarantee */
    tlsKey: `${cfg.runDir}/.pga-tls.key`,
    /** pgBackRest: its configuration (no secrets) and an include directory whose secrets.conf is
     *  0600, both in the private socket directory; its lock files there too */
    pgbackrestConf: `${cfg.runDir}/pgbackrest/pgbackrest.conf`,
    pgbackrestInclude: `${cfg.runDir}/pgbackrest/conf.d`,
    pgbackrestLock: `${cfg.runDir}/pgbackrest/lock`,
    /** the asynchronous archive's spool: on the data volume (beside the data directory), so WAL
     *  acknowledged to postgres as archived-in-spool survives a restart */
    pgbackrestSpool: `${cfg.dataDir.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/'}/pgbackrest-spool`,
  };
}

/** FNV-1a, 32 bits, as 8 hex digits: a pure hash (the core imports nothing from node:). */
export function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (const ch of new TextEncoder().encode(text)) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Physical replication slot name of a member: lowercase [a-z0-9_], at most 63 characters.
 *  Pod names are DNS names ("pg-postgres-0"); '-' and '.' become '_'. Names that would be longer
 *  than 63 are cut and suffixed with a hash so that two long names never collide. */
export function memberSlotName(podName: string): string {
  let s = podName.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (s === '') s = 'member';
  if (s.length > 63) {
    const h = fnv1a(podName);
    s = `${s.slice(0, 54)}_${h}`;
  }
  return s;
}

/** `ANY n ("a", "b")` for synchronous_standby_names, '' when there is no candidate or n < 1. */
export function syncStandbyNamesFor(count: number, applicationNames: string[]): string {
  const names = [...new Set(applicationNames)].sort();
  if (count < 1 || names.length === 0) return '';
  const n = Math.min(count, names.length);
  return `ANY ${n} (${names.map((a) => `"${a.replace(/"/g, '""')}"`).join(', ')})`;
}

/** A value quoted for postgresql.conf: single quotes, ' doubled and \ escaped. */
export function confQuote(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\n/g, '\\n')}'`;
}

/** A value quoted for a libpq conninfo string. */
export function conninfoQuote(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** One pgpass field: ':' and '\' escaped. */
function pgpassField(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

// ---------------------------------------------------------------------------------------------
// user parameters

/** Throws a ConfigError naming every parameter the autopilot owns or refuses (scripts/core/
 *  parameters.ts, the list the chart checks too), with why and what to do instead. `backupOn`:
 *  backups are configured, so the archive settings are the autopilot's. */
export function validateParameters(params: Record<string, string>, backupOn = false): void {
  const problems = parameterProblems(params, backupOn);
  if (problems.length) throw new ConfigError(problems);
}

// ---------------------------------------------------------------------------------------------

/** Defaults a replicated cluster needs; users may override these (within validateParameters). */
function defaults(cfg: Config): [string, string][] {
  return [
    ['cluster_name', cfg.clusterName],
    ['max_connections', '100'],
    ['wal_level', 'replica'],
    ['wal_log_hints', 'on'],
    ['full_page_writes', 'on'],
    ['max_wal_senders', '10'],
    ['max_replication_slots', '10'],
    ['wal_keep_size', '256MB'],
    // bounds the WAL a replication slot may hold (a member stuck Pending or crash-looping), so it
    // can never fill the primary's disk; a slot past it is invalidated and its member re-clones
    ['max_slot_wal_keep_size', cfg.maxSlotWalKeepSizeMb < 0 ? '-1' : `${cfg.maxSlotWalKeepSizeMb}MB`],
    ['hot_standby_feedback', 'on'],
    ['wal_receiver_timeout', '30s'],
    ['wal_sender_timeout', '30s'],
    ['wal_retrieve_retry_interval', '1s'],
    ['password_encryption', 'scram-sha-256'],
    ['log_destination', 'stderr'],
    ['log_line_prefix', '%m [%p] %q%u@%d '],
    ['log_checkpoints', 'on'],
    ['log_connections', 'off'],
    ['log_timezone', 'UTC'],
    ['timezone', 'UTC'],
  ];
}

export function renderPostgresqlConf(cfg: Config, dyn: DynamicConf): string {
  validateParameters(cfg.parameters, cfg.backup !== null && cfg.backup !== undefined);
  const paths = confPaths(cfg);
  const line = (k: string, v: string) => `${k} = ${confQuote(v)}`;
  const out: string[] = [
    '# postgresql.conf written by pg-autopilot at every start and change; edits here are lost.',
    '# User parameters come from $PGA_CONFIG_DIR/parameters.json (chart: postgresql.parameters).',
    '',
    '# --- defaults for a replicated cluster',
    ...defaults(cfg).map(([k, v]) => line(k, v)),
    '',
    '# --- user parameters (parameters.json)',
    ...Object.keys(cfg.parameters)
      .filter((k) => !(cfg.citus && k === 'shared_preload_libraries'))
      .sort()
      .map((k) => line(k, cfg.parameters[k] as string)),
    ...(cfg.citus ? ['', '# --- Citus (citus.json): citus first in shared_preload_libraries, how nodes reach each other',
      ...Object.entries(citusParameters(cfg.citus, cfg.parameters)).map(([k, v]) => line(k, v))] : []),
    '',
    '# --- managed by the entrypoint',
    line('listen_addresses', dyn.localOnly ? '' : '*'),
    `port = ${cfg.pgPort}`,
    line('unix_socket_directories', cfg.runDir),
    // private socket: pg_hba trusts the superuser over it (see renderPgHba)
    'unix_socket_permissions = 0700',
    line('hba_file', paths.hbaFile),
    line('ident_file', paths.identFile),
    'hot_standby = on',
    'logging_collector = off',
  ];
  if (cfg.tls) {
    out.push('ssl = on', line('ssl_cert_file', cfg.tls.certFile), line('ssl_key_file', paths.tlsKey));
    if (cfg.tls.caFile) out.push(line('ssl_ca_file', cfg.tls.caFile));
  } else {
    out.push('ssl = off');
  }
  if (cfg.backup) {
    const a = archiveParameters(paths.pgbackrestConf, paths.pgbackrestInclude, cfg.backup.stanza);
    out.push('', '# --- backups: WAL archived by pgBackRest (asynchronous, spooled on the data volume)');
    for (const [k, v] of Object.entries(a)) out.push(line(k, v));
    // No restore_command on running members: a replica streams (and re-clones when its slot was
    // lost); fetching from the repository would make its start wait on the object store.
  }
  out.push('', '# --- dynamic (autopilot): upstream, slot, synchronous standbys');
  if (dyn.primary) {
    const conninfo = [
      `host=${conninfoQuote(dyn.primary.host)}`,
      `port=${dyn.primary.port}`,
      `user=${conninfoQuote(cfg.replicationUser)}`,
      `passfile=${conninfoQuote(paths.pgpass)}`,
      `application_name=${conninfoQuote(dyn.applicationName)}`,
      `sslmode=prefer`,
      `connect_timeout=5`,
      `keepalives_idle=5`,
      `keepalives_interval=2`,
      `keepalives_count=3`,
    ].join(' ');
    out.push(line('primary_conninfo', conninfo));
    out.push(line('primary_slot_name', dyn.slotName ?? ''));
  } else {
    out.push(line('primary_conninfo', ''), line('primary_slot_name', ''));
  }
  out.push(line('synchronous_standby_names', dyn.syncStandbyNames));
  out.push(line('recovery_target_timeline', 'latest'));
  return out.join('\n') + '\n';
}

/**
 * pg_hba.conf. Order (first match wins):
 *  1. `local all <superuser> trust`: the autopilot's own connections over the unix socket. Safe
 *     because the socket directory and socket are private to the postgres OS user (0700,
 *     unix_socket_permissions = 0700): no other user of the container can reach it. (peer would
 *     need the OS user name to equal the role name, which PGA_SUPERUSER does not guarantee.)
 *  2. the exporter's role (PGA_MONITOR_USER): scram-sha-256 over TCP loopback only (the exporter
 *     runs in the member's pod), rejected from anywhere else and over the socket, before any
 *     user rule can admit it;
 *  3. other local connections: scram-sha-256.
 *  4. replication connections: only the replication role, scram-sha-256, from anywhere; every
 *     other role is rejected for replication.
 *  5. the user's rules ($PGA_CONFIG_DIR/pg_hba.conf, chart postgresql.pgHba), so they can allow
 *     or reject specific clients before the catch-all;
 *  6. catch-all: every database/role with scram-sha-256 (the superuser needs it for pg_rewind).
 * With TLS, network rules are `hostssl` (plaintext TCP connections match nothing and are
 * refused).
 */
export function renderPgHba(cfg: Config): string {
  const host = cfg.tls ? 'hostssl' : 'host';
  if (cfg.standalone) return renderStandaloneHba(cfg, host, cfg.standalone.hostAuthMethod);
  const q = (role: string) => `"${role}"`;
  const lines = [
    '# pg_hba.conf written by pg-autopilot; edits here are lost. Add rules with postgresql.pgHba.',
    '# TYPE    DATABASE     USER                 ADDRESS   METHOD',
    `local     all          ${q(cfg.superuser)}  trust`,
    ...(cfg.monitorUser ? monitorHba(q(cfg.monitorUser), host) : []),
    `local     replication  all                  reject`,
    `local     all          all                  scram-sha-256`,
    `${host.padEnd(9)} replication  ${q(cfg.replicationUser)}  all  scram-sha-256`,
    // (a hostssl line with ssl = off makes postgres warn at every load: only with TLS)
    `host      replication  all                  all       reject`,
    ...(cfg.tls ? [`hostssl   replication  all                  all       reject`] : []),
    '',
    '# --- user rules ($PGA_CONFIG_DIR/pg_hba.conf)',
    cfg.pgHbaExtra.trimEnd(),
    '',
    '# --- catch-all',
    `${host.padEnd(9)} all          all                  all       scram-sha-256`,
  ];
  return lines.join('\n') + '\n';
}

/** The exporter's role: loopback TCP (IPv4 and IPv6) with scram-sha-256, everything else rejected. */
function monitorHba(role: string, host: string): string[] {
  return [
    `${host.padEnd(9)} all          ${role}  127.0.0.1/32  scram-sha-256`,
    `${host.padEnd(9)} all          ${role}  ::1/128       scram-sha-256`,
    `local     all          ${role}  reject`,
    // `host` matches TLS and plaintext TCP alike
    `host      all          ${role}  all       reject`,
  ];
}

/**
 * pg_hba.conf in standalone and replica mode, as the official postgres image has it: local
 * connections trusted (the socket directory is private to the postgres OS user, 0700), network
 * connections with POSTGRES_HOST_AUTH_METHOD; replication only for the replication role. The
 * superuser's name never appears here, so it may hold any character; the exporter's role
 * (PGA_MONITOR_USER, a plain role name) is admitted over TCP loopback only, as in the cluster.
 */
function renderStandaloneHba(cfg: Config, host: string, method: string): string {
  return [
    '# pg_hba.conf written by pg-autopilot (standalone mode); edits here are lost. Add rules in $PGA_CONFIG_DIR/pg_hba.conf.',
    '# TYPE    DATABASE     USER                 ADDRESS   METHOD',
    ...(cfg.monitorUser ? monitorHba(`"${cfg.monitorUser}"`, host) : []),
    'local     all          all                            trust',
    `${host.padEnd(9)} replication  "${cfg.replicationUser}"  all  ${method}`,
    'host      replication  all                  all       reject',
    '',
    '# --- user rules ($PGA_CONFIG_DIR/pg_hba.conf)',
    cfg.pgHbaExtra.trimEnd(),
    '',
    '# --- POSTGRES_HOST_AUTH_METHOD',
    `${host.padEnd(9)} all          all                  all       ${method}`,
  ].join('\n') + '\n';
}

/** The passfile named in primary_conninfo and used for pg_basebackup / pg_rewind: the replication
 *  role and the superuser, for any host. Written with mode 0600. */
export function renderPgpass(cfg: Config): string {
  return (
    [
      `*:*:*:${pgpassField(cfg.replicationUser)}:${pgpassField(cfg.secrets.replicationPassword)}`,
      `*:*:*:${pgpassField(cfg.superuser)}:${pgpassField(cfg.secrets.superuserPassword)}`,
    ].join('\n') + '\n'
  );
}
