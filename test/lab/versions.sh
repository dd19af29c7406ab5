# shellcheck shell=bash
# Pinned versions of what the lab builds from Go modules (sourced by test/lab/lab.sh).
# Kubernetes itself: KUBE_VERSION in test/toolchain/versions.sh (built by test/toolchain/install.sh kube).
COREDNS_VERSION=v1.14.7
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
# Addresses inside the lab (pods and Services live only on this machine).
LAB_POD_CIDR=10.244.0.0/24
LAB_SERVICE_CIDR=10.96.0.0/24
LAB_API_SERVICE_IP=10.96.0.1
LAB_DNS_SERVICE_IP=10.96.0.10
LAB_CLUSTER_DOMAIN=cluster.local
LAB_NODE_NAME=pga-lab
LAB_BRIDGE=pga0
# Host ports (the lab's etcd stays off the default 2379/2380 so it never meets another etcd).
LAB_ETCD_CLIENT_PORT=12379
LAB_ETCD_PEER_PORT=12380
LAB_API_PORT=6443
# The lab's S3 server (test/lab/s3.sh: SeaweedFS on the node's address; gRPC ports are these + 10000).
LAB_S3_PORT=18443
LAB_S3_MASTER_PORT=19333
LAB_S3_VOLUME_PORT=18080
LAB_S3_FILER_PORT=18888
