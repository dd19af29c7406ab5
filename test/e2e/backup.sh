# shellcheck shell=bash
# e2e step: backup → destroy → point-in-time restore, on the lab's S3 server (test/lab/s3.sh).
# Sourced by test/e2e/run.sh (its helpers: k, sql, member_sql, primary, health, install, fail, ...);
# runs in `full` mode after the chaos steps, or alone with `test/e2e/run.sh backup`.
#
#   1. the lab's S3 server (SeaweedFS on the node's address, data in $W/s3) and its Secrets
#   2. helm install release bk, backups on, a full backup scheduled (cron, UTC) for a minute that
#      starts 150–210 s after the install (install → healthy took 81 s on the loaded 2-core machine,
#      so batch A usually lands before it; when not, it is noted, and the restore replays it from
#      WAL); writes batch A (ids 1..100)
#   3. the scheduled backup runs exactly once: the Lease records that scheduled time done, and the
#      repository (read from the host with pgBackRest, not through the members) holds one backup
#   4. a target time noted; batch B (ids 101..200); its WAL archived
#   5. helm uninstall bk + delete its PVCs; helm install release bkr with bootstrap.fromBackup
#      (bk's stanza, target = that time) → 3 Ready, rows exactly batch A, helm test, bkr archives
#      to its own stanza, bk's stanza is unchanged
BK_NS=pga-e2e-backup
BK_ROWS=100
S3_DIR=""

# pgBackRest on the host, reading the repository directly: info --output=json for STANZA at PATH.
repo_info() { # STANZA PATH
  PGBACKREST_REPO1_S3_KEY=$LAB_S3_KEY PGBACKREST_REPO1_S3_KEY_SECRET=$LAB_S3_SECRET pgbackrest \
    --config="$S3_DIR/pgbackrest.conf" --log-level-console=warn --log-level-file=off --lock-path="$S3_DIR" \
    --repo1-type=s3 --repo1-s3-endpoint="${LAB_S3_ENDPOINT%:*}" --repo1-storage-port="${LAB_S3_ENDPOINT##*:}" \
    --repo1-s3-bucket="$LAB_S3_BUCKET" --repo1-s3-region=us-east-1 --repo1-s3-uri-style=path \
    --repo1-storage-ca-file="$LAB_S3_CA" --repo1-path="$2" --stanza="$1" --output=json info
}
# "labels|archive min..max" of the stanza: what a restore must never change in its source.
repo_summary() { # STANZA PATH
  repo_info "$1" "$2" | node -e '
    const [s] = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const a = (s.archive ?? [])[0] ?? {};
    console.log(`${s.backup.map((b) => `${b.label}(${b.type})`).join(",")}|${a.min ?? "-"}..${a.max ?? "-"}|${s.status.message}`);'
}
backup_json() { k get configmap "$(fullname)" -o jsonpath='{.data.backup\.json}'; }
json_field() { node -e 'let v; try { v = JSON.parse(require("fs").readFileSync(0, "utf8")); } catch { v = {}; } for (const k of process.argv[1].split(".")) v = v?.[k]; console.log(v ?? "")' "$1"; }
lease_backups() { k get lease "$(fullname)-leader" -o jsonpath='{.metadata.annotations.pg-autopilot\.io/backups}' 2>/dev/null || true; }
write_batch() { # FROM TO BATCH: ten transactions through the rw Service
  local from=$1 to=$2 b=$3 i out
  for ((i = from; i <= to; i += 10)); do
    out=$(sql rw "INSERT INTO e2e_backup (id, batch) SELECT g, '$b' FROM generate_series($i, $((i + 9 > to ? to : i + 9))) g") \
      || fail "writing batch $b (ids $i..): $out"
  done
}

