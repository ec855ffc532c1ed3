#!/usr/bin/env bash
# unit-tsan.sh BUILD_DIR - the unit tests and the Kubernetes client's integration test under ThreadSanitizer
# (make unit-tsan; a step of make test).
#
# 1. every tests/unit program (ctest -L unit) with halt_on_error: any data race, lock-order inversion or
#    thread leak fails it;
# 2. tests/integration/kube_client_it against a throwaway REAL etcd + kube-apiserver
#    (tests/integration/local-apiserver.sh, stopped again at the end): REST, informers, watches, leader
#    election, and test_threads_stress (8 threads, a watch, an informer and client churn on one client).
#    The Kubernetes binaries come from testbed/build-k8s.sh (cached; on a fresh machine it builds them
#    here, 7 min, instead of in cluster-up).
#
# What TSan can and cannot see: our code is instrumented, libcurl, OpenSSL and jansson (Debian's) are
# not. TSan still learns every happens-before edge from their pthread calls (interceptors), so a race in
# our code around them is reported, but a race on memory that only libcurl touches (its connection
# cache) is invisible here: hack/helgrind-it.sh checks that part with valgrind, which sees every access.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
dir=${1:-build-tsan}
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"
fail=0
(cd "$dir" && ctest -L unit --output-on-failure -j"$(nproc)") || fail=1

# The cached Kubernetes binaries (built here on a fresh machine: the same build cluster-up needs anyway)
if ! bin=$(testbed/build-k8s.sh) || [ ! -x "$bin/kube-apiserver" ] || ! command -v etcd >/dev/null; then
	echo "unit-tsan: FAIL: no kube-apiserver (testbed/build-k8s.sh) or no etcd (hack/deps.sh)"
	exit 1
fi
api=$dir/it-apiserver
tests/integration/local-apiserver.sh down "$api" 2>/dev/null
trap 'tests/integration/local-apiserver.sh down "$api"' EXIT
if ! tests/integration/local-apiserver.sh up "$api" "$bin" >"$dir/it-apiserver.log" 2>&1; then
	cat "$dir/it-apiserver.log"
	echo "unit-tsan: FAIL: the throwaway kube-apiserver did not start"
	exit 1
fi
# shellcheck disable=SC1091
. "$api/env"
log=$dir/kube_client_it.tsan.log
if "$dir/tests/integration/kube_client_it" --kubeconfig "$KUBECONFIG" >"$log" 2>&1; then
	echo "unit-tsan: kube_client_it clean under ThreadSanitizer: $(grep -c '^ok - ' "$log") checks ($(tail -1 "$log" | cut -c3-))"
else
	grep -E '^not ok|WARNING: ThreadSanitizer|SUMMARY' "$log" | head -20
	echo "unit-tsan: FAIL: kube_client_it (log: $log)"
	fail=1
fi
exit $fail
