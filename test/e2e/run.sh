#!/usr/bin/env bash
# End to end on the lab: the chart + the image on a real single-node Kubernetes (test/lab/lab.sh).
#
#   test/e2e/run.sh [full|smoke|backup]        (npm run test:e2e -- smoke)
#
# smoke: install the packaged chart (helm package → .tgz) with defaults → 3 Ready, exactly one
#        primary, helm test (its pod and table gone after), write through the rw Service / read
#        through the ro one, one failover (primary pod deleted), rows compared.
# full:  smoke's install, then chaos, each step followed by a health check of the whole cluster:
#        helm upgrade turning on synchronous replication + changing a parameter (rolling restart),
#        a parameter changed live by reload, one needing a restart rolled in place (primary last),
#        a user added, altered, its password rotated and dropped, none restarting a pod (live.sh),
#        delete the primary pod, kill postgres in the primary, kill the entrypoint, scale 3→5→2→3,
#        an eviction the PDB must limit, the rw Service turned LoadBalancer and written through its
#        node port from the host; then a release with persistence disabled, one in Vault
#        mode (credential files at the injector's paths) and one under a random uid with group 0
#        (test/e2e/random-uid.sh, OpenShift's restricted SCC); then backup → destroy →
#        point-in-time restore on the lab's S3 server (test/e2e/backup.sh).
# backup: only that last step (9–11 minutes on a loaded machine): no default install, no chaos.
# A client writes every 50 ms through the rw Service during the chaos (test/e2e/writer.mjs). For
# each step it prints: recovery time, write unavailability, acknowledged writes lost (must be 0
# once synchronous replication is on), and whether all members hold the same rows.
#
# Environment: SKIP_BUILD=1 (use the image already built), KEEP=1 (leave the releases installed),
# E2E_TIMEOUT (seconds per health check, default 300). Exit 0 only when every check passed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
MODE=${1:-full}
case $MODE in full|smoke|backup) ;; *) echo "usage: $0 [full|smoke|backup]" >&2; exit 2 ;; esac
HELM=$ROOT/.tools/bin/helm KUBECTL=$ROOT/.tools/bin/kubectl
TIMEOUT=${E2E_TIMEOUT:-300}
NS=pga-e2e REL=e2e
W=$(mktemp -d /tmp/pga-e2e.XXXXXX)
T_START=$(date +%s)
ms() { date +%s%3N; }
log() { printf '[e2e %s] %s\n' "$(date -u +%T)" "$*" >&2; }
FIGURES=$W/figures.tsv
printf 'step\trecovery_s\tlongest_gap_ms\tunavailable_ms\tfailed_writes\tlost_acked\trows_equal\n' > "$FIGURES"
FAILED=0
fail() { log "FAIL: $*"; FAILED=$((FAILED + 1)); echo "$*" >> "$W/failures.txt"; summary; exit 1; }
# A failed check after which the cluster is still healthy: recorded, the suite goes on, exit 1 at the end.
check_failed() { log "FAIL (continuing): $*"; FAILED=$((FAILED + 1)); echo "$*" >> "$W/failures.txt"; }
summary() {
  echo; echo "== e2e $MODE: figures (work dir $W)"
  column -t -s $'\t' "$FIGURES" 2>/dev/null || cat "$FIGURES"
  [ -f "$W/install.txt" ] && cat "$W/install.txt"
  [ -f "$W/failures.txt" ] && { echo "failed checks:"; sed 's/^/  - /' "$W/failures.txt"; }
  echo "total: $(( $(date +%s) - T_START ))s, $( [ "$FAILED" = 0 ] && echo PASSED || echo "FAILED ($FAILED)")"
}

# ------------------------------------------------------------------ cluster + image
[ -x "$HELM" ] && [ -x "$KUBECTL" ] || bash "$ROOT/test/toolchain/install.sh" helm kube >/dev/null
export KUBECONFIG; KUBECONFIG=$(bash "$ROOT/test/lab/lab.sh" up | tail -1)
TAG=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml")
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  t=$(date +%s); bash "$ROOT/images/postgres/build.sh" postgres >/dev/null
  echo "image build: $(( $(date +%s) - t ))s" >> "$W/install.txt"
