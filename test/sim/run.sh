#!/usr/bin/env bash
# The deterministic simulation (test/sim): the named scenarios of issue 11 and PGA_SIM_RUNS random
# fault schedules (default 10,000; the longer run: PGA_SIM_RUNS=200000 npm run test:sim), split over
# two shards on worker threads (property.test.ts) so that both cores work. PGA_SIM_SEED replays a
# seed. Expects a build (dist/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd); cd "$ROOT"
node --test --test-concurrency=2 --test-reporter=spec dist/test/sim/*.test.js
