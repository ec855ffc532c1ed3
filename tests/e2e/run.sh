#!/usr/bin/env bash
# End-to-end test runner against the running local cluster (make e2e; start it with make cluster-up).
#
#   tests/e2e/run.sh [CASE...]
#
# Runs every test_* function of tests/e2e/cases/*.sh (files sorted, functions in file order). A CASE
# argument keeps the tests whose case file (00-smoke or 00-smoke.sh) or function name (test_x or x)
# matches; several may be given. A case file with a line "# e2e-modes: jobs agent" runs each of its tests
# once per controller mode, with KF_MODE set (reported as test_x[agent]); E2E_MODES="agent" keeps only
# those modes. Each test runs in its own bash with `set -euo pipefail`, the helpers
# of tests/e2e/lib.sh, .cluster/env, and a fresh namespace $E2E_NS that is deleted afterwards even when
# the test fails; processes of the cluster that a test left stopped are started again. Output goes to
# build/e2e-logs/<case>.<test>.log; on failure the runner appends the namespace's objects and events
# and prints the log's tail.
#
#   E2E_TEST_TIMEOUT=900   seconds before a test is killed (counts as failed)
#   E2E_KEEP_NS=1          keep the namespaces of failed tests for inspection
#   E2E_WAIT_NS=1          wait at the end until the tests' namespaces are gone
#   E2E_FAILED_FILE=F      append a line "NAME  log: LOG" to F for each failed test (make test's summary)
# Ends with "e2e: P passed, F failed, S skipped in T s"; exits 1 if any failed, 2 if none matched.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The cluster: KF_CLUSTER_DIR, else the one whose env file the caller sourced, else .cluster.
ENV_FILE=${KF_CLUSTER_DIR:-${CLUSTER_DIR:-$ROOT/.cluster}}/env
if [ ! -f "$ENV_FILE" ]; then echo "e2e: no $ENV_FILE: start the cluster first (make cluster-up)" >&2; exit 2; fi
# shellcheck disable=SC1090
. "$ENV_FILE"
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
  echo "e2e: the cluster of $CLUSTER_DIR does not answer at $APISERVER_URL: make cluster-up" >&2; exit 2
fi
LOGDIR=$ROOT/build/e2e-logs
mkdir -p "$LOGDIR"
TIMEOUT=${E2E_TEST_TIMEOUT:-900}
export E2E_ROOT=$ROOT

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
secs() { local d=$1; printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100)); }

