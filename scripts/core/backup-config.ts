// Configuration, part 3: backups. `$PGA_CONFIG_DIR/backup.json` (rendered by the chart from
// `backup.*`; absent = backups off) and the repository's secrets, mounted as files under
// `$PGA_SECRETS_DIR/backup/` (never in env or the ConfigMap). Pure apart from the FileReader;
// every problem is one line (what, got, accepted, fix).
import { isObj, readJsonFile, trimSecret, type FileReader } from './config-files.js';
import { CronError, parseCron, type Cron } from './cron.js';

export type BackupType = 'full' | 'diff' | 'incr';
export const BACKUP_TYPES: readonly BackupType[] = ['full', 'diff', 'incr'];

export interface S3Repo {
  endpoint: string;
  port: number | null;
  bucket: string;
  region: string;
  /** path prefix inside the bucket, starting with / */
  path: string;
  uriStyle: 'path' | 'host';
  verifyTls: boolean;
  caFile: string | null;
  key: string;
  keySecret: string;
}

export interface BackupConfig {
  stanza: string;
  repo: S3Repo;
  cipherPass: string | null;
  schedule: Record<BackupType, Cron | null>;
  retention: { full: number | null; fullDays: number | null };
  fromStandby: boolean;
  /** backups from a standby: every member's pgBackRest server and the TLS files it and the primary use (null: fromStandby off) */
  standby: StandbyConfig | null;
  /** extra pgBackRest options for [global], by name (validated), e.g. {"process-max": "2"} */
  options: Record<string, string>;
}

export interface StandbyConfig {
  /** port of every member's `pgbackrest server` */
  serverPort: number;
  /** the name other members reach this member's server by ({pod} = the pod's name); null = the pod's address */
  serverHost: string | null;
  /** CA, certificate and key (PEM): the server's and the client's (one certificate serves both) */
  tls: { caFile: string; certFile: string; keyFile: string };
  /** the CN of the client certificate the servers accept (tls-server-auth) */
  clientCN: string;
}

export const DEFAULT_SERVER_PORT = 8432;
export const DEFAULT_CLIENT_CN = 'pg-autopilot-backup';

/** pgBackRest options the autopilot sets itself: the pass-through may not name them. */
export const OWNED_OPTIONS = [
  'stanza', 'config', 'config-path', 'config-include-path', 'pg1-path', 'pg1-port', 'pg1-socket-path', 'pg1-user', 'pg1-host',
  'repo1-type', 'repo1-path', 'repo1-s3-endpoint', 'repo1-s3-bucket', 'repo1-s3-region', 'repo1-s3-uri-style', 'repo1-s3-key',
  'repo1-s3-key-secret', 'repo1-storage-port', 'repo1-storage-verify-tls', 'repo1-storage-ca-file', 'repo1-cipher-type', 'repo1-cipher-pass',
  'repo1-retention-full', 'repo1-retention-full-type', 'archive-async', 'spool-path', 'lock-path', 'log-path', 'backup-standby',
  'pg2-host', 'pg2-host-type', 'pg2-host-port', 'pg2-path', 'pg2-port', 'pg2-socket-path', 'pg2-user', 'pg2-host-ca-file', 'pg2-host-cert-file', 'pg2-host-key-file',
  'tls-server-address', 'tls-server-port', 'tls-server-auth', 'tls-server-ca-file', 'tls-server-cert-file', 'tls-server-key-file',
];
/** The pass-through is for tuning: names of these shapes only (pgBackRest's own option syntax). */
const PASS_THROUGH = /^(process-max|compress-type|compress-level|compress-level-network|buffer-size|io-timeout|db-timeout|protocol-timeout|archive-timeout|archive-push-queue-max|archive-get-queue-max|start-fast|delta|checksum-page|log-level-console|log-level-stderr|repo1-bundle|repo1-bundle-size|repo1-block|repo1-retention-diff|repo1-retention-archive|repo1-retention-archive-type|repo1-s3-role|repo1-s3-kms-key-id|repo1-s3-sse-customer-key|repo1-storage-upload-chunk-size)$/;

