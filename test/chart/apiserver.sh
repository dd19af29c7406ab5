#!/usr/bin/env bash
# The chart against a real kube-apiserver (the pinned version, built by the toolchain) on etcd, no
# kubelet: the strictest validation there is, plus what only a server can show.
#   1. server-side dry run (strict field validation, admission) of defaults and every ci file in a
#      namespace that enforces the `restricted` Pod Security Standard (warn + enforce): any
#      warning fails, so the members' pod template and the helm test pod must be restricted;
#      the prometheus-operator CRDs are installed first, so the monitors and rules are checked by
#      the server against them too
#   2. a real `helm install`, then `helm upgrade` with other values: the chart's Secret keeps
#      every password (lookup), the StatefulSet changes; `helm uninstall` keeps the Secret
# Needs: .tools/bin/{kube-apiserver,kubectl,helm}, etcd and openssl (bash test/toolchain/install.sh
# debs helm kube), and the CRDs' directory as $1 (run.sh passes the prometheus-operator module's).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH"
CHART=charts/postgres
CRD_DIR=${1:?usage: apiserver.sh CRD_DIR}
for t in kube-apiserver kubectl helm etcd openssl; do
  command -v "$t" >/dev/null || { echo "apiserver: $t not found (bash test/toolchain/install.sh debs helm kube)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/pga-chart-api.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
ETCD_C=$(port); ETCD_P=$(port); API=$(port)
TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
echo "$TOKEN,admin,uid-admin,system:masters" > "$WORK/tokens.csv"
openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null

etcd --name chart --data-dir "$WORK/etcd" --log-level warn \
  --listen-client-urls "http://127.0.0.1:$ETCD_C" --advertise-client-urls "http://127.0.0.1:$ETCD_C" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_P" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_P" \
  --initial-cluster "chart=http://127.0.0.1:$ETCD_P" > "$WORK/etcd.log" 2>&1 &
PIDS+=($!)
# No controller manager, hence no default ServiceAccounts: the ServiceAccount admission plugin
# would reject every Pod, so it is off. PodSecurity (on by default) is what this test is about.
kube-apiserver --etcd-servers "http://127.0.0.1:$ETCD_C" --secure-port "$API" --bind-address 127.0.0.1 \
  --advertise-address 127.0.0.1 --cert-dir "$WORK/certs" --token-auth-file "$WORK/tokens.csv" \
  --service-account-key-file "$WORK/sa.pub" --service-account-signing-key-file "$WORK/sa.key" \
  --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/24 \
  --authorization-mode RBAC --disable-admission-plugins ServiceAccount \
  --enable-priority-and-fairness=false > "$WORK/apiserver.log" 2>&1 &
PIDS+=($!)
cat > "$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: chart, cluster: {server: "https://127.0.0.1:$API", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$TOKEN"}}]
contexts: [{name: chart, context: {cluster: chart, user: admin}}]
current-context: chart
EOF
chmod 600 "$WORK/kubeconfig"
export KUBECONFIG="$WORK/kubeconfig"
HELM_TMP="$WORK/helm"; export HELM_CONFIG_HOME="$HELM_TMP/config" HELM_CACHE_HOME="$HELM_TMP/cache" HELM_DATA_HOME="$HELM_TMP/data"
t0=$(date +%s)
until kubectl get --raw /readyz >/dev/null 2>&1; do
  if [ $(( $(date +%s) - t0 )) -gt 120 ]; then echo "apiserver: not ready after 120 s"; tail -20 "$WORK/apiserver.log"; exit 1; fi
  sleep 1
done
echo "apiserver: kube-apiserver $(kubectl version -o json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).serverVersion.gitVersion))') ready after $(( $(date +%s) - t0 )) s"

kubectl apply --server-side -f "$CRD_DIR/monitoring.coreos.com_servicemonitors.yaml" -f "$CRD_DIR/monitoring.coreos.com_podmonitors.yaml" \
  -f "$CRD_DIR/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
kubectl wait --for condition=Established --timeout 60s crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

failures=0
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }
ns=0
# dry NAME [VALUES_FILE]: renders (hooks included) and applies with --dry-run=server into a fresh
# namespace that enforces and warns on `restricted`; fails on an error or any warning.
dry() {
  local name=$1; shift
  ns=$((ns + 1)); local n="dry-$ns"
  kubectl create namespace "$n" >/dev/null
  kubectl label namespace "$n" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
  local args=(template pg "$CHART" --namespace "$n")
  [ $# -gt 0 ] && args+=(-f "$1")
  helm "${args[@]}" > "$WORK/$n.yaml"
  local out rc=0
  out=$(kubectl apply --dry-run=server --validate=strict -n "$n" -f "$WORK/$n.yaml" 2>&1) || rc=$?
  if [ "$rc" != 0 ] || grep -qi 'warning' <<<"$out"; then fail "server dry run $name"; sed 's/^/       | /' <<<"$out"; return; fi
  echo "  ok   server dry run $name ($(grep -c ' (server dry run)' <<<"$out") objects)"
}
dry defaults
for f in "$CHART"/ci/*-values.yaml; do dry "$(basename "$f")" "$f"; done
# The check itself must bite: a privileged sidecar is refused by the same namespace.
cat > "$WORK/bad.yaml" <<'EOF'
sidecars:
  - name: root
    image: busybox:1.36
    securityContext: {privileged: true}
EOF
if out=$(dry "a privileged sidecar (must fail)" "$WORK/bad.yaml"); then :; fi
if grep -q 'FAIL' <<<"$out" && grep -q 'privileged' <<<"$out"; then echo "  ok   a privileged sidecar is refused (restricted)"; else fail "a privileged sidecar was not refused:"; echo "$out"; fi

# A real install, an upgrade with other values, an uninstall.
kubectl create namespace db >/dev/null
kubectl label namespace db pod-security.kubernetes.io/enforce=restricted >/dev/null
secret() { kubectl get secret -n db pg-postgres -o jsonpath='{.data}'; }
if helm install pg "$CHART" -n db --wait=false > "$WORK/install.out" 2>&1; then
  before=$(secret)
  grep -q 'PostgreSQL cluster pg-postgres: 3 member(s)' "$WORK/install.out" || fail "helm install printed no NOTES"
  helm upgrade pg "$CHART" -n db --set replicas=5 --set postgresql.parameters.max_connections=300 > "$WORK/upgrade.out" 2>&1 || { fail "helm upgrade"; cat "$WORK/upgrade.out"; }
  after=$(secret)
  [ "$(kubectl get sts -n db pg-postgres -o jsonpath='{.spec.replicas}')" = 5 ] || fail "upgrade did not scale the StatefulSet to 5"
  if [ -n "$before" ] && [ "$before" = "$after" ]; then echo "  ok   helm upgrade kept every password of the Secret ($(node -e 'console.log(Object.keys(JSON.parse(process.argv[1])).length)' "$after") keys)"
  else fail "helm upgrade changed the Secret: $before -> $after"; fi
  helm uninstall pg -n db >/dev/null
  if [ "$(secret)" = "$before" ]; then echo "  ok   helm uninstall kept the Secret"; else fail "helm uninstall deleted the Secret"; fi
  [ -z "$(kubectl get sts -n db -o name)" ] || fail "helm uninstall left the StatefulSet"
else
  fail "helm install"; sed 's/^/       | /' "$WORK/install.out"
fi

[ "$failures" = 0 ] || { echo "apiserver: $failures check(s) failed"; exit 1; }
echo "apiserver: all checks passed"
