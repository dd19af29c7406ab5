#!/usr/bin/env bash
# Parameters are applied live (the members reload them; README "Parameters changed live"): a change
# of postgresql.parameters alone must leave the StatefulSet, its pod template's checksum included,
# exactly as it was, so `helm upgrade` restarts no pod. With the defaults and every ci file. And
# the check can fail: a pg_hba change must still change the checksum (and so restart the members).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
CHART=charts/postgres
sts() { helm template pg "$CHART" -n db --show-only templates/statefulset.yaml "$@"; }
status=0
for values in "" "$CHART"/ci/*-values.yaml; do
  args=(); [ -n "$values" ] && args=(-f "$values")
  name=${values:-defaults}
  base=$(sts "${args[@]}") || { echo "$name: helm template failed"; status=1; continue; }
  changed=$(sts "${args[@]}" --set postgresql.parameters.work_mem=77MB --set postgresql.parameters.max_connections=333 --set-string postgresql.parameters.shared_buffers=1GB) || { echo "$name: helm template with parameters failed"; status=1; continue; }
  if [ "$base" != "$changed" ]; then
    echo "$name: changing postgresql.parameters changed the StatefulSet (every member would restart):"
    diff <(printf '%s\n' "$base") <(printf '%s\n' "$changed") | head -20
    status=1
  fi
  hba=$(sts "${args[@]}" --set 'postgresql.pgHba[0]=host all all 192.0.2.0/24 scram-sha-256') || { echo "$name: helm template with pgHba failed"; status=1; continue; }
  if [ "$(grep 'checksum/config' <<<"$base")" = "$(grep 'checksum/config' <<<"$hba")" ]; then
    echo "$name: a pg_hba change left checksum/config unchanged (the checksum no longer covers the ConfigMap)"
    status=1
  fi
done
exit $status