fi
bash "$ROOT/test/lab/lab.sh" images
IMAGE_ARGS=(--set image.registry=lab.local --set image.repository=pg-autopilot/postgres --set "image.tag=$TAG" --set image.pullPolicy=IfNotPresent)
# The chart as users install it: the packaged .tgz (.helmignore applied, README.md inside), not
# the directory. Every install and upgrade below uses it.
mkdir -p "$W/chart"
"$HELM" package "$ROOT/charts/postgres" --destination "$W/chart" >/dev/null
CHART_TGZ=$(ls "$W"/chart/postgres-*.tgz)
log "chart packaged: $(basename "$CHART_TGZ")"

# ------------------------------------------------------------------ helpers (release in $NS/$REL)
k() { "$KUBECTL" -n "$NS" "$@"; }
fullname() { echo "$REL-postgres"; }
sel() { echo "app.kubernetes.io/instance=$REL,app.kubernetes.io/name=postgres"; }
pods_with() { k get pods -l "$(sel)${1:+,$1}" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
ready_pods() { k get pods -l "$(sel)" -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}' | awk '$2 == "True" && $3 == "" {print $1}'; }
primary() { pods_with pg-autopilot.io/role=primary; }
svc_ip() { k get svc "$(fullname)-$1" -o jsonpath='{.spec.clusterIP}'; }
ready_endpoints() { k get endpointslices -l "kubernetes.io/service-name=$(fullname)-$1" -o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' | sort; }
app_password() { # the chart's Secret, or the Vault-mode stand-in
  if [ -n "${APP_PASSWORD_FILE:-}" ]; then cat "$APP_PASSWORD_FILE"; else k get secret "$(fullname)" -o jsonpath='{.data.app-password}' | base64 -d; fi
}
sql() { # rw|ro SQL: psql from the host to the Service's ClusterIP as the application user
  local svc=$1; shift
  PGPASSWORD=$(app_password) PGCONNECT_TIMEOUT=2 psql -X -q -h "$(svc_ip "$svc")" -U app -d app -v ON_ERROR_STOP=1 -Atc "$1" 2>&1
}
member_sql() { # POD SQL: psql inside a member, as the superuser over loopback
  k exec "$1" -c postgres -- sh -c 'PGPASSWORD=$(cat "$PGA_SUPERUSER_PASSWORD_FILE") PGCONNECT_TIMEOUT=3 psql -X -q -h 127.0.0.1 -U "${PGA_SUPERUSER:-postgres}" -d app -Atc "$1"' sh "$2" 2>&1
}

# health N: N members Ready, exactly one primary and N-1 replicas, the rw Service on the primary
# only, the ro Service on the replicas only, a write through rw read back through ro, and the
# same rows on every member. Sets HEALTH_S (seconds it took) and ROWS_EQUAL.
health() {
  local n=$1 t0 deadline why=""; t0=$(date +%s); deadline=$(( t0 + TIMEOUT ))
  while :; do
    why=""
    local ready prim reps rw ro pip
    ready=$(ready_pods | wc -l); prim=$(primary); reps=$(pods_with pg-autopilot.io/role=replica | wc -l)
    if [ "$ready" != "$n" ] || [ "$(k get pods -l "$(sel)" --no-headers 2>/dev/null | wc -l)" != "$n" ]; then why="ready $ready/$n"
    elif [ "$(printf '%s' "$prim" | grep -c .)" != 1 ]; then why="primaries: [$(echo $prim)]"
    elif [ "$reps" != $((n - 1)) ]; then why="replicas $reps/$((n - 1))"
    else
      pip=$(k get pod "$prim" -o jsonpath='{.status.podIP}')
      rw=$(ready_endpoints rw | tr '\n' ' '); ro=$(ready_endpoints ro | grep -c . || true)
      if [ "$rw" != "$pip " ]; then why="rw endpoints [$rw] != primary $pip"
      elif [ "$ro" != $((n - 1)) ]; then why="ro endpoints $ro/$((n - 1))"
      fi
    fi
    [ -z "$why" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { k get pods -l "$(sel)" -o wide -L pg-autopilot.io/role >&2; fail "health($n): $why after ${TIMEOUT}s"; }
    sleep 1
  done
  HEALTH_S=$(( $(date +%s) - t0 ))
  # A write through rw, read back through ro (the replicas stream it within seconds).
  local token; token="h-$(date +%s%N)"
  # Retried for up to 30 s: kube-proxy programs a Service's new endpoints a moment after they
  # are ready in the API (seconds on a loaded machine).
  local out="" wrote=""
  for _ in $(seq 60); do
    if out=$(sql rw "CREATE TABLE IF NOT EXISTS e2e_health (token text PRIMARY KEY, at timestamptz DEFAULT now()); INSERT INTO e2e_health (token) VALUES ('$token') RETURNING pg_is_in_recovery()"); then wrote=1; break; fi
    sleep 0.5
  done
  [ -n "$wrote" ] || fail "write through rw: $out"
  [ "$(echo "$out" | tail -1)" = f ] || fail "the rw Service reached a server in recovery: $out"
  local seen=""
  for _ in $(seq 30); do
    out=$(sql ro "SELECT pg_is_in_recovery(), count(*) FROM e2e_health WHERE token = '$token'") || true
    [ "$out" = "t|1" ] && { seen=1; break; }; sleep 0.5
  done
  [ -n "$seen" ] || fail "write through rw not readable through ro (last: $out)"
  compare_rows
}
# Every member holds the same e2e_writes rows up to the primary's current maximum id.
compare_rows() {
  ROWS_EQUAL=yes
  local prim m want got p
  prim=$(primary)
  [ "$(member_sql "$prim" "SELECT to_regclass('e2e_writes') IS NOT NULL")" = t ] || { ROWS_EQUAL=n/a; return 0; }
  m=$(member_sql "$prim" "SELECT coalesce(max(id), 0) FROM e2e_writes")
  want=$(member_sql "$prim" "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM e2e_writes WHERE id <= $m")
  for p in $(pods_with); do
    [ "$p" = "$prim" ] && continue
    for _ in $(seq 30); do
      got=$(member_sql "$p" "SELECT count(*) || ':' || coalesce(sum(id), 0) FROM e2e_writes WHERE id <= $m")
      [ "$got" = "$want" ] && break; sleep 1
    done
    [ "$got" = "$want" ] || { ROWS_EQUAL=no; fail "rows differ: $prim has $want (count:sum of ids <= $m), $p has $got"; }
  done
  ROWS_EQUAL="yes ($(echo "$want" | cut -d: -f1) rows x $(pods_with | wc -l))"
}

WRITER_PID=""
start_writer() {
  WRITES=$W/writes-$REL.log
  local pwf=$W/app-password; app_password > "$pwf"
  (cd "$ROOT" && exec node test/e2e/writer.mjs --host "$(svc_ip rw)" --password-file "$pwf" --out "$WRITES" --interval 50 --seconds 3600) &
  WRITER_PID=$!
  for _ in $(seq 50); do grep -q ' ok ' "$WRITES" 2>/dev/null && return 0; sleep 0.2; done
  fail "the writer could not write through the rw Service ($(tail -1 "$WRITES" 2>/dev/null))"
}
stop_writer() { [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null && wait "$WRITER_PID" 2>/dev/null; WRITER_PID=""; true; }
cleanup() {
  stop_writer
  if [ -n "${S3_DIR:-}" ] && [ "${KEEP:-0}" != 1 ]; then bash "$ROOT/test/lab/s3.sh" stop "$S3_DIR" || true; fi
  if [ "${KEEP:-0}" != 1 ]; then for n in pga-e2e pga-e2e-eph pga-e2e-vault pga-e2e-ruid pga-e2e-backup; do "$KUBECTL" delete namespace "$n" --wait=false >/dev/null 2>&1 || true; done; fi; }
trap cleanup EXIT

# step NAME ACTION...: run a chaos action with the writer on, then the health check; record figures.
SYNC=off
step() {
  local name=$1 n=$2; shift 2
  log "step: $name"
  local from; from=$(ms)
  "$@"
  health "$n"
  local to; to=$(ms)
  sleep 0.3
  local ids=$W/ids.txt
  sql rw "SELECT id FROM e2e_writes" > "$ids" || fail "reading e2e_writes back: $(head -2 "$ids")"
  local f; f=$(node "$HERE/figures.mjs" "$WRITES" "$from" "$to" "$ids")
  local gap un failed lost
  gap=$(echo "$f" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).longestGapMs')
  un=$(echo "$f" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).unavailableMs')
  failed=$(echo "$f" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).failed')
  lost=$(echo "$f" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).lost')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$HEALTH_S" "$gap" "$un" "$failed" "$lost (sync $SYNC)" "$ROWS_EQUAL" >> "$FIGURES"
  log "  recovered in ${HEALTH_S}s; longest write gap ${gap} ms; acknowledged writes lost: $lost; rows equal: $ROWS_EQUAL"
  if [ "$SYNC" = on ] && [ "$lost" != 0 ]; then fail "$name: $lost acknowledged writes lost with synchronous replication: $f"; fi
}

# ------------------------------------------------------------------ chaos actions
delete_primary() { local p; p=$(primary); log "  deleting primary pod $p"; k delete pod "$p" --wait=false >/dev/null; wait_gone_or_restarted "$p"; }
kill_postgres() {
  local p; p=$(primary); log "  SIGKILL to the postmaster in $p"
  local from; from=$(ms)
  k exec "$p" -c postgres -- sh -c 'kill -KILL "$(head -1 "$PGA_DATA_DIR/postmaster.pid")"'
  wait_write_error "$from"
}
kill_entrypoint() {
  local p; p=$(primary); log "  SIGKILL to the autopilot (entrypoint: node .../cli.js run) in $p"
  # Matched on the process's own argv (the shell doing the killing never matches: it starts "sh").
  local killed; killed=$(k exec "$p" -c postgres -- sh -c 'for d in /proc/[0-9]*; do
      case "$(tr "\0" " " < "$d/cmdline" 2>/dev/null)" in "/usr/local/bin/node "*"cli.js run"*) kill -KILL "${d#/proc/}" && echo "${d#/proc/}" ;; esac
    done') || true
  [ -n "$killed" ] || fail "no autopilot process found in $p"
  log "  killed pid $killed"
  wait_gone_or_restarted "$p"
}
# Something happened to the pod (deleted, recreated, container restarted), so that health()
# judges the new state rather than the old one.
pod_state() { k get pod "$1" -o jsonpath='{.metadata.uid}/{.status.containerStatuses[0].restartCount}/{.metadata.deletionTimestamp}' 2>/dev/null || echo gone; }
wait_gone_or_restarted() {
  local r0; r0=$(pod_state "$1")
  for _ in $(seq 60); do [ "$(pod_state "$1")" != "$r0" ] && return 0; sleep 0.5; done
  fail "no change seen on pod $1 within 30 s (not deleted, container not restarted)"
}
# The writer saw the disruption (a failed write after FROM_MS), or 15 s passed.
wait_write_error() {
  for _ in $(seq 75); do awk -v f="$1" '$1 >= f && $2 == "err" {found=1} END {exit !found}' "$WRITES" && return 0; sleep 0.2; done
  fail "the writer saw no failed write within 15 s of the disruption"
}
# shellcheck source=test/e2e/live.sh
. "$HERE/live.sh"
upgrade() { "$HELM" upgrade "$REL" "$CHART_TGZ" -n "$NS" --reuse-values "$@" >/dev/null; }
lease_failovers() { k get lease "$(fullname)-leader" -o jsonpath='{.metadata.annotations.pg-autopilot\.io/failovers}' 2>/dev/null || true; }
# The rolling restart must restart the primary last and hand its role over by switchover (the
# Lease's failover count does not move). The worst case is made on purpose: the primary is first
# moved (switchover through the autopilot CLI) to the highest ordinal, which a StatefulSet's
# rolling update restarts first.
wait_updated() {
  local rev want n
  for _ in $(seq $((TIMEOUT * 2))); do
    rev=$(k get statefulset "$(fullname)" -o jsonpath='{.status.updateRevision}')
    want=$(k get statefulset "$(fullname)" -o jsonpath='{.spec.replicas}')
    n=$(k get pods -l "$(sel)" -o jsonpath='{range .items[*]}{.metadata.labels.controller-revision-hash} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | awk -v r="$rev" '$1 == r && $2 == "True"' | wc -l)
    [ -n "$rev" ] && [ "$n" = "$want" ] && return 0
    sleep 0.5
  done
  return 1
}
upgrade_sync_and_parameter() {
  local top; top=$(fullname)-$(( $(pods_with | wc -l) - 1 ))
  if [ "$(primary)" != "$top" ]; then
    log "  switchover to $top first (the StatefulSet restarts the highest ordinal first)"
    k exec "$(primary)" -c postgres -- autopilot switchover --to "$top" >/dev/null || fail "autopilot switchover --to $top"
    for _ in $(seq 60); do [ "$(primary)" = "$top" ] && break; sleep 0.5; done
    [ "$(primary)" = "$top" ] || fail "switchover to $top did not happen within 30 s (primary: $(primary))"
    health 3
  fi
  local before f0; before=$(primary); f0=$(lease_failovers)
  log "  helm upgrade: replication.synchronous=on, postgresql.parameters.work_mem=8MB (primary before: $before, failovers ${f0:-0})"
  upgrade --set replication.synchronous=on --set postgresql.parameters.work_mem=8MB
  # OnDelete: the primary's autopilot restarts the members; done when every pod is on the update revision and Ready.
  wait_updated || fail "rolling update did not finish within ${TIMEOUT}s (the autopilot drives it: see its log)"
  # The order the members were restarted in: creation time of the new pods.
  local order last f1; order=$(k get pods -l "$(sel)" --sort-by=.metadata.creationTimestamp -o jsonpath='{range .items[*]}{.metadata.name} {end}')
  last=$(echo "$order" | awk '{print $NF}'); f1=$(lease_failovers)
  log "  restart order: $order(primary before: $before; failovers ${f0:-0} → ${f1:-0})"
  echo "helm upgrade restart order: $order(primary before: $before; failovers ${f0:-0} → ${f1:-0})" >> "$W/install.txt"
  [ "$last" = "$before" ] || check_failed "helm upgrade: the primary ($before) was not restarted last (order: $order)"
  [ "${f1:-0}" = "${f0:-0}" ] || check_failed "helm upgrade: the primary's role moved by failover, not switchover (failovers ${f0:-0} → ${f1:-0})"
}
check_upgrade() {
  local p v
  for p in $(pods_with); do
    v=$(member_sql "$p" "SHOW work_mem"); [ "$v" = 8MB ] || fail "work_mem on $p is '$v', expected 8MB"
  done
  v=$(member_sql "$(primary)" "SHOW synchronous_standby_names")
  [ -n "$v" ] || fail "synchronous_standby_names is empty on the primary after turning synchronous replication on"
  log "  work_mem=8MB on every member; synchronous_standby_names = $v; primary now $(primary)"
}
scale() { log "  helm upgrade: replicas=$1"; upgrade --set "replicas=$1"; }
# The read-write Service turned LoadBalancer with the node's address as its only source range. No
# load balancer controller runs in the lab, so its node port is the way in: a client on the host (not
# a labelled pod of the namespace) writes through it. The chart must also set externalTrafficPolicy
# Local and admit the range in the NetworkPolicy (ipBlock); the lab's bridge CNI does not enforce
# NetworkPolicy, so the policy is checked as the API holds it.
expose_loadbalancer() {
  local node_ip port cidrs out=""
  node_ip=$("$KUBECTL" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  log "  helm upgrade: service.rw.type=LoadBalancer, service.rw.loadBalancerSourceRanges={$node_ip/32}"
  upgrade --set service.rw.type=LoadBalancer --set "service.rw.loadBalancerSourceRanges={$node_ip/32}"
  [ "$(k get svc "$(fullname)-rw" -o jsonpath='{.spec.externalTrafficPolicy}')" = Local ] \
    || fail "the LoadBalancer rw Service has externalTrafficPolicy '$(k get svc "$(fullname)-rw" -o jsonpath='{.spec.externalTrafficPolicy}')', expected Local"
  cidrs=$(k get networkpolicy "$(fullname)" -o jsonpath='{.spec.ingress[*].from[*].ipBlock.cidr}')
  [[ " $cidrs " == *" $node_ip/32 "* ]] || fail "the NetworkPolicy does not admit $node_ip/32 on 5432 (ipBlocks: [$cidrs])"
  port=$(k get svc "$(fullname)-rw" -o jsonpath='{.spec.ports[0].nodePort}')
  for _ in $(seq 60); do
    out=$(PGPASSWORD=$(app_password) PGCONNECT_TIMEOUT=2 psql -X -q -h "$node_ip" -p "$port" -U app -d app -v ON_ERROR_STOP=1 \
      -Atc "INSERT INTO e2e_health (token) VALUES ('lb-$(date +%s%N)') RETURNING pg_is_in_recovery()" 2>&1) && [ "$out" = f ] && break
    sleep 0.5
  done
  [ "$out" = f ] || fail "no write to the primary through the rw LoadBalancer's node port $node_ip:$port: $out"
  log "  wrote to the primary through $node_ip:$port (the rw LoadBalancer's node port)"
  echo "rw LoadBalancer (source range $node_ip/32): written through node port $node_ip:$port" >> "$W/install.txt"
}
evict() { # POD → HTTP status of the eviction
  printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"%s"}}' "$1" "$NS" > "$W/eviction.json"
  if out=$("$KUBECTL" create --raw "/api/v1/namespaces/$NS/pods/$1/eviction" -f "$W/eviction.json" 2>&1); then echo 201; else
    echo "$out" | grep -q -i 'disruption budget\|TooManyRequests\|429' && echo 429 || echo "error: $out"; fi
}
evictions_limited_by_pdb() {
  local reps; reps=$(pods_with pg-autopilot.io/role=replica)
  local a b; a=$(echo "$reps" | sed -n 1p); b=$(echo "$reps" | sed -n 2p)
  local r1 r2; r1=$(evict "$a"); r2=$(evict "$b")
  log "  evict $a → $r1; evict $b while $a is not back → $r2"
  [ "$r1" = 201 ] || fail "the first eviction ($a) was refused: $r1"
  [ "$r2" = 429 ] || fail "the PodDisruptionBudget did not limit the second eviction ($b): $r2"
}

# ------------------------------------------------------------------ install
install() { # extra helm args...
  "$HELM" install "$REL" "$CHART_TGZ" -n "$NS" --create-namespace "${IMAGE_ARGS[@]}" "$@" >/dev/null
}
# shellcheck source=test/e2e/backup.sh
. "$HERE/backup.sh"
if [ "$MODE" = backup ]; then backup_restore_e2e; summary; [ "$FAILED" = 0 ]; exit; fi
"$KUBECTL" delete namespace "$NS" pga-e2e-eph pga-e2e-vault pga-e2e-ruid pga-e2e-backup --ignore-not-found --wait=true >/dev/null 2>&1 || true
log "helm install $REL (defaults) in $NS"
t_install=$(date +%s)
install
TIMEOUT_SAVE=$TIMEOUT; TIMEOUT=$(( TIMEOUT > 600 ? TIMEOUT : 600 ))
health 3
TIMEOUT=$TIMEOUT_SAVE
echo "install → 3 Ready, one primary, rw/ro checked: $(( $(date +%s) - t_install ))s" >> "$W/install.txt"
log "install → healthy in $(( $(date +%s) - t_install ))s; primary $(primary)"
log "helm test"
t=$(date +%s)
"$HELM" test "$REL" -n "$NS" --timeout 5m > "$W/helm-test.log" 2>&1 || { cat "$W/helm-test.log" >&2; fail "helm test"; }
echo "helm test: $(( $(date +%s) - t ))s" >> "$W/install.txt"
# helm test cleans up after itself: a passing pod is deleted (hook-succeeded), its table dropped.
if k get pod "$(fullname)-test" >/dev/null 2>&1; then
  k wait --for=delete pod "$(fullname)-test" --timeout=60s >/dev/null 2>&1 \
    || check_failed "helm test: the test pod $(fullname)-test is still there after a passing run"
fi
left=$(member_sql "$(primary)" "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pga_helm_test%'")
[ "$left" = 0 ] || check_failed "helm test left tables behind in database app: $left pga_helm_test_* table(s)"
start_writer

if [ "$MODE" = smoke ]; then
  step "delete primary pod" 3 delete_primary
else
  step "helm upgrade (sync on, work_mem)" 3 upgrade_sync_and_parameter
  check_upgrade; SYNC=on
  step "parameter changed live (work_mem, reload)" 3 live_reload
  step "parameter needing a restart (max_connections), rolled in place" 3 live_roll
  step "user added, altered, password rotated, dropped" 3 live_users
  step "delete primary pod" 3 delete_primary
  step "kill postgres in primary" 3 kill_postgres
  step "kill entrypoint in primary" 3 kill_entrypoint
  step "scale 3 → 5" 5 scale 5
  step "scale 5 → 2" 2 scale 2
  step "scale 2 → 3" 3 scale 3
  step "eviction limited by PDB" 3 evictions_limited_by_pdb
  step "rw as LoadBalancer, written from outside" 3 expose_loadbalancer
  stop_writer

  # A release without persistence: members on emptyDir; a deleted primary comes back from a replica.
  NS=pga-e2e-eph REL=eph
  log "helm install $REL (persistence.enabled=false) in $NS"
  t=$(date +%s); install --set persistence.enabled=false; SYNC=off
  health 3; echo "persistence disabled: install → healthy $(( $(date +%s) - t ))s" >> "$W/install.txt"
  start_writer
  step "no persistence: delete primary" 3 delete_primary
  stop_writer
  [ "${KEEP:-0}" = 1 ] || "$HELM" uninstall "$REL" -n "$NS" >/dev/null

  # Vault mode: no Vault here, so the files the injector would write are mounted from a Secret at
  # the injector's path (/vault/secrets); the chart must point every *_FILE variable there.
  NS=pga-e2e-vault REL=vault
  log "helm install $REL (vault.enabled=true, files at /vault/secrets) in $NS"
  k create namespace "$NS" >/dev/null 2>&1 || true
  APP_PASSWORD_FILE=$W/vault-app-password; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$APP_PASSWORD_FILE"
  k create secret generic vault-files \
    --from-literal=superuser-password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" \
    --from-literal=replication-password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" \
    --from-file=app-password="$APP_PASSWORD_FILE" \
    --from-literal=api-token="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >/dev/null
  cat > "$W/vault-values.yaml" <<YAML
vault: {enabled: true, role: pg, secretPath: secret/data/pg}
extraVolumes: [{name: vault-files, secret: {secretName: vault-files, defaultMode: 0440}}]
extraVolumeMounts: [{name: vault-files, mountPath: /vault/secrets, readOnly: true}]
tests: {enabled: false}
YAML
  t=$(date +%s); install -f "$W/vault-values.yaml"
  health 3; echo "vault mode: install → healthy $(( $(date +%s) - t ))s" >> "$W/install.txt"
  files=$(k exec "$(primary)" -c postgres -- sh -c 'env | grep "^PGA_.*_FILE=" | sort')
  [ "$(echo "$files" | grep -c '=/vault/secrets/')" -ge 4 ] && ! echo "$files" | grep -v '=/vault/secrets/' | grep -q . \
    || fail "vault mode: the credential *_FILE variables do not all point into /vault/secrets: $files"
  printf 'vault mode\t%s\t-\t-\t-\t-\t%s\n' "$HEALTH_S" "$ROWS_EQUAL" >> "$FIGURES"
  unset APP_PASSWORD_FILE
  [ "${KEEP:-0}" = 1 ] || "$HELM" uninstall "$REL" -n "$NS" >/dev/null

  # A random uid with group 0, as OpenShift's restricted SCC runs the image (test/e2e/random-uid.sh).
  . "$HERE/random-uid.sh"
  backup_restore_e2e
fi
stop_writer
summary
[ "$FAILED" = 0 ]
