#!/usr/bin/env bats
# The metrics container's launcher (charts/postgres/files/exporter-launcher.sh): postgres_exporter
# reads its password file once, so the launcher restarts it, and only it, when the file's content
# changes. Run against a stand-in exporter that logs the password it read at start, under dash
# (`sh`) and busybox's sh with nothing but busybox's applets on PATH (the exporter image's shell
# and tools), with the file swapped the way the kubelet swaps a Secret volume (a new ..data
# symlink renamed over the old one).

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  LAUNCHER="$ROOT/charts/postgres/files/exporter-launcher.sh"
  T="$BATS_TEST_TMPDIR"
  # the stand-in: logs "start <password>" (read once, as postgres_exporter does) and "stop" on TERM
  cat > "$T/exporter" <<'EOF'
#!/bin/sh
trap 'echo stop >> "$STUB_LOG"; exit 0' TERM
echo "start $(cat "$DATA_SOURCE_PASS_FILE") args=$*" >> "$STUB_LOG"
[ -e "$STUB_DIE" ] && exit 3
# (and never outlives the launcher, whatever a broken launcher does)
while :; do sleep 0.05; [ -e "$STUB_DIE" ] && exit 3; kill -0 "$PPID" 2>/dev/null || exit 0; done
EOF
  chmod +x "$T/exporter"
  mkdir -p "$T/secret"
  secret_version a pw1
  export STUB_LOG="$T/log" STUB_DIE="$T/die" PGA_EXPORTER_BIN="$T/exporter" PGA_EXPORTER_WATCH_SECONDS=0.2
  export DATA_SOURCE_PASS_FILE="$T/secret/monitor-password"
  : > "$STUB_LOG"
  PID=
}

teardown() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi
}

# Like the kubelet's atomic writer: the files in a new ..<version> directory, a ..data_tmp symlink
# to it renamed over ..data, and monitor-password a symlink through ..data.
secret_version() {
  mkdir -p "$T/secret/..$1"
  printf '%s' "$2" > "$T/secret/..$1/monitor-password"
  ln -sfn "..$1" "$T/secret/..data_tmp"
  mv -T "$T/secret/..data_tmp" "$T/secret/..data"
  [ -L "$T/secret/monitor-password" ] || ln -s ..data/monitor-password "$T/secret/monitor-password"
}

# wait_for FILE-PATTERN [tenths]: until the stub's log matches (grep -c >= count)
wait_log() {
  local want=$1 count=${2:-1} i
  for i in $(seq 1 100); do
    [ "$(grep -c -- "$want" "$STUB_LOG")" -ge "$count" ] && return 0
    sleep 0.05
  done
  echo "timed out waiting for $count× '$want' in the stand-in's log:" >&2; cat "$STUB_LOG" >&2
  return 1
}

launch() {
  $1 "$LAUNCHER" --web.listen-address=:9187 2> "$T/launcher.err" 3>&- &
  PID=$!
  wait_log '^start pw1 args=--web.listen-address=:9187$'
}

rotation() {
  launch "$1"
  sleep 0.6
  [ "$(grep -c '^start' "$STUB_LOG")" -eq 1 ]   # an unchanged file restarts nothing
  secret_version b pw2
  wait_log '^start pw2'
  [ "$(cat "$STUB_LOG")" = "$(printf 'start pw1 args=--web.listen-address=:9187\nstop\nstart pw2 args=--web.listen-address=:9187')" ]
  kill -0 "$PID"                                   # the launcher (the container) lives on
  grep -q 'changed (the password was rotated): restarting postgres_exporter' "$T/launcher.err"
  # the same content written again (a new ..data, same bytes): no restart
  secret_version c pw2
  sleep 0.6
  [ "$(grep -c '^start' "$STUB_LOG")" -eq 2 ]
  # the file gone for a moment: no restart either, then the next password is picked up
  rm "$T/secret/..data"
  sleep 0.6
  [ "$(grep -c '^start' "$STUB_LOG")" -eq 2 ]
  secret_version d pw3
  wait_log '^start pw3'
  [ "$(grep -c '^start' "$STUB_LOG")" -eq 3 ]
}

exporter_dies() {
  launch "$1"
  touch "$STUB_DIE"
  local rc=0
  wait "$PID" || rc=$?
  PID=
  [ "$rc" -eq 3 ]
  grep -q 'postgres_exporter exited with status 3; the container stops' "$T/launcher.err"
}

terminated() {
  export PGA_EXPORTER_WATCH_SECONDS=30
  launch "$1"
  local t0=$SECONDS
  kill -TERM "$PID"
  local rc=0
  wait "$PID" || rc=$?
  PID=
  [ "$rc" -eq 0 ]
  [ $((SECONDS - t0)) -le 2 ]                      # not after the 30 s nap
  wait_log '^stop$'
}

need_busybox() {
  command -v busybox >/dev/null || skip "busybox is not installed (bash test/toolchain/install.sh debs)"
  BB="$T/bb"; mkdir -p "$BB"; busybox --install -s "$BB"
}

@test "sh: a rotated password file restarts the exporter alone, with the new password" { rotation sh; }
@test "busybox sh: a rotated password file restarts the exporter alone, with the new password" { need_busybox; rotation "env PATH=$BB sh"; }
@test "sh: the exporter exiting by itself ends the launcher with its status" { exporter_dies sh; }
@test "busybox sh: the exporter exiting by itself ends the launcher with its status" { need_busybox; exporter_dies "env PATH=$BB sh"; }
@test "sh: SIGTERM stops the exporter and the launcher at once" { terminated sh; }
@test "busybox sh: SIGTERM stops the exporter and the launcher at once" { need_busybox; terminated "env PATH=$BB sh"; }

@test "no DATA_SOURCE_PASS_FILE: exits 2 and says what to set" {
  unset DATA_SOURCE_PASS_FILE
  run sh "$LAUNCHER"
  [ "$status" -eq 2 ]
  [[ "$output" == *"DATA_SOURCE_PASS_FILE is not set"* ]]
  [ ! -s "$STUB_LOG" ]
}
