#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run from traps
# Everything, from a fresh Debian 12 machine (make test; .ci/run calls this):
#   deps -> build -> unit -> unit-asan -> unit-tsan -> unit-valgrind -> unit-arch (arm64 + armhf cross builds, their
#   unit tests under qemu) -> image-test (the three-architecture image pushed to local registries: plain HTTP,
#   TLS + htpasswd, TLS + token auth) -> fuzz (30 s per target) -> cluster-up -> e2e (two shards, the second
#   on a cluster of its own: hack/e2e-sharded.sh) -> scale-jobs, scale-agent
#   (small scale runs) -> cluster-down
# The cluster is torn down at the end whatever happened (also on Ctrl-C). Every step is timed; the
# summary says which passed, failed or were skipped. Exit status: 0 only if every step passed.
#
#   TEST_NODES=2 TEST_NODE_LABELS='2:tier=backend'   the cluster e2e runs on (defaults shown)
#   E2E=...                                          run only these e2e cases (see tests/e2e/run.sh); without
#                                                    it, every case in two shards on two clusters at once
#                                                    (hack/e2e-sharded.sh; E2E_SHARDS=1 for one)
#   KEEP_CLUSTER=1                                   leave the cluster up at the end (for debugging)
#   TEST_FUZZ_SECONDS=30                             how long each fuzz target runs
#   TEST_ARCH=0                                      skip unit-arch and image-test (the arm builds under qemu,
#                                                    the image pushed to local registries)
#   TEST_SCALE_MODES="jobs agent"                    small scale runs after e2e (50 simulated nodes x 2 images
#                                                    in job mode, x 10 in agent mode, bounds checked;
#                                                    docs/scale.md); "" for none
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
NODES=${TEST_NODES:-2}
NODE_LABELS=${TEST_NODE_LABELS:-2:tier=backend}
mkdir -p build
export E2E_FAILED_FILE=$PWD/build/e2e-failed.txt   # tests/e2e/run.sh lists failed tests there
rm -f "$E2E_FAILED_FILE"

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
secs() { local d=$1; printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100)); }
T0=$(now_ms)
results=() failed=0 cluster_started=0 finished=0

# step NAME CMD...: runs CMD, records "NAME passed|FAILED (time)". Output goes to the terminal as is.
step() {
  local name=$1 t rc; shift
  printf '\n==== [test %ss] %s: %s\n' "$(secs $(( $(now_ms) - T0 )))" "$name" "$*"
  t=$(now_ms)
  "$@"; rc=$?
  local took; took=$(secs $(( $(now_ms) - t )))
  if [ "$rc" = 0 ]; then results+=("$(printf '%-14s passed  %7ss' "$name" "$took")")
  else results+=("$(printf '%-14s FAILED  %7ss  (exit %d)' "$name" "$took" "$rc")"); failed=$((failed + 1)); fi
  return $rc
}
skipped() { results+=("$(printf '%-14s skipped           (%s)' "$1" "$2")"); }

summary() {
  [ "$finished" = 0 ] || return 0
  finished=1
  if [ "$cluster_started" = 1 ] && [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    step cluster-down make --no-print-directory cluster-down
  fi
  printf '\n==== summary\n'
  printf '  %s\n' "${results[@]}"
  if [ -s "$E2E_FAILED_FILE" ]; then
    printf 'e2e tests that failed:\n'; sed 's/^/  /' "$E2E_FAILED_FILE"
  fi
  if [ "$failed" = 0 ]; then
    printf 'test: all %d steps passed in %ss\n' "${#results[@]}" "$(secs $(( $(now_ms) - T0 )))"
  else
    printf 'test: %d of %d steps FAILED in %ss\n' "$failed" "${#results[@]}" "$(secs $(( $(now_ms) - T0 )))"
  fi
}
on_exit() { summary; if [ "$failed" = 0 ]; then exit 0; fi; exit 1; }
trap 'exit 130' INT TERM
trap 'on_exit' EXIT

not_reached() { local s; for s in "$@"; do skipped "$s" "an earlier step failed"; done; exit 1; }
step deps hack/deps.sh || not_reached build unit unit-asan unit-tsan unit-valgrind unit-arch image-test fuzz cluster-up e2e
step build make --no-print-directory build || not_reached unit unit-asan unit-tsan unit-valgrind unit-arch image-test fuzz cluster-up e2e
step unit make --no-print-directory unit
step unit-asan make --no-print-directory unit-asan
step unit-tsan make --no-print-directory unit-tsan
step unit-valgrind make --no-print-directory unit-valgrind
if [ "${TEST_ARCH:-1}" = 1 ]; then
  step unit-arch make --no-print-directory unit-arch
  step image-test make --no-print-directory image-test
else
  skipped unit-arch "TEST_ARCH=0"; skipped image-test "TEST_ARCH=0"
fi
step fuzz make --no-print-directory fuzz FUZZ_SECONDS="${TEST_FUZZ_SECONDS:-30}"
cluster_started=1   # from here on, tear down at exit even if cluster-up fails half-way
SCALE_MODES=${TEST_SCALE_MODES-jobs agent}
if step cluster-up make --no-print-directory cluster-up NODES="$NODES" NODE_LABELS="$NODE_LABELS"; then
  if [ -n "${E2E:-}" ]; then step e2e make --no-print-directory e2e E2E="$E2E"
  else step e2e env NODES="$NODES" NODE_LABELS="$NODE_LABELS" hack/e2e-sharded.sh; fi
  for m in $SCALE_MODES; do
    # job mode at 50 x 2: this machine runs about 3 to 4 Jobs per second, and create and purge each make a
    # Job per pair. bench/scale.sh itself: the e2e step has built and pushed the image (make scale would
    # re-check it, 20 s).
    imgs=10; [ "$m" != jobs ] || imgs=2
    step "scale-$m" env SCALE_MODE="$m" SCALE_NODES=50 SCALE_IMAGES=$imgs SCALE_FLOOR=0 SCALE_CHECK=1 bench/scale.sh
  done
else
  skipped e2e "cluster-up failed"
  for m in $SCALE_MODES; do skipped "scale-$m" "cluster-up failed"; done
fi
exit $failed
