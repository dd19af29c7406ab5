#!/usr/bin/env bash
# Image-level test of the Citus variant (images/postgres/Dockerfile.citus), run by containerd (`ctr`,
# host networking) like test/image/run.sh: in one container of the image, as its own user (10001),
# initdb, then PostgreSQL with shared_preload_libraries = citus; `CREATE EXTENSION citus`, a
# distributed table on the single node (the coordinator holding its own shards), rows written and
# counted through it. Also: the image without Citus preloaded runs plain PostgreSQL (Citus' library
# is present but not loaded), and the compiler stayed out of the final image.
#
#   test/image/citus.sh            (root; the lab's containerd, or CTRD_ADDR; BUILD=1 builds first)
#
# Environment: IMAGE, TAG, PG_MAJOR as images/postgres/build.sh (the archive it wrote for the
# `citus` target is imported; ARCHIVE overrides the path), CTRD_ADDR, KEEP=1 keeps the work directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
PG_MAJOR=${PG_MAJOR:-17}
IMAGE=${IMAGE:-lab.local/pg-autopilot/postgres}
TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml" | sed 's/-pg[0-9]*$//')-pg$PG_MAJOR}
ARCHIVE=${ARCHIVE:-$CACHE/images/$(basename "$IMAGE")-$TAG-citus.oci.tar}
ADDR=${CTRD_ADDR:-/run/pga-lab/containerd.sock}
REF=$IMAGE:$TAG-citus NS=pga-citus-image-$$ ID=pga-citus-$$
T0=$(date +%s)
log() { printf '[citus-image %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (ctr talks to containerd's socket)"
[ -S "$ADDR" ] || die "no containerd socket at $ADDR: bring the lab up (bash test/lab/lab.sh up) or set CTRD_ADDR"
C() { ctr --address "$ADDR" -n "$NS" "$@"; }
W=$(mktemp -d /tmp/pga-citus-image.XXXXXX)
CHECKS=() FAILED=0
ok() { CHECKS+=("ok    $*"); log "ok: $*"; }
bad() { CHECKS+=("FAIL  $*"); FAILED=$((FAILED + 1)); log "FAIL: $*"; }
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (want $(printf %q "$2"), got $(printf %q "$3"))"; fi; }
cleanup() {
  local rc=$? id
  for id in $(C containers ls -q 2>/dev/null); do
    C tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    for _ in $(seq 50); do C tasks rm -f "$id" >/dev/null 2>&1; C tasks ls -q 2>/dev/null | grep -qx "$id" || break; sleep 0.1; done
    C containers rm "$id" >/dev/null 2>&1 || log "could not remove container $id"
  done
  C images rm --sync "$REF" >/dev/null 2>&1 || true
  ctr --address "$ADDR" namespaces rm "$NS" >/dev/null 2>&1 || log "could not remove containerd namespace $NS (not empty?)"
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then log "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${BUILD:-0}" = 1 ]; then IMAGE=$IMAGE TAG=$TAG PG_MAJOR=$PG_MAJOR bash "$ROOT/images/postgres/build.sh" citus >/dev/null; fi
[ -f "$ARCHIVE" ] || die "no image archive $ARCHIVE: build it (bash images/postgres/build.sh citus) or set BUILD=1"
C images import "$ARCHIVE" >/dev/null
C images ls -q | grep -qx "$REF" || die "$ARCHIVE did not hold $REF"

PORT=$(shuf -i 20000-29999 -n 1)
while ss -Hltn "sport = :$PORT" | grep -q .; do PORT=$(shuf -i 20000-29999 -n 1); done
N=0
# in_image SCRIPT: a script of $W (mounted at /w) in a fresh container of the image, as its own
# user; the server runs in the same container as the checks (one container, one port).
in_image() {
  N=$((N + 1))
  C run --rm --net-host --env "PORT=$PORT" --mount "type=bind,src=$W,dst=/w,options=rbind:ro" \
    "$REF" "$ID-$N" bash -e "/w/$1" < /dev/null 2>&1
}
chmod 755 "$W"
cat > "$W/common.sh" <<'SH'
export PGDATA=/tmp/d
initdb -A trust -U postgres >/dev/null
start() { pg_ctl -w -s -o "-p $PORT -k /tmp -c listen_addresses= $*" -l /tmp/log start >/dev/null || { cat /tmp/log; exit 1; }; }
q() { psql -X -At -h /tmp -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"; }
SH
cat > "$W/citus.sh" <<'SH'
. /w/common.sh
start -c shared_preload_libraries=citus
q 'CREATE EXTENSION citus' >/dev/null
q "SELECT extversion FROM pg_extension WHERE extname = 'citus'"
q 'SHOW shared_preload_libraries'
q "SELECT citus_set_coordinator_host('localhost', $PORT)" >/dev/null
q "SELECT citus_set_node_property('localhost', $PORT, 'shouldhaveshards', true)" >/dev/null
q 'CREATE TABLE events (id bigint PRIMARY KEY, note text)' >/dev/null
q "SELECT create_distributed_table('events', 'id')" >/dev/null
q "INSERT INTO events SELECT g, 'n' || g FROM generate_series(1, 1000) g" >/dev/null
q "SELECT count(*), count(DISTINCT get_shard_id_for_distribution_column('events', id)) > 1 FROM events"
q "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass"
pg_ctl -s -m fast stop
SH
cat > "$W/plain.sh" <<'SH'
. /w/common.sh
start
q 'SHOW shared_preload_libraries'
q "SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'"
pg_ctl -s -m fast stop
SH
echo 'command -v gcc cc make || true' > "$W/compiler.sh"
echo 'test -s /usr/share/doc/citus/LICENSE && echo 1' > "$W/license.sh"
chmod 644 "$W"/*.sh

if out=$(in_image citus.sh); then
  mapfile -t L <<< "$out"
  expect "CREATE EXTENSION citus: the extension's version (citus.control of 13.2.2)" "13.2-1" "${L[0]:-}"
  expect "shared_preload_libraries = citus" citus "${L[1]:-}"
  expect "1000 rows through a distributed table, spread over more than one shard" "1000|t" "${L[2]:-}"
  expect "the table has Citus' default 32 shards" 32 "${L[3]:-}"
else
  printf '%s\n' "$out" >&2; bad "Citus loaded, extension created, distributed table written (its output above)"
fi
expect "without preload: plain PostgreSQL (nothing preloaded), Citus available to enable" "|1" "$(in_image plain.sh | tr '\n' '|' | sed 's/|$//')"
expect "no compiler in the final image" "" "$(in_image compiler.sh)"
expect "Citus' license shipped" 1 "$(in_image license.sh)"

echo
echo "== Citus image test: $REF"
printf '  %s\n' "${CHECKS[@]}"
echo "total: $(( $(date +%s) - T0 )) s, $( [ "$FAILED" = 0 ] && echo PASSED || echo "FAILED ($FAILED)")"
[ "$FAILED" = 0 ]
