#!/usr/bin/env bash
# The chart suite (`npm run test:chart`, part of `npm test`). Runs every check, then exits non-zero
# when any failed:
#   1. helm lint --strict: defaults and every charts/postgres/ci/*-values.yaml
#   2. helm unittest: the suites in charts/postgres/tests/ (one per template, schema rejections)
#   3. helm template | kubeconform -strict: defaults and every ci file, against the Kubernetes
#      schemas of every version in SCHEMA_VERSIONS (test/toolchain/versions.sh), and the
#      ServiceMonitor, PodMonitor and PrometheusRule against strict schemas made from the
#      prometheus-operator CRDs (its Go module, PROMETHEUS_OPERATOR_VERSION; test/chart/crd-schemas.mjs)
#   4. the PrometheusRule's alerts: `promtool check rules` and `promtool test rules` on
#      synthetic series (test/chart/alerts.sh, test/chart/alerts.test.yaml)
#   5. bad values (test/chart/bad-values/*.yaml) fail `helm template` with the message they expect
#   6. the README's and the chart README's values tables, the @param comments, values.yaml and
#      values.schema.json agree; Chart.yaml's metadata (Artifact Hub images, license, PostgreSQL
#      major) agrees with the values and the image build (test/chart/chart-metadata.mjs); the
#      packaged .tgz lints and `helm show readme` prints the chart README (test/chart/package.sh);
#      every size the schema types is refused in words by templates/_validate-sizes.tpl
#      (test/chart/sizes.mjs; a schema pattern would print a raw regular expression)
#   7. every example in docs/chart.md and docs/backup.md is the ci file it names; the commands of
#      the README's quick start and of docs/chart.md name objects, keys and labels the chart really
#      renders; backup.json as rendered is accepted by the entrypoint's parser
#      (test/chart/backup-contract.mjs, builds dist/ when it is missing or stale)
#      and the chart's postgresql.parameters list (templates/_parameters-list.tpl) is the entrypoint's
#      (scripts/core/parameters.ts): same entries, same refusals in the same words (test/chart/parameters.mjs)
#      changing postgresql.parameters alone leaves the StatefulSet unchanged: the members apply
#      them live (test/chart/live-config.sh, defaults and every ci file)
#   8. a real kube-apiserver (test/chart/apiserver.sh): `kubectl apply --dry-run=server` of every
#      rendering into namespaces enforcing the restricted Pod Security Standard, with the CRDs
#      installed (any warning fails); install, upgrade (passwords kept), uninstall (Secret kept)
#   9. the `helm test` pod's script, as rendered, against a real PostgreSQL primary and replica
#      (test/chart/helm-test-pod.sh: passes when healthy or catching up, fails when it must)
# Tools: helm, its unittest plugin, kubeconform, kube-apiserver and kubectl from `bash
# test/toolchain/install.sh debs helm unittest kubeconform schemas kube` (linked into .tools/bin;
# cached under ~/.cache/pg-autopilot); etcd and PostgreSQL from Debian (the `debs` step);
# promtool and the prometheus-operator CRDs are fetched below (Go module proxy, cached).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
. test/toolchain/versions.sh
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
export PATH="$ROOT/.tools/bin:$PATH"
export HELM_PLUGINS="$CACHE/helm-plugins-$HELM_VERSION"
# Keep helm away from the user's repositories and registry logins.
HELM_TMP=$(mktemp -d); trap 'rm -rf "$HELM_TMP"' EXIT
export HELM_CONFIG_HOME="$HELM_TMP/config" HELM_CACHE_HOME="$HELM_TMP/cache" HELM_DATA_HOME="$HELM_TMP/data"

CHART=charts/postgres
RELEASE=pg
NAMESPACE=db
# The monitoring.coreos.com CRDs the chart's ServiceMonitor, PodMonitor and PrometheusRule are
# validated against: from the prometheus-operator Go module (example/prometheus-operator-crd).
PROMETHEUS_OPERATOR_VERSION=v0.85.0
CRD_SCHEMAS="$CACHE/crd-schemas/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
# Override files the suite insists on (each a documented scenario).
REQUIRED_CI=(ephemeral vault existing-secret tls metrics one-member seven-members sync sync-strict hard-anti-affinity)

