#!/usr/bin/env bash
# Runs the script of the chart's `helm test` pod (templates/tests/test-write-read.yaml), exactly as
# `helm template` renders it, against real PostgreSQL: a primary on 127.0.0.1 and a streaming
# replica on 127.0.0.2 (same port, as the two Services would be), with the env of the rendered pod
# and the host names swapped for these addresses. Scenarios:
#   pass          healthy cluster: writes through rw, reads back through ro, drops its table
#   catch-up      replica replay paused for a few seconds: the read-back retries, then passes
#   lagging       replica paused for good: fails at the deadline (tests.timeoutSeconds), naming it
#   ro-primary    the read-only host is the primary: fails (replica=false)
#   rw-replica    the read-write host is a replica: fails (cannot write)
#   bad-password  fails (authentication)
#   one-member    rendered with replicas=1: passes without any read-only host
# Needs helm (.tools/bin) and PostgreSQL server binaries (PG_BIN, default the newest
# /usr/lib/postgresql/*/bin). As root, PostgreSQL runs as the `postgres` OS user.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH"
CHART=charts/postgres

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "helm-test-pod: no PostgreSQL server binaries (set PG_BIN, or: bash test/toolchain/install.sh debs)" >&2; exit 2; }
command -v psql >/dev/null || export PATH="$PG_BIN:$PATH"

