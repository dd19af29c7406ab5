// The chart's backup.json, as rendered, must be what the entrypoint's parser accepts: for the
// backup example files (charts/postgres/ci/*-values.yaml with backup.enabled), renders the chart,
// builds the container's view of its config volume (every projected ConfigMap key and Secret item
// as a file under /etc/pg-autopilot, secrets with a dummy value; in Vault mode the files the Vault
// Agent's annotations name) and its env, then runs
// loadBackup() of scripts/core/backup-config.ts on it. Fails on any problem the parser reports,
// and when what it parsed differs from the values (stanza, repository path, CA file, encryption,
// schedules, retention). Also: every option name the schema lets through backup.options is one the
// parser passes through. Needs helm on PATH and the compiled entrypoint (npm run build).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import yaml from 'js-yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = join(ROOT, 'charts/postgres');
const SRC = join(ROOT, 'scripts/core/backup-config.ts');
const BUILT = join(ROOT, 'dist/scripts/core/backup-config.js');
if (!existsSync(BUILT) || statSync(BUILT).mtimeMs < statSync(SRC).mtimeMs) {
  console.error('backup-contract: dist/ is missing or older than scripts/core/backup-config.ts; building (npm run build)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
const { loadBackup } = await import(pathToFileURL(BUILT).href);

const errors = [];
let checked = 0;
const files = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort();
for (const f of files) {
  const valuesFile = join(CHART, 'ci', f);
  const values = yaml.load(readFileSync(valuesFile, 'utf8')) ?? {};
  if (!values.backup?.enabled) continue;
  checked++;
  const err = (what) => errors.push(`${f}: ${what}`);
  const objs = yaml.loadAll(execFileSync('helm', ['template', 'pg', CHART, '--namespace', 'db', '-f', valuesFile], { encoding: 'utf8' })).filter(Boolean);
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.data?.['backup.json']);
  const sts = objs.find((o) => o.kind === 'StatefulSet');
  if (!cm || !sts) { err('no ConfigMap with backup.json or no StatefulSet rendered'); continue; }
  const pod = sts.spec.template.spec;
  const ctr = pod.containers.find((c) => c.name === 'postgres');
  const env = Object.fromEntries(ctr.env.filter((e) => 'value' in e).map((e) => [e.name, e.value]));
  const mount = ctr.volumeMounts.find((m) => m.name === 'config');
  const vol = pod.volumes.find((v) => v.name === 'config');
  // The container's files: ConfigMap items with their rendered content, Secret items as dummies.
  const fs = new Map();
  for (const src of vol.projected.sources) {
    for (const item of (src.configMap ?? src.secret).items) {
      // each ConfigMap source by its name (users and databases are in <fullname>-roles)
      const source = src.configMap ? objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === src.configMap.name) : null;
      const content = src.configMap ? source?.data?.[item.key] : `dummy-${src.secret.name}-${item.key}\n`;
      if (content === undefined) err(`the config volume projects ConfigMap key ${item.key}, which the ConfigMap lacks`);
      fs.set(`${mount.mountPath}/${item.path}`, content ?? '');
    }
  }
  // Vault mode: the Agent writes each agent-inject-secret-NAME to <secret-volume-path>/<agent-inject-file-NAME or NAME>
  const ann = sts.spec.template.metadata.annotations ?? {};
  const VA = 'vault.hashicorp.com/';
  for (const k of Object.keys(ann).filter((k) => k.startsWith(`${VA}agent-inject-secret-`))) {
    const name = k.slice(`${VA}agent-inject-secret-`.length);
    const dir = ann[`${VA}secret-volume-path-${name}`] ?? ann[`${VA}secret-volume-path`] ?? '/vault/secrets';
    fs.set(`${dir}/${ann[`${VA}agent-inject-file-${name}`] ?? name}`, `dummy-vault-${name}\n`);
  }
  const reader = { readFile: (p) => fs.get(p) ?? null, listDir: () => null };
  const problems = [];
  const b = loadBackup(env.PGA_CONFIG_DIR, env.PGA_SECRETS_DIR, env.PGA_CLUSTER_NAME, reader, problems);
  for (const p of problems) err(`the entrypoint refuses it: ${p}`);
  if (!b) { if (!problems.length) err(`loadBackup found no backup.json under PGA_CONFIG_DIR=${env.PGA_CONFIG_DIR}`); continue; }
  const v = values.backup;
  const want = {
    stanza: v.stanza || env.PGA_CLUSTER_NAME,
    path: v.s3.path || `/db/${env.PGA_CLUSTER_NAME}`,
    caFile: v.s3.caSecret ? '/etc/pg-autopilot/backup-ca/ca.crt' : null,
    encrypted: Boolean(values.vault?.enabled ? v.encryption?.vaultPath : v.encryption?.existingSecret),
    schedules: ['full', 'differential', 'incremental'].filter((k) => (v.schedule ?? {})[k] ?? { full: '0 1 * * 0', incremental: '0 1 * * 1-6' }[k]).length,
    retention: { full: v.retention?.fullDays ? null : (v.retention?.full ?? 2), fullDays: v.retention?.fullDays ?? null },
    fromStandby: Boolean(v.fromStandby),
    standby: v.fromStandby ? { port: v.standbyServer?.port ?? 8432, host: '{pod}.pg-postgres-headless.db.svc', cert: '/etc/pg-autopilot/backup-tls/tls.crt' } : null,
  };
  const got = {
    stanza: b.stanza,
    path: b.repo.path,
    caFile: b.repo.caFile,
    encrypted: b.cipherPass !== null,
    schedules: Object.values(b.schedule).filter(Boolean).length,
    retention: b.retention,
    fromStandby: b.fromStandby,
    standby: b.standby ? { port: b.standby.serverPort, host: b.standby.serverHost, cert: b.standby.tls.certFile } : null,
  };
  for (const k of Object.keys(want)) {
    if (JSON.stringify(want[k]) !== JSON.stringify(got[k])) err(`${k}: values say ${JSON.stringify(want[k])}, the entrypoint read ${JSON.stringify(got[k])}`);
  }
  const from = values.vault?.enabled ? 'dummy-vault-backup-' : 'dummy-';
  if (!b.repo.key.startsWith(from) || !b.repo.keySecret.startsWith(from)) err(`the repository credentials were not read from ${values.vault?.enabled ? "the Vault Agent's files" : 'the projected Secret'}`);
}
// The schema's pass-through option names (values.schema.json, backup.options) must each be one the
// parser passes through, so the chart never accepts an option the entrypoint then refuses.
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const optionNames = Object.keys(schema.properties.backup.properties.options.properties ?? {});
if (!optionNames.length) errors.push('values.schema.json: backup.options lists no option names');
for (const name of optionNames) {
  const json = JSON.stringify({ s3: { endpoint: 's3.example', bucket: 'bkt' }, options: { [name]: '1' } });
  const reader = { readFile: (p) => ({ '/c/backup.json': json, '/s/backup/s3-key': 'k', '/s/backup/s3-key-secret': 's' })[p] ?? null, listDir: () => null };
  const problems = [];
  loadBackup('/c', '/s', 'pg', reader, problems);
  for (const p of problems.filter((p) => p.includes(`options.${name}`))) errors.push(`values.schema.json accepts backup.options.${name}, the entrypoint does not: ${p}`);
}
if (checked < 2) errors.push(`only ${checked} ci file(s) with backup.enabled; expected the backup examples (backup, backup-minio, restore)`);
for (const e of errors) console.error(`backup-contract: ${e}`);
if (errors.length) process.exit(1);
console.error(`backup-contract: backup.json of ${checked} example files is accepted by loadBackup() as the values say; ${optionNames.length} pass-through option names agree`);
