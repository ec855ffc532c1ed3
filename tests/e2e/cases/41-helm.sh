# End-to-end, in cluster: the Helm chart charts/kube-fledged, as a user installs it (make helm-install runs
# `helm upgrade --install`; helm 3.17.2 from npm, hack/helm.sh): lint, install, the walkthrough's create
# step, an upgrade that keeps the webhook trusted (upstream #113/#200), and an uninstall that leaves nothing
# behind. The release goes to its own namespace, not kube-fledged, which also checks that nothing in the
# chart assumes upstream's namespace. See 40-deploy-lib.sh: not to be run beside other kube-fledged cases.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"
. "$E2E_ROOT/tests/e2e/cases/40-deploy-lib.sh"

HELM_REL=kube-fledged

helm_cleanup() { # RELEASE_NS HAD_CRD
  if [ -n "$("$E2E_ROOT/hack/helm.sh" list -n "$1" -q 2>/dev/null)" ]; then
    _make helm-uninstall HELM_RELEASE="$HELM_REL" HELM_NAMESPACE="$1" >> "$E2E_LOG.helm" 2>&1 || true
  fi
  kubectl delete namespace "$1" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  if [ "$2" = no ]; then
    kns delete imagecaches --all --wait=false >/dev/null 2>&1 || true
    kubectl delete crd imagecaches.kubefledged.io --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
}

# Everything left in namespace NS, from every namespaced resource type that can be listed, except what
# Kubernetes puts in every namespace (the default ServiceAccount and its token, kube-root-ca.crt) and
# Events (records of what happened, expiring after an hour).
ns_leftovers() {
  local ns=$1 types
  types=$(kubectl api-resources --verbs=list --namespaced -o name | grep -v '^events' | paste -sd, -)
  kubectl -n "$ns" get "$types" -o json 2>/dev/null | jq -r '.items[] |
    select(.kind != "Event") |
    select(.kind != "ServiceAccount" or .metadata.name != "default") |
    select(.kind != "Secret" or .type != "kubernetes.io/service-account-token" or
           .metadata.annotations["kubernetes.io/service-account.name"] != "default") |
    select(.kind != "ConfigMap" or .metadata.name != "kube-root-ca.crt") |
    "\(.kind)/\(.metadata.name)"'
}

