#!/usr/bin/env bash
# The e2e cases in two shards at once, each on its own real cluster (make test's e2e step).
#
#   hack/e2e-sharded.sh
#
# Shard a runs on the cluster already up (KF_CLUSTER_DIR, default .cluster: containerd nodes); shard b on a
# second test bed cluster this script starts in build/cluster-e2e-b with the same nodes and labels, but
# whose node 2 runs on Docker Engine (dockerd + the kubelet's dockershim), and stops at the end, also on
# failure or Ctrl-C. So the controller suite in both modes (20-*), the in-cluster deployments (40-*, 41-*)
# and the node agent (50-agent) run against a containerd node and a Docker node at once, and every other
# case against containerd. Most of an e2e test is waiting on the cluster (pods starting, deadlines,
# deploys), so two shards on two clusters take a little over half the time of one run, even on two cores.
# Each shard's lines are prefixed [a] / [b]; their logs are in build/e2e-logs/ as usual. Exit status 0 only
# if both shards passed.
#
#   NODES, NODE_LABELS                  both clusters' nodes (as make cluster-up; default 2, 2:tier=backend)
#   E2E_B_RUNTIMES='2:docker'           the second cluster's node runtimes (make cluster-up NODE_RUNTIMES)
#   E2E_SHARDS=1                        one shard on the running cluster (no second cluster)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

cases_a=() cases_b=()
for f in tests/e2e/cases/[0-9]*.sh; do
  base=$(basename "$f" .sh)
  grep -q '^test_[a-zA-Z0-9_]*()' "$f" || continue # libraries of other cases
  case $base in
    20-*|40-*|41-*|50-agent) cases_b+=("$base") ;;
    *) cases_a+=("$base") ;;
  esac
done

if [ "${E2E_SHARDS:-2}" = 1 ]; then
  exec make --no-print-directory e2e E2E="${cases_a[*]} ${cases_b[*]}"
fi

B_DIR=$ROOT/build/cluster-e2e-b
b_started=0
cleanup() {
  [ "$b_started" = 1 ] || return 0
  KF_CLUSTER_DIR=$B_DIR testbed/down.sh 2>&1 | sed 's/^/[b] /'
  b_started=0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

b_runtimes=${E2E_B_RUNTIMES-2:docker}
b_started=1 # from here on, stop it at exit even if up fails half-way
KF_CLUSTER_DIR=$B_DIR testbed/up.sh --nodes "${NODES:-2}" --labels "${NODE_LABELS:-2:tier=backend}" \
  ${b_runtimes:+--runtimes "$b_runtimes"} 2>&1 | sed 's/^/[b] /'
[ "${PIPESTATUS[0]}" = 0 ] || { echo "e2e-sharded: the second cluster did not start" >&2; exit 1; }

# the image into each cluster's registry, one after the other (one build directory)
make --no-print-directory image || exit 1
KF_CLUSTER_DIR=$B_DIR make --no-print-directory image 2>&1 | sed 's/^/[b] /'
[ "${PIPESTATUS[0]}" = 0 ] || exit 1

rcdir=$(mktemp -d)
{ tests/e2e/run.sh "${cases_a[@]}"; echo $? > "$rcdir/a"; } 2>&1 | sed -u 's/^/[a] /' &
pa=$!
{ KF_CLUSTER_DIR=$B_DIR tests/e2e/run.sh "${cases_b[@]}"; echo $? > "$rcdir/b"; } 2>&1 | sed -u 's/^/[b] /' &
pb=$!
wait "$pa" "$pb"
rc_a=$(cat "$rcdir/a" 2>/dev/null || echo 1) rc_b=$(cat "$rcdir/b" 2>/dev/null || echo 1)
rm -rf "$rcdir"
echo "e2e-sharded: shard a (${cases_a[*]}) exit $rc_a; shard b (${cases_b[*]}) exit $rc_b"
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ]