const STANZA = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Read backup.json and the repository secrets; null when backups are off. */
export function loadBackup(cfgDir: string, secretsDir: string, clusterName: string, files: FileReader, problems: string[]): BackupConfig | null {
  const path = `${cfgDir}/backup.json`;
  const raw = readJsonFile(path, files, problems, 'a JSON object {"stanza","s3":{…},"schedule":{…},"retention":{…}}');
  if (raw === undefined) return null;
  const bad = badValue(path, problems, 'backup');
  if (!isObj(raw)) { bad('the file', raw, 'a JSON object'); return null; }
  const r: Record<string, any> = raw;
  const top = ['stanza', 's3', 'schedule', 'retention', 'fromStandby', 'serverPort', 'serverHost', 'standbyTls', 'encryption', 'options'];
  const unknown = Object.keys(r).filter((k) => !top.includes(k));
  if (unknown.length) problems.push(`${path}: unknown key(s) ${unknown.join(', ')}; accepted: ${top.join(', ')}`);

  const stanza = r.stanza ?? clusterName;
  if (typeof stanza !== 'string' || !STANZA.test(stanza)) bad('stanza', stanza, 'letters, digits, _ . - (at most 63), starting with a letter or digit');

  const { repo, secret } = parseS3(r.s3, path, `${secretsDir}/backup`, `/${clusterName}`, files, problems, 'backup');

  let cipherPass: string | null = null;
  if (r.encryption !== undefined) {
    if (r.encryption !== true && r.encryption !== false) bad('encryption', r.encryption, 'true or false');
    else if (r.encryption) {
      cipherPass = secret('cipher-pass', false);
      if (cipherPass === null) problems.push(`${secretsDir}/backup/cipher-pass: missing or empty while encryption is on. Fix: set backup.encryption.existingSecret to a Secret with the key cipher-pass (with Vault: backup.encryption.vaultPath to a path with that field)`);
    }
  }

  const schedule: Record<BackupType, Cron | null> = { full: null, diff: null, incr: null };
  const sched = r.schedule ?? {};
  if (!isObj(sched)) bad('schedule', sched, 'an object {"full","differential","incremental"} of cron expressions');
  else {
    const names: Record<string, BackupType> = { full: 'full', differential: 'diff', incremental: 'incr' };
    for (const [k, v] of Object.entries(sched)) {
      const t = names[k];
      if (!t) { problems.push(`${path}: schedule: unknown key ${k}; accepted: full, differential, incremental`); continue; }
      if (v === null || v === '') continue;
      if (typeof v !== 'string') { bad(`schedule.${k}`, v, 'a cron expression (five fields, UTC) or "" for none'); continue; }
      try { schedule[t] = parseCron(v); } catch (e) { if (e instanceof CronError) problems.push(`${path}: schedule.${k}: ${e.message}`); else throw e; }
    }
    if ((schedule.diff || schedule.incr) && !schedule.full) problems.push(`${path}: schedule: differential or incremental backups are scheduled but no full one; they need a full backup to build on. Fix: set backup.schedule.full`);
  }

  const ret: any = r.retention ?? {};
  let full: number | null = null, fullDays: number | null = null;
  if (!isObj(ret)) bad('retention', ret, 'an object {"full","fullDays"}');
  else {
    const rk = Object.keys(ret).filter((k) => !['full', 'fullDays'].includes(k));
    if (rk.length) problems.push(`${path}: retention: unknown key(s) ${rk.join(', ')}; accepted: full, fullDays`);
    const count = (k: 'full' | 'fullDays'): number | null => {
      const v = ret[k];
      if (v === undefined || v === null) return null;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 9999) { bad(`retention.${k}`, v, 'an integer 1-9999'); return null; }
      return v;
    };
    full = count('full'); fullDays = count('fullDays');
    if (full !== null && fullDays !== null) problems.push(`${path}: retention: both full (a count) and fullDays set; pgBackRest keeps full backups by one measure. Fix: set only one of backup.retention.full, backup.retention.fullDays`);
    if (full === null && fullDays === null) full = 2;
  }

  const fromStandby = r.fromStandby ?? false;
  if (typeof fromStandby !== 'boolean') bad('fromStandby', fromStandby, 'true or false');
  const standby = fromStandby === true ? parseStandby(r, path, files, problems) : null;

  const options: Record<string, string> = {};
  if (r.options !== undefined) {
    if (!isObj(r.options)) bad('options', r.options, 'an object of pgBackRest option name → value');
    else for (const [k, v] of Object.entries(r.options)) {
      if (OWNED_OPTIONS.includes(k)) { problems.push(`${path}: options.${k}: the autopilot sets this pgBackRest option itself. Fix: use the matching backup.* value, or remove it`); continue; }
      if (!PASS_THROUGH.test(k)) { problems.push(`${path}: options.${k}: not a pgBackRest option the pass-through accepts (tuning options such as process-max, compress-type, archive-push-queue-max). Fix: check the name against pgBackRest's option reference`); continue; }
      if (!['string', 'number', 'boolean'].includes(typeof v) || /[\n\r=]/.test(String(v))) { bad(`options.${k}`, v, 'a string, number or boolean without newlines or "="'); continue; }
      options[k] = typeof v === 'boolean' ? (v ? 'y' : 'n') : String(v);
    }
  }

  return {
    stanza: String(stanza),
    repo,
    cipherPass,
    schedule,
    retention: { full, fullDays },
    fromStandby: fromStandby === true,
    standby,
    options,
  };
}

