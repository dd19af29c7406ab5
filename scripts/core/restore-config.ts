// Configuration, part 4: a new cluster made from a backup. `$PGA_CONFIG_DIR/restore.json`
// (chart: bootstrap.fromBackup; absent = initdb as usual) and the source repository's secrets under
// `$PGA_SECRETS_DIR/restore/`. Pure apart from the FileReader.
import { isObj, readJsonFile, type FileReader } from './config-files.js';
import { parseS3, type S3Repo } from './backup-config.js';

export type RestoreTarget =
  | { type: 'latest' }
  | { type: 'time'; value: string }
  | { type: 'lsn'; value: string }
  | { type: 'name'; value: string }
  | { type: 'backup'; value: string };

export interface RestoreConfig {
  stanza: string;
  repo: S3Repo;
  cipherPass: string | null;
  target: RestoreTarget;
}

const TIME = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([+-]\d{2}(:?\d{2})?|Z)$/;
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

export function loadRestore(cfgDir: string, secretsDir: string, files: FileReader, problems: string[]): RestoreConfig | null {
  const path = `${cfgDir}/restore.json`;
  const raw = readJsonFile(path, files, problems, 'a JSON object {"stanza","s3":{…},"target":{"type","value"}}');
  if (raw === undefined) return null;
  if (!isObj(raw)) { problems.push(`${path}: accepted: a JSON object {"stanza","s3","target"}. Fix: correct bootstrap.fromBackup`); return null; }
  const r: Record<string, any> = raw;
  const keys = ['stanza', 's3', 'target', 'encryption'];
  const unknown = Object.keys(r).filter((k) => !keys.includes(k));
  if (unknown.length) problems.push(`${path}: unknown key(s) ${unknown.join(', ')}; accepted: ${keys.join(', ')}`);
  if (typeof r.stanza !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(r.stanza)) problems.push(`${path}: stanza got ${JSON.stringify(r.stanza)}; accepted: the source cluster's stanza name. Fix: set bootstrap.fromBackup.stanza`);
  const { repo, secret } = parseS3(r.s3, path, `${secretsDir}/restore`, `/${r.stanza}`, files, problems, 'bootstrap.fromBackup');
  let cipherPass: string | null = null;
  if (r.encryption === true) {
    cipherPass = secret('cipher-pass', false);
    if (cipherPass === null) problems.push(`${secretsDir}/restore/cipher-pass: missing or empty while the source is encrypted. Fix: set bootstrap.fromBackup.encryption.existingSecret (with Vault: bootstrap.fromBackup.encryption.vaultPath)`);
  } else if (r.encryption !== undefined && r.encryption !== false) problems.push(`${path}: encryption got ${JSON.stringify(r.encryption)}; accepted: true or false`);
  const t = isObj(r.target) ? (r.target as Record<string, unknown>) : { type: 'latest' };
  let target: RestoreTarget = { type: 'latest' };
  const v = t.value;
  const need = (re: RegExp, what: string) => {
    if (typeof v === 'string' && re.test(v)) return true;
    problems.push(`${path}: target.value got ${JSON.stringify(v)} for type ${String(t.type)}; accepted: ${what}. Fix: correct bootstrap.fromBackup.target.value`);
    return false;
  };
  switch (t.type) {
    case 'latest': case undefined: target = { type: 'latest' }; break;
    case 'time': if (need(TIME, 'a time with its zone, e.g. "2026-11-29 03:00:00+00"')) target = { type: 'time', value: v as string }; break;
    case 'lsn': if (need(LSN, 'a WAL position such as "0/3000060"')) target = { type: 'lsn', value: v as string }; break;
    case 'name': if (need(/^[^\n'"]{1,63}$/, 'the name given to pg_create_restore_point()')) target = { type: 'name', value: v as string }; break;
    case 'backup': if (need(LABEL, 'a backup label from "autopilot backups", e.g. "20261129-030000F"')) target = { type: 'backup', value: v as string }; break;
    default: problems.push(`${path}: target.type got ${JSON.stringify(t.type)}; accepted: latest, time, lsn, name, backup`);
  }
  return { stanza: String(r.stanza), repo, cipherPass, target };
}

/** pgBackRest restore options for a target: recovery stops there and the cluster promotes. */
export function restoreTargetArgs(t: RestoreTarget): string[] {
  switch (t.type) {
    case 'latest': return ['--type=default'];
    case 'time': return ['--type=time', `--target=${t.value}`, '--target-action=promote'];
    case 'lsn': return ['--type=lsn', `--target=${t.value}`, '--target-action=promote'];
    case 'name': return ['--type=name', `--target=${t.value}`, '--target-action=promote'];
    case 'backup': return [`--set=${t.value}`, '--type=immediate', '--target-action=promote'];
  }
}
