// Configuration of a member: environment variables + mounted files, validated once at start.
// Names and defaults are those of docs/contract.md. Pure apart from the injected FileReader.
//
// Every problem found is collected and reported at once in a single ConfigError, each line naming
// the variable or file, the value it got, what is accepted and how to fix it.
//
// This file holds the Config itself and the checks across fields (timings, users, directories,
// secrets, TLS, mounted files against the users); the variables' schema is in config-env.ts, the
// files (secrets, parameters.json, bootstrap.json, initdb.d) in config-files.ts.

import { cliEnvSpecs, envSpecs, runEnvalid, SECRET_VARS, show, type LogFormat, type LogLevel, type ReplicaBootstrapFrom, type SyncMode } from './config-env.js';
import { findBinDir, loadBootstrap, loadParameters, readSecret, type BootstrapSpec, type FileReader } from './config-files.js';
import { parameterProblems } from './parameters.js';
import { ConfigError } from './errors.js';
import type { HostAuthMethod } from './standalone.js';
import { loadBackup, type BackupConfig } from './backup-config.js';
import { loadRestore, type RestoreConfig } from './restore-config.js';
import { loadCitus, type CitusConfig } from './citus-config.js';

export { SYNC_MODES, LOG_LEVELS, LOG_FORMATS, PG_IDENT, MAX_SLOT_WAL_KEEP_SIZE_MB, isIpAddress, parseWalKeepSizeMb } from './config-env.js';
export type { SyncMode, LogLevel, LogFormat } from './config-env.js';
export { findBinDir, trimSecret } from './config-files.js';
export type { BootstrapSpec, FileReader } from './config-files.js';

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
  /** users[].passwordKey files (PGA_ROLES_SECRETS_DIR; default secretsDir) */
  rolesSecretsDir: string;
  pgPort: number;
  apiPort: number;
  /** the metrics-only listener (GET /metrics, nothing else; PGA_METRICS_PORT); null: none */
  metricsPort: number | null;
  loopMs: number;
  leaseMs: number;
  renewMs: number;
  renewDeadlineMs: number;
  maxLagBytes: number;
  syncMode: SyncMode;
  syncCount: number;
  /** PGA_REPLICA_BOOTSTRAP_FROM: a new replica clones with pg_basebackup, or restores from the backup repository first (core/clone.ts) */
  replicaBootstrapFrom: ReplicaBootstrapFrom;
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
  /** the exporter's login role (PGA_MONITOR_USER): a member of pg_monitor, nothing else; null = none */
  monitorUser: string | null;
  /** PGA_MONITOR_PASSWORD_FILE, read again by each roles pass so that a rotated password is set */
  monitorPasswordFile: string | null;
  secrets: { superuserPassword: string; replicationPassword: string; appPassword: string | null; apiToken: string; monitorPassword: string | null };
  /** from $PGA_CONFIG_DIR/parameters.json (values stringified) */
  parameters: Record<string, string>;
  /** from $PGA_CONFIG_DIR/pg_hba.conf ('' if absent) */
  pgHbaExtra: string;
  /** from bootstrap.json (+ initdb.d/* in name order; user passwords from secretsDir/<passwordKey>) */
  bootstrap: BootstrapSpec;
  tls: { certFile: string; keyFile: string; caFile: string | null } | null;
  /** KUBECONFIG; null = in-cluster configuration */
  kubeconfig: string | null;
  /** from $PGA_CONFIG_DIR/backup.json + $PGA_SECRETS_DIR/backup/*; null = backups off */
  backup: BackupConfig | null;
  /** from $PGA_CONFIG_DIR/restore.json + $PGA_SECRETS_DIR/restore/*: the first member restores instead of initdb */
  restore: RestoreConfig | null;
  /** from $PGA_CONFIG_DIR/citus.json: this member's Citus group (core/citus-config.ts); null = not Citus */
  citus: CitusConfig | null;
  /** standalone or replica mode (core/standalone.ts); null in the chart */
  standalone: StandaloneOptions | null;
}

/** What standalone mode adds to the configuration (core/standalone.ts). */
export interface StandaloneOptions {
  /** pg_hba method of network connections (POSTGRES_HOST_AUTH_METHOD) */
  hostAuthMethod: HostAuthMethod;
  /** POSTGRES_DB, created on first start and owned by the superuser ('postgres': none) */
  database: string;
  /** POSTGRES_INITDB_ARGS, after the entrypoint's own (so they win) */
  initdbArgs: string[];
}

