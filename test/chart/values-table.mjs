// The values tables of the README and of the chart's own README (charts/postgres/README.md, what
// `helm show readme` prints), generated from the `## @param path description` comments of
// charts/postgres/values.yaml (defaults read from the values themselves), plus the checks that
// keep values.yaml, its comments and values.schema.json from drifting apart. The chart README is
// generated whole: an intro from Chart.yaml, the README's "Install from your own registry" section
// (between its install markers) and the values table. Chart.yaml's metadata is checked against the
// values and the image build (chart-metadata.mjs).
//
//   node test/chart/values-table.mjs --write    regenerate the README's table and the chart README
//   node test/chart/values-table.mjs --check    exit 1 when a table, the chart README, the @param
//                                               comments, the values, the schema or Chart.yaml's
//                                               metadata disagree (says what and how to fix)
//   node test/chart/values-table.mjs --print    print the table
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { checkMetadata } from './chart-metadata.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VALUES = join(ROOT, 'charts/postgres/values.yaml');
const SCHEMA = join(ROOT, 'charts/postgres/values.schema.json');
const CHART = join(ROOT, 'charts/postgres/Chart.yaml');
const README = join(ROOT, 'README.md');
const CHART_README = join(ROOT, 'charts/postgres/README.md');
const START = '<!-- values-table:start -->';
const END = '<!-- values-table:end -->';
const INSTALL_START = '<!-- install:start -->';
const INSTALL_END = '<!-- install:end -->';
const REGEN = 'node test/chart/values-table.mjs --write';
const ROOT_INTRO = [
  'Generated from the `## @param` comments of `charts/postgres/values.yaml` by `' + REGEN + '`;',
  '`npm test` fails when it drifts. Types and limits: `charts/postgres/values.schema.json`. Guide: [docs/chart.md](docs/chart.md).'];
const CHART_INTRO = [
  'Every value is typed in `values.schema.json`: a misspelt or unknown key is refused at install.',
  'The guide (connecting, credentials, Vault, TLS, backups, alerts) is `docs/chart.md` in the source repository.'];

/** The @section and @param lines, in file order. */
export function parseParams(text) {
  const out = [];
  for (const [i, line] of text.split('\n').entries()) {
    const sec = /^##\s+@section\s+(.+?)\s*$/.exec(line);
    if (sec) { out.push({ kind: 'section', title: sec[1], line: i + 1 }); continue; }
    const par = /^##\s+@param\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (par) out.push({ kind: 'param', path: par[1], description: par[2], line: i + 1 });
    else if (/^##\s+@param/.test(line)) throw new Error(`values.yaml:${i + 1}: "## @param" needs a path and a description: ${line}`);
  }
  return out;
}

const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function lookup(values, path) {
  let cur = values;
  for (const part of path.split('.')) {
    if (!isMap(cur) || !(part in cur)) return { found: false };
    cur = cur[part];
  }
  return { found: true, value: cur };
}

/** Paths every value must be documented at (itself or an ancestor): scalars, lists, empty maps. */
function leaves(values, prefix = '') {
  const out = [];
  for (const [k, v] of Object.entries(values)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isMap(v) && Object.keys(v).length > 0) out.push(...leaves(v, p));
    else out.push(p);
  }
  return out;
}

function formatDefault(v) {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v ?? null);
  return '`' + s.replace(/\|/g, '\\|') + '`';
}

export function renderTable(params, values, intro = ROOT_INTRO) {
  const lines = ['## Values', '', ...intro];
  let open = false;
  const header = () => { lines.push('| Name | Description | Default |', '|---|---|---|'); open = true; };
  for (const p of params) {
    if (p.kind === 'section') {
      lines.push('', `### ${p.title}`, '');
      header();
      continue;
    }
    if (!open) header();
    const { value } = lookup(values, p.path);
    lines.push(`| \`${p.path}\` | ${p.description.replace(/\|/g, '\\|')} | ${formatDefault(value)} |`);
  }
  return lines.join('\n');
}

function resolve(schema, root) {
  let s = schema;
  while (s && s.$ref) s = s.$ref.replace('#/definitions/', '').split('/').reduce((acc, k) => acc[k], root.definitions);
  return s;
}

/** Values and schema must name the same keys wherever the schema declares closed properties.
 * Below a path documented as a whole (e.g. `resources`), schema keys are optional fields. */
function schemaDrift(values, schema, root, documented, prefix = '', whole = false) {
  const errors = [];
  const s = resolve(schema, root);
  if (!s || !isMap(values) || !s.properties) return errors;
  const keys = new Set(Object.keys(values));
  for (const k of Object.keys(s.properties)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (k === 'global' && !prefix) continue;
    if (!keys.has(k)) {
      if (!whole) errors.push(`${p}: in values.schema.json but not in values.yaml (give it a default and a ## @param line, or drop it from the schema)`);
    } else errors.push(...schemaDrift(values[k], s.properties[k], root, documented, p, whole || documented.has(p)));
  }
  for (const k of keys) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (!(k in s.properties)) errors.push(`${p}: in values.yaml but not typed in values.schema.json`);
  }
  return errors;
}

/** The README's install section (between the install markers), or null. */
export function installSection(readme) {
  const a = readme.indexOf(INSTALL_START); const b = readme.indexOf(INSTALL_END);
  return a < 0 || b < a ? null : readme.slice(a + INSTALL_START.length, b).trim();
}