/** serverPort, serverHost and standbyTls of backup.json, with fromStandby on. */
function parseStandby(r: Record<string, any>, path: string, files: FileReader, problems: string[]): StandbyConfig | null {
  const bad = badValue(path, problems, 'backup');
  const n = problems.length;
  const serverPort = r.serverPort ?? DEFAULT_SERVER_PORT;
  if (typeof serverPort !== 'number' || !Number.isInteger(serverPort) || serverPort < 1 || serverPort > 65535) bad('serverPort', serverPort, 'a port 1-65535', 'set backup.standbyServer.port');
  const serverHost = r.serverHost ?? null;
  if (serverHost !== null && (typeof serverHost !== 'string' || !/^[A-Za-z0-9{}.-]{1,253}$/.test(serverHost))) bad('serverHost', serverHost, 'a host name, "{pod}" standing for the pod\'s name (e.g. "{pod}.db-headless.prod.svc")');
  const t = r.standbyTls;
  const keys = ['caFile', 'certFile', 'keyFile', 'clientCN'];
  if (!isObj(t)) {
    problems.push(`${path}: fromStandby is on but standbyTls is ${t === undefined ? 'missing' : JSON.stringify(t)}: the primary reaches the standby's pgBackRest server over mutual TLS and needs a CA, a certificate and its key. Fix: leave backup.standbyTls.existingSecret empty (the chart generates one) or name a Secret with ca.crt, tls.crt and tls.key`);
    return null;
  }
  const unknown = Object.keys(t).filter((k) => !keys.includes(k));
  if (unknown.length) problems.push(`${path}: standbyTls: unknown key(s) ${unknown.join(', ')}; accepted: ${keys.join(', ')}`);
  const file = (k: 'caFile' | 'certFile' | 'keyFile', key: string): string => {
    const v = t[k];
    if (typeof v !== 'string' || !v.startsWith('/')) { bad(`standbyTls.${k}`, v, 'an absolute path to a PEM file'); return ''; }
    if (files.readFile(v) === null) problems.push(`${path}: standbyTls.${k} ${JSON.stringify(v)} does not exist or is unreadable. Fix: mount the TLS Secret's ${key} there (backup.standbyTls.existingSecret, or leave it empty for the chart's own)`);
    return v;
  };
  const tls = { caFile: file('caFile', 'ca.crt'), certFile: file('certFile', 'tls.crt'), keyFile: file('keyFile', 'tls.key') };
  const clientCN = t.clientCN ?? DEFAULT_CLIENT_CN;
  if (typeof clientCN !== 'string' || !/^[A-Za-z0-9 _.@-]{1,64}$/.test(clientCN)) bad('standbyTls.clientCN', clientCN, 'the certificate\'s common name (letters, digits, space _ . @ -)', 'set backup.standbyTls.clientCommonName to the CN of the certificate in the Secret');
  if (problems.length > n) return null;
  return { serverPort: serverPort as number, serverHost: serverHost as string | null, tls, clientCN: clientCN as string };
}

/** A problem reporter for one file: what was wrong, what is accepted, and the fix (the chart's `values` by default). */
function badValue(path: string, problems: string[], values: string) {
  return (what: string, got: unknown, accepted: string, fix = `correct the chart's ${values} values`) =>
    problems.push(`${path}: ${what} got ${JSON.stringify(got)}; accepted: ${accepted}. Fix: ${fix}`);
}