backup_restore_e2e() {
  local pgas=$W/s3/pgbackrest.conf
  NS=$BK_NS REL=bk SYNC=off
  log "backup → destroy → PITR restore, in $NS"
  "$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  S3_DIR=$W/s3
  local t; t=$(date +%s%3N)
  bash "$ROOT/test/lab/s3.sh" start "$S3_DIR" >/dev/null || fail "the lab's S3 server did not start (see $S3_DIR/weed.log)"
  echo "lab S3 server (SeaweedFS) start → bucket ready: $(( $(date +%s%3N) - t )) ms" >> "$W/install.txt"
  # shellcheck disable=SC1091
  . "$S3_DIR/env"; : > "$pgas"
  k create namespace "$NS" >/dev/null
  bash "$ROOT/test/lab/s3.sh" secrets "$S3_DIR" "$NS" lab-s3

  # ---- source cluster: a full backup scheduled for a minute that starts 150–210 s from now
  local at cron; at=$(( ($(date +%s) + 150 + 59) / 60 * 60 ))
  cron="$(date -u -d "@$at" +'%-M %-H') * * *"
  cat > "$W/backup-values.yaml" <<YAML
backup:
  enabled: true
  s3: {endpoint: "$LAB_S3_ENDPOINT", bucket: $LAB_S3_BUCKET, uriStyle: path, caSecret: lab-s3-ca, existingSecret: lab-s3}
  schedule: {full: "$cron", incremental: ""}
YAML
  log "helm install $REL: backups to https://$LAB_S3_ENDPOINT/$LAB_S3_BUCKET, schedule.full \"$cron\" (due $(date -u -d "@$at" +%T))"
  t=$(date +%s); install -f "$W/backup-values.yaml"
  health 3
  echo "backups on: install → healthy $(( $(date +%s) - t ))s" >> "$W/install.txt"
  local stanza path; stanza=$(backup_json | json_field stanza); path=$(backup_json | json_field s3.path)
  [ -n "$stanza" ] && [ -n "$path" ] || fail "no stanza/path in the ConfigMap's backup.json: $(backup_json)"
  sql rw "CREATE TABLE e2e_backup (id int PRIMARY KEY, batch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null \
    || fail "creating e2e_backup"
  write_batch 1 "$BK_ROWS" A
  log "  batch A written (ids 1..$BK_ROWS); waiting for the scheduled full backup at $(date -u -d "@$at" +%T)"
  # Not a failure: on a machine this loaded, install → healthy took 81–200 s. Then batch A comes
  # back from the archived WAL replayed after the backup instead of from the backup itself.
  local a_in=yes
  [ "$(date +%s)" -lt "$at" ] || { a_in=no; log "  note: batch A was written after the scheduled time (slow install): the restore replays it from WAL"; }

  # ---- the scheduled backup: done once, recorded on the Lease, one backup in the repository
  local rec="" deadline=$(( at + TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    rec=$(lease_backups)
    [ "$(echo "$rec" | json_field full.at)" = "$((at * 1000))" ] && [ "$(echo "$rec" | json_field full.state)" != running ] && break
    sleep 2
  done
  [ "$(echo "$rec" | json_field full.state)" = done ] || fail "the scheduled full backup for $(date -u -d "@$at" +%T) is not done after ${TIMEOUT}s: lease record $rec"
  # Past the scheduled minute (and a few autopilot ticks) before counting: a second run would show.
  while [ "$(date +%s)" -lt $(( at + 75 )) ]; do sleep 2; done
  local info labels n
  info=$(repo_info "$stanza" "$path") || fail "pgbackrest info on the host for $stanza at $path: $info"
  labels=$(echo "$info" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8"))[0].backup.map((b) => b.label + "(" + b.type + ")").join(" ")')
  n=$(echo "$labels" | wc -w)
  [ "$n" = 1 ] && [[ $labels == *"(full)" ]] || fail "the repository should hold exactly one full backup after the scheduled run, it holds: [$labels]"
  local dur took
  dur=$(echo "$info" | node -pe 'const b = JSON.parse(require("fs").readFileSync(0,"utf8"))[0].backup[0]; b.timestamp.stop - b.timestamp.start')
  took=$(echo "$info" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8"))[0].backup[0].timestamp.stop')
  took=$(( took - at ))
  local size; size=$(echo "$info" | node -pe 'const b = JSON.parse(require("fs").readFileSync(0,"utf8"))[0].backup[0]; (b.info.size / 1048576).toFixed(1) + " MB, " + (b.info.repository.size / 1048576).toFixed(1) + " MB in the repository"')
  log "  scheduled full backup $labels by $(echo "$rec" | json_field full.by): done ${took}s after its time, ${dur}s in pgBackRest ($size); exactly one in the repository"
  echo "scheduled full backup (once, lease + repository checked): ${dur}s in pgBackRest, done ${took}s after its scheduled time; $size; batch A written before it: $a_in" >> "$W/install.txt"

  # ---- the target, then batch B, archived
  sleep 1.1; local target; target=$(date -u +'%F %T+00'); sleep 1.1
  write_batch $((BK_ROWS + 1)) $((BK_ROWS * 2)) B
  local seg out="" archived=""
  seg=$(member_sql "$(primary)" "SELECT pg_walfile_name(pg_switch_wal())")
  for _ in $(seq 120); do
    out=$(member_sql "$(primary)" "SELECT last_archived_wal >= '$seg' FROM pg_stat_archiver")
    [ "$out" = t ] && { archived=1; break; }; sleep 0.5
  done
  [ -n "$archived" ] || fail "WAL $seg (batch B) not archived within 60 s: $(member_sql "$(primary)" 'SELECT * FROM pg_stat_archiver')"
  log "  target time $target; batch B written (ids $((BK_ROWS + 1))..$((BK_ROWS * 2))), its WAL $seg archived"
  local before; before=$(repo_summary "$stanza" "$path") || fail "reading $stanza: $before"

  # ---- destroy
  log "  helm uninstall $REL; delete its PVCs"
  "$HELM" uninstall "$REL" -n "$NS" --wait --timeout 5m >/dev/null || fail "helm uninstall $REL"
  k wait --for=delete pod -l "$(sel)" --timeout=180s >/dev/null 2>&1 || true
  k delete pvc -l "$(sel)" --wait=true --timeout=180s >/dev/null || fail "deleting the PVCs of $REL"
  [ -z "$(k get pvc -o name | grep "$(fullname)" || true)" ] || fail "PVCs of $REL left: $(k get pvc -o name)"

  # ---- restore into a new release, from bk's stanza, to the target time
  REL=bkr
  cat > "$W/restore-values.yaml" <<YAML
bootstrap:
  fromBackup:
    enabled: true
    stanza: $stanza
    s3: {endpoint: "$LAB_S3_ENDPOINT", bucket: $LAB_S3_BUCKET, path: "$path", uriStyle: path, caSecret: lab-s3-ca, existingSecret: lab-s3}
    target: {type: time, value: "$target"}
backup:
  enabled: true
  s3: {endpoint: "$LAB_S3_ENDPOINT", bucket: $LAB_S3_BUCKET, uriStyle: path, caSecret: lab-s3-ca, existingSecret: lab-s3}
  schedule: {full: "", incremental: ""}
YAML
  log "helm install $REL: bootstrap.fromBackup stanza $stanza, target time $target"
  t=$(date +%s); install -f "$W/restore-values.yaml"
  local save=$TIMEOUT; TIMEOUT=$(( TIMEOUT > 600 ? TIMEOUT : 600 )); health 3; TIMEOUT=$save
  local restore_s=$(( $(date +%s) - t )) first
  # The bootstrap member (restore + replay + promote) was Ready before its replicas cloned it.
  first=$(k get pod "$(primary)" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
  first=$(( $(date -d "$first" +%s) - t ))
  echo "PITR restore (bootstrap.fromBackup, time target): helm install → restored primary Ready ${first}s, → 3 Ready, rw/ro checked ${restore_s}s" >> "$W/install.txt"
  local rows want="$BK_ROWS|1|$BK_ROWS|$(( BK_ROWS * (BK_ROWS + 1) / 2 ))|0"
  rows=$(member_sql "$(primary)" "SELECT count(*), min(id), max(id), sum(id), count(*) FILTER (WHERE batch <> 'A') FROM e2e_backup")
  [ "$rows" = "$want" ] || fail "restored rows: count|min|max|sum|not batch A = $rows, expected exactly batch A: $want"
  local p; for p in $(pods_with); do
    for _ in $(seq 30); do [ "$(member_sql "$p" "SELECT count(*), min(id), max(id), sum(id), count(*) FILTER (WHERE batch <> 'A') FROM e2e_backup")" = "$want" ] && break; sleep 1; done
    [ "$(member_sql "$p" "SELECT count(*), sum(id) FROM e2e_backup")" = "$BK_ROWS|$(( BK_ROWS * (BK_ROWS + 1) / 2 ))" ] || fail "$p does not hold exactly batch A"
  done
  log "  restored: primary Ready ${first}s, healthy ${restore_s}s after helm install; exactly batch A ($BK_ROWS rows) on every member"
  printf 'backup → PITR restore\t%s\t-\t-\t-\t-\t%s\n' "$restore_s" "exactly batch A ($BK_ROWS rows x 3)" >> "$FIGURES"
  t=$(date +%s)
  "$HELM" test "$REL" -n "$NS" --timeout 5m > "$W/helm-test-$REL.log" 2>&1 || { cat "$W/helm-test-$REL.log" >&2; fail "helm test $REL (restored)"; }
  echo "helm test (restored release): $(( $(date +%s) - t ))s" >> "$W/install.txt"

  # ---- the restored cluster archives to its own stanza; the source's is untouched
  local nstanza npath; nstanza=$(backup_json | json_field stanza); npath=$(backup_json | json_field s3.path)
  [ "$nstanza|$npath" != "$stanza|$path" ] || fail "the restored release archives to its source's stanza $stanza at $path"
  seg=$(member_sql "$(primary)" "SELECT pg_walfile_name(pg_switch_wal())")
  local own="" max
  for _ in $(seq 120); do
    own=$(repo_summary "$nstanza" "$npath" 2>/dev/null) || own=""
    max=$(echo "$own" | cut -d'|' -f2 | sed 's/.*\.\.//')
    [ -n "$own" ] && [ "$max" != - ] && ! [[ $max < $seg ]] && break
    own=""; sleep 0.5
  done
  [ -n "$own" ] || fail "the restored cluster did not archive $seg to its own stanza $nstanza at $npath within 60 s: $(repo_summary "$nstanza" "$npath" 2>&1)"
  local after; after=$(repo_summary "$stanza" "$path")
  [ "$after" = "$before" ] || fail "the source stanza $stanza changed during the restore: before [$before], after [$after]"
  log "  $REL archives to its own stanza $nstanza ($own); $stanza unchanged ($after)"
  [ "${KEEP:-0}" = 1 ] || "$HELM" uninstall "$REL" -n "$NS" >/dev/null
}
