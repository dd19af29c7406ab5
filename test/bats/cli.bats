#!/usr/bin/env bats
# The `autopilot` CLI: help, bad usage and failures have clear messages and distinct exit codes
# (0 done, 1 the operation failed, 2 bad usage). Runs the built CLI (npm run build first) through
# the image's command, images/postgres/autopilot, so with the Node.js flags the image ships.

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  # `env …` inside the command: some tests run it under `env -i`.
  CLI="env AUTOPILOT_NODE=$(command -v node) AUTOPILOT_HOME=$ROOT sh $ROOT/images/postgres/autopilot"
  # Nothing listens here: operations that need the member's API fail fast.
  export PGA_API_URL="http://127.0.0.1:9"
  unset PGA_API_TOKEN PGA_API_TOKEN_FILE KUBECONFIG PGA_NAMESPACE
  SERVER=
}

teardown() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
}

@test "help prints usage and exits 0" {
  run $CLI help
  [ "$status" -eq 0 ]
  [[ "$output" == *"usage: autopilot <command>"* ]]
  [[ "$output" == *"switchover [--to MEMBER]"* ]]
}

@test "--help is help" {
  run $CLI --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"usage:"* ]]
}

@test "no command prints usage and exits 2" {
  run $CLI
  [ "$status" -eq 2 ]
  [[ "$output" == *"usage:"* ]]
}

@test "unknown command exits 2 and names it" {
  run $CLI frobnicate
  [ "$status" -eq 2 ]
  [[ "$output" == *'unknown command "frobnicate"'* ]]
  [[ "$output" == *'autopilot help'* ]]
}

@test "unknown flag exits 2 and names it" {
  run $CLI status --bogus
  [ "$status" -eq 2 ]
  [[ "$output" == *"--bogus"* ]]
}

@test "switchover --to needs a value" {
  run $CLI switchover --to
  [ "$status" -eq 2 ]
  [[ "$output" == *"--to"* ]]
}

@test "switchover --to rejects a name that cannot be a pod" {
  run $CLI switchover --to 'Bad_Name!'
  [ "$status" -eq 2 ]
  [[ "$output" == *"not a member"* ]]
}

@test "switchover without a token exits 1 and says how to provide one" {
  run $CLI switchover
  [ "$status" -eq 1 ]
  [[ "$output" == *"PGA_API_TOKEN"* ]]
}

@test "switchover with the token in a missing file exits 2 naming the file" {
  PGA_API_TOKEN_FILE=/nonexistent/token run $CLI switchover
  [ "$status" -eq 2 ]
  [[ "$output" == *"/nonexistent/token"* ]]
}

@test "status with no member listening exits 1 and names the URL" {
  run $CLI status
  [ "$status" -eq 1 ]
  [[ "$output" == *"127.0.0.1:9"* ]]
  [[ "$output" == *"PGA_API_URL"* ]]
}

@test "status and switchover reach a live member API through the image's command (its node flags)" {
  # A stand-in member API on a free port: /status answers a snapshot, /switchover checks the token.
  node -e '
    const http = require("node:http");
    const m = (name, role) => ({ name, role, healthy: true, timeline: 1, lsn: "0/3000060", lagBytes: role === "primary" ? null : 0, host: "10.0.0.1" });
    const snap = { member: m("pg-0", "primary"), members: [m("pg-1", "replica")], leaseHolder: "pg-0", leader: true, failovers: 0, paused: false, syncStandbys: null, reason: "primary: lease renewed" };
    const s = http.createServer((req, res) => {
      res.setHeader("Content-Type", "application/json");
      if (req.url === "/status") return res.end(JSON.stringify(snap));
      if (req.url === "/switchover" && req.headers.authorization === "Bearer t0k") return res.writeHead(202).end(JSON.stringify({ message: "switchover to pg-1 started" }));
      res.writeHead(403).end(JSON.stringify({ error: "wrong token" }));
    });
    s.listen(0, "127.0.0.1", () => { require("node:fs").writeFileSync(process.argv[1], String(s.address().port)); });
    setTimeout(() => process.exit(0), 20000);
  ' "$BATS_TEST_TMPDIR/port" >/dev/null 2>&1 3>&- &
  SERVER=$!
  for _ in $(seq 50); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.1; done
  export PGA_API_URL="http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")"
  run $CLI status
  [ "$status" -eq 0 ]
  [[ "$output" == *"pg-0 *"*"primary"* ]]
  [[ "$output" == *"lease holder: pg-0"* ]]
  run $CLI status --json
  [ "$status" -eq 0 ]
  [[ "$output" == *'"leaseHolder": "pg-0"'* ]]
  PGA_API_TOKEN=t0k run $CLI switchover --to pg-1
  [ "$status" -eq 0 ]
  [[ "$output" == *"switchover to pg-1 started"* ]]
  PGA_API_TOKEN=nope run $CLI switchover
  [ "$status" -eq 1 ]
  [[ "$output" == *"HTTP 403"* ]]
}

@test "a malformed PGA_API_URL exits 2 naming the variable" {
  PGA_API_URL="not a url" run $CLI status
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_API_URL"* ]]
}

@test "reinit without a member exits 2" {
  run $CLI reinit
  [ "$status" -eq 2 ]
  [[ "$output" == *"reinit needs the MEMBER"* ]]
}

@test "reinit with two members exits 2" {
  run $CLI reinit a b
  [ "$status" -eq 2 ]
  [[ "$output" == *'unexpected argument "b"'* ]]
}

@test "reinit without a namespace exits 1 and names PGA_NAMESPACE" {
  run $CLI reinit pg-1
  [ "$status" -eq 1 ]
  [[ "$output" == *"PGA_NAMESPACE"* ]]
}

