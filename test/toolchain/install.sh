#!/usr/bin/env bash
# Installs the project's toolchain, pinned and idempotent. Everything is built from source through
# the Go module proxy or taken from Debian's archive / the npm registry; nothing else is downloaded.
#
#   test/toolchain/install.sh [component...]     components: debs helm unittest kubeconform schemas kube seaweedfs citus all
#
# Cache: ${PGA_CACHE:-~/.cache/pg-autopilot}/<tool>-<version>/ (outside the clone, reused by fresh
# clones and CI). Links to the binaries are placed in <repo>/.tools/bin (git-ignored).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/versions.sh"
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
BIN=$ROOT/.tools/bin
mkdir -p "$CACHE" "$BIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { printf '[toolchain] %s\n' "$*" >&2; }
link() { ln -sf "$1" "$BIN/$(basename "$2")"; }
moddir() { go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p'; }

debs() {
  # busybox-static: test/bats/exporter-launcher.bats runs the exporter's launcher under busybox's sh
  # too. The static build, not `busybox`: the two conflict, and the lab (test/lab/lab.sh) needs the
  # static one for its helper image, so asking for `busybox` swapped them on every CI run.
  local want=(postgresql-15 postgresql-contrib pgbackrest etcd-server bats iproute2 util-linux openssl curl jq busybox-static)
  local missing=()
  for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { log "missing Debian packages: ${missing[*]} (run as root or install them)"; return 1; }
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's etcd package starts nothing here (no service manager); make sure.
  pkill -x etcd 2>/dev/null || true
}

helm_() {
  local d=$CACHE/helm-$HELM_VERSION
  if [ ! -x "$d/helm" ]; then
    log "building helm $HELM_VERSION (about 2 minutes cold)"
    local mv=${HELM_VERSION#v}; local minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    GOBIN=$d.tmp go install -trimpath -ldflags "-s -w \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor \
      -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    rm -rf "$d"; mv "$d.tmp" "$d"
  fi
  link "$d/helm" helm
}

unittest() {
  helm_
  local d=$CACHE/helm-unittest-$UNITTEST_VERSION
  if [ ! -x "$d/untt" ]; then
    log "building helm-unittest $UNITTEST_VERSION"
    local src; src=$(moddir "github.com/helm-unittest/helm-unittest@$UNITTEST_VERSION")
    rm -rf "$d.src"; cp -r "$src" "$d.src"; chmod -R u+w "$d.src"
    (cd "$d.src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$d.tmp/untt" ./cmd/helm-unittest)
    rm -rf "$d.src" "$d"; mv "$d.tmp" "$d"
  fi
  # A local plugin directory (no install hooks: the upstream hook downloads binaries).
  local plugins=$CACHE/helm-plugins-$HELM_VERSION
  mkdir -p "$plugins/unittest/bin"
  ln -sf "$d/untt" "$plugins/unittest/bin/untt"
  cat > "$plugins/unittest/plugin.yaml" <<YAML
name: "unittest"
version: "${UNITTEST_VERSION#v}"
usage: "unit test for helm charts"
description: "Unit test for helm charts in YAML (built from source by test/toolchain/install.sh)"
ignoreFlags: false
command: "\$HELM_PLUGIN_DIR/bin/untt"
YAML
}

kubeconform() {
  local d=$CACHE/kubeconform-$KUBECONFORM_VERSION
  if [ ! -x "$d/kubeconform" ]; then
    log "building kubeconform $KUBECONFORM_VERSION"
    GOBIN=$d.tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
    rm -rf "$d"; mv "$d.tmp" "$d"
  fi
  link "$d/kubeconform" kubeconform
}

# Kubernetes JSON schemas (strict, standalone) generated from the OpenAPI spec that the
# k8s.io/kubernetes Go module ships for each version we support.
schemas() {
  for v in $SCHEMA_VERSIONS; do
    local d=$CACHE/schemas/v$v-standalone-strict
    [ -f "$d/.done" ] && continue
    log "generating Kubernetes $v schemas"
    local src; src=$(moddir "k8s.io/kubernetes@v$v")
    rm -rf "$d"; mkdir -p "$d"
    node "$HERE/openapi2jsonschema.mjs" "$src/api/openapi-spec/swagger.json" "$d"
    touch "$d/.done"
  done
}

# Kubernetes server binaries from the k8s.io/kubernetes Go module through a wrapper module.
kube() {
  local d=$CACHE/kubernetes-v$KUBE_VERSION; local which=${KUBE_BINARIES:-kube-apiserver}
  mkdir -p "$d/bin" "$d/mod"
  local sv=0.${KUBE_VERSION#1.} minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  if [ ! -f "$d/mod/go.sum" ]; then
    local src; src=$(moddir "k8s.io/kubernetes@v$KUBE_VERSION")
    { printf 'module lab/k8s\n\ngo 1.24\n\nrequire k8s.io/kubernetes v%s\n' "$KUBE_VERSION"
      grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging' "$src/go.mod" | awk -v v="$sv" '{print "replace " $1 " => " $1 " v" v}'; } > "$d/mod/go.mod"
    { printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' $c; done
      printf ')\n'; } > "$d/mod/tools.go"
    (cd "$d/mod" && go mod tidy -e >/dev/null 2>&1 || true
     cd "$d/mod" && go get "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null 2>&1
     got=$(go list -m -f '{{.Version}}' k8s.io/kubernetes); [ "$got" = "v$KUBE_VERSION" ] || { log "k8s.io/kubernetes resolved to $got"; exit 1; })
  fi
  for c in $which; do
    [ -x "$d/bin/$c" ] && continue
    log "building $c v$KUBE_VERSION (kube-apiserver: 4-9 minutes cold)"
    (cd "$d/mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" -o "$d/bin/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$d/bin/$c.tmp" "$d/bin/$c"
  done
  for c in $which; do link "$d/bin/$c" "$c"; done
}

# SeaweedFS's `weed` (S3 gateway for the backup tests). Its go.mod has a replace line, so `go
# install MOD@V` refuses it: build from a copy of the module source.
seaweedfs() {
  local d=$CACHE/seaweedfs-$SEAWEEDFS_VERSION
  if [ ! -x "$d/weed" ]; then
    log "building SeaweedFS weed $SEAWEEDFS_VERSION (about 20 minutes cold on 2 cores)"
    local src; src=$(moddir "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION")
    rm -rf "$d.src"; cp -r "$src" "$d.src"; chmod -R u+w "$d.src"
    (cd "$d.src" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$d.tmp/weed" ./weed)
    rm -rf "$d.src" "$d"; mv "$d.tmp" "$d"
  fi
  link "$d/weed" weed
}

. "$HERE/citus.sh"

[ $# -eq 0 ] && set -- debs helm unittest kubeconform schemas kube
for c in "$@"; do
  case $c in
    debs) debs ;; helm) helm_ ;; unittest) unittest ;; kubeconform) kubeconform ;; schemas) schemas ;;
    kube) kube ;; seaweedfs) seaweedfs ;; citus) citus ;; all) debs; helm_; unittest; kubeconform; schemas; seaweedfs; KUBE_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl" kube ;;
    *) echo "unknown component: $c (expected debs helm unittest kubeconform schemas kube seaweedfs citus all)" >&2; exit 2 ;;
  esac
done
