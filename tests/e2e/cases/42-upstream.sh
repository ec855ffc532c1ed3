# End-to-end, in cluster: migrating from upstream kube-fledged v0.10.0, step by step as the README's
# "Migrating from upstream" says.
#   1. Swap the image: upstream's own manifests (tests/e2e/upstream/v0.10.0/deploy, reproduced from
#      upstream's v0.10.0 deploy/ field by field: commands, arguments, environment, volumes, ports, RBAC with
#      its system:nodes bindings, the CRD without status subresource, the VWC with an expired placeholder
#      caBundle and timeoutSeconds 1), unchanged except for their four image references, all pointing at
#      this project's image, applied in upstream's `make deploy-using-yaml` order. Upstream's walkthrough
#      then runs on them: create, edit, purge, refresh, a webhook denial with upstream's message, a webhook
#      rollout that keeps admission trusted.
#   2. Upgrade in place with `make deploy-using-yaml`: the caches keep their status and are served, and
#      nothing of the old installation is left that should not be.
# See 40-deploy-lib.sh: not to be run beside other kube-fledged cases on the same cluster.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"
. "$E2E_ROOT/tests/e2e/cases/40-deploy-lib.sh"

UP_DIR=$E2E_ROOT/tests/e2e/upstream/v0.10.0
UP_IMAGES='senthilrch/kubefledged-controller:v0.10.0 senthilrch/kubefledged-webhook-server:v0.10.0
senthilrch/kubefledged-cri-client:v0.10.0 senthilrch/busybox:1.35.0'
PULLED='All requested images pulled succesfully to respective nodes'
DELETED='All cached images succesfully deleted from respective nodes'

# up_render FILE: one of upstream's manifests with its image references swapped for ours; nothing else
up_render() {
  local sed_args=() i
  for i in $UP_IMAGES; do sed_args+=(-e "s#\\(image: \\|value: \\)$i\$#\\1$KF_IMAGE#"); done
  sed "${sed_args[@]}" "$UP_DIR/deploy/$1"
}
up_apply() { local f; for f in "$@"; do up_render "kubefledged-$f.yaml" | kubectl apply -f -; done; }

# upstream's `make deploy-using-yaml`, in its order (its Makefile, v0.10.0)
up_deploy_using_yaml() {
  up_apply namespace crd serviceaccount-controller clusterrole-controller clusterrolebinding-controller \
    deployment-controller
  kubectl rollout status deployment kubefledged-controller -n kube-fledged --watch --timeout=180s
  kubectl delete validatingwebhookconfiguration -l app=kubefledged
  up_apply validatingwebhook
  kubectl delete deployment -l app=kubefledged,kubefledged=kubefledged-webhook-server -n kube-fledged
  up_apply serviceaccount-webhook-server clusterrole-webhook-server clusterrolebinding-webhook-server \
    deployment-webhook-server service-webhook-server
  kubectl rollout status deployment kubefledged-webhook-server -n kube-fledged --watch --timeout=180s
  kubectl get pods -n kube-fledged
}

# Upstream's CRD prunes status.conditions, so ic_wait_op cannot tell this operation from the last one with
# the same outcome: wait for REASON/STATUS with a startTime at or after T0 (epoch seconds of the trigger).
_op_since() { # NAME REASON STATUS T0
  local got st
  got=$(ic_json "$1" '{.status.reason}/{.status.status}/{.status.startTime}')
  IFS=/ read -r r s st <<< "$got"
  [ "$r" = "$2" ] && [ "$s" = "$3" ] && [ -n "$st" ] && [ "$(date -d "$st" +%s)" -ge "$4" ]
}
ic_wait_op_since() { # NAME REASON STATUS T0 [TIMEOUT]
  wait_until "${5:-120}" _op_since "$1" "$2" "$3" "$4" ||
    fail "ImageCache $1: no $2 ending $3 since $(date -u -d "@$4" +%T) (now: $(ic_status "$1") since $(ic_json "$1" '{.status.startTime}'))"
}
# the webhook answers (upstream's Deployment has no readiness probe: its pod is Ready before it listens)
webhook_answers() { # FILE
  local out; out=$(kubectl apply --dry-run=server -f "$1" 2>&1); [[ $out != *"failed calling webhook"* ]]
}
webhook_logs_say() { kubectl -n "$DEP_NS" logs deploy/kubefledged-webhook-server -c webhook-server | grep -qF -- "$1"; }
pem_count() { base64 -d | grep -c 'BEGIN CERTIFICATE' || true; }