selected() { # FILEBASE FUNC
  local base=$1 fn=$2 a
  [ ${#FILTERS[@]} -eq 0 ] && return 0
  for a in "${FILTERS[@]}"; do
    [ "$a" = "$base" ] || [ "$a" = "$base.sh" ] || [ "$a" = "$fn" ] || [ "test_$a" = "$fn" ] || continue
    return 0
  done
  return 1
}

passed=0 failed=0 skipped=0 failures=() deleted_ns=()
run_test() { # CASEFILE FUNC [MODE]
  local file=$1 fn=$2 mode=${3:-} base ns log t rc name
  base=$(basename "$file" .sh)
  name=$fn${mode:+[$mode]}
  ns=e2e-$(echo "${fn#test_}" | tr '_' '-' | cut -c1-40 | sed 's/-*$//')-$(tr -dc a-z0-9 < /dev/urandom | head -c4)
  log=$LOGDIR/$base.$fn${mode:+.$mode}.log
  t=$(now_ms)
  {
    echo "=== $base/$name  namespace $ns  $(date -u +%FT%TZ)"
    kubectl create namespace "$ns"
  } > "$log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then
    # shellcheck disable=SC2016  # expanded by the inner bash
    KF_MODE=${mode:-jobs} E2E_NS=$ns E2E_LOG=$log timeout -k 10 "$TIMEOUT" bash -c '
      set -euo pipefail
      . "$1"; . "$2"
      trap _e2e_run_deferred EXIT
      "$3"' e2e-test "$ROOT/tests/e2e/lib.sh" "$file" "$fn" >> "$log" 2>&1 < /dev/null
    rc=$?
    [ $rc != 124 ] && [ $rc != 137 ] || echo "FAIL: killed after ${TIMEOUT}s (E2E_TEST_TIMEOUT)" >> "$log"
  fi
  local took; took=$(secs $(( $(now_ms) - t )))
  # A test that stops parts of the cluster (cluster_stop) and fails before cluster_start must not take
  # every later test down with it: bring back whatever it left stopped.
  local stopped
  stopped=$(KF_CLUSTER_DIR=$CLUSTER_DIR "$ROOT/testbed/ctl.sh" status 2>/dev/null | awk '$2 == "stopped" {print $1}' | xargs)
  if [ -n "$stopped" ]; then
    echo "=== the test left stopped: $stopped; restarting them" >> "$log"
    KF_CLUSTER_DIR=$CLUSTER_DIR "$ROOT/testbed/ctl.sh" start >> "$log" 2>&1 ||
      echo "    (could not restart $stopped: see $log)"
  fi
  case $rc in
    0) passed=$((passed + 1)); echo "PASS $name (${took}s)" ;;
    77) skipped=$((skipped + 1)); echo "SKIP $name (${took}s): $(grep -m1 '^SKIP: ' "$log" | cut -c7-)" ;;
    *)
      failed=$((failed + 1)); failures+=("$name")
      {
        echo "=== diagnostics for namespace $ns"
        kubectl -n "$ns" get all,events -o wide 2>&1
        kubectl -n "$ns" describe pods 2>&1 | tail -60
      } >> "$log" 2>&1
      echo "FAIL $name (${took}s)  log: $log"
      [ -z "${E2E_FAILED_FILE:-}" ] || echo "$name  log: ${log#"$ROOT"/}" >> "$E2E_FAILED_FILE"
      sed '/^=== diagnostics/,$d' "$log" | tail -25 | sed 's/^/    | /'
      ;;
  esac
  if [ $rc != 0 ] && [ $rc != 77 ] && [ "${E2E_KEEP_NS:-0}" = 1 ]; then
    echo "    (namespace $ns kept: E2E_KEEP_NS=1)"
  else
    # Pods first with a 1 s grace period: a shell as PID 1 ignores SIGTERM, and the default 30 s would
    # make every namespace linger.
    # A test that stopped the API server may have left it down for a while: retry for up to 90 s.
    local end=$(( SECONDS + 90 ))
    until kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1; do
      if [ $SECONDS -ge $end ]; then echo "    (could not delete namespace $ns: API server unreachable)"; break; fi
      sleep 2
    done
    kubectl -n "$ns" delete pods --all --grace-period=1 --wait=false >/dev/null 2>&1
    deleted_ns+=("$ns")
  fi
}

FILTERS=("$@")
T0=$(now_ms)
ran=0
for file in $(find "$ROOT/tests/e2e/cases" -maxdepth 1 -name '*.sh' | LC_ALL=C sort); do
  base=$(basename "$file" .sh)
  modes=$(sed -n 's/^# e2e-modes: *//p' "$file" | head -1)
  # shellcheck disable=SC2013  # function names are single words
  for fn in $(grep -oE '^(function +)?test_[A-Za-z0-9_]+ *\(\)' "$file" | sed -E 's/^function +//; s/ *\(\)$//'); do
    selected "$base" "$fn" || continue
    for mode in ${modes:-""}; do
      [ -z "$mode" ] || [ -z "${E2E_MODES:-}" ] || [[ " $E2E_MODES " == *" $mode "* ]] || continue
      [ $ran -gt 0 ] || echo "e2e: cluster $APISERVER_URL, nodes: $KF_NODES; logs in $LOGDIR"
      ran=$((ran + 1))
      run_test "$file" "$fn" "$mode"
    done
  done
done
if [ $ran = 0 ]; then echo "e2e: no test matches: $*" >&2; exit 2; fi

# Namespace deletion takes 5 to 30 s each in 1.20 and runs in the background; E2E_WAIT_NS=1 waits for
# it (up to 120 s), e.g. before measuring something on a quiet cluster.
if [ "${E2E_WAIT_NS:-0}" = 1 ]; then
  end=$(( SECONDS + 120 ))
  for ns in "${deleted_ns[@]}"; do
    while kubectl get namespace "$ns" >/dev/null 2>&1 && [ $SECONDS -lt $end ]; do sleep 0.5; done
  done
fi

[ $failed = 0 ] || echo "failed: ${failures[*]}"
echo "e2e: $passed passed, $failed failed, $skipped skipped in $(secs $(( $(now_ms) - T0 )))s"
[ $failed = 0 ]
