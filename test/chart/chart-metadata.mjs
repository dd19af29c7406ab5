// Checks that what the packaged chart says about itself agrees with what it deploys and with the
// image build, so that Artifact Hub, `helm show chart` and the READMEs never advertise another
// image, PostgreSQL major, license or version than the chart's own. Used by values-table.mjs --check.
//
//   - Chart.yaml has home, sources, icon, maintainers, keywords and the Artifact Hub annotations
//   - appVersion ends in -pgNN; NN is the pg-autopilot.io/postgresql-major annotation and the default
//     PG_MAJOR of images/postgres/Dockerfile and images/postgres/build.sh
//   - artifacthub.io/images names the default images of values.yaml (the postgres image at appVersion)
//   - artifacthub.io/license is package.json's license
//   - every image tag `…/postgres:X` and chart `--version X` / `postgres-X.tgz` in the given texts
//     (the install commands of the READMEs) are appVersion and the chart version
import yaml from 'js-yaml';

const imageRef = (img, defaultTag) => {
  let ref = img.repository;
  if (img.registry) ref = `${img.registry}/${ref}`;
  const tag = img.tag || defaultTag;
  if (tag) ref += `:${tag}`;
  if (img.digest) ref += `@${img.digest}`;
  return ref;
};

/** @returns {string[]} what disagrees, each saying how to fix it. */
export function checkMetadata({ chartText, values, packageJson, dockerfile, buildSh, texts }) {
  const errors = [];
  const chart = yaml.load(chartText);
  const ann = chart.annotations ?? {};
  for (const k of ['home', 'sources', 'icon', 'maintainers', 'keywords']) {
    if (!chart[k] || (Array.isArray(chart[k]) && chart[k].length === 0)) errors.push(`Chart.yaml: ${k} is missing`);
  }
  for (const k of ['artifacthub.io/images', 'artifacthub.io/changes', 'artifacthub.io/license', 'pg-autopilot.io/postgresql-major']) {
    if (!ann[k]) errors.push(`Chart.yaml: annotation ${k} is missing`);
  }
  const app = String(chart.appVersion ?? '');
  const m = /-pg(\d+)$/.exec(app);
  if (!m) errors.push(`Chart.yaml: appVersion "${app}" must end in -pgNN, the PostgreSQL major of the image (e.g. 0.1.0-pg17)`);
  const major = m?.[1];
  if (major && String(ann['pg-autopilot.io/postgresql-major']) !== major) {
    errors.push(`Chart.yaml: annotation pg-autopilot.io/postgresql-major is "${ann['pg-autopilot.io/postgresql-major']}" but appVersion ${app} says ${major}; make them agree`);
  }
  const dockerMajor = /^ARG PG_MAJOR=(\d+)$/m.exec(dockerfile)?.[1];
  if (major && dockerMajor !== major) errors.push(`images/postgres/Dockerfile: ARG PG_MAJOR=${dockerMajor} but appVersion ${app} says ${major}; make them agree`);
  const buildMajor = /^PG_MAJOR=\$\{PG_MAJOR:-(\d+)\}$/m.exec(buildSh)?.[1];
  if (major && buildMajor !== major) errors.push(`images/postgres/build.sh: default PG_MAJOR ${buildMajor} but appVersion ${app} says ${major}; make them agree`);

  let images = [];
  try { images = yaml.load(ann['artifacthub.io/images'] ?? '') ?? []; } catch (e) { errors.push(`Chart.yaml: artifacthub.io/images is not YAML: ${e.message}`); }
  const want = { postgres: imageRef(values.image, app), 'postgres-exporter': imageRef(values.metrics.image, '') };
  const got = Object.fromEntries((Array.isArray(images) ? images : []).map((i) => [i.name, i.image]));
  for (const [name, ref] of Object.entries(want)) {
    if (got[name] !== ref) errors.push(`Chart.yaml: artifacthub.io/images lists ${name} as "${got[name]}" but values.yaml deploys "${ref}"; make them agree`);
  }
  for (const name of Object.keys(got)) if (!(name in want)) errors.push(`Chart.yaml: artifacthub.io/images lists ${name}, which the chart does not deploy`);
  if (ann['artifacthub.io/license'] !== packageJson.license) {
    errors.push(`Chart.yaml: artifacthub.io/license is "${ann['artifacthub.io/license']}" but package.json says "${packageJson.license}"; make them agree`);
  }
  try {
    const changes = yaml.load(ann['artifacthub.io/changes'] ?? '');
    const kinds = new Set(['added', 'changed', 'deprecated', 'removed', 'fixed', 'security']);
    if (!Array.isArray(changes) || changes.some((c) => !kinds.has(c?.kind) || !c?.description)) {
      errors.push(`Chart.yaml: artifacthub.io/changes must be a list of {kind: ${[...kinds].join('|')}, description}`);
    }
  } catch (e) { errors.push(`Chart.yaml: artifacthub.io/changes is not YAML: ${e.message}`); }

  for (const [file, text] of Object.entries(texts)) {
    for (const t of text.matchAll(/\/postgres:([0-9][^\s`'"@]*)/g)) {
      if (t[1] !== app) errors.push(`${file}: image tag postgres:${t[1]} is not appVersion ${app}; write postgres:${app}`);
    }
    for (const t of text.matchAll(/--version[ =]([0-9][^\s`'"]*)|postgres-([0-9][^\s`]*?)\.tgz/g)) {
      const v = t[1] ?? t[2];
      if (v !== String(chart.version)) errors.push(`${file}: chart version ${v} is not Chart.yaml's ${chart.version}; write ${chart.version}`);
    }
  }
  return errors;
}