export interface LoadOptions {
  /** standalone mode: any superuser name, a superuser password only needed on first start */
  standalone?: StandaloneOptions;
}

export { ConfigError } from './errors.js';

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

// ---------------------------------------------------------------------------------------------

/** Load and validate the whole configuration. Throws one ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>, files: FileReader, opts: LoadOptions = {}): Config {
  const problems: string[] = [];
  const failed = new Set<string>();
  const e = runEnvalid(env, envSpecs({ anyNames: !!opts.standalone }), problems, failed);
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
  if (has('PGA_METRICS_PORT') && e.PGA_METRICS_PORT !== undefined) {
    for (const other of ['PGA_PG_PORT', 'PGA_API_PORT'] as const) {
      if (has(other) && e[other] === e.PGA_METRICS_PORT) problems.push(`PGA_METRICS_PORT and ${other} are both ${e.PGA_METRICS_PORT}; accepted: a port of its own (the metrics-only listener), or unset for none. Fix: change PGA_METRICS_PORT`);
    }
  }

  // users
  const appUser = e.PGA_APP_USER === '' ? null : (e.PGA_APP_USER ?? null);
  if (has('PGA_SUPERUSER') && has('PGA_REPLICATION_USER') && e.PGA_SUPERUSER === e.PGA_REPLICATION_USER) {
    problems.push(`PGA_REPLICATION_USER is ${show(e.PGA_REPLICATION_USER)}, the same as PGA_SUPERUSER; accepted: a separate role. Fix: choose another name`);
  }
  if (appUser && (appUser === e.PGA_SUPERUSER || appUser === e.PGA_REPLICATION_USER)) {
    problems.push(`PGA_APP_USER is ${show(appUser)}, the same as PGA_SUPERUSER or PGA_REPLICATION_USER; accepted: a separate role or empty (none). Fix: choose another name`);
  }
  const monitorUser = e.PGA_MONITOR_USER ? e.PGA_MONITOR_USER : null;
  if (monitorUser && [e.PGA_SUPERUSER, e.PGA_REPLICATION_USER, appUser].includes(monitorUser)) {
    problems.push(`PGA_MONITOR_USER is ${show(monitorUser)}, the same as PGA_SUPERUSER, PGA_REPLICATION_USER or PGA_APP_USER; accepted: a role of its own (it gets pg_monitor and nothing else) or empty (none). Fix: choose another name, such as pga_monitor`);
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
  const superuserPassword = secret('superuserPassword', !opts.standalone, 'the superuser password') ?? '';
  const replicationPassword = secret('replicationPassword', true, 'the replication role password');
  const appPassword = secret('appPassword', appUser !== null, `the password of PGA_APP_USER=${appUser ?? ''}`);
  const apiToken = secret('apiToken', true, 'the bearer token of the HTTP API and the CLI');
  const monitorPassword = secret('monitorPassword', monitorUser !== null, `the password of PGA_MONITOR_USER=${monitorUser ?? ''}, the exporter's role`);
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
  // users[].passwordKey files: the chart mounts the whole Secret there (changes appear in place)
  const rolesSecretsDir = e.PGA_ROLES_SECRETS_DIR || secretsDir;
  const parameters = loadParameters(`${cfgDir}/parameters.json`, files, problems);
  let pgHbaExtra = '';
  try {
    pgHbaExtra = files.readFile(`${cfgDir}/pg_hba.conf`) ?? '';
  } catch (err) {
    problems.push(`${cfgDir}/pg_hba.conf: cannot read (${(err as Error).message})`);
  }
  const bootstrap = loadBootstrap(cfgDir, rolesSecretsDir, e.PGA_SUPERUSER ?? 'postgres', files, problems);
  const backup = loadBackup(cfgDir, secretsDir, e.PGA_CLUSTER_NAME ?? 'postgres', files, problems);
  const restore = loadRestore(cfgDir, secretsDir, files, problems);
  const citus = loadCitus(cfgDir, e.PGA_NAMESPACE ?? '', tls, files, problems);
  if (citus && parameters['citus.node_conninfo'] !== undefined) problems.push(`${cfgDir}/parameters.json: citus.node_conninfo is set from citus.json (nodeConninfo) on a Citus member; got it in both. Fix: remove it from postgresql.parameters and set citus nodeConninfo instead`);
  if (backup && restore && backup.repo.endpoint === restore.repo.endpoint && backup.repo.port === restore.repo.port && backup.repo.bucket === restore.repo.bucket && backup.repo.path === restore.repo.path && backup.stanza === restore.stanza) {
    problems.push(`${cfgDir}/restore.json: the restore's source is this cluster's own repository and stanza (${restore.stanza} at ${restore.repo.endpoint}/${restore.repo.bucket}${restore.repo.path}); a restore must never write into the source's archive. Fix: give backup.stanza or backup.s3.path another value`);
  }
  if (e.PGA_REPLICA_BOOTSTRAP_FROM === 'backup' && has('PGA_REPLICA_BOOTSTRAP_FROM')) {
    if (!backup && !problems.some((p) => p.startsWith(`${cfgDir}/backup.json`))) problems.push(`PGA_REPLICA_BOOTSTRAP_FROM: got "backup" but backups are off (no ${cfgDir}/backup.json): a replica can only restore from the cluster's own repository. Fix: set backup.enabled (and backup.s3.*) in the chart, or set replication.bootstrapFrom to basebackup`);
    if (walDir) problems.push(`PGA_REPLICA_BOOTSTRAP_FROM: got "backup" with a separate WAL directory (PGA_WAL_DIR ${show(walDir)}): restoring a replica into a split data/WAL layout is not supported yet. Fix: set replication.bootstrapFrom to basebackup, or persistence.wal.enabled to false`);
  }
  // the one list of owned and refused parameters (parameters.ts), as the chart checks it too
  problems.push(...parameterProblems(parameters, backup !== null).map((p) => `${cfgDir}/parameters.json: ${p}`));
  const reserved = [e.PGA_SUPERUSER, e.PGA_REPLICATION_USER, appUser, monitorUser].filter((x): x is string => !!x);
  for (const u of bootstrap.users) {
    if (reserved.includes(u.name)) problems.push(`${cfgDir}/bootstrap.json or roles.json: users entry ${show(u.name)} is a role the entrypoint manages (superuser, replication, application or exporter user). Fix: remove it from users`);
  }
  for (const d of bootstrap.databases) {
    if (appUser && d.name === e.PGA_APP_DATABASE) problems.push(`${cfgDir}/bootstrap.json: databases entry ${show(d.name)} is PGA_APP_DATABASE, which the entrypoint creates for ${appUser}. Fix: remove it from databases`);
  }

  if (problems.length) throw new ConfigError(problems);

  const cfg: Config = {
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
    rolesSecretsDir,
    pgPort: e.PGA_PG_PORT,
    apiPort: e.PGA_API_PORT,
    metricsPort: e.PGA_METRICS_PORT ?? null,
    loopMs: loop,
    leaseMs: lease,
    renewMs: renew,
    renewDeadlineMs: deadline,
    maxLagBytes: e.PGA_MAX_LAG_BYTES,
    syncMode: e.PGA_SYNC_MODE,
    syncCount: e.PGA_SYNC_COUNT,
    replicaBootstrapFrom: e.PGA_REPLICA_BOOTSTRAP_FROM,
    maxSlotWalKeepSizeMb: e.PGA_MAX_SLOT_WAL_KEEP_SIZE,
    nofailover: e.PGA_NOFAILOVER,
    failsafe: e.PGA_FAILSAFE,
    logFormat: e.PGA_LOG_FORMAT,
    logLevel: e.PGA_LOG_LEVEL,
    superuser: e.PGA_SUPERUSER,
    replicationUser: e.PGA_REPLICATION_USER,
    appUser,
    appDatabase: e.PGA_APP_DATABASE,
    monitorUser,
    monitorPasswordFile: monitorUser && env.PGA_MONITOR_PASSWORD_FILE ? env.PGA_MONITOR_PASSWORD_FILE : null,
    secrets: {
      superuserPassword: superuserPassword as string,
      replicationPassword: replicationPassword as string,
      appPassword: appUser ? appPassword : null,
      apiToken: apiToken as string,
      monitorPassword: monitorUser ? monitorPassword : null,
    },
    parameters,
    pgHbaExtra,
    bootstrap,
    tls,
    backup,
    restore,
    citus,
    kubeconfig: e.KUBECONFIG ? e.KUBECONFIG : null,
    standalone: opts.standalone ?? null,
  };
  if (opts.standalone) {
    cfg.bootstrap.initdb.args.push(...opts.standalone.initdbArgs);
    const db = opts.standalone.database;
    if (db !== 'postgres' && !cfg.bootstrap.databases.some((d) => d.name === db)) cfg.bootstrap.databases.push({ name: db, owner: cfg.superuser, ensure: 'present', connectionLimit: -1 });
  }
  return cfg;
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
  const e = runEnvalid(env, cliEnvSpecs(), problems, new Set<string>());
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
