// Every values example in docs/chart.md, docs/backup.md and docs/backup-standby.md is a tested file: a fenced yaml block
// preceded by `<!-- example: charts/postgres/ci/NAME-values.yaml -->` must be that file, byte for
// byte, so the examples users copy are the ones `helm lint` and kubeconform check. Exit 1 on drift.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCS = ['docs/chart.md', 'docs/backup.md', 'docs/backup-standby.md'];
const re = /<!-- example: (\S+) -->\s*\n```yaml\n([\s\S]*?)```/g;
const errors = [];
let total = 0;
for (const doc of DOCS) {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  let n = 0;
  for (const m of text.matchAll(re)) {
    n++;
    const [, rel, body] = m;
    const file = join(ROOT, rel);
    if (!existsSync(file)) { errors.push(`${doc} names ${rel}, which does not exist`); continue; }
    if (readFileSync(file, 'utf8') !== body) errors.push(`${doc}: the example under "example: ${rel}" differs from the file; copy the file into the doc`);
  }
  const marks = (text.match(/<!-- example: /g) ?? []).length;
  if (marks !== n) errors.push(`${doc}: ${marks - n} "<!-- example: ... -->" marker(s) not followed by a \`\`\`yaml block`);
  if (n === 0) errors.push(`${doc} has no tested examples`);
  total += n;
}
for (const e of errors) console.error(`doc-examples: ${e}`);
if (errors.length) process.exit(1);
console.error(`doc-examples: ${total} examples match their files`);
