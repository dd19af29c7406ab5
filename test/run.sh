#!/usr/bin/env bash
# The default test command (`npm test`): installs the toolchain (cached), builds, then runs the
# unit tests, the chart suite, the CLI's bats suite and the integration scenarios against real
# PostgreSQL and a real kube-apiserver. The end-to-end suite on the lab is `npm run test:e2e`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
export PATH="$ROOT/.tools/bin:$ROOT/node_modules/.bin:$PATH"
step() { printf '\n=== %s ===\n' "$*"; }
step toolchain
bash test/toolchain/install.sh debs helm unittest kubeconform schemas kube seaweedfs
step build
npm run --silent build
shopt -s globstar nullglob
step unit
unit=(dist/test/unit/**/*.test.js)
node --test --test-reporter=spec "${unit[@]}"
step simulation
bash test/sim/run.sh
step chart
bash test/chart/run.sh
step "cli (bats)"
node_modules/bats/bin/bats test/bats
step integration
integ=(dist/test/integration/**/*.test.js)
node --test --test-concurrency=1 --test-reporter=spec "${integ[@]}"
