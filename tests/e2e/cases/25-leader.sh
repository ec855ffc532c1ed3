# End-to-end: a controller that loses its Lease stops writing at once and exits (issue 10 item 3).
# `kubefledged controller --leader-elect=true` runs out of cluster against the test bed, with -v=6 so
# that every API request it completes is logged ("POST https://.../jobs 201 in 3.1 ms"). While it is busy
# (one Job at a time over several images), another identity takes the Lease over with kubectl, as a new
# leader would. The old leader must notice at its next renewal (retry period 1 s), fence its client (no
# POST/PUT/PATCH/DELETE goes out after that line of its log) and exit non-zero within seconds; the lease
# stays with the usurper. Without the fence, the old leader kept creating Jobs and writing status until
# its renew deadline passed, and then drained its queue.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"

LEASE=kf-e2e-lease

lease_holder() { kns get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
lease_held() { [ -n "$(lease_holder)" ]; }
ctl_log_has() { grep -q -- "$1" "$E2E_LOG.controller"; }
ctl_gone() { ! kill -0 "$KF_CTL_PID" 2>/dev/null; }

test_lost_lease_fences_writes_and_exits() {
  local img t_take now rc writes holder
  mapfile -t img < <(gen_images "$(unique kfe2e/leader)" 6)
  : > "$E2E_LOG.controller"
  kf_controller_start --leader-elect=true --leader-elect-resource-name="$LEASE" \
    --leader-elect-lease-duration=15s --leader-elect-renew-deadline=10s --leader-elect-retry-period=1s \
    --jobs-max-surge=1 -v=6
  wait_until 30 lease_held || fail "the controller never took the Lease"
  wait_until 30 ctl_log_has "became leader" || fail "no 'became leader' in the log"
  holder=$(lease_holder)
  log "leader: $holder"
  ic_apply ic1 <<EOF
[{"images": ["${img[0]}", "${img[1]}", "${img[2]}", "${img[3]}", "${img[4]}", "${img[5]}"]}]
EOF
  wait_until 60 jobs_exist ic1 || fail "the leader created no Job"
  log "busy: Jobs $(jobs_of ic1)"

  # another identity takes the Lease, as a replica that judged it expired would
  now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  t_take=$(date +%s%N)
  kns patch lease "$LEASE" --type merge \
    -p "{\"spec\":{\"holderIdentity\":\"e2e-usurper\",\"leaseDurationSeconds\":600,\"renewTime\":\"$now\",\"acquireTime\":\"$now\"}}" >/dev/null
  log "lease taken over by e2e-usurper"

  wait_until 10 ctl_gone || fail "the old leader still runs 10 s after losing its Lease"
  rc=0; wait "$KF_CTL_PID" 2>/dev/null || rc=$?
  log "controller exited $rc after $(( ($(date +%s%N) - t_take) / 1000000 )) ms"
  [ "$rc" != 0 ] || fail "the controller exited 0 after losing its Lease"

  grep -q "leader election lost: lease $E2E_NS/$LEASE is held by e2e-usurper" "$E2E_LOG.controller" ||
    fail "no 'lease ... is held by e2e-usurper' in the log: $(grep -i 'leader election' "$E2E_LOG.controller" | tail -3)"
  # Every write the log shows completing after the fence must have been sent before it (klog time minus
  # the request's duration); writes sent later are violations. Refused ones are logged as "not sent".
  writes=$(awk '
    function t(s) { split(s, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
    /kube client fenced: every write is refused/ && !fence { fence = t($2); next }
    fence && /\] (POST|PUT|PATCH|DELETE) https?:\/\/[^ ]+ [0-9]+ in [0-9.]+ ms/ {
      for (i = 1; i <= NF; i++) if ($i == "in") d = $(i + 1)
      if (t($2) - d / 1000 > fence) print
    }
    fence && /not sent: this client is fenced/ { refused++ }
    END { if (!fence) print "NO FENCE LINE"; printf "" > "/dev/stderr"; if (refused) print "refused " refused > "/dev/stderr" }
  ' "$E2E_LOG.controller" 2>"$E2E_LOG.refused")
  log "writes refused unsent after the fence: $(cat "$E2E_LOG.refused")"
  [ -z "$writes" ] || fail "writes sent after the fence: $writes"
  assert_eq "e2e-usurper" "$(lease_holder)" "the lease stays with the usurper (no release over it)"
  # the API server agrees: nothing of ours changes the cache or makes Jobs any more
  local rv0 jobs0
  rv0=$(ic_json ic1 '{.metadata.resourceVersion}'); jobs0=$(jobs_of ic1)
  sleep 3
  assert_eq "$rv0" "$(ic_json ic1 '{.metadata.resourceVersion}')" "ImageCache unchanged after the exit"
  assert_eq "$jobs0" "$(jobs_of ic1)" "no new Job after the exit"
}
