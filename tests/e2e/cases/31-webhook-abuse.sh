# 31-webhook-abuse.sh - the webhook under attack (issue 10 #15): `kubefledged webhook-server` with its
# production limits runs on the host (file mode, every interface), and tests/integration/wh_abuse attacks it
# from loopback addresses 127.0.1.x (one address = one client) while timing reviews from 127.0.0.1. In the
# first test the real API server also calls it, through a Service whose Endpoints point at the host, for
# ImageCache creates in the test namespace.
#
# Targets, with margins for a loaded 2-CPU machine (the attack itself competes for the same CPUs):
#   - one client holding 1,100 idle TCP connections: every review answered within 2 s (before: every
#     review timed out, and with failurePolicy Fail every ImageCache create was refused);
#   - one client (one address) sending slow 4 MiB bodies on 150 connections: reviews within 2 s;
#   - 1,000 slow bodies from 20 addresses, 4 MiB ones (8 fit the byte budget) and 32 KiB ones (all fit,
#     so 1,000 connections hold a body at once): the webhook's RSS (VmHWM) stays under the pod limit,
#     128 MiB (before: 340 MiB and more within 25 s), and it answers again as soon as the flood stops. During such a
#     flood from many addresses, reviews may get 503 (the byte budget is full): keeping many addresses away
#     is the NetworkPolicy's job (docs/webhook.md).
# wh_abuse prints its figures into the test log (build/e2e-logs/31-webhook-abuse.*.log).
# shellcheck shell=bash
. "$E2E_ROOT/tests/e2e/kf.sh"

AB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
AB_KF=${KF_BIN:-$AB_ROOT/build/src/kubefledged}
AB_TOOL=$AB_ROOT/build/tests/integration/wh_abuse
AB_REVIEW=$AB_ROOT/tests/unit/data/webhook/v1-create-allowed.json

# ab_start: a webhook with the manifests' limits (defaults), serving a fresh certificate for the test's
# Service; sets AB_PORT, AB_PID, AB_TMP.
ab_start() {
  [ -x "$AB_KF" ] || fail "$AB_KF not built (make build)"
  [ -x "$AB_TOOL" ] || fail "$AB_TOOL not built (make build)"
  AB_TMP=$(mktemp -d /tmp/kf-e2e-abuse.XXXXXX)
  defer rm -rf "$AB_TMP"
  AB_SVC=kf-abuse
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$AB_TMP/tls.key" \
    -out "$AB_TMP/tls.crt" -days 1 -subj "/CN=$AB_SVC.$E2E_NS.svc" \
    -addext "subjectAltName=DNS:$AB_SVC.$E2E_NS.svc,IP:127.0.0.1" 2>/dev/null || fail "openssl failed"
  AB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
  # as many open files as the pod gets (containerd: 1048576; here the shell's hard limit)
  ulimit -n "$(ulimit -Hn)"
  "$AB_KF" webhook-server --cert-file "$AB_TMP/tls.crt" --key-file "$AB_TMP/tls.key" --port "$AB_PORT" \
    >"$AB_TMP/webhook.log" 2>&1 &
  AB_PID=$!
  defer ab_stop
  wait_until 10 grep -q 'Wehook server listening' "$AB_TMP/webhook.log" ||
    { cat "$AB_TMP/webhook.log"; fail "the webhook did not start"; }
  log "webhook pid $AB_PID on port $AB_PORT"
}

ab_stop() {
  kill "$AB_PID" 2>/dev/null || return 0
  local i
  for i in $(seq 50); do kill -0 "$AB_PID" 2>/dev/null || break; sleep 0.1; done
  tail -3 "$AB_TMP/webhook.log" >> "$E2E_LOG" || true
}

# ab_attack ARGS...: runs wh_abuse against the webhook; its report goes to the log and into AB_OUT.
ab_attack() {
  local rc=0
  AB_OUT=$("$AB_TOOL" --port "$AB_PORT" --review "$AB_REVIEW" --pid "$AB_PID" "$@" 2>&1) || rc=$?
  log "wh_abuse $*:"
  printf '%s\n' "$AB_OUT" | sed 's/^/    /' >> "$E2E_LOG"
  return $rc
}