test_upstream_yaml_walkthrough_then_upgrade() {
  local img f t0 t out ca1 ca2 n pods leftover
  dep_image_present || fail "$KF_IMAGE is not in the registry: run make image"
  ! kubectl get namespace "$DEP_NS" >/dev/null 2>&1 || fail "namespace $DEP_NS exists already"
  crds_gone
  defer dep_down
  mapfile -t img < <(gen_images "$(unique kfe2e/upstream)" 5)

  # ---- 1. upstream's manifests, only the images swapped ----
  n=0
  for f in "$UP_DIR"/deploy/*.yaml; do
    out=$(diff <(up_render "$(basename "$f")") "$f" | grep '^[<>]' || true)
    [ -z "$out" ] || n=$(( n + $(grep -c '^<' <<< "$out") ))
    assert_eq "" "$(grep '^[<>]' <<< "$out" | grep -v -e "image: " -e "value: " || true)" "$(basename "$f"): more than images changed"
  done
  assert_eq 5 "$n" "image references swapped (controller, its two Job images, the webhook's two containers)"
  t=$SECONDS
  up_deploy_using_yaml > "$E2E_LOG.upstream" 2>&1 || { tail -30 "$E2E_LOG.upstream"; fail "upstream's deploy-using-yaml failed"; }
  log "upstream's make deploy-using-yaml with our image: $((SECONDS - t)) s"
  # what ran: upstream's entry points, the init container's minted CA in the configuration
  assert_eq "/opt/bin/kubefledged-controller" "$(kubectl -n "$DEP_NS" get deploy kubefledged-controller -o jsonpath='{.spec.template.spec.containers[0].command[0]}')"
  out=$(kubectl -n "$DEP_NS" logs deploy/kubefledged-webhook-server -c init)
  assert_contains "$out" "a new CA and a certificate for Service kube-fledged/kubefledged-webhook-server"
  assert_contains "$out" "ValidatingWebhookConfiguration kubefledged-webhook-server: caBundle set in 1 webhook(s): the new CA and 0 still-valid"
  ca1=$(ca_of_vwc "$DEP_VWC")
  assert_eq 1 "$(pem_count <<< "$ca1")" "CAs in the caBundle (upstream's expired placeholder dropped)"
  [ "$ca1" != "$(up_render kubefledged-validatingwebhook.yaml | awk '/caBundle:/ {print $2}')" ] || fail "caBundle still the placeholder"
  wait_until 60 webhook_logs_say 'Wehook server listening on :443' ||
    fail "the webhook does not listen on 443: $(kubectl -n "$DEP_NS" logs deploy/kubefledged-webhook-server -c webhook-server | tail -5)"
  ! kubectl -n "$DEP_NS" get secret "$DEP_SECRET" >/dev/null 2>&1 || fail "Secret $DEP_SECRET exists (upstream's RBAC has no Secret rights)"
  assert_eq "" "$(kubectl -n "$DEP_NS" get leases -o name)" "a Lease exists (no leader election under upstream's name)"

  # ---- upstream's walkthrough ----
  f=$E2E_LOG.imagecache1.yaml
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\"" "\"${img[2]}\", \"${img[3]}\"" > "$f"
  wait_until 60 webhook_answers "$f" || fail "the webhook does not answer: $(kubectl apply --dry-run=server -f "$f" 2>&1)"
  ic_watch_full imagecache1
  t0=$(date +%s)
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 created"
  ic_wait_op_since imagecache1 ImageCacheCreate Succeeded "$t0"
  log "create: Succeeded after $(( $(date +%s) - t0 )) s"
  assert_eq "$PULLED" "$(ic_json imagecache1 '{.status.message}')"
  expect_seed_placement "${img[0]} ${img[1]}" "${img[2]} ${img[3]}"
  wait_until 30 jobs_gone imagecache1 || fail "Jobs left behind: $(jobs_of imagecache1)"
  # the status holds upstream's fields only (its CRD prunes the rest), ours ride in an annotation
  assert_eq '["completionTime","message","reason","startTime","status"]' "$(kns get imagecache imagecache1 -o json | jq -c '.status | keys')"
  assert_eq '"True"' "$(kns get imagecache imagecache1 -o json | jq '.metadata.annotations["kubefledged.io/status"] | fromjson | .conditions[] | select(.type == "Ready") | .status')"

  # edit: remove an image (pulls nothing, deletes it from the nodes)
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "\"${img[2]}\", \"${img[3]}\"" > "$f"
  t0=$(date +%s)
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 configured"
  ic_wait_op_since imagecache1 ImageCacheUpdate Succeeded "$t0"
  for n in $KF_NODES; do images_not_on "$n" "${img[1]}"; done
  expect_seed_placement "${img[0]}" "${img[2]} ${img[3]}"

  # purge (delete Jobs: the image as upstream's cri-client) then refresh, by annotation
  t0=$(date +%s)
  kns annotate imagecache imagecache1 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op_since imagecache1 ImageCachePurge Succeeded "$t0"
  assert_eq "$DELETED" "$(ic_json imagecache1 '{.status.message}')"
  wait_until 20 no_annotation imagecache1 kubefledged.io/purge-imagecache || fail "purge annotation not removed"
  for n in $KF_NODES; do images_not_on "$n" "${img[0]}" "${img[2]}" "${img[3]}"; done
  t0=$(date +%s)
  kns annotate imagecache imagecache1 kubefledged.io/refresh-imagecache= >/dev/null
  ic_wait_op_since imagecache1 ImageCacheRefresh Succeeded "$t0"
  wait_until 20 no_annotation imagecache1 kubefledged.io/refresh-imagecache || fail "refresh annotation not removed"
  expect_seed_placement "${img[0]}" "${img[2]} ${img[3]}"
  for s in "Processing/ImageCacheCreate/Images are being pulled on to the nodes. Please view the status after some time" \
           "Processing/ImageCacheUpdate/Image cache is being updated. Please view the status after some time" \
           "Processing/ImageCachePurge/Image cache is being purged. Please view the status after some time" \
           "Processing/ImageCacheRefresh/Image cache is being refreshed. Please view the status after some time"; do
    ic_seen_full imagecache1 "$s" || fail "not seen: $s"
  done
  assert_contains "$(ic_events imagecache1)" "Normal ImageCachePurge $DELETED"

  # the webhook denies a bad spec with upstream's message
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "" | sed '/^  - images: \[\]$/,$d' > "$f.nolist"
  out=$(try_apply "$f.nolist") && fail "removing a whole list was accepted"
  denied "$out" "Mismatch in no. of image lists"

  # a rollout of the webhook: the new pod's CA joins the old one, so the old pod, still serving during the
  # rollout, stays trusted (upstream replaced the caBundle: x509 errors until the old pod was gone)
  kubectl -n "$DEP_NS" rollout restart deployment/kubefledged-webhook-server >/dev/null
  kubectl -n "$DEP_NS" rollout status deployment/kubefledged-webhook-server --timeout=120s >/dev/null
  ca2=$(ca_of_vwc "$DEP_VWC")
  assert_eq 2 "$(pem_count <<< "$ca2")" "CAs in the caBundle after a rollout"
  wait_until 60 webhook_answers "$f" || fail "the webhook does not answer after its rollout"
  out=$(ic_apply after-rollout <<< "[{\"images\": [\"${img[4]}\"]}]" 2>&1) || fail "refused after the webhook's rollout: $out"
  assert_not_contains "$out" "x509"

  # the controller lived within upstream's RBAC, and said how
  out=$(kubectl -n "$DEP_NS" logs deploy/kubefledged-controller --tail=-1)
  assert_contains "$out" "the ImageCache CRD is upstream's (no status subresource)"
  assert_contains "$out" "patching imagecaches is forbidden"
  assert_contains "$out" "watch jobs: "
  assert_contains "$out" "listing every 2 s instead"
  assert_not_contains "$out" "status write failed"
  assert_eq 0 "$(kubectl -n "$DEP_NS" get pods -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{"\n"}{end}' | sort -u | paste -sd' ')" "restarts"

  # ---- 2. upgrade in place to this project's manifests ----
  ic_wait_op_since after-rollout ImageCacheCreate Succeeded "$t0"
  pods=$(kubectl -n "$DEP_NS" get pods -o name | sort)
  t=$SECONDS
  _make deploy-using-yaml > "$E2E_LOG.deploy" 2>&1 || { tail -30 "$E2E_LOG.deploy"; fail "make deploy-using-yaml over upstream failed"; }
  log "make deploy-using-yaml over upstream's installation: $((SECONDS - t)) s"
  wait_until 120 bash -c "[ -z \"\$(comm -12 <(echo '$pods') <(kubectl -n $DEP_NS get pods -o name | sort))\" ]" ||
    fail "pods of the upstream installation still there"
  # nothing of the old installation that ours does not have
  assert_eq "" "$(kubectl get clusterrolebindings -l app=kubefledged -o json | jq -r '.items[].subjects[] | select(.kind != "ServiceAccount") | .name')" \
    "non-ServiceAccount subjects left (system:nodes)"
  assert_eq "null null null" "$(kubectl -n "$DEP_NS" get deploy kubefledged-webhook-server -o json |
    jq -r '.spec.template.spec | [.initContainers, .volumes, .containers[0].command] | map(tostring) | join(" ")')" "webhook Deployment leftovers"
  assert_eq "null" "$(kubectl -n "$DEP_NS" get deploy kubefledged-controller -o json | jq -c '.spec.template.spec.containers[0].command')" \
    "controller command left"
  assert_eq '{"status":{}}' "$(kubectl get crd imagecaches.kubefledged.io -o jsonpath='{.spec.versions[0].subresources}')"
  assert_eq 5 "$(kubectl get validatingwebhookconfiguration "$DEP_VWC" -o jsonpath='{.webhooks[0].timeoutSeconds}')"
  wait_until 30 ca_synced "$DEP_NS" "$DEP_SECRET" "$DEP_VWC" || fail "caBundle not exactly the Secret's CA (old CAs left?)"
  ! kubectl auth can-i update validatingwebhookconfigurations/other --as="system:serviceaccount:$DEP_NS:kubefledged-webhook-server" >/dev/null 2>&1 ||
    fail "the webhook may still update any VWC (upstream's rule)"
  ! kubectl auth can-i update imagecaches.kubefledged.io --as="system:serviceaccount:$DEP_NS:kubefledged-controller" >/dev/null 2>&1 ||
    fail "the controller may still update ImageCaches (upstream's rule)"
  # the caches keep their status, get it whole again, lose the annotation, and are served
  for c in imagecache1 after-rollout; do
    assert_eq "Succeeded" "$(ic_json "$c" '{.status.status}')" "$c after the upgrade"
    wait_until 60 bash -c "! kubectl -n $E2E_NS get imagecache $c -o json | jq -e '.metadata.annotations[\"kubefledged.io/status\"]' >/dev/null" ||
      fail "$c: annotation kubefledged.io/status left"
    ic_wait_op "$c" "$(ic_json "$c" '{.status.reason}')" Succeeded 60
  done
  leftover=$(kns get imagecache imagecache1 -o json | jq -c '.status.appliedSpec.cacheSpec | map(.images)')
  assert_eq "[[\"${img[0]}\"],[\"${img[2]}\",\"${img[3]}\"]]" "$leftover" "appliedSpec carried over from the annotation"
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\"" "\"${img[2]}\"" > "$f"
  out=$(try_apply "$f") || fail "an edit was refused after the upgrade: $out"
  assert_not_contains "$out" "x509"
  ic_wait_op imagecache1 ImageCacheUpdate Succeeded 120
  expect_seed_placement "${img[0]} ${img[1]}" "${img[2]}"
  for n in $KF_NODES; do images_not_on "$n" "${img[3]}"; done
}

# ---- Helm ----

hhelm() { "$E2E_ROOT/hack/helm.sh" "$@"; }
# deployment selectors of a chart rendered for release REL, as one sorted JSON object {name: selector}
chart_selectors() { # CHART REL
  hhelm template "$2" "$1" -n x | kubectl create --dry-run=client -o json -f - |
    jq -cS -s '[.[] | if .kind == "List" then .items[] else . end | select(.kind == "Deployment") | {(.metadata.name): .spec.selector}] | add'
}
# registry_retag REF TAG: REF (in the test bed registry) also under TAG
registry_retag() {
  local ref=${1#*/} m
  m=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/${ref%:*}/manifests/${ref##*:}") || return 1
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" \
    "http://$REGISTRY/v2/${ref%:*}/manifests/$2" -o /dev/null
}
up_helm_cleanup() { # REL NS
  keep_pod_logs "$2"
  if [ -n "$(hhelm list -n "$2" -q 2>/dev/null)" ]; then
    _make helm-uninstall HELM_RELEASE="$1" HELM_NAMESPACE="$2" >> "$E2E_LOG.helm" 2>&1 || true
  fi
  kubectl delete namespace "$2" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kns delete imagecaches --all --wait=false >/dev/null 2>&1 || true
  kubectl delete crd imagecaches.kubefledged.io --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

# A release of upstream's chart (tests/e2e/upstream/v0.10.0/chart, reproduced from upstream's v0.10.0 chart:
# its names, labels and selectors, values, CRD in crds/, system:nodes bindings, webhook init container),
# named kf, not kube-fledged (upstream's selectors embed the release name), its images swapped through its
# own values, is upgraded with make helm-upgrade-from-upstream: the CRD becomes ours, the selectors stay, the
# cache keeps its status and is served. Then a value that does change a selector (nameOverride): plain helm
# upgrade fails with "field is immutable", the make target goes through.
test_upstream_helm_release_upgraded() {
  local rel=kf rns=$E2E_NS-kf up_chart=$UP_DIR/chart/kube-fledged repo r img f t0 t out web ctl left want
  dep_image_present || fail "$KF_IMAGE is not in the registry: run make image"
  crds_gone
  [ -z "$(kubectl get deployments -A -l app.kubernetes.io/name=kube-fledged -o name)" ] || fail "kube-fledged is deployed already"
  defer up_helm_cleanup "$rel" "$rns"
  mapfile -t img < <(gen_images "$(unique kfe2e/uphelm)" 3)

  # our chart selects pods exactly as upstream's does, for any release name
  for r in kf kube-fledged prod-kube-fledged-2 kube-fledged-in-production-cluster-number-0042; do
    out=$(chart_selectors "$up_chart" "$r")
    assert_contains "$out" "\"app.kubernetes.io/part-of\":\"$r-webhook-server\""
    assert_eq "$out" "$(chart_selectors "$E2E_ROOT/charts/kube-fledged" "$r")" "selectors for release $r"
  done

  # upstream's chart, installed as its README says (namespace first), images swapped through its values; its
  # images are <repository>:<appVersion>, so ours is pushed as v0.10.0 too
  registry_retag "$KF_IMAGE" v0.10.0 || fail "cannot tag $KF_IMAGE as v0.10.0"
  repo=${KF_IMAGE%:*}
  kubectl create namespace "$rns" >/dev/null
  t=$SECONDS
  hhelm install "$rel" "$up_chart" -n "$rns" --wait --timeout 180s \
    --set "image.kubefledgedControllerRepository=$repo" --set "image.kubefledgedWebhookServerRepository=$repo" \
    --set "image.kubefledgedCRIClientRepository=$repo" --set "image.busyboxImageRepository=$repo" \
    --set image.busyboxImageVersion=v0.10.0 > "$E2E_LOG.helm" 2>&1 || { cat "$E2E_LOG.helm"; fail "helm install of upstream's chart failed"; }
  log "helm install $rel (upstream's chart, our image): $((SECONDS - t)) s"
  web=$rel-kube-fledged-webhook-server; ctl=$rel-kube-fledged-controller
  assert_eq "kf-controller" "$(kubectl -n "$rns" get deploy "$ctl" -o jsonpath='{.spec.selector.matchLabels.app\.kubernetes\.io/part-of}')"
  assert_eq "" "$(kubectl get crd imagecaches.kubefledged.io -o jsonpath='{.spec.versions[0].subresources}')" "upstream's CRD has no subresources"
  f=$E2E_LOG.ic.yaml
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "\"${img[1]}\"" > "$f"
  wait_until 60 webhook_answers "$f" || fail "upstream's webhook does not answer: $(kubectl apply --dry-run=server -f "$f" 2>&1)"
  t0=$(date +%s)
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 created"
  ic_wait_op_since imagecache1 ImageCacheCreate Succeeded "$t0"
  expect_seed_placement "${img[0]}" "${img[1]}"

  # the upgrade
  t=$SECONDS
  _make helm-upgrade-from-upstream HELM_RELEASE="$rel" HELM_NAMESPACE="$rns" >> "$E2E_LOG.helm" 2>&1 ||
    { tail -30 "$E2E_LOG.helm"; fail "make helm-upgrade-from-upstream failed"; }
  log "make helm-upgrade-from-upstream: $((SECONDS - t)) s"
  out=$(cat "$E2E_LOG.helm")
  assert_contains "$out" "leave out (they were for upstream's images and its init container, see docs/deploy.md): image.busyboxImageRepository"
  assert_not_contains "$out" "field is immutable"
  assert_eq "kube-fledged-0.1.0 2" "$(hhelm list -n "$rns" -o json | jq -r '.[0] | "\(.chart) \(.revision)"')"
  assert_eq '{"status":{}}' "$(kubectl get crd imagecaches.kubefledged.io -o jsonpath='{.spec.versions[0].subresources}')"
  assert_eq "" "$(kubectl get clusterrolebindings -l "app.kubernetes.io/instance=$rel" -o json | jq -r '.items[].subjects[] | select(.kind != "ServiceAccount") | .name')" \
    "non-ServiceAccount subjects left (system:nodes)"
  assert_eq "null null" "$(kubectl -n "$rns" get deploy "$web" -o json | jq -r '.spec.template.spec | [.initContainers, .containers[0].command] | map(tostring) | join(" ")')" \
    "webhook Deployment leftovers"
  ca_synced "$rns" "$web-cert" "$web" || fail "caBundle not exactly the Secret's CA"
  want=$(hhelm get manifest "$rel" -n "$rns" | kubectl create --dry-run=client -o json -f - |
    jq -r -s '[.[] | if .kind == "List" then .items[] else . end | select(.kind | test("^(ClusterRole|ClusterRoleBinding|ValidatingWebhookConfiguration)$")) | "\(.kind)/\(.metadata.name)"] | sort | join(" ")')
  left=$(kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations -l "app.kubernetes.io/instance=$rel" -o json |
    jq -r '[.items[] | "\(.kind)/\(.metadata.name)"] | sort | join(" ")')
  assert_eq "$want" "$left" "cluster-scoped objects of the release"
  wait_until 120 bash -c "[ -z \"\$(kubectl -n $rns get pods -o json | jq -r '.items[] | select(.spec.initContainers) | .metadata.name')\" ]" ||
    fail "pods of upstream's webhook still there"
  # the cache: same status, whole again, served
  assert_eq "Succeeded" "$(ic_json imagecache1 '{.status.status}')" "status after the upgrade"
  ic_wait_op imagecache1 "$(ic_json imagecache1 '{.status.reason}')" Succeeded 60   # (the start-up refresh may have run)
  wait_until 60 bash -c "! kubectl -n $E2E_NS get imagecache imagecache1 -o json | jq -e '.metadata.annotations[\"kubefledged.io/status\"]' >/dev/null" ||
    fail "annotation kubefledged.io/status left"
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\", \"${img[2]}\"" "" | sed '/^  - images: \[\]$/,$d' > "$f.nolist"
  out=$(try_apply "$f.nolist") && fail "removing a whole list was accepted after the upgrade"
  denied "$out" "Mismatch in no. of image lists"
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\", \"${img[2]}\"" "\"${img[1]}\"" > "$f"
  out=$(try_apply "$f") || fail "an edit was refused after the upgrade: $out"
  ic_wait_op imagecache1 ImageCacheUpdate Succeeded 120
  for n in $KF_NODES; do images_on "$n" "${img[0]}" "${img[2]}"; done

  # a value that changes a selector: helm upgrade alone fails, the make target deletes and recreates
  local extra="--set fullnameOverride=$rel-kube-fledged --set nameOverride=fledged"
  # shellcheck disable=SC2086
  out=$(hhelm upgrade "$rel" "$E2E_ROOT/charts/kube-fledged" -n "$rns" --set "image.repository=$repo" \
    --set "image.tag=${KF_IMAGE##*:}" $extra 2>&1) && fail "helm upgrade changed a Deployment's selector?"
  assert_contains "$out" "field is immutable"
  log "plain helm upgrade with nameOverride: ${out:0:200}"
  _make helm-upgrade-from-upstream HELM_RELEASE="$rel" HELM_NAMESPACE="$rns" HELM_ARGS="$extra" >> "$E2E_LOG.helm" 2>&1 ||
    { tail -30 "$E2E_LOG.helm"; fail "make helm-upgrade-from-upstream with a new selector failed"; }
  assert_contains "$(cat "$E2E_LOG.helm")" "deployment/$ctl: selector"
  assert_eq "fledged" "$(kubectl -n "$rns" get deploy "$ctl" -o jsonpath='{.spec.selector.matchLabels.app\.kubernetes\.io/name}')"
  assert_eq 1 "$(dep_ready_webhooks "$rns" "app.kubernetes.io/instance=$rel,app.kubernetes.io/part-of=$rel-controller")" "controller ready"
  out=$(ic_apply after-selector <<< "[{\"images\": [\"${img[2]}\"]}]" 2>&1) || fail "refused after the selector change: $out"
  ic_wait_op after-selector ImageCacheCreate Succeeded 120
}
