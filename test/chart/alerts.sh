#!/usr/bin/env bash
# The chart's alerts, as rendered, checked by Prometheus' own promtool: `promtool check rules`
# (PromQL parses, templates in annotations are valid) and `promtool test rules
# test/chart/alerts.test.yaml test/chart/alerts-backup-age.test.yaml` (each alert fires, or stays quiet, on synthetic series, with the
# labels and annotations users will see). promtool: PROMTOOL, else promtool on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH"
PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
[ -n "$PROMTOOL" ] && [ -x "$PROMTOOL" ] || { echo "alerts: promtool not found (set PROMTOOL)" >&2; exit 2; }

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
helm template pg charts/postgres --namespace db --set metrics.prometheusRule.enabled=true \
  --set backup.enabled=true,backup.s3.endpoint=s3.example.internal,backup.s3.bucket=pg-backups,backup.s3.existingSecret=pg-backup-s3 \
  --show-only templates/prometheusrule.yaml > "$WORK/prometheusrule.yaml"
# A PrometheusRule's spec is a Prometheus rule file.
node --input-type=module -e '
  import { readFileSync, writeFileSync } from "node:fs";
  import yaml from "js-yaml";
  const [src, dst] = process.argv.slice(1);
  const pr = yaml.load(readFileSync(src, "utf8"));
  if (pr.kind !== "PrometheusRule") throw new Error("not a PrometheusRule: " + pr.kind);
  writeFileSync(dst, yaml.dump(pr.spec, { lineWidth: -1 }));
' "$WORK/prometheusrule.yaml" "$WORK/rules.yaml"
cp test/chart/alerts.test.yaml test/chart/alerts-backup-age.test.yaml "$WORK/"
"$PROMTOOL" check rules "$WORK/rules.yaml"
"$PROMTOOL" test rules "$WORK/alerts.test.yaml" "$WORK/alerts-backup-age.test.yaml"
