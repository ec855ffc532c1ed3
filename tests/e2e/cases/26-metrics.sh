# End-to-end: the controller's /metrics, /healthz and /readyz (docs/metrics.md), scraped from the real
# out-of-cluster controller while it runs a real operation on the test bed. One image of the cache pulls
# at once, the other names a registry nobody listens on (a transient error, retried until the deadline),
# so the operation runs for about 20 s: it is seen running, its Jobs (job mode) or pull tasks (agent mode)
# in flight, then counted once finished, with its tasks by result.
# e2e-modes: jobs agent
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"

# metric NAME{LABELS}: the value of that exact series in the last scrape ($E2E_LOG.metrics), or "" if absent
scrape() { curl -sf "$MURL/metrics" > "$E2E_LOG.metrics"; }
metric() { awk -v s="$1" '$1 == s { print $2 }' "$E2E_LOG.metrics"; }
metric_is() { scrape && [ "$(metric "$1")" = "$2" ]; }           # for wait_until
metric_at_least() { scrape && awk -v v="$(metric "$1")" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 >= m) }'; }

test_metrics_count_a_real_operation() {
  local good unreachable n inflight succeeded present
  good=$(gen_images "$(unique kfe2e/metrics)" 1)
  unreachable=$KF_HOST_IP:1/$(unique kfe2e/nowhere):1   # connection refused: retried until the deadline
  kf_wait_alone   # the controller counts every ImageCache of the cluster
  KF_AGENT_DEADLINE=20s kf_controller_start --image-pull-deadline-duration=20s
  wait_until 20 kf_controller_metrics_url || fail "the controller logged no metrics address"
  MURL=$(kf_controller_metrics_url)
  log "metrics at $MURL"
  assert_eq "ok" "$(curl -sf "$MURL/healthz")"
  wait_until 30 curl -sf "$MURL/readyz" || fail "/readyz never became ready: $(curl -s "$MURL/readyz")"
  scrape
  assert_eq "1" "$(metric "kubefledged_controller_info{version=\"$("$KF_BIN" version | awk 'NR == 1 {print $2}')\",mode=\"$KF_MODE\"}")"
  assert_eq "" "$(metric 'kubefledged_controller_operations_total{type="create",result="Failed"}')"
  assert_eq "0" "$(metric 'kubefledged_controller_operations_running{type="create"}')"
  assert_eq "1" "$(metric 'kubefledged_controller_leader')"
  assert_contains "$(cat "$E2E_LOG.metrics")" "# TYPE kubefledged_controller_workqueue_queue_duration_seconds histogram"

  ic_apply ic1 <<< "[{\"images\": [\"$good\", \"$unreachable\"]}]"
  # during the operation
  wait_until 30 metric_is 'kubefledged_controller_operations_running{type="create"}' 1 ||
    fail "the running create was never counted: $(grep operations_running "$E2E_LOG.metrics")"
  assert_eq "Processing" "$(ic_json ic1 '{.status.status}')"
  if [ "$KF_MODE" = agent ]; then inflight=kubefledged_controller_pulls_in_flight; else inflight=kubefledged_controller_jobs_in_flight; fi
  wait_until 30 metric_at_least "$inflight" "$KF_NODE_COUNT" ||
    fail "$inflight never reached $KF_NODE_COUNT: $(metric "$inflight")"
  assert_eq "1" "$(metric 'kubefledged_controller_imagecaches{status="Processing"}')"
  log "during: $inflight $(metric "$inflight"), $(grep -c . "$E2E_LOG.metrics") lines"
  cp "$E2E_LOG.metrics" "$E2E_LOG.metrics.during"

  # after
  assert_eq "Failed/ImageCacheCreate" "$(ic_wait ic1 Failed 120)"
  wait_until 10 metric_is 'kubefledged_controller_operations_total{type="create",result="Failed"}' 1 ||
    fail "the finished create was not counted: $(grep operations_total "$E2E_LOG.metrics")"
  n=$KF_NODE_COUNT
  assert_eq "0" "$(metric 'kubefledged_controller_operations_running{type="create"}')"
  assert_eq "$n" "$(metric 'kubefledged_controller_tasks_total{action="pull",result="failed"}')" "failed pulls"
  succeeded=$(metric 'kubefledged_controller_tasks_total{action="pull",result="succeeded"}')
  present=$(metric 'kubefledged_controller_tasks_total{action="pull",result="present"}')
  assert_eq "$n" "$(( ${succeeded:-0} + ${present:-0} ))" "pulls of the good image done (succeeded or present)"
  assert_eq "1" "$(metric 'kubefledged_controller_operation_duration_seconds_count{type="create"}')"
  assert_eq "1" "$(metric 'kubefledged_controller_imagecaches{status="Failed"}')"
  assert_eq "0" "$(metric "$inflight")"
  metric_at_least 'kubefledged_controller_api_requests_total{verb="PATCH"}' 1 || fail "no PATCH counted"
  metric_at_least 'kubefledged_controller_api_responses_total{code="200"}' 1 || fail "no 200 counted"
  metric_at_least 'kubefledged_controller_workqueue_adds_total' 1 || fail "no queue adds counted"
  metric_at_least 'kubefledged_controller_sync_duration_seconds_count{kind="imagecache",result="success"}' 2 ||
    fail "no syncs counted"
  metric_at_least 'kubefledged_controller_status_writes_total' 2 || fail "no status writes counted"
  if [ "$KF_MODE" = jobs ]; then
    metric_at_least 'kubefledged_controller_jobs_created_total' "$(( 2 * n ))" || fail "Jobs not counted"
  fi
  log "after: $(grep -E '^kubefledged_controller_(operations_total|tasks_total)' "$E2E_LOG.metrics" | tr '\n' ' ')"
}

test_metrics_server_off_and_readyz_waits_for_the_lease() {
  kf_controller_start --metrics-bind-address=0
  wait_until 20 grep -qE " $KF_CTL_PID ic_controller.c:[0-9]+\] caches synced" "$E2E_LOG.controller" ||
    fail "the controller did not start"
  assert_eq "" "$(kf_controller_metrics_url || true)" "a server despite --metrics-bind-address=0"
  kf_controller_stop "$KF_CTL_PID"

  # a replica waiting for the lease: alive, not ready, not leader
  local lease holder
  lease=$(unique kfe2e-lease)
  kubectl -n "$E2E_NS" create -f - <<EOF >/dev/null
{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "$lease"},
 "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600, "renewTime": "$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)"}}
EOF
  kf_controller_start --leader-elect=true --leader-elect-resource-name="$lease" --leader-elect-resource-namespace="$E2E_NS"
  wait_until 20 kf_controller_metrics_url || fail "no metrics address logged"
  MURL=$(kf_controller_metrics_url)
  assert_eq "ok" "$(curl -sf "$MURL/healthz")"
  assert_eq "503" "$(curl -s -o /dev/null -w '%{http_code}' "$MURL/readyz")"
  assert_contains "$(curl -s "$MURL/readyz")" "waiting to become the leader"
  scrape
  assert_eq "0" "$(metric kubefledged_controller_leader)"
  holder=$(kns get lease "$lease" -o jsonpath='{.spec.holderIdentity}')
  assert_eq "someone-else" "$holder"
}
