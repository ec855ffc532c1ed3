#!/usr/bin/env bash
# helgrind-it.sh [BUILD_DIR] - kube_client_it's thread stress test (test_threads_stress) under valgrind's
# helgrind, against a throwaway REAL kube-apiserver (tests/integration/local-apiserver.sh), or against
# $KUBECONFIG when KF_IT_KUBECONFIG is set. Exit 0 when helgrind reports no race beyond the commented
# suppressions in hack/helgrind.supp. The test's own checks are printed too, but under helgrind the API
# server's request deadlines can expire on a loaded machine (it shares the CPUs), so only helgrind's
# verdict decides here; the same checks must pass natively and under TSan (kube_client_it, unit-tsan).
#
# Why helgrind and not only ThreadSanitizer (make unit-tsan): TSan sees only instrumented code. Debian's
# libcurl is not instrumented, so a race on memory that only libcurl touches - two threads using one
# connection out of a shared connection cache (CURL_LOCK_DATA_CONNECT, unsupported by libcurl across
# threads) - is invisible to it. helgrind instruments every instruction of every library. It runs about
# 100 times slower, hence 4 threads x 1 round and long timeouts (KF_IT_TIMEOUT_MS); it takes minutes, so
# it is not a step of make test.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
dir=${1:-build}
log=$dir/helgrind-it.log
if [ -n "${KF_IT_KUBECONFIG:-}" ]; then
	KUBECONFIG=$KF_IT_KUBECONFIG
else
	bin=$(ls -d "$HOME"/.cache/kube-fledged-c/k8s/*/bin 2>/dev/null | tail -1)
	[ -n "$bin" ] || { echo "helgrind-it: no cached kube-apiserver (testbed/build-k8s.sh)"; exit 1; }
	api=$dir/it-apiserver-helgrind
	trap 'tests/integration/local-apiserver.sh down "$api"' EXIT
	tests/integration/local-apiserver.sh up "$api" "$bin" >/dev/null || exit 1
	# shellcheck disable=SC1091
	. "$api/env"
fi
KF_IT_STRESS_ROUNDS=${KF_IT_STRESS_ROUNDS:-1} KF_IT_STRESS_THREADS=${KF_IT_STRESS_THREADS:-4} \
KF_IT_TIMEOUT_MS=${KF_IT_TIMEOUT_MS:-120000} \
	valgrind --tool=helgrind --num-callers=30 --suppressions=hack/helgrind.supp --error-exitcode=99 \
	"$dir/tests/integration/kube_client_it" --kubeconfig "$KUBECONFIG" --only test_threads_stress >"$log" 2>&1
rc=$?
races=$(grep -c "Possible data race" "$log")
grep -E '^(ok|not ok) - ' "$log"
grep -E "ERROR SUMMARY" "$log"
if [ "$races" != 0 ] || [ "$rc" = 99 ]; then
	echo "helgrind-it: FAIL: $races race report(s), helgrind errors (log: $log)"
	exit 1
fi
echo "helgrind-it: no data race and no other helgrind error (log: $log)"
