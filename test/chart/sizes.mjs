// Sizes are checked by a template (charts/postgres/templates/_validate-sizes.tpl) rather than by a
// schema pattern, so that a wrong one is refused in words: helm prints a failed schema pattern as
// the raw regular expression. The schema still types them (string; definitions size and
// sizeOrEmpty). This check fails when a value the schema types as a size is missing from the
// template's postgres.sizePaths (it would then go unchecked), or when the list names a value the
// schema does not type as a size; and when a wrong size of each listed path is accepted by
// `helm template` or refused without its path and "is not a Kubernetes quantity".
//   node test/chart/sizes.mjs      (needs helm on PATH)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = join(ROOT, 'charts/postgres');
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const tpl = readFileSync(join(CHART, 'templates/_validate-sizes.tpl'), 'utf8');

/** Value paths the schema types through definitions size / sizeOrEmpty. */
function schemaSizePaths() {
  const out = [];
  const walk = (node, path) => {
    if (!node || typeof node !== 'object') return;
    if (node.$ref) {
      const def = node.$ref.split('/').pop();
      if (def === 'size' || def === 'sizeOrEmpty') out.push(path.join('.'));
      else walk(schema.definitions[def], path);
      return;
    }
    for (const [k, v] of Object.entries(node.properties ?? {})) walk(v, [...path, k]);
    for (const k of ['oneOf', 'anyOf', 'allOf']) for (const v of node[k] ?? []) walk(v, path);
    if (node.items) walk(node.items, [...path, '[]']);
  };
  walk(schema, []);
  return out.sort();
}

const m = /define "postgres\.sizePaths" -\}\}([\s\S]*?)\{\{- end/.exec(tpl);
if (!m) { console.error('sizes: no define "postgres.sizePaths" in _validate-sizes.tpl'); process.exit(1); }
const listed = m[1].split(/\s+/).filter(Boolean).sort();
const wanted = schemaSizePaths();
const errors = [];
for (const p of wanted) if (!listed.includes(p)) errors.push(`${p} is a size in values.schema.json but not in postgres.sizePaths (_validate-sizes.tpl): a wrong value would go unchecked. Fix: add it there`);
for (const p of listed) if (!wanted.includes(p)) errors.push(`postgres.sizePaths names ${p}, which values.schema.json does not type as a size (definitions size or sizeOrEmpty). Fix: remove it, or type it so`);
if (wanted.some((p) => p.includes('[]'))) errors.push('a size inside a list: postgres.sizePaths cannot name it; check it in its own template');

// Each listed path, given a wrong size, is refused by name and in words.
const dir = mkdtempSync(join(tmpdir(), 'pga-sizes-'));
try {
  for (const p of listed.filter((x) => !x.includes('[]'))) {
    const values = {};
    let at = values;
    const keys = p.split('.');
    keys.slice(0, -1).forEach((k) => { at = at[k] = {}; });
    at[keys.at(-1)] = '10';
    if (p.startsWith('persistence.wal.')) values.persistence.wal.enabled = true;
    if (p.startsWith('persistence.emptyDir.')) values.persistence.enabled = false;
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(values));
    let out = '';
    try {
      execFileSync('helm', ['template', 'pg', CHART, '--namespace', 'db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      errors.push(`${p}: "10" (no unit) was accepted by helm template`);
      continue;
    } catch (e) {
      out = String(e.stderr);
    }
    if (!out.includes(`${p} "10" is not a Kubernetes quantity: write a positive number and a unit`)) errors.push(`${p}: "10" refused without the worded message:\n${out}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (errors.length) {
  console.error(`sizes:\n- ${errors.join('\n- ')}`);
  process.exit(1);
}
console.log(`sizes: the ${listed.length} sizes of values.schema.json are checked in words by _validate-sizes.tpl`);
