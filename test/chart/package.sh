#!/usr/bin/env bash
# The chart as users get it: `helm package` into a temporary directory, then checks on the .tgz:
# `helm lint --strict` passes, `helm show readme` prints charts/postgres/README.md, `helm show
# chart` carries the Artifact Hub annotations, and the package holds no test suite or ci file
# (.helmignore). Needs helm on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
OUT=$(mktemp -d /tmp/pga-chart-pkg.XXXXXX); trap 'rm -rf "$OUT"' EXIT
helm package charts/postgres --destination "$OUT" >/dev/null
TGZ=$(ls "$OUT"/postgres-*.tgz)
version=$(helm show chart "$TGZ" | sed -n 's/^version: //p')
[ "$(basename "$TGZ")" = "postgres-$version.tgz" ] || { echo "package: unexpected file $(basename "$TGZ")"; exit 1; }
helm lint --strict "$TGZ" >/dev/null || { helm lint --strict "$TGZ"; exit 1; }
# (helm prints one more newline at the end; $(...) drops trailing newlines on both sides)
[ "$(helm show readme "$TGZ")" = "$(cat charts/postgres/README.md)" ] \
  || { echo "package: helm show readme of the .tgz is not charts/postgres/README.md"; exit 1; }
for a in artifacthub.io/images artifacthub.io/changes artifacthub.io/license pg-autopilot.io/postgresql-major; do
  helm show chart "$TGZ" | grep -q "^  $a:" || { echo "package: helm show chart lacks the annotation $a"; exit 1; }
done
if tar -tzf "$TGZ" | grep -E '^postgres/(tests|ci)/'; then echo "package: test suites or ci files are in the .tgz (see .helmignore)"; exit 1; fi
# The exporter's launcher comes from files/ (.Files.Get, which renders "" for a missing file): the
# packaged chart must carry it and render it verbatim into the metrics container's command.
tar -xzOf "$TGZ" postgres/files/exporter-launcher.sh | cmp -s - charts/postgres/files/exporter-launcher.sh \
  || { echo "package: files/exporter-launcher.sh is missing from the .tgz or differs"; exit 1; }
helm template pg "$TGZ" --set metrics.enabled=true --set 'networkPolicy.metricsFrom[0].podSelector.matchLabels.app=prometheus' \
    --show-only templates/statefulset.yaml > "$OUT/sts.yaml"
node -e '
  const fs = require("fs"), yaml = require("js-yaml");
  const c = yaml.load(fs.readFileSync(process.argv[1], "utf8")).spec.template.spec.containers.find((x) => x.name === "metrics");
  const want = fs.readFileSync("charts/postgres/files/exporter-launcher.sh", "utf8");
  if (!c || c.command[0] !== "/bin/sh" || c.command[2] !== want) process.exit(1);
' "$OUT/sts.yaml" || { echo "package: the metrics container of the packaged chart does not run files/exporter-launcher.sh verbatim"; exit 1; }
echo "package: $(basename "$TGZ") ($(du -k "$TGZ" | cut -f1) kB): lint, readme, annotations, contents ok"