# ab_vwc: the API server calls the webhook for ImageCaches of this namespace (Service -> host:AB_PORT).
ab_vwc() {
  [ -n "${KF_HOST_IP:-}" ] || fail "KF_HOST_IP not set by .cluster/env"
  kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 || kubectl apply -f "$AB_ROOT/deploy/kubefledged-crd.yaml"
  kubectl label namespace "$E2E_NS" kf-e2e-abuse="$E2E_NS" >/dev/null
  defer kubectl delete validatingwebhookconfiguration "$E2E_NS-abuse" --ignore-not-found
  host_service "$AB_SVC" "$AB_PORT"
  host_vwc "$E2E_NS-abuse" "$AB_SVC" kf-e2e-abuse "$(base64 -w0 < "$AB_TMP/tls.crt")"
}

ab_create() { ic_apply "$1" <<< "[{\"images\": [\"$REGISTRY/busybox:1\"]}]" 2>&1; } # NAME: admitted by the webhook

test_webhook_answers_while_one_client_holds_1100_idle_connections() {
  ab_start
  ab_vwc
  # the API server reaches the webhook before the attack (the configuration may take a moment to load)
  wait_until 30 ab_create ic-before || fail "the API server cannot reach the webhook: $(ab_create ic-before)"
  "$AB_TOOL" --port "$AB_PORT" --review "$AB_REVIEW" --pid "$AB_PID" --mode idle --conns 1100 --sources 1 \
    --seconds 25 >"$AB_TMP/attack.out" 2>&1 &
  local tool=$! i t0 ms out max=0
  defer kill "$tool"
  sleep 4 # the attack in place
  for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    out=$(ab_create "ic-during-$i") || fail "ImageCache create refused during the attack: $out"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -le "$max" ] || max=$ms
    sleep 2
  done
  log "5 ImageCache creates through the API server during the attack: slowest ${max} ms (kubectl included)"
  local rc=0
  wait "$tool" || rc=$?
  log "wh_abuse --mode idle --conns 1100 --sources 1:"
  sed 's/^/    /' "$AB_TMP/attack.out" >> "$E2E_LOG"
  [ "$rc" = 0 ] || fail "target missed: $(cat "$AB_TMP/attack.out")"
  assert_contains "$(cat "$AB_TMP/attack.out")" "0 failed"
  # the API server's own deadline is the webhook's timeoutSeconds (5 s); kubectl adds its round trips
  [ "$max" -lt 5000 ] || fail "an ImageCache create took ${max} ms during the attack"
}

test_webhook_one_client_cannot_starve_the_byte_budget() {
  ab_start
  ab_attack --mode slow --conns 150 --sources 1 --seconds 20 || fail "target missed: $AB_OUT"
  assert_contains "$AB_OUT" "0 failed"
}

test_webhook_memory_under_1000_slow_bodies() {
  ab_start
  # 4 MiB bodies: the budget admits 8 at a time, the others get 503 at once
  ab_attack --mode slow --conns 1000 --sources 20 --seconds 25 --max-review-ms 0 --max-rss-mib 128 ||
    fail "target missed: $AB_OUT"
  assert_contains "$AB_OUT" "result: ok"
  # 32 KiB bodies at 2 KiB/s: all fit the budget, so 1,000 connections hold a body at once
  ab_attack --mode slow --conns 1000 --sources 20 --seconds 25 --length 32768 --chunk 1024 --every 500 \
    --max-review-ms 0 --max-rss-mib 128 || fail "target missed: $AB_OUT"
  assert_contains "$AB_OUT" "result: ok"
  # the flood is over: answered at once again
  ab_attack --mode idle --conns 1 --sources 1 --seconds 3 || fail "no answer after the flood: $AB_OUT"
  assert_contains "$AB_OUT" "0 failed"
}
