// Every values example in docs/chart.md is a tested file: a fenced yaml block preceded by
// `<!-- example: charts/postgres/ci/NAME-values.yaml -->` must be that file, byte for byte, so
// the examples users copy are the ones `helm lint` and kubeconform check. Exit 1 on drift.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOC = join(ROOT, 'docs/chart.md');
const text = readFileSync(DOC, 'utf8');
const re = /<!-- example: (\S+) -->\s*\n```yaml\n([\s\S]*?)```/g;
const errors = [];
let n = 0;
for (const m of text.matchAll(re)) {
  n++;
  const [, rel, body] = m;
  const file = join(ROOT, rel);
  if (!existsSync(file)) { errors.push(`docs/chart.md names ${rel}, which does not exist`); continue; }
  if (readFileSync(file, 'utf8') !== body) errors.push(`docs/chart.md: the example under "example: ${rel}" differs from the file; copy the file into the doc`);
}
const marks = (text.match(/<!-- example: /g) ?? []).length;
if (marks !== n) errors.push(`docs/chart.md: ${marks - n} "<!-- example: ... -->" marker(s) not followed by a \`\`\`yaml block`);
if (n === 0) errors.push('docs/chart.md has no tested examples');
for (const e of errors) console.error(`doc-examples: ${e}`);
if (errors.length) process.exit(1);
console.error(`doc-examples: ${n} examples match their files`);
