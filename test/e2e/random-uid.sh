# shellcheck shell=bash
# e2e step: a random-uid install, as OpenShift's restricted SCC runs the image (issue 13): every
# container as a uid the image does not know (random, >= 100000), group 0, fsGroup 0. Checks:
# 3 members Ready with exactly one primary; postgres runs as that uid with group 0 and the name
# postgres (the launcher's nss_wrapper entry); the data directory belongs to it; a row written on
# the primary is read back on every replica; `helm test` passes (its pod runs as that uid too).
#
# Sourced by test/e2e/run.sh (full mode), which provides HELM, KUBECTL, CHART_TGZ, IMAGE_ARGS, log,
# fail, W and install.txt. By hand, against the lab, with an image of your own name:
#   NS=pga-h4-ruid IMAGE=lab.local/pg-autopilot/postgres-h4 bash test/e2e/random-uid.sh
# (the image imported into the lab's containerd first: ctr -n k8s.io images import ARCHIVE).
ruid_standalone=0
if [ -z "${CHART_TGZ:-}" ]; then   # run by hand: what run.sh would provide
  set -euo pipefail
  ruid_standalone=1
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  HELM=$ROOT/.tools/bin/helm KUBECTL=$ROOT/.tools/bin/kubectl
  export KUBECONFIG=${KUBECONFIG:-$(bash "$ROOT/test/lab/lab.sh" kubeconfig)}
  W=$(mktemp -d /tmp/pga-e2e-ruid.XXXXXX)
  CHART_TGZ=$ROOT/charts/postgres
  ruid_image=${IMAGE:-lab.local/pg-autopilot/postgres}
  ruid_tag=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml")}
  IMAGE_ARGS=(--set "image.registry=${ruid_image%%/*}" --set "image.repository=${ruid_image#*/}" --set "image.tag=$ruid_tag" --set image.pullPolicy=IfNotPresent)
  log() { printf '[e2e-ruid %s] %s\n' "$(date -u +%T)" "$*" >&2; }
  fail() { log "FAIL: $*"; exit 1; }
fi

random_uid_step() {
  local ns=${RUID_NS:-pga-e2e-ruid} rel=ruid uid t0 t n pods prim p out token
  uid=$(shuf -i 100000-1999999 -n 1)
  local kk=("$KUBECTL" -n "$ns") sel="app.kubernetes.io/instance=$rel,app.kubernetes.io/name=postgres"
  log "helm install $rel in $ns: runAsUser $uid, runAsGroup 0, fsGroup 0 (OpenShift-style)"
  t0=$(date +%s)
  "$HELM" install "$rel" "$CHART_TGZ" -n "$ns" --create-namespace "${IMAGE_ARGS[@]}" \
    --set "podSecurityContext.runAsUser=$uid" --set podSecurityContext.runAsGroup=0 --set podSecurityContext.fsGroup=0 \
    --set "containerSecurityContext.runAsUser=$uid" --set containerSecurityContext.runAsGroup=0 >/dev/null
  # 3 Ready, exactly one primary
  while :; do
    n=$("${kk[@]}" get pods -l "$sel" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
    prim=$("${kk[@]}" get pods -l "$sel,pg-autopilot.io/role=primary" -o jsonpath='{.items[*].metadata.name}')
    [ "$n" = 3 ] && [ "$(wc -w <<< "$prim")" = 1 ] && break
    if [ $(( $(date +%s) - t0 )) -gt "${E2E_TIMEOUT:-600}" ]; then
      "${kk[@]}" get pods -o wide >&2; "${kk[@]}" logs -l "$sel" -c postgres --tail 20 >&2 || true
      fail "random uid $uid: $n/3 Ready, primaries [$prim] after ${E2E_TIMEOUT:-600}s"
    fi
    sleep 1
  done
  t=$(( $(date +%s) - t0 ))
  log "random uid $uid: 3 Ready, primary $prim, ${t}s after helm install"
  # who postgres runs as: through the image's launcher (as the container's own command does)
  out=$("${kk[@]}" exec "$prim" -c postgres -- autopilot sh -c 'echo "$(id -u) $(id -g) $(whoami) $(stat -c %u:%a "$PGA_DATA_DIR")"')
  [ "$out" = "$uid 0 postgres $uid:700" ] || fail "random uid: uid gid name data-dir owner:mode in $prim are '$out', want '$uid 0 postgres $uid:700'"
  out=$("${kk[@]}" exec "$prim" -c postgres -- sh -c 'stat -c %u "/proc/$(head -1 "$PGA_DATA_DIR/postmaster.pid")"')
  [ "$out" = "$uid" ] || fail "random uid: the postmaster runs as uid $out, want $uid"
  # a write on the primary, read back on every replica
  token="ruid-$(date +%s%N)"
  rsql() { "${kk[@]}" exec "$1" -c postgres -- sh -c 'PGPASSWORD=$(cat "$PGA_SUPERUSER_PASSWORD_FILE") PGCONNECT_TIMEOUT=3 psql -X -q -h 127.0.0.1 -U "${PGA_SUPERUSER:-postgres}" -d app -v ON_ERROR_STOP=1 -Atc "$1"' sh "$2" 2>&1; }
  out=$(rsql "$prim" "CREATE TABLE ruid_check (token text PRIMARY KEY); INSERT INTO ruid_check VALUES ('$token') RETURNING pg_is_in_recovery()") \
    || fail "random uid: write on the primary $prim: $out"
  [ "$(tail -1 <<< "$out")" = f ] || fail "random uid: $prim answered in recovery: $out"
  for p in $("${kk[@]}" get pods -l "$sel,pg-autopilot.io/role=replica" -o jsonpath='{.items[*].metadata.name}'); do
    for _ in $(seq 30); do out=$(rsql "$p" "SELECT pg_is_in_recovery(), count(*) FROM ruid_check WHERE token = '$token'" || true); [ "$out" = "t|1" ] && break; sleep 1; done
    [ "$out" = "t|1" ] || fail "random uid: the row written on $prim is not on replica $p (last: $out)"
  done
  log "random uid $uid: a row written on $prim read back on both replicas"
  "$HELM" test "$rel" -n "$ns" --timeout 5m > "$W/ruid-helm-test.log" 2>&1 || { cat "$W/ruid-helm-test.log" >&2; fail "random uid: helm test"; }
  echo "random uid $uid (gid 0, fsGroup 0): install → 3 Ready, one primary: ${t}s; write read back on both replicas; helm test passed" >> "$W/install.txt"
  if [ -n "${FIGURES:-}" ]; then printf 'random-uid install (%s)\t%s\t-\t-\t-\t-\tyes\n' "$uid" "$t" >> "$FIGURES"; fi
  if [ "${KEEP:-0}" != 1 ]; then "$HELM" uninstall "$rel" -n "$ns" >/dev/null; "$KUBECTL" delete namespace "$ns" --wait=false >/dev/null; fi
}

if [ "$ruid_standalone" = 1 ]; then
  RUID_NS=${NS:-pga-h4-ruid}
  case $RUID_NS in pga-h4-*|pga-e2e-ruid) ;; *) fail "NS must be pga-e2e-ruid or pga-h4-* (a namespace this step may delete)";; esac
  random_uid_step
  cat "$W/install.txt"; rm -rf "$W"
else
  random_uid_step
fi
