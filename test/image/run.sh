#!/usr/bin/env bash
# Image-level test: the built image run by containerd (`ctr`, host networking, no Docker, no
# Kubernetes) as the official postgres image is used (issue 14's "Image-level" test, issue 13's
# arbitrary uid):
#   - a standalone primary: user, password and database names with spaces (and a quote in the
#     password), an initdb.d SQL file, the data directory a bind mount owned by uid 10001;
#   - psql run from the same image as the client (the image's command instead of the server):
#     the right password admitted, a wrong one refused;
#   - a static replica cloned from it: a row written on the primary is read on the replica, and
#     the replica refuses writes;
#   - JIT: `SHOW jit`, pg_jit_available(), and a plan that was JIT-compiled;
#   - the same primary under a random uid (>= 100000) with gid 0, on the image's own directories
#     (no mount): initdb, the socket directory, and psql's default user name (nss_wrapper).
# Every container, snapshot and image it creates lives in a containerd namespace of its own,
# removed at the end (also on failure or Ctrl-C).
#
#   test/image/run.sh                 (root; the lab's containerd, or CTRD_ADDR)
#
# Environment: IMAGE, TAG, PG_MAJOR as images/postgres/build.sh (the archive it wrote is imported:
# ARCHIVE overrides the path), BUILD=1 to build it first, CTRD_ADDR (default the lab's socket,
# /run/pga-lab/containerd.sock), KEEP=1 keeps the work directory (container logs).
# ctr 1.6 has no `run --user`: the random-uid primary is started with `ctr tasks exec --user UID:0`
# in a container of the image whose own command is `sleep infinity` (the same process user a
# kubelet's runAsUser sets; the lab's random-uid install runs it that way: test/e2e/random-uid.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
PG_MAJOR=${PG_MAJOR:-17}
IMAGE=${IMAGE:-lab.local/pg-autopilot/postgres}
TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml" | sed 's/-pg[0-9]*$//')-pg$PG_MAJOR}
ARCHIVE=${ARCHIVE:-$CACHE/images/$(basename "$IMAGE")-$TAG.oci.tar}
ADDR=${CTRD_ADDR:-/run/pga-lab/containerd.sock}
REF=$IMAGE:$TAG NS=pga-image-test-$$ ID=pga-image-$$
T0=$(date +%s%3N)
log() { printf '[image-test %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (ctr talks to containerd's socket)"
[ -S "$ADDR" ] || die "no containerd socket at $ADDR: bring the lab up (bash test/lab/lab.sh up) or set CTRD_ADDR"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
C() { ctr --address "$ADDR" -n "$NS" "$@"; }
W=$(mktemp -d /tmp/pga-image.XXXXXX)
CHECKS=() FAILED=0
ok() { CHECKS+=("ok    $*"); log "ok: $*"; }
bad() { CHECKS+=("FAIL  $*"); FAILED=$((FAILED + 1)); log "FAIL: $*"; }
expect() { # DESCRIPTION WANT GOT
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (want $(printf %q "$2"), got $(printf %q "$3"))"; fi
}

