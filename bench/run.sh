#!/usr/bin/env bash
# make bench: every benchmark under bench/, one after the other, on the running local cluster.
#
#   bench/run.sh            controller (100 images x every node), webhook (latency at 1,000 req/s) and node
#                           agent (100 images x every node against the runtime's own floor)
#   BENCH_IMAGES=N          images of the controller benchmark (default 100)
#
# Each prints its own figures; the whole output is also kept in bench/out/run-<UTC time>.txt. Run it on
# a quiet machine: the figures are ratios against a floor measured in the same run, but a busy CPU still
# widens them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/bench/out"
out=$ROOT/bench/out/run-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "== bench/controller.sh ${BENCH_IMAGES:-100}"
  "$ROOT/bench/controller.sh" "${BENCH_IMAGES:-100}"
  echo
  echo "== bench/webhook.sh"
  "$ROOT/bench/webhook.sh"
  echo
  echo "== bench/agent.sh ${BENCH_IMAGES:-100}"
  "$ROOT/bench/agent.sh" "${BENCH_IMAGES:-100}"
} 2>&1 | tee "$out"
echo "(kept in $out)"
