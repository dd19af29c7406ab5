// The commands users copy from the README's "Quick start with Helm" and docs/chart.md must name
// what the chart really creates. Renders the chart as those commands install it (release pg,
// namespace db, defaults) and checks every `sh` block line of those docs that mentions a release
// object:
//   helm install|test|upgrade ... RELEASE ... --namespace|-n NS   release and namespace
//   svc/NAME                                                      a Service
//   get secret -n NS NAME -o jsonpath='{.data.KEY}'               a Secret holding KEY
//   exec -n NS POD -c CONTAINER                                   a member pod and its container
//   get pods ... -l SELECTOR                                      selects exactly the members
//   HOST.NS.svc, user=U dbname=D                                  Services, the app user and database
// Exit 1 naming every mismatch. Needs helm on PATH.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RELEASE = 'pg';
const NS = 'db';
const docs = {
  'README.md': /## Quick start with Helm\n([\s\S]*?)(?=\n## |$)/,
  'docs/chart.md': /([\s\S]*)/,
};

const rendered = execFileSync('helm', ['template', RELEASE, join(ROOT, 'charts/postgres'), '--namespace', NS], { encoding: 'utf8' });
const objs = yaml.loadAll(rendered).filter(Boolean);
const find = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const sts = objs.find((o) => o.kind === 'StatefulSet');
const values = yaml.load(readFileSync(join(ROOT, 'charts/postgres/values.yaml'), 'utf8'));
const selects = (sel, labels) => sel.split(',').every((kv) => { const [k, v] = kv.split('='); return labels[k] === v; });

const errors = [];
let checked = 0;
for (const [file, section] of Object.entries(docs)) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const part = section.exec(text)?.[1];
  if (!part) { errors.push(`${file}: section not found`); continue; }
  const blocks = [...part.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length === 0) errors.push(`${file}: no sh block to check`);
  for (const line of blocks.join('').split('\n')) {
    const err = (what) => errors.push(`${file}: \`${line.trim()}\`: ${what}`);
    let m;
    if ((m = /\bhelm (install|test|upgrade) (\S+)/.exec(line))) {
      checked++;
      const args = line.split(/\s+/);
      const release = m[1] === 'test' ? args[args.indexOf('test') + 1 + (args[args.indexOf('test') + 1] === '-n' ? 2 : 0)] : m[2];
      const nsAt = Math.max(args.indexOf('-n'), args.indexOf('--namespace'));
      if (release !== RELEASE) err(`release ${release}, the docs use ${RELEASE}`);
      if (nsAt < 0 || args[nsAt + 1] !== NS) err(`namespace is not ${NS}`);
    }
    for (const s of line.matchAll(/\bsvc\/([a-z0-9-]+)/g)) { checked++; if (!find('Service', s[1])) err(`no Service ${s[1]}`); }
    for (const s of line.matchAll(/\b([a-z0-9-]+)\.([a-z0-9-]+)\.svc\b/g)) {
      checked++;
      if (s[2] !== NS) err(`namespace ${s[2]} in ${s[0]}`);
      else if (!find('Service', s[1])) err(`no Service ${s[1]}`);
    }
    if ((m = /get secret -n (\S+) (\S+) -o jsonpath='\{\.data\.([^}]+)\}'/.exec(line))) {
      checked++;
      const sec = find('Secret', m[2]);
      if (m[1] !== NS) err(`namespace ${m[1]}`);
      if (!sec) err(`no Secret ${m[2]}`); else if (!(m[3] in (sec.data ?? {}))) err(`Secret ${m[2]} has no key ${m[3]}`);
    }
    if ((m = /exec -n (\S+) (\S+) -c (\S+) -- (\S+)/.exec(line))) {
      checked++;
      const idx = m[2].startsWith(`${sts.metadata.name}-`) ? Number(m[2].slice(sts.metadata.name.length + 1)) : NaN;
      if (m[1] !== NS) err(`namespace ${m[1]}`);
      if (!(idx >= 0 && idx < sts.spec.replicas)) err(`${m[2]} is not a member pod (${sts.metadata.name}-0..${sts.spec.replicas - 1})`);
      if (!sts.spec.template.spec.containers.some((c) => c.name === m[3])) err(`no container ${m[3]}`);
      if (m[4] !== 'autopilot' && m[4] !== 'cat') err(`runs ${m[4]}, not the autopilot CLI`);
      const to = /--to (\S+)/.exec(line);
      if (to && !(Number(to[1].slice(sts.metadata.name.length + 1)) < sts.spec.replicas)) err(`switchover target ${to[1]} is not a member`);
    }
    if ((m = /get pods -n (\S+) -l (\S+)/.exec(line))) {
      checked++;
      const testPod = objs.find((o) => o.kind === 'Pod');
      if (m[1] !== NS) err(`namespace ${m[1]}`);
      if (!selects(m[2], sts.spec.template.metadata.labels)) err(`selector ${m[2]} does not select the members`);
      if (testPod && selects(m[2], testPod.metadata.labels)) err(`selector ${m[2]} also selects the helm test pod`);
      if (line.includes('-L ') && !line.includes('-L pg-autopilot.io/role')) err('the role label is pg-autopilot.io/role');
    }
    if ((m = /user=(\S+) dbname=([^"\s]+)/.exec(line))) {
      checked++;
      if (m[1] !== values.auth.appUser || m[2] !== values.auth.appDatabase) err(`the default application user/database are ${values.auth.appUser}/${values.auth.appDatabase}`);
    }
  }
}
if (checked < 10) errors.push(`only ${checked} references checked; the quick start lost its commands?`);
for (const e of errors) console.error(`quickstart: ${e}`);
if (errors.length) process.exit(1);
console.error(`quickstart: ${checked} references in the README quick start and docs/chart.md match the rendered chart`);