/** charts/postgres/README.md: what `helm show readme` prints. */
export function renderChartReadme({ chart, install, table }) {
  const major = /-pg(\d+)$/.exec(String(chart.appVersion))?.[1] ?? '?';
  return [
    `# ${chart.name}: highly available PostgreSQL ${major} on Kubernetes, no operator (pg-autopilot)`,
    '',
    `<!-- Generated by \`${REGEN}\` from the repository's README.md and charts/postgres/values.yaml: edit those. -->`,
    '',
    `${chart.description}.`,
    '',
    'Each member pod runs an autopilot next to PostgreSQL: it bootstraps or clones its member,',
    'supervises PostgreSQL and keeps the cluster healthy through the Kubernetes API alone. A Lease is',
    'the leader key; pod labels route the read-write (`<release>-postgres-rw`) and read-only',
    '(`<release>-postgres-ro`) Services. Failover and switchover need no operator, no CRD and no',
    'etcd or Consul of its own.',
    '',
    `Chart ${chart.version}, image tag \`${chart.appVersion}\` (PostgreSQL ${major}), Kubernetes ${chart.kubeVersion}.`,
    '',
    install ?? '',
    '',
    table,
    '',
  ].join('\n');
}

export function check({ valuesText, schema, readme, chartText, chartReadme, packageJson, dockerfile, buildSh }) {
  const errors = [];
  const params = parseParams(valuesText);
  const values = yaml.load(valuesText);
  const documented = params.filter((p) => p.kind === 'param');
  const seen = new Set();
  for (const p of documented) {
    if (seen.has(p.path)) errors.push(`values.yaml:${p.line}: @param ${p.path} is documented twice`);
    seen.add(p.path);
    if (!lookup(values, p.path).found) errors.push(`values.yaml:${p.line}: @param ${p.path} names no value`);
  }
  for (const leaf of leaves(values)) {
    const parts = leaf.split('.');
    const covered = parts.some((_, i) => seen.has(parts.slice(0, i + 1).join('.')));
    if (!covered) errors.push(`values.yaml: ${leaf} has no "## @param ${leaf} <description>" line`);
  }
  errors.push(...schemaDrift(values, schema, schema, seen).map((e) => `schema drift: ${e}`));
  const table = renderTable(params, values);
  const a = readme.indexOf(START); const b = readme.indexOf(END);
  if (a < 0 || b < a) errors.push(`README.md: markers ${START} … ${END} are missing; run: ${REGEN}`);
  else if (readme.slice(a + START.length, b).trim() !== table.trim()) {
    errors.push(`README.md: the values table between the markers does not match charts/postgres/values.yaml; regenerate it with: ${REGEN}`);
  }
  const chart = yaml.load(chartText);
  const install = installSection(readme);
  if (install === null) errors.push(`README.md: markers ${INSTALL_START} … ${INSTALL_END} around the "Install from your own registry" section are missing`);
  const chartReadmeText = renderChartReadme({ chart, install, table: renderTable(params, values, CHART_INTRO) });
  if (chartReadme !== chartReadmeText) {
    errors.push(`charts/postgres/README.md: ${chartReadme === null ? 'missing' : 'does not match README.md\'s install section and values.yaml'}; regenerate it with: ${REGEN}`);
  }
  errors.push(...checkMetadata({ chartText, values, packageJson, dockerfile, buildSh, texts: { 'README.md (install section)': install ?? '' } }));
  return { errors, table, chartReadmeText };
}

function main() {
  const mode = process.argv[2] ?? '--check';
  const valuesText = readFileSync(VALUES, 'utf8');
  const schema = JSON.parse(readFileSync(SCHEMA, 'utf8'));
  let readme = readFileSync(README, 'utf8');
  const read = (f) => { try { return readFileSync(f, 'utf8'); } catch { return null; } };
  const inputs = {
    valuesText, schema, chartText: readFileSync(CHART, 'utf8'), chartReadme: read(CHART_README),
    packageJson: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')),
    dockerfile: readFileSync(join(ROOT, 'images/postgres/Dockerfile'), 'utf8'),
    buildSh: readFileSync(join(ROOT, 'images/postgres/build.sh'), 'utf8'),
  };
  const { errors, table } = check({ ...inputs, readme });
  if (mode === '--print') { process.stdout.write(table + '\n'); return; }
  if (mode === '--write') {
    const a = readme.indexOf(START); const b = readme.indexOf(END);
    const block = `${START}\n${table}\n${END}`;
    readme = a < 0 || b < a ? `${readme.replace(/\n*$/, '\n')}\n${block}\n` : readme.slice(0, a) + block + readme.slice(b + END.length);
    writeFileSync(README, readme);
    const { chartReadmeText } = check({ ...inputs, readme });
    writeFileSync(CHART_README, chartReadmeText);
    const rest = errors.filter((e) => !e.startsWith('README.md: the values table') && !e.startsWith('charts/postgres/README.md'));
    for (const e of rest) console.error(`values-table: ${e}`);
    console.error(`values-table: wrote ${table.split('\n').filter((l) => l.startsWith('| `')).length} rows to README.md and charts/postgres/README.md`);
    process.exit(rest.length ? 1 : 0);
  }
  if (mode !== '--check') { console.error('usage: values-table.mjs --check | --write | --print'); process.exit(2); }
  for (const e of errors) console.error(`values-table: ${e}`);
  if (errors.length) process.exit(1);
  console.error(`values-table: README and chart README tables, @param comments, values.yaml, values.schema.json and Chart.yaml's metadata agree`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
