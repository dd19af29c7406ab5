#!/usr/bin/env bash
# The demo: a 3-member pg-autopilot cluster from the chart, on the current kube context when one
# answers, else on the lab (test/lab/lab.sh up). Builds the image, loads it into the lab's
# containerd, `helm upgrade --install`s charts/postgres, waits for Ready and prints the cluster.
#
#   test/lab/demo.sh [helm flags...]       e.g. --set replicas=5
#
# Environment: NAMESPACE (pga-demo), RELEASE (demo), TIMEOUT (600 s), SKIP_BUILD=1 to use the
# image already built.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
NAMESPACE=${NAMESPACE:-pga-demo}; RELEASE=${RELEASE:-demo}; TIMEOUT=${TIMEOUT:-600}
HELM=$ROOT/.tools/bin/helm; KUBECTL=$ROOT/.tools/bin/kubectl
log() { printf '[demo] %s\n' "$*" >&2; }
[ -x "$HELM" ] && [ -x "$KUBECTL" ] || bash "$ROOT/test/toolchain/install.sh" helm kube >/dev/null
t0=$(date +%s)

# 1. a cluster: the current context if it answers, else the lab
on_lab=0
if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ] || ! "$KUBECTL" version --request-timeout=5s >/dev/null 2>&1; then
  export KUBECONFIG; KUBECONFIG=$(bash "$HERE/lab.sh" up | tail -1); on_lab=1
elif [ "$(bash "$HERE/lab.sh" kubeconfig 2>/dev/null)" = "${KUBECONFIG:-}" ]; then
  on_lab=1
fi
log "cluster: $("$KUBECTL" config current-context) ($("$KUBECTL" get nodes --no-headers 2>/dev/null | wc -l) node(s))"

# 2. the image
TAG=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml")
if [ "${SKIP_BUILD:-0}" != 1 ]; then bash "$ROOT/images/postgres/build.sh" postgres >/dev/null; fi
if [ "$on_lab" = 1 ]; then bash "$HERE/lab.sh" images; else
  log "not the lab: make lab.local/pg-autopilot/postgres:$TAG available to the cluster's nodes yourself"; fi

# 3. the chart
log "helm upgrade --install $RELEASE charts/postgres -n $NAMESPACE"
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/postgres" -n "$NAMESPACE" --create-namespace \
  --set image.registry=lab.local --set image.repository=pg-autopilot/postgres --set image.tag="$TAG" \
  --set image.pullPolicy=IfNotPresent "$@" >/dev/null
sel=app.kubernetes.io/instance=$RELEASE
want=$("$KUBECTL" -n "$NAMESPACE" get statefulset -l "$sel" -o jsonpath='{.items[0].spec.replicas}')
log "waiting for $want Ready members (up to ${TIMEOUT}s)"
deadline=$(( $(date +%s) + TIMEOUT ))
until [ "$("$KUBECTL" -n "$NAMESPACE" get pods -l "$sel" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" = "$want" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    "$KUBECTL" -n "$NAMESPACE" get pods -l "$sel" -o wide -L pg-autopilot.io/role
    log "not Ready after ${TIMEOUT}s"; exit 1
  fi
  sleep 2
done
log "Ready: $want members, $(( $(date +%s) - t0 ))s after start"

# 4. the cluster as its operators see it
"$KUBECTL" -n "$NAMESPACE" get pods -l "$sel" -o wide -L pg-autopilot.io/role
primary=$("$KUBECTL" -n "$NAMESPACE" get pods -l "$sel,pg-autopilot.io/role=primary" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
"$KUBECTL" -n "$NAMESPACE" exec "${primary:-$("$KUBECTL" -n "$NAMESPACE" get pods -l "$sel" -o jsonpath='{.items[0].metadata.name}')}" -c postgres -- autopilot status
log "KUBECONFIG=$KUBECONFIG; rw: $RELEASE-postgres-rw.$NAMESPACE, ro: $RELEASE-postgres-ro.$NAMESPACE (port 5432)"
