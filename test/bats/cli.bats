#!/usr/bin/env bats
# The `autopilot` CLI: help, bad usage and failures have clear messages and distinct exit codes
# (0 done, 1 the operation failed, 2 bad usage). Runs the built CLI (npm run build first).

setup() {
  ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  CLI="node $ROOT/dist/scripts/cli.js"
  # Nothing listens here: operations that need the member's API fail fast.
  export PGA_API_URL="http://127.0.0.1:9"
  unset PGA_API_TOKEN PGA_API_TOKEN_FILE KUBECONFIG PGA_NAMESPACE
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

@test "pause without a token exits 1" {
  run $CLI pause
  [ "$status" -eq 1 ]
  [[ "$output" == *"token"* ]]
}

@test "run with a bad environment exits 2 and names every bad variable" {
  run env -i PATH="$PATH" PGA_LOOP_SECONDS=fast PGA_SYNC_MODE=maybe $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_LOOP_SECONDS"* ]]
  [[ "$output" == *"PGA_SYNC_MODE"* ]]
  [[ "$output" == *"PGA_CLUSTER_NAME"* ]]
}

@test "run refuses a renew deadline not shorter than the lease" {
  run env -i PATH="$PATH" PGA_CLUSTER_NAME=pg PGA_NAMESPACE=db PGA_POD_NAME=pg-0 PGA_POD_IP=10.0.0.1 \
    PGA_MEMBER_SELECTOR=app=pg PGA_SUPERUSER_PASSWORD=a PGA_REPLICATION_PASSWORD=b PGA_APP_PASSWORD=c PGA_API_TOKEN=d \
    PGA_LEASE_SECONDS=4 PGA_RENEW_DEADLINE_SECONDS=5 PGA_CONFIG_DIR=/nonexistent $CLI run
  [ "$status" -eq 2 ]
  [[ "$output" == *"PGA_RENEW_DEADLINE_SECONDS"* ]]
}