for tool in helm kubeconform node; do
  command -v "$tool" >/dev/null || { echo "chart: $tool not found; run: bash test/toolchain/install.sh helm unittest kubeconform schemas" >&2; exit 2; }
done
[ -x "$HELM_PLUGINS/unittest/bin/untt" ] || { echo "chart: helm-unittest not installed in $HELM_PLUGINS; run: bash test/toolchain/install.sh unittest" >&2; exit 2; }
for v in $SCHEMA_VERSIONS; do
  [ -f "$CACHE/schemas/v$v-standalone-strict/.done" ] || { echo "chart: Kubernetes $v schemas missing; run: bash test/toolchain/install.sh schemas" >&2; exit 2; }
done

if [ ! -f "$CRD_SCHEMAS/.done" ] || [ ! -d "$CRD_SCHEMAS/crds" ]; then
  command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
  crd_src=$(GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).Dir??""))') || crd_src=
  [ -n "$crd_src" ] || { echo "chart: could not fetch the prometheus-operator $PROMETHEUS_OPERATOR_VERSION Go module (its CRDs)" >&2; exit 2; }
  rm -rf "$CRD_SCHEMAS"
  node test/chart/crd-schemas.mjs "$CRD_SCHEMAS" "$crd_src"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml || exit 2
  mkdir -p "$CRD_SCHEMAS/crds"  # the CRDs themselves, for the API server checks
  cp "$crd_src"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml "$CRD_SCHEMAS/crds/"
  touch "$CRD_SCHEMAS/.done"
fi

# promtool (Prometheus' rule checker and rule unit tester), built from the prometheus Go module's
# source (its go.mod has exclude lines, so `go install` refuses it); cached like the toolchain.
PROMETHEUS_VERSION=v0.307.3
PROMTOOL="$CACHE/promtool-$PROMETHEUS_VERSION/promtool"
if [ ! -x "$PROMTOOL" ]; then
  echo "chart: building promtool $PROMETHEUS_VERSION (once; several minutes cold)"
  command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
  ( export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
    src=$(go mod download -json "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" \
      | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).Dir??""))')
    [ -n "$src" ] || exit 1
    d="$CACHE/promtool-$PROMETHEUS_VERSION"
    rm -rf "$d.src" "$d.tmp"; mkdir -p "$d.tmp"; cp -r "$src" "$d.src"; chmod -R u+w "$d.src"
    (cd "$d.src" && go build -trimpath -ldflags "-s -w" -o "$d.tmp/promtool" ./cmd/promtool)
    rm -rf "$d" && mv "$d.tmp" "$d" && rm -rf "$d.src" ) || { echo "chart: could not build promtool $PROMETHEUS_VERSION" >&2; exit 2; }
fi
export PROMTOOL

failed=()
passed=0
# check NAME CMD...: runs CMD, prints its output only when it fails.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); printf '  ok    %s\n' "$name"
  else
    failed+=("$name"); printf '  FAIL  %s\n' "$name"; printf '%s\n' "$out" | sed 's/^/        /'
  fi
}