cleanup() {
  local rc=$? id
  for id in $(C tasks ls -q 2>/dev/null); do C tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $(C containers ls -q 2>/dev/null); do
    for _ in $(seq 50); do C tasks rm -f "$id" >/dev/null 2>&1; C tasks ls -q 2>/dev/null | grep -qx "$id" || break; sleep 0.1; done
    C containers rm "$id" >/dev/null 2>&1 || log "could not remove container $id"
  done
  C images rm --sync "$REF" >/dev/null 2>&1 || true
  local left; left=$(C snapshots ls 2>/dev/null | tail -n +2 | wc -l)
  [ "$left" = 0 ] || log "$left snapshots left in namespace $NS"
  ctr --address "$ADDR" namespaces rm "$NS" >/dev/null 2>&1 || log "could not remove containerd namespace $NS (not empty?)"
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then log "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ image
if [ "${BUILD:-0}" = 1 ]; then IMAGE=$IMAGE TAG=$TAG PG_MAJOR=$PG_MAJOR bash "$ROOT/images/postgres/build.sh" postgres >/dev/null; fi
[ -f "$ARCHIVE" ] || die "no image archive $ARCHIVE: build it (IMAGE=$IMAGE bash images/postgres/build.sh postgres) or set BUILD=1"
t=$(date +%s%3N); C images import "$ARCHIVE" >/dev/null
C images ls -q | grep -qx "$REF" || die "$ARCHIVE did not hold $REF (images: $(C images ls -q | tr '\n' ' '))"
log "imported $REF into containerd namespace $NS in $(( $(date +%s%3N) - t )) ms"

# ------------------------------------------------------------------ helpers
free_port() { # a TCP port nothing listens on, not handed out before
  local p
  for p in $(shuf -i 20000-29999 -n 100); do
    case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
    ss -Hltn "sport = :$p" | grep -q . && continue
    USED_PORTS="${USED_PORTS:-} $p"; echo "$p"; return 0
  done
  die "no free port in 20000-29999"
}
P1=$(free_port); A1=$(free_port); P2=$(free_port); A2=$(free_port); P3=$(free_port); A3=$(free_port)
N=0
# serve NAME [ctr run flags...] -- [command...]: a detached container of the image
serve() {
  local name=$1; shift
  local flags=() ; while [ "$1" != -- ]; do flags+=("$1"); shift; done; shift
  # ctr (unlike Docker and Kubernetes' CRI) mounts a root-owned tmpfs on /run, hiding the image's
  # /var/run/postgresql: a tmpfs there with the image directory's owner and mode (10001:0, 2775)
  C run -d --net-host --log-uri "file://$W/$name.log" \
    --mount "type=tmpfs,src=tmpfs,dst=/run/postgresql,options=nosuid:nodev:mode=2775:uid=10001:gid=0" \
    "${flags[@]}" "$REF" "$ID-$name" "$@" >/dev/null
}
wait_ready() { # NAME API_PORT: /readyz answers 200 (prints ms), or the log's tail and exit
  local t=$(date +%s%3N)
  while ! curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$2/readyz" 2>/dev/null; do
    if [ $(( $(date +%s%3N) - t )) -gt 180000 ]; then tail -30 "$W/$1.log" >&2 || true; die "$1 not ready after 180 s"; fi
    sleep 0.5
  done
  echo $(( $(date +%s%3N) - t ))
}
# psql_img PORT USER DB PASSWORD PSQL-ARGS...: psql from the image, the image's command instead of the server
psql_img() {
  local port=$1 user=$2 db=$3 pw=$4; shift 4; N=$((N + 1))
  C run --rm --net-host --env "PGPASSWORD=$pw" --env PGCONNECT_TIMEOUT=5 "$REF" "$ID-psql-$N" \
    psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$user" -d "$db" "$@" < /dev/null 2>&1
}

# ------------------------------------------------------------------ a standalone primary (uid 10001)
DB_USER='app user' DB_NAME='my app db' DB_PW="pass word 'with' spaces" REPL_PW='repl secret'
mkdir -p "$W/initdb" "$W/primary" "$W/replica"
cat > "$W/initdb/01-schema.sql" <<'SQL'
CREATE TABLE items (id serial PRIMARY KEY, note text NOT NULL);
INSERT INTO items (note) VALUES ('from initdb.d');
SQL
chown 10001:10001 "$W/primary" "$W/replica"; chmod 0700 "$W/primary" "$W/replica"; chmod -R a+rX "$W/initdb"
serve primary --env "POSTGRES_USER=$DB_USER" --env "POSTGRES_PASSWORD=$DB_PW" --env "POSTGRES_DB=$DB_NAME" \
  --env "PGA_REPLICATION_PASSWORD=$REPL_PW" --env "PGA_PG_PORT=$P1" --env "PGA_API_PORT=$A1" --env PGA_LOG_FORMAT=text \
  --mount "type=bind,src=$W/primary,dst=/var/lib/postgresql/data,options=rbind:rw" \
  --mount "type=bind,src=$W/initdb,dst=/docker-entrypoint-initdb.d,options=rbind:ro" --
ms=$(wait_ready primary "$A1"); ok "standalone primary ready (/readyz 200) ${ms} ms after start"
FIG_PRIMARY=$ms
expect "mode logged on the first line: standalone" 1 "$(head -1 "$W/primary.log" | grep -c 'standalone')"
expect "psql from the image as the client: user, database with spaces, password with spaces and quotes" \
  "$DB_USER|$DB_NAME" "$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c 'SELECT current_user, current_database()')"
expect "the user is the superuser (POSTGRES_USER)" t "$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")"
expect "initdb.d SQL file ran once, in POSTGRES_DB as POSTGRES_USER" "from initdb.d|$DB_USER" \
  "$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c "SELECT i.note, pg_get_userbyid(c.relowner) FROM items i, pg_class c WHERE c.relname = 'items'")"
