// Changing users, databases or their passwords restarts no member: the StatefulSet's pod template
// (checksum/config included) is the same, byte for byte, whatever users[] and databases[] hold —
// with the chart's Secret and an existing Secret. With Vault, whose Agent only pre-populates the
// files at pod start, a new passwordKey is a pod annotation (it needs a restart, as the README
// says): there, users without passwordKey and databases must leave the pod template alone. Their
// roles.json lives in a ConfigMap of its own (configmap-roles.yaml), read again when it changes.
//   node test/chart/roles-template.mjs      (needs helm on PATH)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHART = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'charts/postgres');
const dir = mkdtempSync(join(tmpdir(), 'roles-template-'));
const declared = {
  users: [
    { name: 'reporting', passwordKey: 'reporting-password', options: ['LOGIN', 'CREATEDB'], inRoles: ['pg_read_all_data'], connectionLimit: 4 },
    { name: 'retired', ensure: 'absent' },
  ],
  databases: [{ name: 'reports', owner: 'reporting', connectionLimit: 9 }, { name: 'old', ensure: 'absent' }],
};
const bases = {
  'chart Secret': {},
  'auth.existingSecret': { auth: { existingSecret: 'creds' } },
  vault: { vault: { enabled: true, role: 'pg', secretPath: 'secret/data/pg' } },
};

/** The StatefulSet's spec.template as rendered (helm template → JSON through a tiny YAML split). */
function podTemplate(values) {
  const f = join(dir, 'values.json');
  writeFileSync(f, JSON.stringify(values));
  const out = execFileSync('helm', ['template', 'pg', CHART, '-n', 'db', '-f', f, '--show-only', 'templates/statefulset.yaml'], { encoding: 'utf8' });
  const i = out.indexOf('\n  template:\n');
  const j = out.indexOf('\n  volumeClaimTemplates:');
  if (i < 0) throw new Error('no spec.template in the rendered StatefulSet');
  return out.slice(i, j < 0 ? undefined : j);
}

let failed = 0;
try {
  for (const [name, base] of Object.entries(bases)) {
    const a = podTemplate(base);
    const d = name === 'vault' ? { ...declared, users: declared.users.map(({ passwordKey, ...u }) => u) } : declared;
    const b = podTemplate({ ...base, ...d });
    if (a !== b) {
      failed++;
      const la = a.split('\n'), lb = b.split('\n');
      const k = la.findIndex((l, n) => l !== lb[n]);
      console.error(`roles-template: ${name}: the pod template changes with users/databases (members would restart); first difference:\n  - ${la[k]}\n  + ${lb[k]}`);
    } else console.log(`roles-template: ${name}: the pod template is the same with and without users/databases`);
    if (name !== 'vault' && !b.includes('PGA_ROLES_SECRETS_DIR')) { failed++; console.error(`roles-template: ${name}: no PGA_ROLES_SECRETS_DIR in the pod template`); }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
