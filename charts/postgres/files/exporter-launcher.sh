# exporter-launcher: the metrics container's command (POSIX sh; the exporter image's busybox).
# postgres_exporter reads DATA_SOURCE_PASS_FILE once, at start, so after the primary rotated
# auth.monitorUser's password it could not log in again until restarted. This runs it, checks the
# file's content every PGA_EXPORTER_WATCH_SECONDS (the kubelet swaps a Secret volume's ..data
# symlink; Vault's agent rewrites the file), and restarts the exporter alone when it changed:
# postgres and the pod are never touched. An unreadable file is no change (the exporter keeps
# its connection). If the exporter exits by itself, so does this, with its status, and the kubelet
# restarts the container. SIGTERM/SIGINT stop the exporter, then this.
set -u
exporter=${PGA_EXPORTER_BIN:-/bin/postgres_exporter}
every=${PGA_EXPORTER_WATCH_SECONDS:-5}
file=${DATA_SOURCE_PASS_FILE:-}
log() { printf 'time=%s level=%s source=exporter-launcher msg="%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" >&2; }
if [ -z "$file" ]; then
  log ERROR "DATA_SOURCE_PASS_FILE is not set: the launcher restarts the exporter when that file changes; set it to the exporter's password file"
  exit 2
fi
# the content itself ("=" before it; empty when unreadable): no checksum applet needed (Debian's
# busybox has no cksum), and the exporter holds the same password anyway
digest() { if c=$(cat "$file" 2>/dev/null); then printf '=%s' "$c"; fi; }
child='' nap=''
stop() {
  [ -n "$nap" ] && kill "$nap" 2>/dev/null
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi
  exit 0
}
trap stop TERM INT
seen=$(digest)
while :; do
  "$exporter" "$@" &
  child=$!
  log INFO "postgres_exporter started (pid $child); watching $file every ${every}s"
  while :; do
    # in the background, so a TERM is handled at once rather than after the sleep
    sleep "$every" & nap=$!
    wait "$nap"; nap=''
    if ! kill -0 "$child" 2>/dev/null; then
      wait "$child"; rc=$?
      log ERROR "postgres_exporter exited with status $rc; the container stops and the kubelet restarts it"
      exit "$rc"
    fi
    now=$(digest)
    if [ -n "$now" ] && [ "$now" != "$seen" ]; then break; fi
  done
  log INFO "$file changed (the password was rotated): restarting postgres_exporter so it logs in with the new one; postgres is not restarted"
  kill -TERM "$child" 2>/dev/null
  wait "$child"
  seen=$now
done