shopt -s nullglob
ci_files=("$CHART"/ci/*-values.yaml)
for want in "${REQUIRED_CI[@]}"; do
  [ -f "$CHART/ci/$want-values.yaml" ] || failed+=("required override file $CHART/ci/$want-values.yaml is missing")
done

echo "chart: helm lint --strict"
check "lint defaults" helm lint --strict "$CHART"
for f in "${ci_files[@]}"; do check "lint $(basename "$f")" helm lint --strict "$CHART" -f "$f"; done

echo "chart: helm unittest"
check "unittest $CHART/tests" helm unittest --strict "$CHART"
# every_template_tested: each template (not the _helpers) is listed by at least one suite.
every_template_tested() {
  local t rel missing=0
  while IFS= read -r t; do
    rel=${t#"$CHART/templates/"}
    grep -qxE "  - $rel" "$CHART"/tests/*_test.yaml || { echo "no suite in $CHART/tests lists $rel under templates:"; missing=1; }
  done < <(find "$CHART/templates" -type f ! -name '_*' | sort)
  return "$missing"
}
check "every template has a unittest suite" every_template_tested

echo "chart: helm template | kubeconform -strict ($SCHEMA_VERSIONS)"
# validate VERSION [VALUES_FILE]: renders (hooks included) for VERSION and validates every object.
validate() {
  local v=$1; shift
  local args=(template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --kube-version "$v")
  [ $# -gt 0 ] && args+=(-f "$1")
  local rendered; rendered=$(helm "${args[@]}") || return 1
  printf '%s\n' "$rendered" | kubeconform -strict -summary -kubernetes-version "$v" \
    -schema-location "$CACHE/schemas/{{ .NormalizedKubernetesVersion }}-standalone-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$CRD_SCHEMAS/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" -
}
for v in $SCHEMA_VERSIONS; do
  check "kubeconform $v defaults" validate "$v"
  for f in "${ci_files[@]}"; do check "kubeconform $v $(basename "$f")" validate "$v" "$f"; done
done

echo "chart: alerts (promtool check rules, promtool test rules)"
check "alerts: rules parse and fire as test/chart/alerts.test.yaml says" bash test/chart/alerts.sh

echo "chart: bad values are rejected by name"
# Each file's first line is "# expect: <text the error must contain>".
rejects() {
  local f=$1 expect out
  expect=$(sed -n '1s/^# expect: //p' "$f")
  [ -n "$expect" ] || { echo "$f: first line must be '# expect: <message>'"; return 1; }
  if out=$(helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$f" 2>&1); then
    echo "helm template accepted $f (expected an error containing: $expect)"; return 1
  fi
  grep -qF -- "$expect" <<<"$out" || { printf 'error does not contain %s:\n%s\n' "$expect" "$out"; return 1; }
}
for f in test/chart/bad-values/*.yaml; do check "rejects $(basename "$f")" rejects "$f"; done

echo "chart: docs"
check "README and chart README values tables, Chart.yaml metadata match values.yaml" node test/chart/values-table.mjs --check
check "the packaged chart: lint, helm show readme, annotations, no tests in the .tgz" bash test/chart/package.sh
check "every size in values.schema.json is checked in words (_validate-sizes.tpl)" node test/chart/sizes.mjs
check "docs/chart.md and docs/backup.md examples are the ci files" node test/chart/doc-examples.mjs
check "README quick start and docs/chart.md commands name real objects" node test/chart/quickstart.mjs

echo "chart: the entrypoint reads what the chart renders"
check "postgresql.parameters alone leave the StatefulSet unchanged (applied live), pg_hba still restarts" bash test/chart/live-config.sh
check "backup.json of the ci files is accepted by loadBackup() as the values say" node test/chart/backup-contract.mjs
check "users, databases and their passwords leave the pod template alone (no restart)" node test/chart/roles-template.mjs
check "postgresql.parameters: the chart refuses what the entrypoint refuses, in its words (scripts/core/parameters.ts)" node test/chart/parameters.mjs --check

echo "chart: against a real kube-apiserver $KUBE_VERSION (restricted namespaces, CRDs installed)"
check "server-side dry run, install, upgrade keeps the Secret, uninstall" bash test/chart/apiserver.sh "$CRD_SCHEMAS/crds"

echo "chart: helm test pod against real PostgreSQL"
check "helm test pod script (primary + streaming replica)" bash test/chart/helm-test-pod.sh

total=$((passed + ${#failed[@]}))
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nchart: %d of %d checks failed:\n' "${#failed[@]}" "$total"; printf '  - %s\n' "${failed[@]}"
  exit 1
fi
printf '\nchart: all %d checks passed\n' "$total"