START=$(date +%s)
WORK=$(mktemp -d /tmp/pga-helm-test.XXXXXX)
chmod 755 "$WORK"
PIDS_DIRS=()
cleanup() {
  for d in "${PIDS_DIRS[@]}"; do as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$(id -u)" = 0 ]; then
  as_pg() { setpriv --reuid postgres --regid postgres --init-groups -- "$@"; }
  chown postgres: "$WORK"
else
  as_pg() { "$@"; }
fi

# A free TCP port on both loopback addresses.
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')

# --- the cluster: primary on 127.0.0.1, streaming replica on 127.0.0.2 ---------------------------
PW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
echo -n "$PW" > "$WORK/app-password"; echo -n "wrong-$PW" > "$WORK/wrong-password"
chmod 644 "$WORK"/*-password
as_pg bash -c "echo -n '$PW' > '$WORK/pw'"
as_pg "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --pwfile="$WORK/pw" -A scram-sha-256 --no-sync >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK'
wal_level = replica
max_wal_senders = 4
hot_standby = on
EOF
cat > "$WORK/primary/pg_hba.conf" <<EOF
local all all trust
host replication postgres 127.0.0.0/8 scram-sha-256
host all all 127.0.0.0/8 scram-sha-256
EOF
as_pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
PIDS_DIRS+=("$WORK/primary")
as_pg psql -X -q -h "$WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE app LOGIN PASSWORD '$PW'" -c "CREATE DATABASE app OWNER app"
as_pg env PGPASSWORD="$PW" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$WORK/replica" -R -X stream -c fast --no-sync
cat >> "$WORK/replica/postgresql.conf" <<EOF
listen_addresses = '127.0.0.2'
unix_socket_directories = '$WORK/replica-socket'
EOF
as_pg mkdir "$WORK/replica-socket"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/replica" -l "$WORK/replica.log" -w start >/dev/null
PIDS_DIRS+=("$WORK/replica")
primary_sql() { as_pg psql -X -q -A -t -h "$WORK" -p "$PORT" -U postgres -d app -v ON_ERROR_STOP=1 -c "$1"; }
replica_sql() { as_pg psql -X -q -A -t -h "$WORK/replica-socket" -p "$PORT" -U postgres -d app -v ON_ERROR_STOP=1 -c "$1"; }
[ "$(replica_sql 'SELECT pg_is_in_recovery()')" = t ] || { echo "helm-test-pod: replica is not in recovery" >&2; exit 1; }

# --- the pod, as rendered --------------------------------------------------------------------------
# render VALUES...: writes $WORK/pod-N.{sh,env} (the container's script and its env as KEY=VALUE).
render() {
  local out=$1; shift
  helm template pg "$CHART" --namespace db --show-only templates/tests/test-write-read.yaml "$@" > "$WORK/$out.yaml"
  node --input-type=module -e '
    import { readFileSync, writeFileSync } from "node:fs";
    import yaml from "js-yaml";
    const [file, base] = process.argv.slice(1);
    const pod = yaml.load(readFileSync(file, "utf8"));
    const c = pod.spec.containers[0];
    if (JSON.stringify(c.command) !== JSON.stringify(["/bin/sh", "-c"])) throw new Error("unexpected command " + JSON.stringify(c.command));
    writeFileSync(base + ".sh", c.args[0]);
    writeFileSync(base + ".env", c.env.filter((e) => "value" in e).map((e) => `${e.name}=${e.value}`).join("\n") + "\n");
  ' "$WORK/$out.yaml" "$WORK/$out"
}
render pod
render pod-one --set replicas=1
grep -qx 'RW_HOST=pg-postgres-rw.db.svc' "$WORK/pod.env"
grep -qx 'RO_HOST=pg-postgres-ro.db.svc' "$WORK/pod.env"
grep -qx 'PASSWORD_FILE=/etc/pg-autopilot/secrets/app-password' "$WORK/pod.env"

# run NAME POD [KEY=VALUE...]: runs the pod's script under /bin/sh with the pod's env, then the
# overrides (hosts, port, password file, timeout); output in $WORK/NAME.out, exit code echoed.
run() {
  local name=$1 pod=$2; shift 2
  local envs=()
  while IFS= read -r line; do [ -n "$line" ] && envs+=("$line"); done < "$WORK/$pod.env"
  set +e
  env -i PATH="$PATH" "${envs[@]}" RW_HOST=127.0.0.1 RO_HOST=127.0.0.2 PGPORT="$PORT" \
    PASSWORD_FILE="$WORK/app-password" TEST_ID="$name-$RANDOM" TIMEOUT_SECONDS=30 "$@" \
    /bin/sh -c "$(cat "$WORK/$pod.sh")" > "$WORK/$name.out" 2>&1
  local rc=$?
  set -e
  echo "$rc"
}
failures=0
expect() { # expect NAME RC WANT_RC PATTERN
  local name=$1 rc=$2 want=$3 pattern=$4
  if { [ "$want" = 0 ] && [ "$rc" = 0 ]; } || { [ "$want" != 0 ] && [ "$rc" != 0 ]; }; then
    if grep -qE -- "$pattern" "$WORK/$name.out"; then echo "  ok   $name (exit $rc)"; return; fi
    echo "  FAIL $name: output lacks /$pattern/"
  else
    echo "  FAIL $name: exit $rc, wanted $([ "$want" = 0 ] && echo 0 || echo non-zero)"
  fi
  sed 's/^/       | /' "$WORK/$name.out"; failures=$((failures + 1))
}
secs() { date +%s; }

echo "       cluster up after $(( $(secs) - START )) s"
t0=$(secs); rc=$(run pass pod); t1=$(secs)
expect pass "$rc" 0 'helm test: read back from a replica'
# No run leaves a table behind (pass or fail): the tables of the test, pga_helm_test_<id>, are dropped.
leftovers() { primary_sql "SELECT coalesce(string_agg(tablename, ' '), '') FROM pg_tables WHERE tablename LIKE 'pga_helm_test%'"; }
[ -z "$(leftovers)" ] || { echo "  FAIL pass: tables left behind: $(leftovers)"; failures=$((failures + 1)); }
grep -qE 'helm test: dropped pga_helm_test_pass[0-9]+$' "$WORK/pass.out" || { echo "  FAIL pass: it did not say it dropped its table"; sed 's/^/       | /' "$WORK/pass.out"; failures=$((failures + 1)); }
echo "       healthy run: $((t1 - t0)) s"

# The replica stops replaying: the read-back must wait for it, and pass once it resumes.
replica_sql 'SELECT pg_wal_replay_pause()' >/dev/null
( sleep 6; replica_sql 'SELECT pg_wal_replay_resume()' >/dev/null ) &
resumer=$!
t0=$(secs); rc=$(run catch-up pod); t1=$(secs)
wait "$resumer"
expect catch-up "$rc" 0 'helm test: read back from a replica'
if [ $((t1 - t0)) -lt 5 ]; then echo "  FAIL catch-up: passed after $((t1 - t0)) s, before the replica resumed replay"; failures=$((failures + 1)); fi
echo "       read-back waited for replay: $((t1 - t0)) s"

# The failing cases run side by side, each bounded by its own TIMEOUT_SECONDS=10.
replica_sql 'SELECT pg_wal_replay_pause()' >/dev/null
t0=$(secs)
run lagging pod TIMEOUT_SECONDS=10 > "$WORK/lagging.rc" &
run ro-primary pod RO_HOST=127.0.0.1 TIMEOUT_SECONDS=10 > "$WORK/ro-primary.rc" &
run rw-replica pod RW_HOST=127.0.0.2 TIMEOUT_SECONDS=10 > "$WORK/rw-replica.rc" &
run bad-password pod PASSWORD_FILE="$WORK/wrong-password" TIMEOUT_SECONDS=10 > "$WORK/bad-password.rc" &
run one-member pod-one RO_HOST=127.0.0.3 > "$WORK/one-member.rc" &
wait
t1=$(secs)
replica_sql 'SELECT pg_wal_replay_resume()' >/dev/null
expect lagging "$(cat "$WORK/lagging.rc")" 1 'FAIL: read back through the read-only Service: no success within 10s; last answer from 127.0.0.2: (replica=true rows=0|.*does not exist)'
expect ro-primary "$(cat "$WORK/ro-primary.rc")" 1 'FAIL: read back through the read-only Service: no success within 10s; last answer from 127.0.0.1: replica=false rows=1'
expect rw-replica "$(cat "$WORK/rw-replica.rc")" 1 'FAIL: write through the read-write Service: no success within 10s; last answer from 127.0.0.2: .*read-only transaction'
expect bad-password "$(cat "$WORK/bad-password.rc")" 1 'FAIL: write through the read-write Service: no success within 10s; .*password authentication failed'
expect one-member "$(cat "$WORK/one-member.rc")" 0 'one member: no replica, read-only check skipped'
if [ $((t1 - t0)) -gt 40 ]; then echo "  FAIL the 10 s deadline did not bound the failing runs: $((t1 - t0)) s"; failures=$((failures + 1)); fi
[ -z "$(leftovers)" ] || { echo "  FAIL tables left behind by the failing runs: $(leftovers)"; failures=$((failures + 1)); }
echo "       failing runs with a 10 s deadline ended after $((t1 - t0)) s"

[ "$failures" = 0 ] || { echo "helm-test-pod: $failures scenario(s) failed"; exit 1; }
echo "helm-test-pod: all scenarios passed"
