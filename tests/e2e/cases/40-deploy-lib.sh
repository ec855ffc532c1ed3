# Helpers for the in-cluster cases (40-deploy.sh: the manifests of deploy/, 41-helm.sh: the chart), sourced
# by them on top of lib.sh and kf.sh. No test_* functions here.
#
# These cases install kube-fledged cluster-wide, as users do: the CRD, a ValidatingWebhookConfiguration
# with failurePolicy Fail over every namespace, and a controller that watches every namespace. Do not run
# them at the same time as other kube-fledged e2e cases on the same cluster (make e2e runs cases one by
# one, so it is fine there); each test removes what it installed, pass or fail.
#
#   dep_image_present              the kubefledged image is in the test bed registry (make image)
#   dep_up                         make deploy-using-yaml, timed; defers make remove-kubefledged
#   dep_down                       make remove-kubefledged (no-op when nothing is installed), timed
#   dep_reapply                    make deploy-using-yaml again, timed
#   dep_ready_webhooks [NS] [SEL]  number of ready webhook pods
#   ca_of_secret NS SECRET / ca_of_vwc VWC   base64 CA PEM
#   ic_yaml NAME NS LIST0_IMAGES LIST1_IMAGES [EXTRA_SPEC]   the seed's shape: list 0 for every node,
#                                  list 1 for tier=backend; images as "a", "b" (JSON strings, comma-separated)
#   try_apply FILE                 kubectl apply -f FILE; prints kubectl's output, returns its status
#   denied OUT MSG                 OUT is the webhook's denial with message MSG
#   ic_watch_full NAME [NS]        records "status/reason/message" of every version of the cache in
#                                  $E2E_LOG.watchfull.NAME; ic_seen_full NAME TEXT checks a line
#   images_on NODE IMAGE... / images_not_on NODE IMAGE...   (expect_images with a log line)
#   timed VAR CMD...               runs CMD, stores its duration in seconds (0.1 s) in VAR
# shellcheck shell=bash disable=SC2154,SC2034

DEP_NS=kube-fledged
DEP_VWC=kubefledged-webhook-server
DEP_SECRET=kubefledged-webhook-server-cert
DEP_WH_SEL=kubefledged=kubefledged-webhook-server
DEP_CTL_SEL=kubefledged=kubefledged-controller
DENY_PREFIX='admission webhook "validate-image-cache.kubefledged.io" denied the request: '

_now_ds() { local t=${EPOCHREALTIME/./}; echo $(( t / 100000 )); }
timed() {
  local var=$1 t0 rc=0; shift
  t0=$(_now_ds)
  "$@" || rc=$?
  local d=$(( $(_now_ds) - t0 ))
  printf -v "$var" '%d.%d' $((d / 10)) $((d % 10))
  return $rc
}