@test "citus without a subcommand exits 2 and names the one there is" {
  run $CLI citus
  [ "$status" -eq 2 ]
  [[ "$output" == *'autopilot citus rebalance [--status]'* ]]
}

@test "citus with an unknown subcommand exits 2 naming it" {
  run $CLI citus shuffle
  [ "$status" -eq 2 ]
  [[ "$output" == *'unknown citus subcommand "shuffle"; accepted: rebalance'* ]]
}

@test "citus rebalance --mode accepts only Citus' transfer modes (exit 2)" {
  run $CLI citus rebalance --mode fast
  [ "$status" -eq 2 ]
  [[ "$output" == *'--mode "fast" is not a shard transfer mode; accepted: auto, force_logical, block_writes'* ]]
}

@test "citus rebalance without a token exits 1; --status needs none and names the URL it could not reach" {
  run $CLI citus rebalance
  [ "$status" -eq 1 ]
  [[ "$output" == *"no API token"* ]]
  run $CLI citus rebalance --status
  [ "$status" -eq 1 ]
  [[ "$output" == *"http://127.0.0.1:9"* ]]
}

@test "pause without a token exits 1" {
  run $CLI pause
  [ "$status" -eq 1 ]
  [[ "$output" == *"token"* ]]
}

@test "run with a bad environment exits 2 and names every bad variable" {
  run env -i PATH="$PATH" KUBECONFIG=/nonexistent PGA_LOOP_SECONDS=fast PGA_SYNC_MODE=maybe $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_LOOP_SECONDS"* ]]
  [[ "$output" == *"PGA_SYNC_MODE"* ]]
  [[ "$output" == *"PGA_CLUSTER_NAME"* ]]
  [[ "$output" == *"the mode is kubernetes because KUBECONFIG is set"*"set PGA_MODE=standalone"* ]]
}

@test "run refuses a renew deadline not shorter than the lease" {
  run env -i PATH="$PATH" PGA_CLUSTER_NAME=pg PGA_NAMESPACE=db PGA_POD_NAME=pg-0 PGA_POD_IP=10.0.0.1 \
    PGA_MEMBER_SELECTOR=app=pg PGA_SUPERUSER_PASSWORD=a PGA_REPLICATION_PASSWORD=b PGA_APP_PASSWORD=c PGA_API_TOKEN=d \
    PGA_LEASE_SECONDS=4 PGA_RENEW_DEADLINE_SECONDS=5 PGA_CONFIG_DIR=/nonexistent $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_RENEW_DEADLINE_SECONDS"* ]]
}

@test "run outside Kubernetes: the mode on the first line; without a password it refuses as the official image does, with every other bad variable" {
  run env -i PATH="$PATH" PGDATA=/nonexistent/pgdata PGA_LOOP_SECONDS=fast POSTGRES_HOST_AUTH_METHOD=ident $CLI run
  [ "$status" -eq 2 ]
  # the first line of ours (Node < 22 prints its own --expose_wasm warning before it)
  first="$(printf '%s\n' "${lines[@]}" | grep -v '^Warning: disabling flag' | head -n 1)"
  [[ "$first" == *'"msg":"mode selected","mode":"standalone"'* ]]
  [[ "$output" == *"Database is uninitialized and superuser password is not specified"* ]]
  [[ "$output" == *"POSTGRES_HOST_AUTH_METHOD: got \"ident\""* ]]
  [[ "$output" == *"PGA_LOOP_SECONDS"* ]]
}

@test "run with PGA_MODE=kubernetes and no ServiceAccount token exits 2 naming the variable and the fix" {
  run env -i PATH="$PATH" PGA_MODE=kubernetes $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *'PGA_MODE is "kubernetes" but no ServiceAccount token'* ]]
  [[ "$output" == *"Fix:"* ]]
}

@test "run with PGA_MODE=replica and no primary host exits 2 naming PGA_PRIMARY_HOST" {
  run env -i PATH="$PATH" PGA_MODE=replica $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *'PGA_PRIMARY_HOST is not set. Fix: set PGA_PRIMARY_HOST'* ]]
}

@test "a program instead of the server: the image's command runs it as it is" {
  run $CLI sh -c 'echo "ran: $0 $1"' "a b" c
  [ "$status" -eq 0 ]
  [ "$output" = "ran: a b c" ]
  run $CLI env
  [ "$status" -eq 0 ]
  [[ "$output" == *"AUTOPILOT_HOME="* ]]
}

@test "postgres and server options start the server: run with -c, a refused parameter exits 2 naming it" {
  run env -i PATH="$PATH" KUBECONFIG=/nonexistent PGA_CLUSTER_NAME=pg PGA_NAMESPACE=db PGA_POD_NAME=pg-0 PGA_POD_IP=10.0.0.1 \
    PGA_MEMBER_SELECTOR=app=pg PGA_SUPERUSER_PASSWORD=a PGA_REPLICATION_PASSWORD=b PGA_APP_PASSWORD=c PGA_API_TOKEN=d \
    PGA_CONFIG_DIR=/nonexistent $CLI -c wal_level=minimal
  [ "$status" -eq 2 ]
  [[ "$output" == *"-c: parameter wal_level"* ]]
  run env -i PATH="$PATH" PGA_MODE=replica $CLI postgres -c x=1
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_PRIMARY_HOST is not set"* ]]
  run $CLI run -c novalue
  [ "$status" -eq 2 ]
  [[ "$output" == *'-c "novalue": accepted: -c NAME=VALUE'* ]]
}

@test "ready exits 1 when the member's API does not answer ready" {
  run $CLI ready
  [ "$status" -eq 1 ]
  [[ "$output" == *"cannot reach the member's API"* ]]
}
