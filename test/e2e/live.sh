# Sourced by test/e2e/run.sh (full mode): what `helm upgrade` changes without a pod restart.
#   live_reload   postgresql.parameters.work_mem → every member runs it, nothing restarted
#   live_roll     postgresql.parameters.max_connections → every member runs it, each postgres
#                 restarted in place, the primary's last and by a switchover, no pod restarted
#   live_users    a user added, altered, its password rotated in the Secret, then removed: no
#                 restart of anything
# Each is an action for step() (the writer runs, health() follows). Uses run.sh's helpers.

# name=uid/restartCount of every member pod: equal before and after = no pod restarted
pods_fingerprint() { k get pods -l "$(sel)" -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid}/{.status.containerStatuses[?(@.name=="postgres")].restartCount}{" "}{end}'; }
# name=epoch seconds its postgres started, every member
start_times() { local p; for p in $(pods_with); do printf '%s=%s ' "$p" "$(member_sql "$p" "SELECT extract(epoch FROM pg_postmaster_start_time())::numeric(20,3)" || true)"; done; }
# SETTING VALUE SECONDS: every member shows VALUE, or fail
wait_setting_everywhere() {
  local p v n=0 t0; t0=$(date +%s)
  while :; do
    # a member restarting its postgres refuses connections for a moment (psql exits 2): not yet
    n=0; for p in $(pods_with); do v=$(member_sql "$p" "SHOW $1" || true); [ "$v" = "$2" ] && n=$((n + 1)); done
    [ "$n" = "$(pods_with | wc -l)" ] && { log "  $1 = $2 on every member after $(( $(date +%s) - t0 ))s"; return 0; }
    [ $(( $(date +%s) - t0 )) -ge "$3" ] && fail "$1: $n of $(pods_with | wc -l) members show $2 after $3 s"
    sleep 2
  done
}
same_pods() { # BEFORE WHAT
  local after; after=$(pods_fingerprint)
  [ "$after" = "$1" ] || check_failed "$2: a pod was replaced or its container restarted (before: $1; after: $after)"
}

live_reload() {
  local pods0 t0; pods0=$(pods_fingerprint); t0=$(start_times)
  log "  helm upgrade: postgresql.parameters.work_mem=16MB (applied by reload)"
  local from; from=$(date +%s)
  upgrade --set postgresql.parameters.work_mem=16MB
  wait_setting_everywhere work_mem 16MB 180
  echo "parameter by reload (work_mem): every member within $(( $(date +%s) - from ))s" >> "$W/install.txt"
  same_pods "$pods0" "work_mem by reload"
  [ "$(start_times)" = "$t0" ] || check_failed "work_mem by reload: a postgres restarted (before: $t0; after: $(start_times))"
}

live_roll() {
  local pods0 before f0 mc; pods0=$(pods_fingerprint); before=$(primary); f0=$(lease_failovers)
  mc=$(member_sql "$before" "SHOW max_connections") || fail "SHOW max_connections on $before: $mc"; mc=$((mc + 20))
  log "  helm upgrade: postgresql.parameters.max_connections=$mc (restart required; primary before: $before)"
  local from; from=$(date +%s)
  upgrade --set "postgresql.parameters.max_connections=$mc"
  wait_setting_everywhere max_connections "$mc" 420
  echo "parameter by restart (max_connections): every member within $(( $(date +%s) - from ))s" >> "$W/install.txt"
  same_pods "$pods0" "max_connections rolled in place"
  # the old primary's postgres restarted last, after a switchover (the failover count unchanged)
  local times last f1; times=$(start_times); f1=$(lease_failovers)
  last=$(echo "$times" | tr ' ' '\n' | grep . | sort -t= -k2 -n | tail -1 | cut -d= -f1)
  log "  postgres start times: $times(primary before: $before, now: $(primary); failovers ${f0:-0} → ${f1:-0})"
  [ "$last" = "$before" ] || check_failed "max_connections: the primary ($before) did not restart last ($times)"
  [ "${f1:-0}" = "${f0:-0}" ] || check_failed "max_connections: the primary's role moved by failover (failovers ${f0:-0} → ${f1:-0})"
}

# USER PASSWORD: psql through the rw Service as that user; prints "ok" or the error
login_as() { PGPASSWORD=$2 PGCONNECT_TIMEOUT=3 psql -X -q -h "$(svc_ip rw)" -U "$1" -d app -Atc "SELECT 'ok'" 2>&1 | tail -1; }
user_password() { k get secret "$(fullname)" -o jsonpath='{.data.e2e-user-password}' | base64 -d; }
wait_for() { # WHAT SECONDS COMMAND...: until COMMAND succeeds
  local what=$1 secs=$2 t0; shift 2; t0=$(date +%s)
  until "$@"; do [ $(( $(date +%s) - t0 )) -ge "$secs" ] && fail "$what: not within $secs s"; sleep 1; done
  log "  $what after $(( $(date +%s) - t0 ))s"; echo "users: $what after $(( $(date +%s) - t0 ))s" >> "$W/install.txt"
}
role_is() { [ "$(member_sql "$(primary)" "SELECT coalesce((SELECT rolcanlogin || ':' || rolcreatedb FROM pg_roles WHERE rolname = 'e2e_user'), 'absent')")" = "$1" ]; }
can_login() { [ "$(login_as e2e_user "$1")" = ok ]; }
cannot_login() { [ "$(login_as e2e_user "$1")" != ok ]; }

live_users() {
  local pods0 t0 old new; pods0=$(pods_fingerprint); t0=$(start_times)
  log "  helm upgrade: users += e2e_user (LOGIN, password from the chart Secret)"
  upgrade --set-json 'users=[{"name":"e2e_user","passwordKey":"e2e-user-password","options":["LOGIN"]}]'
  old=$(user_password); [ -n "$old" ] || fail "the chart Secret has no e2e-user-password key"
  wait_for "user created and logs in" 180 can_login "$old"
  upgrade --set-json 'users=[{"name":"e2e_user","passwordKey":"e2e-user-password","options":["LOGIN","CREATEDB"]}]'
  wait_for "user altered (CREATEDB)" 180 role_is "true:true"
  new="rotated-$(date +%s%N)"
  k patch secret "$(fullname)" --type merge -p "{\"stringData\":{\"e2e-user-password\":\"$new\"}}" >/dev/null
  wait_for "password rotated (new accepted)" 240 can_login "$new"
  cannot_login "$old" || check_failed "users: the old password still logs in after the rotation"
  upgrade --set-json 'users=[{"name":"e2e_user","ensure":"absent"}]'
  wait_for "user dropped" 180 role_is absent
  same_pods "$pods0" "users lifecycle"
  [ "$(start_times)" = "$t0" ] || check_failed "users lifecycle: a postgres restarted (before: $t0; after: $(start_times))"
}
