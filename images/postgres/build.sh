#!/usr/bin/env bash
# Builds the project's images without Docker: buildah (as root) on a local Debian base
# made by debootstrap, each written as an OCI archive that containerd imports
# (`ctr -n k8s.io images import FILE`).
#
#   images/postgres/build.sh [postgres|citus|pause|busybox|base|all]... (default: postgres)
#
# Outputs (cache outside the clone, ${PGA_CACHE:-~/.cache/pg-autopilot}/images/):
#   base-trixie-<key>.oci.tar     debootstrap trixie minbase; key = suite, variant, debootstrap
#                                 version, mirror and BASE_DATE (default: the ISO week, so the base
#                                 picks up Debian updates weekly; set BASE_DATE to pin it)
#   postgres-<tag>.oci.tar        images/postgres/Dockerfile built on that base (<basename of IMAGE>-<TAG>)
#   postgres-<tag>-citus.oci.tar  images/postgres/Dockerfile.citus on that image: + Citus, compiled from
#                                 the vendored archive (CITUS_ARCHIVE, else shared/vendor/ in the first
#                                 directory above the clone that has it); not part of `all`: the
#                                 compile takes 10-30 min on 2 cores, and only Citus mode needs it
#   pause-<key>.oci.tar           images/pause (static Go), the sandbox image containerd starts
#   busybox-<key>.oci.tar         Debian's busybox-static, the local-path-provisioner helper image
# The last line printed for each image is its archive path; the postgres image size is printed.
#
# Environment: IMAGE (default lab.local/pg-autopilot/postgres), TAG (default: the chart's
# appVersion, its -pgNN from PG_MAJOR), PG_MAJOR (17), BASE_DATE, DEBIAN_MIRROR /
# DEBIAN_SECURITY_MIRROR (default: the host's apt sources), IMPORT=1 to also import into
# containerd's k8s.io namespace.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}; OUT=$CACHE/images
export BUILDAH_FORMAT=oci
# buildah's storage: its default driver (overlay where the kernel has it, as here), or the driver
# named by STORAGE_DRIVER (e.g. vfs where overlay is unavailable) in a root of its own, since one
# storage root cannot change driver. (buildah 1.28 itself ignores the variable.)
bh() { buildah ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER" --root "/var/lib/containers/storage-$STORAGE_DRIVER"} "$@"; }
PG_MAJOR=${PG_MAJOR:-17}
SUITE=trixie
IMAGE=${IMAGE:-lab.local/pg-autopilot/postgres}
# The default tag is the chart's appVersion with its "-pgNN" suffix naming the PostgreSQL major
# actually built (PG_MAJOR=16 → 0.1.0-pg16), so a tag never claims another major than it holds.
TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/charts/postgres/Chart.yaml" | sed 's/-pg[0-9]*$//')-pg$PG_MAJOR}
BASE_DATE=${BASE_DATE:-$(date -u +%G-W%V)}
log() { printf '[images] %s\n' "$*" >&2; }
now() { date +%s; }
[ "$(id -u)" = 0 ] || { log "run as root (buildah, debootstrap)"; exit 1; }
mkdir -p "$OUT"

need_debs() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The host's Debian mirrors (deb822 or one-line sources), so nothing here names a host.
host_uri() { # $1: regex the URI path must match
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs: *//p' | tr ' ' '\n'
  sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null
  true
}
MIRROR=${DEBIAN_MIRROR:-$(host_uri | awk '/\/debian\/?$/ && !m {print; m=1}')}
SECURITY=${DEBIAN_SECURITY_MIRROR:-$(host_uri | awk '/\/debian-security\/?$/ && !m {print; m=1}')}
[ -n "$MIRROR" ] || { log "no Debian mirror in the host's apt sources; set DEBIAN_MIRROR"; exit 1; }

has_image() { bh inspect --type image "$1" >/dev/null 2>&1; }
# save NAME FILE: write an image to an OCI archive (atomically) and import it when IMPORT=1.
save() {
  rm -f "$2.tmp"; bh push -q "$1" "oci-archive:$2.tmp:$1" >/dev/null; mv "$2.tmp" "$2"
  import "$2"
}
import() { [ "${IMPORT:-0}" = 1 ] && ctr -n k8s.io images import "$1" >/dev/null && log "imported $1 into containerd"; true; }
# load NAME FILE: make sure buildah's storage has NAME (from its cached archive when it does not).
load() { has_image "$1" || { [ -f "$2" ] && bh pull -q "oci-archive:$2" >/dev/null && has_image "$1"; }; }
key() { printf '%s' "$*" | sha256sum | cut -c1-12; }

BASE_KEY=$(key "$SUITE minbase $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null) $MIRROR $SECURITY $BASE_DATE")
BASE_NAME=localhost/pga-base:$SUITE-$BASE_KEY
BASE_FILE=$OUT/base-$SUITE-$BASE_KEY.oci.tar

base() {
  if load "$BASE_NAME" "$BASE_FILE"; then log "base $BASE_NAME (cached)"; echo "$BASE_FILE"; return 0; fi
  need_debs debootstrap buildah
  local t0; t0=$(now); local root=$OUT/base-$SUITE-$BASE_KEY.root
  log "debootstrap $SUITE minbase ($BASE_DATE)"
  rm -rf "$root"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || { tail -20 "$OUT/debootstrap.log" >&2; exit 1; }
  { echo "deb $MIRROR $SUITE main"; echo "deb $MIRROR $SUITE-updates main"
    [ -n "$SECURITY" ] && echo "deb $SECURITY $SUITE-security main"; } > "$root/etc/apt/sources.list"
  # Smaller image layers: no documentation beyond copyright files, no apt caches.
  cat > "$root/etc/dpkg/dpkg.cfg.d/01-pga-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CFG
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/01-pga-norecommends"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt
  local c m; c=$(bh from scratch); m=$(bh mount "$c")
  cp -a "$root/." "$m/"; bh umount "$c" >/dev/null
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["bash"]' \
    --label "org.opencontainers.image.description=Debian $SUITE minbase (debootstrap, $BASE_DATE)" "$c"
  bh commit -q "$c" "$BASE_NAME" >/dev/null; bh rm "$c" >/dev/null
  rm -rf "$root"
  save "$BASE_NAME" "$BASE_FILE"
  log "base $BASE_NAME built in $(( $(now) - t0 ))s"
  echo "$BASE_FILE"
}

postgres() {
  need_debs buildah
  base >/dev/null
  local t0; t0=$(now); local file; file=$OUT/$(basename "$IMAGE")-$TAG.oci.tar
  local rev; rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  log "building $IMAGE:$TAG (PostgreSQL $PG_MAJOR) from $BASE_NAME"
  # --network host: RUN steps reach the Debian archive and npm through the host's network
  # (buildah's default network would add its own CNI bridge and masquerade rules on the host).
  # Behind a TLS-intercepting proxy npm needs the host's CA bundle: mounted for the build only.
  local ca=() host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  [ -f "$host_ca" ] && ca=(-v "$host_ca:/run/pga-host-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/pga-host-ca.crt)
  bh bud --layers --network host -q "${ca[@]}" \
    --build-arg BASE_IMAGE="$BASE_NAME" --build-arg PG_MAJOR="$PG_MAJOR" \
    --build-arg VERSION="$TAG" --build-arg VCS_REF="$rev" --build-arg BUILD_DATE="$(date -u +%FT%TZ)" \
    -f "$HERE/Dockerfile" -t "$IMAGE:$TAG" "$ROOT" >/dev/null
  save "$IMAGE:$TAG" "$file"
  local size; size=$(bh images --format '{{.Size}}' "$IMAGE:$TAG" | head -1)
  log "built $IMAGE:$TAG in $(( $(now) - t0 ))s; image size $size (uncompressed), archive $(du -h "$file" | cut -f1)"
  echo "$file"
}

# The vendored Citus archive (as test/toolchain/citus.sh finds it).
citus_archive() {
  [ -n "${CITUS_ARCHIVE:-}" ] && { echo "$CITUS_ARCHIVE"; return; }
  local d=$ROOT
  while [ "$d" != / ]; do d=$(dirname "$d"); [ -f "$d/shared/vendor/citus-$CITUS_VERSION.tar.gz" ] && { echo "$d/shared/vendor/citus-$CITUS_VERSION.tar.gz"; return; }; done
  return 1
}
CITUS_VERSION=${CITUS_VERSION:-13.2.2}

citus() {
  need_debs buildah
  local archive; archive=$(citus_archive) || { log "the Citus archive citus-$CITUS_VERSION.tar.gz is not in any shared/vendor/ above $ROOT: set CITUS_ARCHIVE"; exit 1; }
  postgres >/dev/null
  local t0; t0=$(now); local file; file=$OUT/$(basename "$IMAGE")-$TAG-citus.oci.tar
  log "building $IMAGE:$TAG-citus (Citus $CITUS_VERSION from $archive) on $IMAGE:$TAG"
  # The archive is mounted for the build only; its checksum is checked inside (Dockerfile.citus),
  # which copies nothing from the context (an empty directory). Niced: the compile must not starve
  # a cluster running on this machine.
  local ctx; ctx=$(mktemp -d)
  ( renice -n 10 "$BASHPID" >/dev/null
    bh bud --layers --network host -q -v "$archive:/run/citus.tar.gz:ro" \
      --build-arg POSTGRES_IMAGE="$IMAGE:$TAG" --build-arg CITUS_VERSION="$CITUS_VERSION" --build-arg CITUS_ARCHIVE=/run/citus.tar.gz \
      -f "$HERE/Dockerfile.citus" -t "$IMAGE:$TAG-citus" "$ctx" >/dev/null ) || { rmdir "$ctx"; exit 1; }
  rmdir "$ctx"
  save "$IMAGE:$TAG-citus" "$file"
  local size; size=$(bh images --format '{{.Size}}' "$IMAGE:$TAG-citus" | head -1)
  log "built $IMAGE:$TAG-citus in $(( $(now) - t0 ))s; image size $size (uncompressed), archive $(du -h "$file" | cut -f1)"
  echo "$file"
}

pause() {
  need_debs buildah
  local src=$ROOT/images/pause
  local k; k=$(key "$(cat "$src/main.go" "$src/go.mod")" "$(go version)")
  local name=lab.local/pause:$k file=$OUT/pause-$k.oci.tar
  if [ ! -f "$file" ]; then
    local tmp; tmp=$(mktemp -d)
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o "$tmp/pause" .)
    local c; c=$(bh from scratch)
    bh copy -q "$c" "$tmp/pause" /pause >/dev/null
    bh config --entrypoint '["/pause"]' --label org.opencontainers.image.title=pause "$c"
    bh commit -q "$c" "$name" >/dev/null; bh rm "$c" >/dev/null; rm -rf "$tmp"
    save "$name" "$file"; log "built $name"
  else import "$file"; fi
  echo "$file"
}

busybox() {
  need_debs buildah busybox-static
  local k; k=$(key "$(dpkg-query -W -f='${Version}' busybox-static)")
  local name=lab.local/busybox:$k file=$OUT/busybox-$k.oci.tar
  if [ ! -f "$file" ]; then
    local c m; c=$(bh from scratch); m=$(bh mount "$c")
    mkdir -p "$m/bin" "$m/tmp" "$m/opt"; cp /bin/busybox "$m/bin/busybox"
    for a in $("$m/bin/busybox" --list); do [ -e "$m/bin/$a" ] || ln -s busybox "$m/bin/$a"; done
    chmod 1777 "$m/tmp"; bh umount "$c" >/dev/null
    bh config --cmd '["/bin/sh"]' --env PATH=/bin --label org.opencontainers.image.title=busybox "$c"
    bh commit -q "$c" "$name" >/dev/null; bh rm "$c" >/dev/null
    save "$name" "$file"; log "built $name"
  else import "$file"; fi
  echo "$file"
}

[ $# -eq 0 ] && set -- postgres
for what in "$@"; do
  case $what in
    base) base ;; postgres) postgres ;; citus) citus ;; pause) pause ;; busybox) busybox ;;
    all) base >/dev/null; pause; busybox; postgres ;;
    *) log "unknown image: $what (expected postgres citus pause busybox base all)"; exit 2 ;;
  esac
done
