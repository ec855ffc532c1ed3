# 30-webhook-certs.sh - the webhook's certificates against the real API server: `kubefledged webhook-server`
# runs out of cluster on the host (KF_HOST_IP), reached by the API server through a selector-less Service
# whose Endpoints point at the host (the test bed's apiserver routes webhook calls to endpoints, and
# verifies the serving certificate for <svc>.<ns>.svc). The test's ValidatingWebhookConfiguration only
# selects the test namespace (by a label), so other tests never call it.
#
# What upstream got wrong and is checked here: the caBundle is set from the shared certificate Secret and
# repaired within seconds after `kubectl apply` puts a placeholder back; two replicas share one CA; a
# deleted Secret is recreated and trusted again; --init-server writes the Secret's pair instead of minting
# a new CA. Every step is proven by the API server itself accepting (or denying) ImageCaches.
# shellcheck shell=bash

WH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
WH_KF=${KF_BIN:-$WH_ROOT/build/src/kubefledged}
WH_PLACEHOLDER=Zm9vCg==

wh_setup() {
  [ -x "$WH_KF" ] || fail "$WH_KF not built (make build)"
  [ -n "${KF_HOST_IP:-}" ] || fail "KF_HOST_IP not set by .cluster/env"
  kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 || kubectl apply -f "$WH_ROOT/deploy/kubefledged-crd.yaml"
  WH_TMP=$(mktemp -d /tmp/kf-e2e-wh.XXXXXX)
  defer rm -rf "$WH_TMP"
  WH_SVC=kf-webhook
  WH_VWC=$E2E_NS-webhook
  WH_SECRET=kf-webhook-cert
  kubectl label namespace "$E2E_NS" kf-e2e-webhook="$E2E_NS" >/dev/null
  defer kubectl delete validatingwebhookconfiguration "$WH_VWC" --ignore-not-found
}

wh_free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$KF_HOST_IP"
}

# wh_endpoints PORT: the Service and its Endpoints, pointing at the host's PORT.
wh_endpoints() { host_service "$WH_SVC" "$1"; }

# wh_apply_vwc: the configuration as a manifest would ship it, with a placeholder caBundle.
wh_apply_vwc() { host_vwc "$WH_VWC" "$WH_SVC" kf-e2e-webhook "$WH_PLACEHOLDER"; }

# wh_start NAME PORT [ARGS...]: one webhook replica in Secret mode; its log is $WH_TMP/NAME.log.
wh_start() {
  local name=$1 port=$2; shift 2
  "$WH_KF" webhook-server --kubeconfig "$KUBECONFIG" --ca-secret-namespace "$E2E_NS" --tls-secret "$WH_SECRET" \
    --webhook-service "$WH_SVC" --validating-webhook-config "$WH_VWC" --bind-address "$KF_HOST_IP" \
    --port "$port" -v=2 "$@" >"$WH_TMP/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$WH_TMP/$name.pid"
  defer kill "$pid"
  wait_until 30 grep -q 'Wehook server listening' "$WH_TMP/$name.log" ||
    { cat "$WH_TMP/$name.log"; fail "webhook $name did not start"; }
}

wh_secret_ca() { kns get secret "$WH_SECRET" -o jsonpath='{.data.ca\.crt}'; }
wh_vwc_ca() { kubectl get validatingwebhookconfiguration "$WH_VWC" -o jsonpath='{.webhooks[0].clientConfig.caBundle}'; }
wh_in_sync() { local s; s=$(wh_secret_ca) && [ -n "$s" ] && [ "$s" = "$(wh_vwc_ca)" ]; }

# wh_create NAME IMAGES_JSON: creates an ImageCache; prints kubectl's output, returns its status.
wh_create() {
  kapply 2>&1 <<EOF
apiVersion: kubefledged.io/v1alpha2
kind: ImageCache
metadata: {name: $1}
spec:
  cacheSpec:
  - images: $2
EOF
}

wh_accepted() { # NAME: the API server (through the webhook) accepts a valid ImageCache
  local out
  out=$(wh_create "$1" '["'"$REGISTRY"'/busybox:1"]') || fail "ImageCache $1 refused: $out"
  assert_not_contains "$out" "x509"
}

