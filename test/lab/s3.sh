#!/usr/bin/env bash
# The lab's S3 server: SeaweedFS (`weed server`: master, volume, filer and its S3 gateway, built and
# cached by `test/toolchain/install.sh seaweedfs`, the same binary the integration tests run) as a
# host process, serving S3 over TLS on the node's address so that pods reach it.
#
#   test/lab/s3.sh start DIR    start it (data, certificate, credentials and log under DIR), create
#                               the bucket, print KEY=VALUE lines (LAB_S3_ENDPOINT, _BUCKET, _KEY,
#                               _SECRET, _CA) also written to DIR/env
#   test/lab/s3.sh stop DIR     stop it, by the PID recorded in DIR/weed.pid (data kept in DIR)
#   test/lab/s3.sh secrets DIR NAMESPACE [NAME]
#                               Secrets for the chart: NAME (default lab-s3) with s3-key and
#                               s3-key-secret (backup.s3.existingSecret) and NAME-ca with ca.crt
#                               (backup.s3.caSecret)
# (also `test/lab/lab.sh s3 ...`). Ports: LAB_S3_*_PORT in test/lab/versions.sh.
#
# Which address works, and why (seen on this machine, lab up):
# - The node's uplink address (eth0, e.g. 192.0.2.2): the lab's CNI gives every pod a route to
#   "$IP/32" through the bridge, so pod → node address is local delivery on the host (INPUT), never
#   forwarded to the uplink (the lab's FORWARD drop does not apply) — the same path pods take to
#   CoreDNS, which also runs on the host on that address. 127.0.0.1 does not work (it is the pod's
#   own loopback); a ClusterIP would need a Service + EndpointSlice for nothing more.
# - TLS: pgBackRest only speaks HTTPS to S3 (plain HTTP from 2.58 only) and pgBackRest 2.45 (the
#   host's, used by the e2e to read the repository) matches names, not IP SANs: the certificate
#   carries the address as both DNS:<ip> and IP:<ip>, so 2.45 on the host and 2.55 in the image
#   both accept "<ip>:<port>" as the endpoint.
# - No telemetry (-master.telemetry=false): nothing leaves the machine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/test/toolchain/versions.sh"; . "$HERE/versions.sh"
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
WEED=$CACHE/seaweedfs-$SEAWEEDFS_VERSION/weed
UPLINK=$(ip -4 route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')
UPLINK=${LAB_UPLINK:-${UPLINK:-eth0}}
IP=${LAB_NODE_IP:-$(ip -4 -o addr show dev "$UPLINK" | awk '{print $4}' | cut -d/ -f1 | head -1)}
BUCKET=${LAB_S3_BUCKET:-pga-lab}
log() { printf '[lab-s3] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { echo "usage: $0 start DIR | stop DIR | secrets DIR NAMESPACE [NAME]" >&2; exit 2; }

running() { # DIR: the recorded PID is alive and is weed
  local pid; pid=$(cat "$1/weed.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "^$WEED server "
}
s3_answers() { # any HTTP status over TLS with our CA (403 without credentials) = the gateway is up
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$1/s3.crt" "https://$IP:$LAB_S3_PORT/" || true)
  [ -n "$code" ] && [ "$code" != 000 ]
}

start() {
  local d=$1
  [ -n "$IP" ] || die "no IPv4 address on $UPLINK (set LAB_UPLINK / LAB_NODE_IP)"
  [ -x "$WEED" ] || { log "building SeaweedFS (test/toolchain/install.sh seaweedfs; about 20 minutes cold)"; bash "$ROOT/test/toolchain/install.sh" seaweedfs >&2; }
  mkdir -p "$d/data"; chmod 755 "$d"
  if running "$d"; then log "already running (pid $(cat "$d/weed.pid"))"; cat "$d/env"; return 0; fi
  if [ ! -f "$d/s3.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/s3.key" -out "$d/s3.crt" -days 30 -subj "/CN=$IP" \
      -addext "subjectAltName=DNS:$IP,IP:$IP" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
    chmod 600 "$d/s3.key"; chmod 644 "$d/s3.crt"
    printf 'PGA%s' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" > "$d/key"
    head -c 30 /dev/urandom | base64 | tr -d '/+=\n' > "$d/secret"
    chmod 600 "$d/key" "$d/secret"
    printf '{"identities":[{"name":"pga-lab","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","List","Tagging","Write"]}]}\n' \
      "$(cat "$d/key")" "$(cat "$d/secret")" > "$d/s3.json"; chmod 600 "$d/s3.json"
  fi
  local p
  for p in $LAB_S3_PORT $LAB_S3_MASTER_PORT $LAB_S3_VOLUME_PORT $LAB_S3_FILER_PORT; do
    ss -Hltn "sport = :$p or sport = :$((p + 10000))" | grep -q . && die "port $p or $((p + 10000)) is in use: free it or change LAB_S3_*_PORT in test/lab/versions.sh"
  done
  log "starting SeaweedFS on $IP:$LAB_S3_PORT (data in $d/data, log $d/weed.log)"
  setsid "$WEED" server -ip="$IP" -ip.bind="$IP" -dir="$d/data" -volume.max=0 -master.volumeSizeLimitMB=64 -master.telemetry=false \
    -master.port="$LAB_S3_MASTER_PORT" -master.port.grpc=$((LAB_S3_MASTER_PORT + 10000)) \
    -volume.port="$LAB_S3_VOLUME_PORT" -volume.port.grpc=$((LAB_S3_VOLUME_PORT + 10000)) \
    -filer -filer.port="$LAB_S3_FILER_PORT" -filer.port.grpc=$((LAB_S3_FILER_PORT + 10000)) \
    -s3 -s3.port="$LAB_S3_PORT" -s3.port.grpc=$((LAB_S3_PORT + 10000)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$d/s3.json" -s3.cert.file="$d/s3.crt" -s3.key.file="$d/s3.key" >>"$d/weed.log" 2>&1 < /dev/null &
  echo $! > "$d/weed.pid"
  local t0; t0=$(date +%s%3N)
  for _ in $(seq 360); do s3_answers "$d" && break; running "$d" || die "weed exited: see $d/weed.log"; sleep 0.25; done
  s3_answers "$d" || die "the S3 gateway does not answer on https://$IP:$LAB_S3_PORT after 90 s: see $d/weed.log"
  # pgBackRest does not create buckets; weed shell does, through the master (retried: a master
  # that is not raft leader yet refuses).
  local out=""
  for _ in $(seq 30); do
    out=$(echo "s3.bucket.create -name $BUCKET" | timeout 30 "$WEED" shell -master="$IP:$LAB_S3_MASTER_PORT.$((LAB_S3_MASTER_PORT + 10000))" 2>&1) || true
    out=$(echo "s3.bucket.list" | timeout 30 "$WEED" shell -master="$IP:$LAB_S3_MASTER_PORT.$((LAB_S3_MASTER_PORT + 10000))" 2>&1) || true
    echo "$out" | grep -qw "$BUCKET" && break; sleep 1
  done
  echo "$out" | grep -qw "$BUCKET" || die "could not create the bucket $BUCKET: $out"
  log "ready in $(( $(date +%s%3N) - t0 )) ms: bucket $BUCKET at https://$IP:$LAB_S3_PORT"
  printf 'LAB_S3_ENDPOINT=%s\nLAB_S3_BUCKET=%s\nLAB_S3_KEY=%s\nLAB_S3_SECRET=%s\nLAB_S3_CA=%s\n' \
    "$IP:$LAB_S3_PORT" "$BUCKET" "$(cat "$d/key")" "$(cat "$d/secret")" "$d/s3.crt" > "$d/env"
  chmod 600 "$d/env"; cat "$d/env"
}

stop() { # SIGTERM to its process group (setsid made it the leader), SIGKILL after 40 s (it takes 13–28 s)
  local d=$1
  running "$d" || { rm -f "$d/weed.pid"; return 0; }
  local pid; pid=$(cat "$d/weed.pid"); log "stopping SeaweedFS ($pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "still running after 40 s: SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  rm -f "$d/weed.pid"
  # weed makes unix sockets in /tmp named by port whatever TMPDIR says (removed on a clean exit):
  # those of our ports are ours.
  local p; for p in $LAB_S3_MASTER_PORT $LAB_S3_VOLUME_PORT $LAB_S3_FILER_PORT $LAB_S3_PORT; do rm -f /tmp/seaweedfs-*-"$p".sock /tmp/seaweedfs-*-"$((p + 10000))".sock; done
}

secrets() { # DIR NAMESPACE [NAME]
  local d=$1 ns=$2 name=${3:-lab-s3}
  [ -f "$d/env" ] || die "no $d/env: run $0 start $d first"
  local kc=${KUBECONFIG:-$(bash "$HERE/lab.sh" kubeconfig)}
  local k=("$ROOT/.tools/bin/kubectl" --kubeconfig "$kc" -n "$ns")
  "${k[@]}" create secret generic "$name" --from-file=s3-key="$d/key" --from-file=s3-key-secret="$d/secret" \
    --dry-run=client -o yaml | "${k[@]}" apply -f - >/dev/null
  "${k[@]}" create secret generic "$name-ca" --from-file=ca.crt="$d/s3.crt" --dry-run=client -o yaml | "${k[@]}" apply -f - >/dev/null
  log "Secrets $ns/$name (s3-key, s3-key-secret) and $ns/$name-ca (ca.crt)"
}

case ${1:-} in
  start) [ $# = 2 ] || usage; start "$2" ;;
  stop) [ $# = 2 ] || usage; stop "$2" ;;
  secrets) [ $# -ge 3 ] || usage; secrets "$2" "$3" "${4:-}" ;;
  *) usage ;;
esac
