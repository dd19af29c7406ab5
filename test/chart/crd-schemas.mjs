// JSON schemas for kubeconform from CustomResourceDefinitions, so the chart's ServiceMonitor,
// PodMonitor and PrometheusRule are validated as strictly as the built-in kinds.
//
//   node test/chart/crd-schemas.mjs OUT_DIR CRD.yaml...
//
// Writes OUT_DIR/<kind lowercased>_<version>.json for every served version of every CRD (the
// file names kubeconform's `{{ .ResourceKind }}_{{ .ResourceAPIVersion }}` location expects).
// Strict like the built-in schemas: every object schema that lists its properties and says
// nothing about others (and does not preserve unknown fields) rejects unknown keys; OpenAPI's
// `nullable` becomes a "null" type.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A deep copy of an OpenAPI v3 (structural) schema as a strict JSON schema. */
export function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!isMap(schema)) return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'enum' || k === 'default' || k === 'example' || k === 'required') out[k] = v;
    else if (k === 'properties' || k === 'patternProperties' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, strict(s)]));
    } else out[k] = strict(v);
  }
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  delete out.nullable;
  if (out.properties && !('additionalProperties' in out) && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/** [{file, schema}] for every served version of one CRD. */
export function schemasOf(crd) {
  if (crd?.kind !== 'CustomResourceDefinition') throw new Error(`not a CustomResourceDefinition: ${crd?.kind}`);
  const kind = crd.spec.names.kind;
  return crd.spec.versions.filter((v) => v.served !== false && v.schema?.openAPIV3Schema).map((v) => {
    const schema = strict(v.schema.openAPIV3Schema);
    // apiVersion and kind are checked by kubeconform itself; pin them anyway.
    schema.properties ??= {};
    schema.properties.apiVersion = { type: 'string', enum: [`${crd.spec.group}/${v.name}`] };
    schema.properties.kind = { type: 'string', enum: [kind] };
    return { file: `${kind.toLowerCase()}_${v.name}.json`, schema: { $schema: 'http://json-schema.org/schema#', ...schema } };
  });
}

function main() {
  const [out, ...files] = process.argv.slice(2);
  if (!out || files.length === 0) { console.error('usage: crd-schemas.mjs OUT_DIR CRD.yaml...'); process.exit(2); }
  mkdirSync(out, { recursive: true });
  let n = 0;
  for (const f of files) {
    for (const doc of yaml.loadAll(readFileSync(f, 'utf8'))) {
      if (!doc) continue;
      for (const { file, schema } of schemasOf(doc)) { writeFileSync(join(out, file), JSON.stringify(schema)); n++; }
    }
  }
  console.error(`crd-schemas: wrote ${n} schemas to ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