/** The `s3` block of backup.json or restore.json, and a reader of the repository's secrets. */
export function parseS3(raw: unknown, path: string, secretsSub: string, defaultPath: string, files: FileReader, problems: string[], values: string): { repo: S3Repo; secret: (name: string, required: boolean) => string | null } {
  const bad = badValue(path, problems, values);
  const s3: Record<string, any> = isObj(raw) ? raw : {};
  if (!isObj(raw)) bad('s3', raw, 'an object {"endpoint","bucket","region","path","uriStyle"}');
  const s3Keys = ['endpoint', 'bucket', 'region', 'path', 'uriStyle', 'verifyTls', 'caFile'];
  const s3Unknown = Object.keys(s3).filter((k) => !s3Keys.includes(k));
  if (s3Unknown.length) problems.push(`${path}: s3: unknown key(s) ${s3Unknown.join(', ')}; accepted: ${s3Keys.join(', ')}`);
  let endpoint = '', port: number | null = null;
  const ep = s3.endpoint;
  const m = typeof ep === 'string' ? ep.match(/^(?:https:\/\/)?([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?\/?$/) : null;
  if (!m) bad('s3.endpoint', ep, 'a host name or address with an optional :port (https is implied; pgBackRest speaks TLS to S3)', `set ${values}.s3.endpoint, e.g. "s3.example.internal:8333"`);
  else { endpoint = m[1]!; port = m[2] ? Number(m[2]) : null; if (port !== null && (port < 1 || port > 65535)) bad('s3.endpoint port', port, '1-65535'); }
  const bucket = s3.bucket;
  if (typeof bucket !== 'string' || !BUCKET.test(bucket)) bad('s3.bucket', bucket, 'an S3 bucket name (3-63 of a-z 0-9 . -)', `set ${values}.s3.bucket`);
  const region = s3.region ?? 'us-east-1';
  if (typeof region !== 'string' || !/^[a-z0-9-]{1,32}$/.test(region)) bad('s3.region', region, 'a region name such as "us-east-1"');
  const rpath = s3.path ?? defaultPath;
  if (typeof rpath !== 'string' || !/^\/[A-Za-z0-9_.\/-]*$/.test(rpath) || rpath.includes('..')) bad('s3.path', rpath, 'an absolute path inside the bucket such as "/pg/prod" (no "..")');
  const uriStyle = s3.uriStyle ?? 'host';
  if (uriStyle !== 'path' && uriStyle !== 'host') bad('s3.uriStyle', uriStyle, '"host" (bucket.endpoint, AWS) or "path" (endpoint/bucket, most self-hosted stores)');
  const verifyTls = s3.verifyTls ?? true;
  if (typeof verifyTls !== 'boolean') bad('s3.verifyTls', verifyTls, 'true or false');
  const caFile = s3.caFile ?? null;
  if (caFile !== null && (typeof caFile !== 'string' || !caFile.startsWith('/'))) bad('s3.caFile', caFile, 'an absolute path to a PEM bundle (the chart mounts ${values}.s3.caSecret there)');
  else if (caFile !== null && files.readFile(caFile) === null) problems.push(`${path}: s3.caFile ${JSON.stringify(caFile)} does not exist. Fix: mount the CA bundle there (${values}.s3.caSecret)`);

  const secret = (name: string, required: boolean): string | null => {
    const f = `${secretsSub}/${name}`;
    const v = files.readFile(f);
    if (v === null || trimSecret(v) === '') {
      if (required) problems.push(`${f}: missing or empty; it holds the repository's ${name}. Fix: set ${values}.s3.existingSecret to a Secret with the keys s3-key and s3-key-secret (with Vault: ${values}.s3.vaultPath to a path with those fields)`);
      return null;
    }
    return trimSecret(v);
  };
  const key = secret('s3-key', true) ?? '', keySecret = secret('s3-key-secret', true) ?? '';

  return {
    repo: { endpoint, port, bucket: String(bucket), region: String(region), path: String(rpath), uriStyle: uriStyle as 'path' | 'host', verifyTls: verifyTls !== false, caFile: typeof caFile === 'string' ? caFile : null, key, keySecret },
    secret,
  };
}