test_webhook_cabundle_reconciled_and_shared() {
  wh_setup
  local p1 p2 out t0 ms rv
  p1=$(wh_free_port)
  wh_endpoints "$p1"
  wh_apply_vwc
  log "replica 1 on $KF_HOST_IP:$p1"
  wh_start r1 "$p1"

  # the Secret is created (kubernetes.io/tls with the CA key) and the caBundle set from it
  assert_eq kubernetes.io/tls "$(kns get secret "$WH_SECRET" -o jsonpath='{.type}')"
  for k in ca.crt ca.key tls.crt tls.key; do
    [ -n "$(kns get secret "$WH_SECRET" -o "jsonpath={.data.${k//./\\.}}")" ] || fail "Secret lacks $k"
  done
  wait_until 10 wh_in_sync || fail "caBundle not set from the Secret"
  wh_secret_ca | base64 -d | openssl x509 -noout -subject | grep -q 'kubefledged-webhook-ca' || fail "not our CA"
  kns get secret "$WH_SECRET" -o jsonpath='{.data.tls\.crt}' | base64 -d |
    openssl x509 -noout -ext subjectAltName | grep -q "DNS:$WH_SVC.$E2E_NS.svc" || fail "serving SANs"

  # the API server trusts the webhook, which judges: a valid cache in, upstream's denial out
  wh_accepted ic-one
  out=$(wh_create ic-empty '[]') && fail "empty image list accepted"
  assert_contains "$out" 'admission webhook "validate-image-cache.kubefledged.io" denied the request: No images specified within image list'
  out=$(wh_create ic-bad '["nginx;reboot"]') && fail "bad reference accepted"
  assert_contains "$out" 'spec.cacheSpec[0].images[0]: invalid image reference "nginx;reboot"'
  # an image ID (runtimes remove the whole image, every tag, when asked to delete it) is not a reference
  local id=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  out=$(wh_create ic-id '["'"$REGISTRY"'/busybox:1", "'"$id"'"]') && fail "image ID accepted"
  assert_contains "$out" "spec.cacheSpec[0].images[1]: invalid image reference \"$id\": an image ID is not an image reference"
  out=$(wh_create ic-id '["'"${id#sha256:}"'"]') && fail "bare 64-hex image ID accepted"
  assert_contains "$out" "an image ID is not an image reference"

  # upstream's defect: re-applying the manifests puts the placeholder back; here it is repaired at once
  for i in 1 2 3; do
    t0=$(date +%s%N)
    wh_apply_vwc
    wait_until 10 wh_in_sync || fail "caBundle not repaired after kubectl apply"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    log "re-apply $i: caBundle repaired within ${ms} ms"
    wh_accepted "ic-reapplied-$i"
  done

  # a second replica reuses the Secret: same CA, no write, same serving certificate
  rv=$(kns get secret "$WH_SECRET" -o jsonpath='{.metadata.resourceVersion}')
  p2=$(wh_free_port)
  wh_start r2 "$p2"
  assert_eq "$rv" "$(kns get secret "$WH_SECRET" -o jsonpath='{.metadata.resourceVersion}')" "Secret rewritten by replica 2"
  local fp1 fp2
  fp1=$(grep -o 'serving the certificate of Secret [^ ]* (sha256 [0-9a-f]*' "$WH_TMP/r1.log" | tail -1 | awk '{print $NF}')
  fp2=$(grep -o 'serving the certificate of Secret [^ ]* (sha256 [0-9a-f]*' "$WH_TMP/r2.log" | tail -1 | awk '{print $NF}')
  [ -n "$fp1" ] && assert_eq "$fp1" "$fp2" "replicas serve different certificates"
  wh_endpoints "$p2" # the Service now reaches replica 2 only
  wh_accepted ic-replica-2

  # the Secret deleted: recreated by one replica (the other gets 409 and adopts it), trusted again
  local old_ca; old_ca=$(wh_secret_ca)
  kns delete secret "$WH_SECRET" >/dev/null
  wait_until 15 bash -c "[ -n \"\$(kubectl -n $E2E_NS get secret $WH_SECRET -o jsonpath='{.data.ca\\.crt}' 2>/dev/null)\" ]" ||
    fail "Secret not recreated"
  [ "$(wh_secret_ca)" != "$old_ca" ] || fail "recreated Secret has the old CA"
  wait_until 10 wh_in_sync || fail "caBundle not updated to the recreated CA"
  wait_until 15 wh_create ic-after-delete '["'"$REGISTRY"'/busybox:1"]' || fail "not trusted after the Secret was recreated"
  wh_endpoints "$p1"
  wait_until 15 wh_create ic-after-delete-r1 '["'"$REGISTRY"'/busybox:1"]' || fail "replica 1 did not pick up the new Secret"
  grep -q 'written concurrently by another replica\|certificate Secret .* created' "$WH_TMP/r1.log" "$WH_TMP/r2.log" ||
    fail "no replica recreated the Secret"
}

test_webhook_init_server_uses_the_shared_secret() {
  wh_setup
  wh_apply_vwc
  local dir=$WH_TMP/certs/ rc=0
  # upstream's contract: env only, files under CERT_KEY_PATH, caBundle patched, exit 0
  WEBHOOK_SERVER_SERVICE=$WH_SVC KUBEFLEDGED_NAMESPACE=$E2E_NS CERT_KEY_PATH=$dir VALIDATING_WEBHOOK_CONFIG=$WH_VWC \
    "$WH_KF" webhook-server --init-server --kubeconfig "$KUBECONFIG" --tls-secret "$WH_SECRET" \
    >"$WH_TMP/init1.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$WH_TMP/init1.log"; fail "--init-server exited $rc"; }
  [ -s "${dir}tls.crt" ] && [ -s "${dir}tls.key" ] || fail "tls.crt/tls.key not written"
  assert_eq "$(kns get secret "$WH_SECRET" -o jsonpath='{.data.tls\.crt}' | base64 -d)" "$(cat "${dir}tls.crt")"
  wh_in_sync || fail "caBundle not set by --init-server"
  # a second start (pod restart, or another replica's init container) changes nothing
  local ca; ca=$(wh_vwc_ca)
  WEBHOOK_SERVER_SERVICE=$WH_SVC KUBEFLEDGED_NAMESPACE=$E2E_NS CERT_KEY_PATH=${WH_TMP}/certs2/ \
    VALIDATING_WEBHOOK_CONFIG=$WH_VWC "$WH_KF" webhook-server --init-server --kubeconfig "$KUBECONFIG" \
    --tls-secret "$WH_SECRET" >"$WH_TMP/init2.log" 2>&1 || fail "second --init-server failed: $(cat "$WH_TMP/init2.log")"
  assert_eq "$ca" "$(wh_vwc_ca)" "second init minted a new CA"
  cmp -s "${dir}tls.crt" "$WH_TMP/certs2/tls.crt" || fail "second init wrote another certificate"
  assert_contains "$(cat "$WH_TMP/init2.log")" "already trusts the CA"
  # the files serve: file mode (no API access) behind the Service
  local port; port=$(wh_free_port)
  wh_endpoints "$port"
  "$WH_KF" webhook-server --cert-file "${dir}tls.crt" --key-file "${dir}tls.key" --bind-address "$KF_HOST_IP" \
    --port "$port" >"$WH_TMP/files.log" 2>&1 &
  defer kill $!
  wait_until 10 grep -q 'Wehook server listening' "$WH_TMP/files.log" || fail "file-mode webhook did not start"
  wh_accepted ic-file-mode
  # missing CERT_KEY_PATH slash: refused like upstream would misbehave, but with a message
  CERT_KEY_PATH=$WH_TMP/noslash KUBEFLEDGED_NAMESPACE=$E2E_NS "$WH_KF" webhook-server --init-server \
    --kubeconfig "$KUBECONFIG" >"$WH_TMP/init3.log" 2>&1 && fail "CERT_KEY_PATH without a trailing / accepted"
  assert_contains "$(cat "$WH_TMP/init3.log")" 'must name a directory and end with "/"'
}
