# Pinned versions of every tool the project builds or installs (sourced by install.sh and the lab).
HELM_VERSION=v3.19.0
UNITTEST_VERSION=v1.1.2
KUBECONFORM_VERSION=v0.7.0
# Kubernetes the lab and the integration tests run (1.34: the newest that runs with cgroup v1 and
# containerd 1.6 without extra flags) and the versions whose schemas the chart is validated against.
KUBE_VERSION=1.34.4
SCHEMA_VERSIONS="1.29.15 1.34.4"
# SeaweedFS (its S3 gateway is the object store of the backup tests): an exact pseudo-version the
# Go module proxy serves. About 20 minutes to build cold on 2 cores.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