test_helm_lint_install_create_upgrade_uninstall() {
  local rns=$E2E_NS-kf had_crd=no t img f out ca sel_wh sel_ctl left
  dep_image_present || fail "$KF_IMAGE is not in the registry: run make image"
  [ -z "$(kubectl get deployments -A -o json | jq -r '.items[] | select(.metadata.name | test("^(kubefledged|kube-fledged)-controller$")) | .metadata.name')" ] ||
    fail "a kube-fledged controller is already deployed in this cluster"
  ! kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 || had_crd=yes
  defer helm_cleanup "$rns" "$had_crd"

  # lint: the chart's CRD is deploy/'s, helm lint --strict, helm template in three configurations
  cmp "$E2E_ROOT/deploy/kubefledged-crd.yaml" "$E2E_ROOT/charts/kube-fledged/crds/kubefledged-crd.yaml" ||
    fail "the chart's CRD differs from deploy/kubefledged-crd.yaml"
  timed t _make helm-lint > "$E2E_LOG.helm" 2>&1 || { cat "$E2E_LOG.helm"; fail "make helm-lint failed"; }
  assert_contains "$(cat "$E2E_LOG.helm")" "1 chart(s) linted, 0 chart(s) failed"
  log "make helm-lint: ${t}s"

  # install, with three webhook replicas (upstream's chart ignored webhookServerReplicaCount)
  timed t _make helm-install HELM_RELEASE="$HELM_REL" HELM_NAMESPACE="$rns" \
    HELM_ARGS='--set webhookServerReplicaCount=3' >> "$E2E_LOG.helm" 2>&1 || { tail -30 "$E2E_LOG.helm"; fail "make helm-install failed"; }
  log "make helm-install: ${t}s"
  sel_wh=app.kubernetes.io/instance=$HELM_REL,app.kubernetes.io/part-of=$HELM_REL-webhook-server
  sel_ctl=app.kubernetes.io/instance=$HELM_REL,app.kubernetes.io/part-of=$HELM_REL-controller
  assert_eq 3 "$(dep_ready_webhooks "$rns" "$sel_wh")" "ready webhook replicas"
  assert_eq 1 "$(dep_ready_webhooks "$rns" "$sel_ctl")" "ready controller replicas"
  ca=$(ca_of_secret "$rns" kube-fledged-webhook-server-cert)
  if [ -z "$ca" ] || ! ca_synced "$rns" kube-fledged-webhook-server-cert kube-fledged-webhook-server; then fail "caBundle not set"; fi
  assert_eq "$HELM_REL-controller" "$(kubectl -n "$rns" get lease -o jsonpath='{.items[0].spec.holderIdentity}' | cut -d- -f1-3)" \
    "the controller holds the chart's Lease"

  # the walkthrough's create step
  mapfile -t img < <(gen_images "$(unique kfe2e/helm)" 3)
  f=$E2E_LOG.imagecache1.yaml
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "\"${img[1]}\", \"${img[2]}\"" > "$f"
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 created"
  timed t ic_wait_op imagecache1 ImageCacheCreate Succeeded 120
  log "create: Succeeded in ${t}s"
  assert_eq "All requested images pulled succesfully to respective nodes" "$(ic_json imagecache1 '{.status.message}')"
  expect_seed_placement "${img[0]}" "${img[1]} ${img[2]}"
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "" | sed '/^  - images: \[\]$/,$d' > "$f.nolist"
  out=$(try_apply "$f.nolist") && fail "removing a whole list was accepted"
  denied "$out" "Mismatch in no. of image lists"

  # helm upgrade: the same CA, no x509 error on the next create
  timed t _make helm-install HELM_RELEASE="$HELM_REL" HELM_NAMESPACE="$rns" \
    HELM_ARGS='--set webhookServerReplicaCount=3 --set args.controllerImageCacheRefreshFrequency=10m' \
    >> "$E2E_LOG.helm" 2>&1 || { tail -30 "$E2E_LOG.helm"; fail "helm upgrade failed"; }
  log "make helm-install (upgrade): ${t}s"
  assert_eq "$ca" "$(ca_of_secret "$rns" kube-fledged-webhook-server-cert)" "the CA changed on helm upgrade"
  assert_eq "$ca" "$(ca_of_vwc kube-fledged-webhook-server)" "the caBundle changed on helm upgrade"
  assert_contains "$(kubectl -n "$rns" get deploy kube-fledged-controller -o jsonpath='{.spec.template.spec.containers[0].args}')" \
    "--image-cache-refresh-frequency=10m"
  wait_until 120 dep_webhooks_ready_are 1 "$rns" "$sel_ctl" || fail "controller not ready after the upgrade"
  out=$(ic_apply after-upgrade <<< "[{\"images\": [\"${img[0]}\"]}]" 2>&1) || fail "refused after helm upgrade: $out"
  assert_not_contains "$out" "x509"
  ic_wait_op after-upgrade ImageCacheCreate Succeeded 120

  # uninstall: nothing left but the CRD (Helm never deletes CRDs) and the user's ImageCaches
  timed t _make helm-uninstall HELM_RELEASE="$HELM_REL" HELM_NAMESPACE="$rns" >> "$E2E_LOG.helm" 2>&1 ||
    { tail -20 "$E2E_LOG.helm"; fail "make helm-uninstall failed"; }
  log "make helm-uninstall: ${t}s"
  left=$(kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations \
    -l "app.kubernetes.io/instance=$HELM_REL" -o name)
  left+=$(kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations -o name | grep -i fledged || true)
  assert_eq "" "$left" "cluster-scoped objects left"
  left=$(ns_leftovers "$rns")
  assert_eq "" "$left" "objects left in namespace $rns"
  kubectl get crd imagecaches.kubefledged.io >/dev/null || fail "the CRD went (Helm keeps CRDs; so should we)"
  kns get imagecache imagecache1 >/dev/null || fail "the user's ImageCache went"
  assert_eq "" "$(kns get jobs -o name)" "Jobs left in $E2E_NS"
  log "after helm uninstall: no cluster-scoped object, nothing in $rns; the CRD and the ImageCaches stay"
}
