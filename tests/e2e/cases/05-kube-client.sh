# 05-kube-client.sh - the Kubernetes client layer (src/kube) against the cluster's real API server:
# REST verbs and Status errors (404, 409 Conflict/AlreadyExists, 422), a CRD with a status subresource,
# an informer seeing add/update/delete, a watch refused with 410 and the relist after it, two
# leader-election contenders on one Lease, and Event aggregation. The checks live in
# tests/integration/kube_client_it.c, which prints one "ok"/"not ok" line per check plus latency, RSS and
# request figures; this case runs it in the test's namespace with the cluster's $KUBECONFIG.
# shellcheck shell=bash

KUBE_IT=${KF_KUBE_IT:-$E2E_ROOT/build/tests/integration/kube_client_it}

test_kube_client_against_real_apiserver() {
  [ -x "$KUBE_IT" ] || fail "$KUBE_IT not built (make build)"
  [ -n "${KUBECONFIG:-}" ] || fail "KUBECONFIG is not set (.cluster/env)"
  local out rc=0
  out=$("$KUBE_IT" --kubeconfig "$KUBECONFIG" --namespace "$E2E_NS" 2>&1) || rc=$?
  echo "$out"
  [ "$rc" = 0 ] || fail "kube_client_it exited $rc: $(echo "$out" | grep '^not ok' | head -5)"
  assert_contains "$out" "ok - update with a stale resourceVersion: 409 Conflict"
  assert_contains "$out" "ok - informer saw the delete"
  assert_contains "$out" "ok - release hands over"
  assert_contains "$out" "ok - events: an identical event aggregated into one Event with count 2"
  assert_not_contains "$out" "not ok"
}