out=$(psql_img "$P1" "$DB_USER" "$DB_NAME" "wrong password" -c 'SELECT 1' || true)
expect "a wrong password is refused over TCP" 1 "$(grep -c 'password authentication failed' <<< "$out")"
expect "data directory owned by uid 10001 (the image's user), mode 0700" "10001 700" "$(stat -c '%u %a' "$W/primary/pgdata")"
expect "JIT: SHOW jit" on "$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c 'SHOW jit')"
expect "JIT: pg_jit_available()" t "$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c 'SELECT pg_jit_available()')"
# (EXPLAIN prints its JIT section only with COSTS on)
plan=$(psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c 'SET jit_above_cost = 0' -c 'EXPLAIN (ANALYZE) SELECT sum(id) FROM items')
expect "JIT: a query plan JIT-compiled (EXPLAIN ANALYZE shows JIT functions)" 1 "$(grep -c 'Functions: [1-9]' <<< "$plan")"
grep -q 'Functions: [1-9]' <<< "$plan" || log "the plan: $plan"

# ------------------------------------------------------------------ a static replica of it
serve replica --env "POSTGRES_USER=$DB_USER" --env PGA_PRIMARY_HOST=127.0.0.1 --env "PGA_PRIMARY_PORT=$P1" \
  --env "PGA_REPLICATION_PASSWORD=$REPL_PW" --env "PGA_PG_PORT=$P2" --env "PGA_API_PORT=$A2" --env PGA_LOG_FORMAT=text \
  --mount "type=bind,src=$W/replica,dst=/var/lib/postgresql/data,options=rbind:rw" --
ms=$(wait_ready replica "$A2"); ok "static replica cloned and streaming (/readyz 200) ${ms} ms after start"
FIG_REPLICA=$ms
expect "mode logged on the first line: replica" 1 "$(head -1 "$W/replica.log" | grep -c 'replica')"
expect "the replica is in recovery" t "$(psql_img "$P2" "$DB_USER" "$DB_NAME" "$DB_PW" -c 'SELECT pg_is_in_recovery()')"
token="row-$$-$(date +%s%N)"
psql_img "$P1" "$DB_USER" "$DB_NAME" "$DB_PW" -c "INSERT INTO items (note) VALUES ('$token')" >/dev/null
t=$(date +%s%3N) seen=0
while [ $(( $(date +%s%3N) - t )) -lt 30000 ]; do
  [ "$(psql_img "$P2" "$DB_USER" "$DB_NAME" "$DB_PW" -c "SELECT count(*) FROM items WHERE note = '$token'")" = 1 ] && { seen=1; break; }
  sleep 0.2
