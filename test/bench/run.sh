#!/usr/bin/env bash
# npm run bench: pg-autopilot vs Patroni (Kubernetes DCS), same scenarios, same machine.
# Needs: kube-apiserver in .tools/bin (bash test/toolchain/install.sh debs kube), etcd-server,
# postgresql-15, and for Patroni the Debian packages patroni + python3-kubernetes (installed here
# when missing and we are root). Prints a markdown table; also test-results/bench.md and .json.
# Environment: BENCH_SUBJECTS=ours,patroni-default,patroni-tuned  BENCH_IDLE_SECONDS=60
# BENCH_SCENARIOS=backup: the backup figures only (ours; needs .tools/bin/weed and pgbackrest, no
# Patroni): BENCH_BACKUP_SCALE=10 BENCH_BACKUP_RUNS=3 BENCH_BACKUP_TPS=200 BENCH_BACKUP_MARKERS=5
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .tools/bin/kube-apiserver ]; then
  echo "bench: .tools/bin/kube-apiserver missing: run 'bash test/toolchain/install.sh debs kube' first" >&2
  exit 2
fi
backup_only=false
[ -n "${BENCH_SCENARIOS:-}" ] && [ -z "$(echo "$BENCH_SCENARIOS" | tr ',' '\n' | grep -vx backup || true)" ] && backup_only=true
if [ "$backup_only" = true ]; then
  if [ ! -x .tools/bin/weed ]; then
    echo "bench: .tools/bin/weed missing (the S3 server of the backup figures): run 'bash test/toolchain/install.sh seaweedfs' first" >&2
    exit 2
  fi
  command -v pgbackrest >/dev/null || { echo "bench: pgbackrest missing: apt-get install pgbackrest" >&2; exit 2; }
elif ! dpkg-query -W -f '${Status}' patroni 2>/dev/null | grep -q 'install ok installed'; then
  if [ "$(id -u)" = 0 ]; then
    echo "bench: installing Debian's patroni + python3-kubernetes" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends patroni python3-kubernetes >&2 \
      || echo "bench: could not install patroni; the Patroni columns will say why" >&2
  else
    echo "bench: patroni is not installed and we are not root; the Patroni columns will be missing" >&2
  fi
fi

npx tsc -p tsconfig.json
exec node dist/test/bench/bench.js "$@"
