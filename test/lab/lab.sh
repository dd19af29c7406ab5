#!/usr/bin/env bash
# The lab: a real single-node Kubernetes on this machine, from host processes.
#
#   test/lab/lab.sh up | down [--wipe] | status | kubeconfig
#
# up        builds what is missing (cached, pinned: test/toolchain/versions.sh, test/lab/versions.sh),
#           installs Debian's etcd, containerd, runc and CNI plugins when missing, generates the
#           certificates and kubeconfigs, starts etcd, kube-apiserver, kube-controller-manager,
#           kube-scheduler, containerd, kubelet, kube-proxy (iptables), CoreDNS (cluster domain
#           only, no forwarding) and rancher's local-path-provisioner (the default StorageClass),
#           imports the images (pause, busybox, and the postgres image when it was built), and
#           prints the admin kubeconfig's path. Running it again only starts what is not running.
# down      stops everything `up` started, by PID; removes the pods' containers, network
#           namespaces, mounts, the bridge and the iptables rules the lab added. Keeps the state
#           (certificates, etcd data, images, volumes) unless --wipe.
# status    what runs, the node, the system pods.
# kubeconfig  prints the admin kubeconfig path (`export KUBECONFIG=$(test/lab/lab.sh kubeconfig)`).
# images    imports newly built image archives (images/postgres/build.sh) into the lab's containerd.
# build     only builds / installs what `up` needs.
# s3 start|stop|secrets DIR ...  the lab's S3 server (SeaweedFS on the node's address): test/lab/s3.sh.
#
# State: ${PGA_LAB_DIR:-${PGA_CACHE:-~/.cache/pg-autopilot}/lab} (outside the clone). Runs as root.
# Network rule: pods and Services never reach beyond this machine: the CNI bridge has no default
# route and no masquerade, pod traffic leaving through the uplink is dropped, DNS does not forward.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/test/toolchain/versions.sh"; . "$HERE/versions.sh"
CACHE=${PGA_CACHE:-$HOME/.cache/pg-autopilot}
S=${PGA_LAB_DIR:-$CACHE/lab}
P=$S/pki RUN=$S/run LOGS=$S/log
KB=$CACHE/kubernetes-v$KUBE_VERSION/bin
COREDNS=$CACHE/coredns-$COREDNS_VERSION/coredns
LPP=$CACHE/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner
CTRD_ADDR=/run/pga-lab/containerd.sock
KUBECONFIG_OUT=$S/kubeconfig
log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
K() { "$KB/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }
ctr_() { ctr --address "$CTRD_ADDR" -n k8s.io "$@"; }
UPLINK=$(ip -4 route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')
UPLINK=${LAB_UPLINK:-${UPLINK:-eth0}}
IP=${LAB_NODE_IP:-$(ip -4 -o addr show dev "$UPLINK" | awk '{print $4}' | cut -d/ -f1 | head -1)}

# ------------------------------------------------------------------ processes, by PID
pidfile() { echo "$RUN/$1.pid"; }
alive() { # NAME: the recorded PID runs and is still the program we started
  local f; f=$(pidfile "$1"); [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f"); [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(cat "$f.cmd" 2>/dev/null || echo "$1")"
}
start() { # NAME BINARY ARGS...: start unless alive; logs in $LOGS/NAME.log
  local n=$1; shift
  alive "$n" && return 0
  log "starting $n"
  setsid "$@" >>"$LOGS/$n.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$n")"; basename "$1" > "$(pidfile "$n").cmd"
}
stop() { # NAME: SIGTERM, then SIGKILL after 15 s
  alive "$1" || { rm -f "$(pidfile "$1")" "$(pidfile "$1").cmd"; return 0; }
  local pid; pid=$(cat "$(pidfile "$1")"); log "stopping $1 ($pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$(pidfile "$1")" "$(pidfile "$1").cmd"
}
put() { # FILE: stdin into FILE, only when the content differs (kube-proxy exits when its config changes)
  local tmp; tmp=$(mktemp); cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; chmod 644 "$1"; fi
}
wait_for() { # SECONDS WHAT COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what not ready after ${t}s (logs: $LOGS)"
}

# ------------------------------------------------------------------ build + install (cached)
debs() {
  local want=(containerd runc containernetworking-plugins iptables conntrack etcd-server buildah debootstrap busybox-static openssl curl postgresql-client)
  local missing=() p
  for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
gobuild() { # DIR MODULE@VERSION: go install into a versioned cache directory
  [ -x "$1/$(basename "${2%@*}")" ] && return 0
  log "building ${2} (go install, a few minutes cold)"
  rm -rf "$1.tmp"
  GOBIN=$1.tmp GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 go install -trimpath -ldflags '-s -w' "$2"
  rm -rf "$1"; mv "$1.tmp" "$1"
}
build() {
  KUBE_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl" \
    bash "$ROOT/test/toolchain/install.sh" kube
  gobuild "$(dirname "$COREDNS")" "github.com/coredns/coredns@$COREDNS_VERSION"
  gobuild "$(dirname "$LPP")" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
}

# ------------------------------------------------------------------ certificates, kubeconfigs
cert() { # NAME SUBJECT [EXTFILE-CONTENT]: a key + certificate signed by the lab CA
  local ext; ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "${3:-extendedKeyUsage=clientAuth}" > "$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 365 -extfile "$ext" -out "$P/$1.crt" 2>/dev/null
  rm -f "$ext" "$P/$1.csr"
}
kubeconfig() { # NAME FILE [embed]
  local ca=certificate-authority: crt=client-certificate: key=client-key: cav=$P/ca.crt crtv=$P/$1.crt keyv=$P/$1.key
  if [ "${3:-}" = embed ]; then
    ca=certificate-authority-data: crt=client-certificate-data: key=client-key-data:
    cav=$(base64 -w0 < "$P/ca.crt"); crtv=$(base64 -w0 < "$P/$1.crt"); keyv=$(base64 -w0 < "$P/$1.key")
  fi
  cat > "$2" <<KC
apiVersion: v1
kind: Config
clusters: [{name: pga-lab, cluster: {$ca $cav, server: "https://$IP:$LAB_API_PORT"}}]
users: [{name: $1, user: {$crt $crtv, $key $keyv}}]
contexts: [{name: pga-lab, context: {cluster: pga-lab, user: $1}}]
current-context: pga-lab
KC
  chmod 600 "$2"
}
pki() {
  mkdir -p "$P"; chmod 700 "$P"
  # Regenerate everything when the node address changed or the CA expires within a day.
  if [ -f "$P/ca.crt" ] && [ "$(cat "$P/ip" 2>/dev/null)" = "$IP" ] && openssl x509 -checkend 86400 -noout -in "$P/ca.crt" >/dev/null; then return 0; fi
  log "generating certificates for $IP"
  rm -f "$P"/*
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" -days 730 -subj "/CN=pga-lab-ca" 2>/dev/null
  openssl genrsa -out "$P/sa.key" 2048 2>/dev/null; openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
  local d=$LAB_CLUSTER_DOMAIN
  cert apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:$IP,IP:$LAB_API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$d,DNS:localhost"
  cert kubelet-server "/CN=$LAB_NODE_NAME" "extendedKeyUsage=serverAuth
subjectAltName=IP:$IP,DNS:$LAB_NODE_NAME"
  cert admin "/CN=pga-lab-admin/O=system:masters"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client/O=system:masters"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kubelet "/CN=system:node:$LAB_NODE_NAME/O=system:nodes"
  cert kube-proxy "/CN=system:kube-proxy"
  cert coredns "/CN=pga-lab:coredns"
  cert local-path-provisioner "/CN=pga-lab:local-path-provisioner"
  for n in controller-manager scheduler kubelet kube-proxy coredns local-path-provisioner; do kubeconfig $n "$P/$n.kubeconfig"; done
  echo "$IP" > "$P/ip"
}

# ------------------------------------------------------------------ node: containerd, CNI, network rule
containerd_config() {
  mkdir -p "$S/containerd/root" /run/pga-lab/containerd "$S/cni/net.d" "$S/cni/ipam"
  local pause; pause=$(ls -t "$CACHE"/images/pause-*.oci.tar | head -1); pause=lab.local/pause:$(basename "$pause" .oci.tar | sed 's/^pause-//')
  containerd config default | sed \
    -e "s#^root = .*#root = \"$S/containerd/root\"#" \
    -e "s#^state = .*#state = \"/run/pga-lab/containerd\"#" \
    -e "/^\[grpc\]/,/^\[/ s#^  address = .*#  address = \"$CTRD_ADDR\"#" \
    -e "s#sandbox_image = .*#sandbox_image = \"$pause\"#" \
    -e "s#bin_dir = .*#bin_dir = \"/usr/lib/cni\"#" \
    -e "s#conf_dir = .*#conf_dir = \"$S/cni/net.d\"#" \
    -e "s#restrict_oom_score_adj = false#restrict_oom_score_adj = true#" \
    > "$S/containerd/config.toml"
  grep -q "address = \"$CTRD_ADDR\"" "$S/containerd/config.toml" || die "containerd config: could not set the socket address"
  # Routes only to pods, Services and this node: no default route, no masquerade (nothing leaves).
  cat > "$S/cni/net.d/10-pga-lab.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "pga-lab", "plugins": [{
  "type": "bridge", "bridge": "$LAB_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "$S/cni/ipam", "ranges": [[{"subnet": "$LAB_POD_CIDR"}]],
           "routes": [{"dst": "$LAB_POD_CIDR"}, {"dst": "$LAB_SERVICE_CIDR"}, {"dst": "$IP/32"}]}}]}
CNI
}
net_rule() { # pod traffic leaving through the uplink is dropped (first rule of FORWARD)
  iptables -D FORWARD -s "$LAB_POD_CIDR" -o "$UPLINK" -m comment --comment pga-lab -j DROP 2>/dev/null || true
  iptables -I FORWARD 1 -s "$LAB_POD_CIDR" -o "$UPLINK" -m comment --comment pga-lab -j DROP
}

import_images() {
  mkdir -p "$S/imported"
  local f m
  for f in "$CACHE"/images/pause-*.oci.tar "$CACHE"/images/busybox-*.oci.tar "$CACHE"/images/postgres-*.oci.tar; do
    [ -f "$f" ] || continue
    m=$S/imported/$(basename "$f").$(stat -c %Y "$f")
    [ -f "$m" ] && continue
    log "importing $(basename "$f")"
    ctr_ images import "$f" >/dev/null
    rm -f "$S/imported/$(basename "$f")".*; touch "$m"
  done
}

# ------------------------------------------------------------------ up
up() {
  [ "$(id -u)" = 0 ] || die "run as root"
  [ -n "$IP" ] || die "no IPv4 address on $UPLINK (set LAB_UPLINK / LAB_NODE_IP)"
  local t0; t0=$(date +%s)
  mkdir -p "$S" "$RUN" "$LOGS" "$S/etcd" "$S/volumes" "$S/kubelet"
  debs
  build
  bash "$ROOT/images/postgres/build.sh" pause busybox >/dev/null
  pki
  kubeconfig admin "$KUBECONFIG_OUT" embed
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  : > "$S/resolv.conf"   # pods with dnsPolicy Default get no outside resolver

  # --- container runtime
  if ! alive containerd; then containerd_config; start containerd containerd --config "$S/containerd/config.toml"; fi
  wait_for 30 containerd ctr --address "$CTRD_ADDR" version
  import_images

  # --- control plane
  start etcd etcd --name pga-lab --data-dir "$S/etcd" \
    --listen-client-urls "http://127.0.0.1:$LAB_ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$LAB_ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$LAB_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$LAB_ETCD_PEER_PORT" \
    --initial-cluster "pga-lab=http://127.0.0.1:$LAB_ETCD_PEER_PORT"
  wait_for 30 etcd curl -sf "http://127.0.0.1:$LAB_ETCD_CLIENT_PORT/health"
  start kube-apiserver "$KB/kube-apiserver" --etcd-servers="http://127.0.0.1:$LAB_ETCD_CLIENT_PORT" \
    --bind-address="$IP" --advertise-address="$IP" --secure-port="$LAB_API_PORT" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer="https://kubernetes.default.svc.$LAB_CLUSTER_DOMAIN" \
    --service-cluster-ip-range="$LAB_SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction --allow-privileged=true --profiling=false
  wait_for 120 kube-apiserver curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "https://$IP:$LAB_API_PORT/readyz"
  start kube-controller-manager "$KB/kube-controller-manager" --kubeconfig="$P/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --use-service-account-credentials --service-cluster-ip-range="$LAB_SERVICE_CIDR" --cluster-cidr="$LAB_POD_CIDR" \
    --leader-elect=false --profiling=false
  printf 'apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection: {kubeconfig: "%s"}\nleaderElection: {leaderElect: false}\n' \
    "$P/scheduler.kubeconfig" | put "$S/scheduler.yaml"
  start kube-scheduler "$KB/kube-scheduler" --config="$S/scheduler.yaml" --bind-address=127.0.0.1 \
    --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig"

  # --- node
  put "$S/kubelet.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CTRD_ADDR
clusterDNS: [$LAB_DNS_SERVICE_IP]
clusterDomain: $LAB_CLUSTER_DOMAIN
resolvConf: $S/resolv.conf
authentication: {x509: {clientCAFile: $P/ca.crt}, webhook: {enabled: true}, anonymous: {enabled: false}}
authorization: {mode: Webhook}
tlsCertFile: $P/kubelet-server.crt
tlsPrivateKeyFile: $P/kubelet-server.key
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
KCFG
  start kubelet "$KB/kubelet" --config="$S/kubelet.yaml" --kubeconfig="$P/kubelet.kubeconfig" \
    --root-dir="$S/kubelet" --hostname-override="$LAB_NODE_NAME" --node-ip="$IP"
  printf 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection: {kubeconfig: "%s"}\nhostnameOverride: %s\nmode: iptables\nclusterCIDR: %s\nbindAddress: %s\nnodePortAddresses: ["%s/32"]\nhealthzBindAddress: 127.0.0.1:10256\nmetricsBindAddress: 127.0.0.1:10249\nconntrack: {maxPerCore: 0, min: 0}\n' \
    "$P/kube-proxy.kubeconfig" "$LAB_NODE_NAME" "$LAB_POD_CIDR" "$IP" "$IP" | put "$S/kube-proxy.yaml"
  start kube-proxy "$KB/kube-proxy" --config="$S/kube-proxy.yaml"
  wait_for 90 "node $LAB_NODE_NAME" sh -c "'$KB/kubectl' --kubeconfig '$KUBECONFIG_OUT' get node $LAB_NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  wait_for 30 kube-proxy curl -sf http://127.0.0.1:10256/healthz
  net_rule

  # --- cluster add-ons: DNS for the cluster domain, the default StorageClass
  addons
  put "$S/Corefile" <<COREFILE
$LAB_CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $IP
    errors
    kubernetes $LAB_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $P/coredns.kubeconfig pga-lab
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 10
    loadbalance
}
COREFILE
  start coredns "$COREDNS" -conf "$S/Corefile"
  start local-path-provisioner "$LPP" start --kubeconfig "$P/local-path-provisioner.kubeconfig" \
    --config "$S/local-path/config.json" --helper-pod-file "$S/local-path/helperPod.yaml" \
    --namespace local-path-storage --service-account-name local-path-provisioner-service-account \
    --helper-image "$(busybox_image)" --configmap-name local-path-config
  wait_for 30 "cluster DNS" sh -c "$(dns_probe)"
  log "up in $(( $(date +%s) - t0 ))s: node $LAB_NODE_NAME ($IP), Kubernetes v$KUBE_VERSION"
  echo "$KUBECONFIG_OUT"
}
busybox_image() { local f; f=$(ls -t "$CACHE"/images/busybox-*.oci.tar | head -1); echo "lab.local/busybox:$(basename "$f" .oci.tar | sed 's/^busybox-//')"; }
# A DNS query for the API server's Service name to the cluster DNS Service (busybox nslookup on the
# host; kube-proxy routes the host's own traffic to ClusterIPs too).
dns_probe() { echo "busybox nslookup kubernetes.default.svc.$LAB_CLUSTER_DOMAIN $LAB_DNS_SERVICE_IP 2>/dev/null | grep -q 'Address.*$LAB_API_SERVICE_IP'"; }

addons() {
  mkdir -p "$S/local-path"
  put "$S/local-path/config.json" <<JSON
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$S/volumes"]}]}
JSON
  put "$S/local-path/helperPod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: helper-pod}
spec:
  priorityClassName: system-node-critical
  tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
  containers:
    - name: helper-pod
      image: $(busybox_image)
      imagePullPolicy: Never
YAML
  K apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS, app.kubernetes.io/managed-by: pga-lab}
spec:
  clusterIP: $LAB_DNS_SERVICE_IP
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
# CoreDNS runs on the host: the Service's endpoint is the node address.
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: pga-lab}
addressType: IPv4
endpoints: [{addresses: ["$IP"], conditions: {ready: true}}]
ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "pga-lab:coredns"}
rules:
  - {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
  - {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "pga-lab:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "pga-lab:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "pga-lab:coredns"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner-service-account, namespace: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  # 0777 directories: the members run as uid 10001 (or a random uid) and hostPath volumes ignore fsGroup.
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "pga-lab:local-path-provisioner"}
rules:
  - {apiGroups: [""], resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [persistentvolumes], verbs: [get, list, watch, create, patch, update, delete]}
  - {apiGroups: [""], resources: [events], verbs: [create, patch]}
  - {apiGroups: [storage.k8s.io], resources: [storageclasses], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "pga-lab:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "pga-lab:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "pga-lab:local-path-provisioner"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "pga-lab:local-path-provisioner", namespace: local-path-storage}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, patch, update, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "pga-lab:local-path-provisioner", namespace: local-path-storage}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "pga-lab:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "pga-lab:local-path-provisioner"}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
YAML
}

# ------------------------------------------------------------------ down
down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local n
  for n in local-path-provisioner coredns kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$n"; done
  if alive containerd; then
    # Every container of the lab: killed, then removed (their shims exit with them).
    local ids; ids=$(ctr_ tasks ls -q 2>/dev/null || true)
    for id in $ids; do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $ids; do for _ in $(seq 50); do ctr_ tasks ls -q 2>/dev/null | grep -qx "$id" || break; ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true; sleep 0.1; done; done
    for id in $(ctr_ containers ls -q 2>/dev/null || true); do ctr_ containers rm "$id" >/dev/null 2>&1 || true; done
    stop containerd
  fi
  # Pod network namespaces with an address in the lab's pod range, then the bridge and IPAM state.
  local ns prefix=${LAB_POD_CIDR%.*}.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    ip netns exec "$ns" ip -4 -o addr 2>/dev/null | grep -q " inet ${prefix//./\\.}" && ip netns delete "$ns" 2>/dev/null || true
  done
  ip link show "$LAB_BRIDGE" >/dev/null 2>&1 && ip link delete "$LAB_BRIDGE" || true
  rm -rf "$S/cni/ipam"
  # Mounts below the lab's directories (kubelet volumes, container root filesystems, sandboxes).
  findmnt -rn -o TARGET | awk -v a="$S/" -v b=/run/pga-lab/ 'index($0, a) == 1 || index($0, b) == 1' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # iptables: the lab's FORWARD rule, then kube-proxy's and kubelet's KUBE-* chains.
  while iptables -D FORWARD -s "$LAB_POD_CIDR" -o "$UPLINK" -m comment --comment pga-lab -j DROP 2>/dev/null; do :; done
  [ -x "$KB/kube-proxy" ] && "$KB/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local t c
  for t in filter nat mangle; do
    iptables-save -t "$t" | awk '/^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-/' | sed 's/^-A/-D/' | while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null || true; done
    for c in $(iptables-save -t "$t" | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $(iptables-save -t "$t" | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -t "$t" -X "$c" 2>/dev/null || true; done
  done
  rm -rf /run/pga-lab
  if [ "${1:-}" = --wipe ]; then
    log "wiping etcd data, volumes, certificates, container storage"
    rm -rf "$S/etcd" "$S/volumes" "$S/kubelet" "$S/containerd" "$S/imported" "$P" "$KUBECONFIG_OUT"
  fi
  log "down"
}

status() {
  local n
  for n in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns local-path-provisioner; do
    if alive "$n"; then printf '  %-24s running (pid %s)\n' "$n" "$(cat "$(pidfile "$n")")"; else printf '  %-24s stopped\n' "$n"; fi
  done
  if alive kube-apiserver; then K get nodes -o wide; K get storageclass; K get pods -A -o wide; fi
}

case ${1:-} in
  up) up ;;
  down) shift; down "${1:-}" ;;
  status) status ;;
  kubeconfig) [ -f "$KUBECONFIG_OUT" ] || die "no lab kubeconfig yet: run test/lab/lab.sh up"; echo "$KUBECONFIG_OUT" ;;
  images) alive containerd || die "the lab is not up"; import_images ;;
  build) debs; build; bash "$ROOT/images/postgres/build.sh" pause busybox ;;
  s3) shift; exec bash "$HERE/s3.sh" "$@" ;;
  *) echo "usage: $0 up | down [--wipe] | status | kubeconfig | images | build | s3 start|stop|secrets DIR ..." >&2; exit 2 ;;
esac