done
FIG_REPL_READ=$(( $(date +%s%3N) - t ))
expect "a row written on the primary is read on the replica (${FIG_REPL_READ} ms, psql start included)" 1 "$seen"
out=$(psql_img "$P2" "$DB_USER" "$DB_NAME" "$DB_PW" -c "INSERT INTO items (note) VALUES ('on the replica')" || true)
expect "the replica refuses writes" 1 "$(grep -c 'read-only transaction' <<< "$out")"
C tasks kill -a -s SIGKILL "$ID-replica" >/dev/null; C tasks kill -s SIGTERM "$ID-primary" >/dev/null
t=$(date +%s%3N)
while C tasks ls 2>/dev/null | grep -q "^$ID-primary .*RUNNING"; do
  [ $(( $(date +%s%3N) - t )) -gt 30000 ] && { bad "primary still running 30 s after SIGTERM"; break; }
  sleep 0.1
done
FIG_STOP=$(( $(date +%s%3N) - t )); ok "primary stopped on SIGTERM in ${FIG_STOP} ms (tini PID 1, the autopilot's fast shutdown)"

# ------------------------------------------------------------------ the same primary under a random uid, gid 0
RUID=$(shuf -i 100000-1999999 -n 1)
serve ruid --env "POSTGRES_PASSWORD=$DB_PW" --env "PGA_PG_PORT=$P3" --env "PGA_API_PORT=$A3" --env PGA_LOG_FORMAT=text -- sleep infinity
C tasks exec -d --user "$RUID:0" --exec-id primary --log-uri "file://$W/ruid-primary.log" "$ID-ruid" /usr/local/bin/autopilot run >/dev/null
ms=$(wait_ready ruid-primary "$A3"); ok "primary as uid $RUID gid 0 (no passwd entry in the image) ready ${ms} ms after start, on the image's own directories"
FIG_RUID=$ms
as_ruid() { N=$((N + 1)); C tasks exec --user "$RUID:0" --exec-id "q$N" "$ID-ruid" /usr/local/bin/autopilot "$@" < /dev/null 2>&1; }
expect "the launcher names the unknown uid postgres (nss_wrapper): id -u, id -g, whoami" "$RUID $RUID 0 postgres" \
  "$(as_ruid sh -c 'echo $(id -u) $(getent passwd postgres | cut -d: -f3) $(id -g) $(whoami)')"
expect "data directory made by initdb as the random uid, group 0 parent writable" "$RUID:0 700" \
  "$(as_ruid stat -c '%u:%g %a' /var/lib/postgresql/data/pgdata)"
expect "psql inside, no -U: the default user name from the passwd entry, over the socket in /var/run/postgresql" postgres \
  "$(as_ruid psql -X -At -h /var/run/postgresql -p "$P3" -d postgres -c 'SELECT current_user')"
expect "psql from another container of the image over TCP, password auth" "postgres|postgres" \
  "$(psql_img "$P3" postgres postgres "$DB_PW" -c 'SELECT current_user, current_database()')"
expect "postgres' processes run as the random uid" "$RUID" \
  "$(as_ruid sh -c 'stat -c %u /proc/$(head -1 /var/lib/postgresql/data/pgdata/postmaster.pid)')"

# ------------------------------------------------------------------ summary
echo
echo "== image test: $REF (containerd $ADDR, namespace $NS)"
printf '  %s\n' "${CHECKS[@]}"
echo "figures: primary ready ${FIG_PRIMARY} ms, replica ready ${FIG_REPLICA} ms, replicated row read ${FIG_REPL_READ} ms, SIGTERM stop ${FIG_STOP} ms, random-uid primary ready ${FIG_RUID} ms"
echo "total: $(( ($(date +%s%3N) - T0) / 1000 )) s, $( [ "$FAILED" = 0 ] && echo PASSED || echo "FAILED ($FAILED)")"
[ "$FAILED" = 0 ]
