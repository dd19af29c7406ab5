// Turns a Kubernetes swagger.json (shipped in the k8s.io/kubernetes Go module) into the per-kind
// "standalone-strict" JSON schema files that kubeconform reads:
//   <dir>/<kind>[-<group>]-<version>.json
// Strict: objects with declared properties reject unknown keys. Standalone: each file carries the
// definitions it references. Optional fields accept null, as the API server does.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [, , specPath, outDir] = process.argv;
if (!specPath || !outDir) { console.error('usage: openapi2jsonschema.mjs swagger.json OUTDIR'); process.exit(2); }
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const defs = spec.definitions;
const INT_OR_STRING = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
const QUANTITY = { oneOf: [{ type: 'string' }, { type: 'number' }] };
const refName = (ref) => ref.replace('#/definitions/', '');

function convert(schema, seen) {
  if (Array.isArray(schema)) return schema.map((s) => convert(s, seen));
  if (!schema || typeof schema !== 'object') return schema;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    seen.add(name);
    return { $ref: `#/definitions/${name}` };
  }
  if (schema.format === 'int-or-string') return { ...INT_OR_STRING };
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, nullable(convert(s, seen))]));
    else if (k === 'items' || k === 'additionalProperties' || k === 'allOf' || k === 'oneOf' || k === 'anyOf') out[k] = convert(v, seen);
    else out[k] = v;
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}
function nullable(s) {
  if (typeof s.type === 'string') return { ...s, type: [s.type, 'null'] };
  if (s.$ref || s.oneOf) return { oneOf: [s, { type: 'null' }] };
  return s;
}
function special(name) {
  if (name === 'io.k8s.apimachinery.pkg.api.resource.Quantity') return QUANTITY;
  if (name === 'io.k8s.apimachinery.pkg.util.intstr.IntOrString') return INT_OR_STRING;
  return undefined;
}

let count = 0;
for (const [name, def] of Object.entries(defs)) {
  const gvks = def['x-kubernetes-group-version-kind'];
  if (!gvks) continue;
  const seen = new Set();
  const root = convert(def, seen);
  const definitions = {};
  const queue = [...seen];
  while (queue.length) {
    const n = queue.pop();
    if (definitions[n]) continue;
    const sp = special(n);
    if (sp) { definitions[n] = sp; continue; }
    const inner = new Set();
    definitions[n] = convert(defs[n] ?? {}, inner);
    for (const m of inner) if (!definitions[m]) queue.push(m);
  }
  for (const gvk of gvks) {
    const group = gvk.group ? `-${gvk.group.split('.')[0].toLowerCase()}` : '';
    const file = `${gvk.kind.toLowerCase()}${group}-${gvk.version.toLowerCase()}.json`;
    const body = { $schema: 'http://json-schema.org/schema#', ...root, definitions };
    if (body.properties?.apiVersion) body.properties.apiVersion = { type: 'string', enum: [gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version] };
    if (body.properties?.kind) body.properties.kind = { type: 'string', enum: [gvk.kind] };
    writeFileSync(join(outDir, file), JSON.stringify(body));
    count++;
  }
}
console.error(`[openapi2jsonschema] wrote ${count} schemas to ${outDir}`);