dep_image_present() {
  local ref=${KF_IMAGE#*/} # repository:tag without the registry
  # a manifest, or an image index (make image IMAGE_ARCHS=all)
  curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
    "http://$REGISTRY/v2/${ref%:*}/manifests/${ref##*:}"
}

_make() { make -C "$E2E_ROOT" --no-print-directory "$@"; }

dep_installed() {
  kubectl get namespace "$DEP_NS" >/dev/null 2>&1 || kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 ||
    [ -n "$(kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations -l app=kubefledged -o name)" ]
}

dep_up() {
  dep_image_present || fail "$KF_IMAGE is not in the registry: run make image"
  if kubectl -n "$DEP_NS" get deployment kubefledged-controller >/dev/null 2>&1 ||
    [ -n "$(kubectl get deployments -A -l app.kubernetes.io/name=kube-fledged -o name)" ]; then
    fail "kube-fledged is already deployed in this cluster (another test's leftover or someone's install)"
  fi
  defer dep_down
  local t
  timed t _make deploy-using-yaml > "$E2E_LOG.deploy" 2>&1 || { cat "$E2E_LOG.deploy"; fail "make deploy-using-yaml failed"; }
  log "make deploy-using-yaml: ${t}s"
  DEP_UP_S=$t
}

dep_down() {
  dep_installed || return 0
  keep_pod_logs "$DEP_NS"
  local t
  timed t _make remove-kubefledged >> "$E2E_LOG.deploy" 2>&1 || { tail -20 "$E2E_LOG.deploy"; fail "make remove-kubefledged failed"; }
  log "make remove-kubefledged: ${t}s"
}

dep_reapply() {
  local t
  timed t _make deploy-using-yaml >> "$E2E_LOG.deploy" 2>&1 || { tail -20 "$E2E_LOG.deploy"; fail "re-apply failed"; }
  log "make deploy-using-yaml again: ${t}s"
  DEP_REAPPLY_S=$t
}

dep_ready_webhooks() {
  kubectl -n "${1:-$DEP_NS}" get pods -l "${2:-$DEP_WH_SEL}" \
    -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^|True$' || true
}
dep_webhooks_ready_are() { [ "$(dep_ready_webhooks "${2:-$DEP_NS}" "${3:-$DEP_WH_SEL}")" = "$1" ]; } # N [NS] [SEL]

ca_of_secret() { kubectl -n "$1" get secret "$2" -o jsonpath='{.data.ca\.crt}'; }
ca_of_vwc() { kubectl get validatingwebhookconfiguration "$1" -o jsonpath='{.webhooks[0].clientConfig.caBundle}'; }
ca_synced() { local s; s=$(ca_of_secret "$1" "$2") && [ -n "$s" ] && [ "$s" = "$(ca_of_vwc "$3")" ]; } # NS SECRET VWC

ic_yaml() {
  local name=$1 ns=$2 l0=$3 l1=$4 extra=${5:-}
  cat <<EOF
apiVersion: kubefledged.io/v1alpha2
kind: ImageCache
metadata:
  name: $name
  namespace: $ns
  labels: {app: kubefledged, kubefledged: imagecache}
spec:
  cacheSpec:
  - images: [$l0]
  - images: [$l1]
    nodeSelector:
      tier: backend
$extra
EOF
}

try_apply() { kubectl apply -f "$1" 2>&1; }

denied() {
  assert_contains "$1" "$DENY_PREFIX$2" "denial"
  log "denied as expected: $2"
}

ic_watch_full() {  # may start before the cache exists (agent mode can finish an operation within a second)
  kubectl -n "${2:-$E2E_NS}" get imagecaches --field-selector "metadata.name=$1" --watch \
    -o jsonpath='{.status.status}/{.status.reason}/{.status.message}{"\n"}' > "$E2E_LOG.watchfull.$1" 2>/dev/null &
  defer kill $! 2>/dev/null
  sleep 0.5
}
ic_seen_full() { grep -qxF -- "$2" "$E2E_LOG.watchfull.$1"; }

images_on() {
  local n=$1; shift
  expect_images "$n" "$@"
  log "on $n: $*"
}
images_not_on() {
  local n=$1; shift
  expect_no_images "$n" "$@"
  log "not on $n: $*"
}

# the seed's image placement: list 0 everywhere, list 1 on tier=backend nodes only
expect_seed_placement() { # "L0 images" "L1 images"
  local n backend
  backend=" $(nodes_with tier=backend) "
  [ "$backend" != "  " ] || fail "no node labelled tier=backend (make cluster-up NODE_LABELS=2:tier=backend)"
  for n in $KF_NODES; do
    # shellcheck disable=SC2086
    images_on "$n" $1
    # shellcheck disable=SC2086
    if [[ $backend == *" $n "* ]]; then images_on "$n" $2; else images_not_on "$n" $2; fi
  done
}

no_annotation() { # NAME KEY
  ! kns get imagecache "$1" -o json | jq -e --arg k "$2" '.metadata.annotations[$k] != null' >/dev/null
}

# crds_gone: a test that installs upstream's CRD needs none of ours: the CRDs that earlier tests' out-of-cluster
# controllers left (their namespaces, and so their ImageCaches, are gone or going) are deleted; an ImageCache
# still there outside a terminating namespace fails the test rather than be deleted with them
crds_gone() {
  local crd left
  kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 || return 0
  left=$(kubectl get imagecaches -A -o json | jq -r '.items[] | "\(.metadata.namespace)/\(.metadata.name)"' |
    while IFS=/ read -r ns name; do
      [ "$(kubectl get ns "$ns" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ] || echo "$ns/$name"
    done)
  [ -z "$left" ] || fail "ImageCaches of others still there, not deleting the CRD: $left"
  for crd in imagecaches.kubefledged.io nodeimagecaches.kubefledged.io; do
    kubectl delete crd "$crd" --ignore-not-found --timeout=120s >/dev/null
  done
}

