# End-to-end, in cluster: kube-fledged deployed from the project's own manifests with `make deploy-using-yaml`,
# exactly as a user deploys it (controller and webhook server from the image `make image` pushed, RBAC,
# Service, ValidatingWebhookConfiguration), then used with kubectl only. Each test deploys and removes
# (make remove-kubefledged, deferred: also on failure). See 40-deploy-lib.sh for why these cases must not run
# beside other kube-fledged cases on the same cluster.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"
. "$E2E_ROOT/tests/e2e/cases/40-deploy-lib.sh"

PULLED='All requested images pulled succesfully to respective nodes'
DELETED='All cached images succesfully deleted from respective nodes'

# kubectl replace of the VWC from FILE (a stale caBundle), then wait until the webhook has repaired it
replace_and_wait_repair() {
  kubectl replace -f "$1" >/dev/null
  until ca_synced "$DEP_NS" "$DEP_SECRET" "$DEP_VWC"; do sleep 0.05; done
}

# The seed walkthrough (upstream's README) with kubectl against the in-cluster deployment: create; remove an
# image with kubectl apply; purge, then refresh, by annotation; every status in upstream's words; the images
# really on (and off) the right nodes' containerd stores.
test_yaml_seed_walkthrough() {
  local img f t op
  dep_up
  mapfile -t img < <(gen_images "$(unique kfe2e/seed)" 4)
  f=$E2E_LOG.imagecache1.yaml

  # create
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\"" "\"${img[2]}\", \"${img[3]}\"" > "$f"
  ic_watch_full imagecache1
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 created"
  timed op ic_wait_op imagecache1 ImageCacheCreate Succeeded 120
  log "create: Succeeded in ${op}s"
  assert_eq "$PULLED" "$(ic_json imagecache1 '{.status.message}')"
  assert_eq "" "$(ic_json imagecache1 '{.status.failures}')" "no failures"
  ic_seen_full imagecache1 "Processing/ImageCacheCreate/Images are being pulled on to the nodes. Please view the status after some time" ||
    fail "create: no Processing status in upstream's words: $(cat "$E2E_LOG.watchfull.imagecache1")"
  expect_seed_placement "${img[0]} ${img[1]}" "${img[2]} ${img[3]}"
  assert_contains "$(kns get imagecaches)" "imagecache1   Succeeded   $PULLED"
  wait_until 30 jobs_gone imagecache1 || fail "Jobs left behind: $(jobs_of imagecache1)"

  # modify: remove img1 from the first list with kubectl apply
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "\"${img[2]}\", \"${img[3]}\"" > "$f"
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 configured"
  timed op ic_wait_op imagecache1 ImageCacheUpdate Succeeded 120
  log "update: Succeeded in ${op}s"
  assert_eq "$PULLED" "$(ic_json imagecache1 '{.status.message}')"
  ic_seen_full imagecache1 "Processing/ImageCacheUpdate/Image cache is being updated. Please view the status after some time" ||
    fail "update: no Processing status in upstream's words"
  for n in $KF_NODES; do images_not_on "$n" "${img[1]}"; done
  expect_seed_placement "${img[0]}" "${img[2]} ${img[3]}"

  # purge by annotation: every listed image leaves every matching node
  kns annotate imagecache imagecache1 kubefledged.io/purge-imagecache= >/dev/null
  timed op ic_wait_op imagecache1 ImageCachePurge Succeeded 120
  log "purge: Succeeded in ${op}s"
  assert_eq "$DELETED" "$(ic_json imagecache1 '{.status.message}')"
  ic_seen_full imagecache1 "Processing/ImageCachePurge/Image cache is being purged. Please view the status after some time" ||
    fail "purge: no Processing status in upstream's words"
  wait_until 20 no_annotation imagecache1 kubefledged.io/purge-imagecache || fail "purge annotation not removed"
  for n in $KF_NODES; do images_not_on "$n" "${img[@]}"; done
  assert_contains "$(ic_events imagecache1)" "Normal ImageCachePurge $DELETED"

  # refresh by annotation: the purged images come back on the right nodes (a purged cache is left alone by
  # the periodic refresh, but an on-demand one pulls again)
  kns annotate imagecache imagecache1 kubefledged.io/refresh-imagecache= >/dev/null
  timed op ic_wait_op imagecache1 ImageCacheRefresh Succeeded 120
  log "refresh: Succeeded in ${op}s"
  assert_eq "$PULLED" "$(ic_json imagecache1 '{.status.message}')"
  ic_seen_full imagecache1 "Processing/ImageCacheRefresh/Image cache is being refreshed. Please view the status after some time" ||
    fail "refresh: no Processing status in upstream's words"
  wait_until 20 no_annotation imagecache1 kubefledged.io/refresh-imagecache || fail "refresh annotation not removed"
  expect_seed_placement "${img[0]}" "${img[2]} ${img[3]}"
  for n in $KF_NODES; do images_not_on "$n" "${img[1]}"; done
  wait_until 30 jobs_gone imagecache1 || fail "Jobs left behind: $(jobs_of imagecache1)"
}

# Every webhook rule through the API server: upstream's four with their exact messages, ours naming the
# field and the value; rejected edits leave the object as it was; a valid edit goes through.
test_yaml_webhook_rules() {
  local img f out gen bad big
  dep_up
  mapfile -t img < <(gen_images "$(unique kfe2e/rules)" 4)
  f=$E2E_LOG.rules.yaml
  ic_yaml ic1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\"" "\"${img[2]}\"" > "$f"
  assert_contains "$(try_apply "$f")" "created"
  ic_wait_op ic1 ImageCacheCreate Succeeded 120
  gen=$(ic_json ic1 '{.metadata.generation}')

  # UPDATE: upstream's rules
  ic_yaml ic1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\"" "" | sed '/^  - images: \[\]$/,$d' > "$f.nolist" # list 2 gone
  out=$(try_apply "$f.nolist") && fail "removing a whole list was accepted"
  denied "$out" "Mismatch in no. of image lists"
  { cat "$f"; printf '  - images: ["%s"]\n' "${img[3]}"; } > "$f.extralist"
  out=$(try_apply "$f.extralist") && fail "adding a list was accepted"
  denied "$out" "Mismatch in no. of image lists"
  sed 's/tier: backend/tier: frontend/' "$f" > "$f.selector"
  out=$(try_apply "$f.selector") && fail "changing a nodeSelector was accepted"
  denied "$out" "Mismatch in node selector"
  ic_yaml ic1 "$E2E_NS" "" "\"${img[2]}\"" > "$f.empty"
  out=$(try_apply "$f.empty") && fail "emptying a list was accepted"
  denied "$out" "No images specified within image list"
  ic_yaml ic1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\", \"${img[0]}\"" "\"${img[2]}\"" > "$f.dup"
  out=$(try_apply "$f.dup") && fail "a duplicate was accepted"
  denied "$out" "Duplicate image names within image list: ${img[0]}"
  # UPDATE: ours (an image the edit adds is judged)
  ic_yaml ic1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\", \"nginx;reboot\"" "\"${img[2]}\"" > "$f.bad"
  out=$(try_apply "$f.bad") && fail "a bad reference was accepted in an edit"
  denied "$out" 'spec.cacheSpec[0].images[2]: invalid image reference "nginx;reboot": invalid character '"';'"' in repository name'
  assert_eq "$gen" "$(ic_json ic1 '{.metadata.generation}')" "a rejected edit changed the object"

  # CREATE: upstream's rules and ours, each with its message
  _create_denied() { # IMAGES_JSON NODESELECTOR_JSON EXTRA MSG
    local name; name=$(unique bad)
    cat > "$f.$name" <<EOF
apiVersion: kubefledged.io/v1alpha2
kind: ImageCache
metadata: {name: $name, namespace: $E2E_NS}
spec:
  cacheSpec:
  - images: $1
    nodeSelector: $2
$3
EOF
    local o; o=$(try_apply "$f.$name") && fail "accepted: $1 $2 $3"
    denied "$o" "$4"
    ! kns get imagecache "$name" >/dev/null 2>&1 || fail "$name exists"
  }
  _create_denied '[]' '{}' '' "No images specified within image list"
  _create_denied '["a:1", "b:1", "a:1"]' '{}' '' "Duplicate image names within image list: a:1"
  _create_denied '["nginx;reboot"]' '{}' '' 'spec.cacheSpec[0].images[0]: invalid image reference "nginx;reboot": invalid character '"';'"' in repository name'
  _create_denied '["busybox latest"]' '{}' '' 'spec.cacheSpec[0].images[0]: invalid image reference "busybox latest": image reference contains a space at position 7'
  _create_denied '[""]' '{}' '' 'spec.cacheSpec[0].images[0]: invalid image reference "": image reference is empty'
  _create_denied '["Busybox:1"]' '{}' '' 'spec.cacheSpec[0].images[0]: invalid image reference "Busybox:1": repository name must be lowercase'
  _create_denied '["busybox@sha256:abc"]' '{}' '' 'spec.cacheSpec[0].images[0]: invalid image reference "busybox@sha256:abc": invalid digest: sha256 needs 64 hex characters, got 3'
  _create_denied '["a:1"]' '{"bad key": "x"}' '' 'spec.cacheSpec[0].nodeSelector: invalid label key "bad key": name part must consist of alphanumeric characters'
  _create_denied '["a:1"]' '{"tier": "-bad-"}' '' 'spec.cacheSpec[0].nodeSelector["tier"]: invalid label value "-bad-": must be empty or consist of alphanumeric characters'
  _create_denied '["a:1"]' '{}' '  imagePullSecrets: [{name: My_Secret}]' 'spec.imagePullSecrets[0].name: invalid Secret name "My_Secret": must be lowercase'
  big=$(seq -f '"r/i%g:1"' 1 5001 | paste -sd, -)
  _create_denied "[$big]" '{}' '' 'spec.cacheSpec[0].images: 5001 images, the limit is 5000 per list'

  # a valid edit (add an image to a list) is accepted and carried out
  ic_yaml ic1 "$E2E_NS" "\"${img[0]}\", \"${img[1]}\", \"${img[3]}\"" "\"${img[2]}\"" > "$f.ok"
  assert_contains "$(try_apply "$f.ok")" "imagecache.kubefledged.io/ic1 configured"
  ic_wait_op ic1 ImageCacheUpdate Succeeded 120
  for n in $KF_NODES; do images_on "$n" "${img[3]}"; done
  bad=$(kubectl -n "$DEP_NS" logs -l "$DEP_WH_SEL" --tail=-1 | grep -c 'crash\|SIGSEGV\|abort' || true)
  assert_eq 0 "$bad" "webhook logs mention a crash"
  assert_eq "0 0" "$(kubectl -n "$DEP_NS" get pods -l "$DEP_WH_SEL" -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}' | xargs)" \
    "webhook restarts"
}

# upstream #76/#113/#200: after a re-apply the webhook must still be trusted. Also: two replicas sharing one
# CA, a restarted webhook keeps the CA, a manifest with a stale caBundle (upstream's) is repaired, least
# privilege holds, and make remove-kubefledged leaves nothing behind.
test_yaml_reapply_restart_rbac_remove() {
  local img ca ca2 out pods fp t wh ct n before
  dep_up
  img=$(gen_images "$(unique kfe2e/reapply)" 1)
  ca=$(ca_of_secret "$DEP_NS" "$DEP_SECRET")
  if [ -z "$ca" ] || [ "$ca" != "$(ca_of_vwc "$DEP_VWC")" ]; then fail "caBundle not equal to the Secret's CA after deploy"; fi
  assert_eq 2 "$(dep_ready_webhooks)" "webhook replicas"
  # one CA, one serving certificate, served by both replicas (the fingerprint each one logs)
  fp=$(for p in $(kubectl -n "$DEP_NS" get pods -l "$DEP_WH_SEL" -o name); do
         kubectl -n "$DEP_NS" logs "$p" | grep -o 'serving the certificate of Secret [^ ]* (sha256 [0-9a-f.]*' | tail -1 | awk '{print $NF}'
       done | sort -u)
  assert_eq 1 "$(wc -l <<< "$fp")" "replicas serve different certificates: $fp"
  n=$(kubectl -n "$DEP_NS" get pods -l "$DEP_WH_SEL" -o jsonpath='{.items[*].spec.nodeName}' | tr ' ' '\n' | sort -u | wc -l)
  [ "$KF_NODE_COUNT" -lt 2 ] || assert_eq 2 "$n" "the two webhook replicas share a node"
  # non-root, read-only, no capabilities (both Deployments)
  for d in kubefledged-controller kubefledged-webhook-server; do
    assert_eq "65532 true true [\"ALL\"]" "$(kubectl -n "$DEP_NS" get deploy "$d" -o jsonpath='{.spec.template.spec.securityContext.runAsUser} {.spec.template.spec.securityContext.runAsNonRoot} {.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.template.spec.containers[0].securityContext.capabilities.drop}')" "$d securityContext"
  done

  # re-apply: nothing changes, the CA stays, a new cache is accepted with no x509 error
  pods=$(kubectl -n "$DEP_NS" get pods -o name | sort)
  dep_reapply
  assert_eq "$ca" "$(ca_of_secret "$DEP_NS" "$DEP_SECRET")" "the CA changed on re-apply"
  assert_eq "$ca" "$(ca_of_vwc "$DEP_VWC")" "the caBundle changed on re-apply"
  assert_eq "$pods" "$(kubectl -n "$DEP_NS" get pods -o name | sort)" "pods restarted on re-apply"
  out=$(ic_apply after-reapply <<< "[{\"images\": [\"$img\"]}]" 2>&1) || fail "refused after re-apply: $out"
  assert_not_contains "$out" "x509"

  # upstream's manifest carried a caBundle, and every re-apply put it back; simulate that: repaired at once
  kubectl get validatingwebhookconfiguration "$DEP_VWC" -o json |
    jq '.webhooks[0].clientConfig.caBundle = "Zm9vCg==" | del(.metadata.resourceVersion, .metadata.managedFields)' > "$E2E_LOG.stale-vwc.json"
  timed t timeout 30 bash -c "$(declare -f replace_and_wait_repair ca_synced ca_of_secret ca_of_vwc); \
    DEP_NS=$DEP_NS DEP_SECRET=$DEP_SECRET DEP_VWC=$DEP_VWC replace_and_wait_repair '$E2E_LOG.stale-vwc.json'" ||
    fail "the stale caBundle was not repaired within 30 s"
  log "a stale caBundle written over the live one was repaired in ${t}s (kubectl replace included)"
  out=$(ic_apply after-stale <<< "[{\"images\": [\"$img\"]}]" 2>&1) || fail "refused after the stale caBundle: $out"

  # a webhook pod deleted: the other replica keeps admission up at once; the new pod reuses the CA
  before=$(kubectl -n "$DEP_NS" get pods -l "$DEP_WH_SEL" -o name)   # (no `| head`: SIGPIPE under pipefail)
  before=${before%%$'\n'*}
  kubectl -n "$DEP_NS" delete "$before" --wait=false >/dev/null
  out=$(ic_apply during-restart <<< "[{\"images\": [\"$img\"]}]" 2>&1) || fail "refused while one replica restarts: $out"
  timed t wait_until 90 dep_webhooks_ready_are 2 || fail "the webhook did not come back to 2 ready replicas"
  log "webhook replica replaced, 2 ready again after ${t}s"
  # both pods deleted at once (upstream: a new CA at every start, the last writer wins)
  kubectl -n "$DEP_NS" delete pods -l "$DEP_WH_SEL" --wait=false >/dev/null
  wait_until 30 dep_webhooks_ready_are 0 || true
  timed t wait_until 90 dep_webhooks_ready_are 2 || fail "the webhook did not come back after deleting both pods"
  log "both webhook pods replaced, ready after ${t}s"
  ca2=$(ca_of_secret "$DEP_NS" "$DEP_SECRET")
  assert_eq "$ca" "$ca2" "restarted webhook pods minted a new CA"
  out=$(ic_apply after-restart <<< "[{\"images\": [\"$img\"]}]" 2>&1) || fail "refused after the webhook restarted: $out"
  assert_not_contains "$out" "x509"
  ic_wait_op after-restart ImageCacheCreate Succeeded 120

  # least privilege, asked of the API server itself
  wh=system:serviceaccount:$DEP_NS:kubefledged-webhook-server
  ct=system:serviceaccount:$DEP_NS:kubefledged-controller
  _can() { kubectl auth can-i "$@" 2>/dev/null; }
  _can patch "validatingwebhookconfigurations/$DEP_VWC" --as="$wh" >/dev/null || fail "webhook cannot patch its VWC"
  ! _can patch validatingwebhookconfigurations/some-other --as="$wh" >/dev/null || fail "webhook may patch any VWC"
  ! _can create validatingwebhookconfigurations --as="$wh" >/dev/null || fail "webhook may create VWCs"
  ! _can get secrets -n kube-system --as="$wh" >/dev/null || fail "webhook may read other namespaces' Secrets"
  ! _can get secrets/other -n "$DEP_NS" --as="$wh" >/dev/null || fail "webhook may read other Secrets"
  ! _can create secrets -n "$DEP_NS" --as="$wh" >/dev/null || fail "webhook may create Secrets (the manifests ship its Secret)"
  _can update "secrets/$DEP_SECRET" -n "$DEP_NS" --as="$wh" >/dev/null || fail "webhook cannot update its Secret"
  # the NetworkPolicy admits TCP to the webhook port and nothing else
  assert_eq '[[{"ports":[{"port":"webhook-server","protocol":"TCP"}]}],["Ingress"]]' \
    "$(kubectl -n "$DEP_NS" get networkpolicy kubefledged-webhook-server -o json | jq -c '[.spec.ingress, .spec.policyTypes]')" \
    "webhook NetworkPolicy"
  # list/watch of one object by field selector is authorized by resourceNames on this API server (the informers)
  kubectl get validatingwebhookconfigurations --field-selector "metadata.name=$DEP_VWC" --as="$wh" -o name >/dev/null ||
    fail "field-selected list of the VWC refused"
  ! kubectl get validatingwebhookconfigurations --as="$wh" -o name >/dev/null 2>&1 || fail "webhook may list every VWC"
  timeout 10 kubectl get validatingwebhookconfigurations --field-selector "metadata.name=$DEP_VWC" --as="$wh" \
    --watch --request-timeout=2s -o name >/dev/null || fail "field-selected watch of the VWC refused"
  kubectl -n "$DEP_NS" get secrets --field-selector "metadata.name=$DEP_SECRET" --as="$wh" -o name >/dev/null ||
    fail "field-selected list of the Secret refused"
  ! kubectl -n "$DEP_NS" get secrets --as="$wh" -o name >/dev/null 2>&1 || fail "webhook may list every Secret"
  _can patch imagecaches.kubefledged.io --subresource=status --as="$ct" >/dev/null || fail "controller cannot patch status"
  _can update imagecaches.kubefledged.io --subresource=finalizers --as="$ct" >/dev/null || fail "controller cannot update finalizers"
  ! _can update imagecaches.kubefledged.io --as="$ct" >/dev/null || fail "controller may update ImageCaches (patch is enough)"
  ! _can get secrets --all-namespaces --as="$ct" >/dev/null || fail "controller may read Secrets"
  ! _can update nodes --as="$ct" >/dev/null || fail "controller may update nodes"
  ! _can update leases.coordination.k8s.io/other -n "$DEP_NS" --as="$ct" >/dev/null || fail "controller may update other Leases"
  ! _can create leases.coordination.k8s.io -n default --as="$ct" >/dev/null || fail "controller may create Leases elsewhere"
  [ -z "$(kubectl get clusterrolebindings -l app=kubefledged -o json | jq -r '.items[].subjects[] | select(.kind == "Group") | .name')" ] ||
    fail "a ClusterRoleBinding names a Group (upstream bound system:nodes)"

  # make remove-kubefledged: nothing left; images stay on the nodes
  timed t _make remove-kubefledged >> "$E2E_LOG.deploy" 2>&1 || fail "make remove-kubefledged failed"
  log "make remove-kubefledged: ${t}s"
  ! kubectl get namespace "$DEP_NS" >/dev/null 2>&1 || fail "namespace $DEP_NS left"
  ! kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1 || fail "CRD left"
  assert_eq "" "$(kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations -l app=kubefledged -o name)" \
    "cluster-scoped objects left"
  assert_eq "" "$(kns get jobs -o name)" "Jobs left in $E2E_NS"
  images_on "$NODE1_NAME" "$img"
}

# The controller's status writes go through the status subresource, which the webhook never sees: with every
# webhook replica gone (failurePolicy Fail, so any ImageCache create or update is refused), a node that gets
# the cache's label is still cached and the whole operation's status (Processing, then Succeeded) is
# recorded. Annotating a cache would not do as a trigger: that is an UPDATE, refused like any edit.
test_yaml_status_recorded_while_webhook_down() {
  local img label out t
  dep_up
  img=$(gen_images "$(unique kfe2e/whdown)" 1)
  label=$(unique kfe2e)
  out=$(ic_apply ic1 <<< "[{\"images\": [\"$img\"], \"nodeSelector\": {\"kubefledged.io/e2e\": \"$label\"}}]" 2>&1) ||
    fail "create refused: $out"
  ic_watch_full ic1
  ic_wait_op ic1 ImageCacheCreate NoImagesPulledOrDeleted 60
  assert_eq "No images were pulled or deleted because nodeSelector specified did not match any nodes" \
    "$(ic_json ic1 '{.status.message}')"

  kubectl -n "$DEP_NS" scale deployment kubefledged-webhook-server --replicas=0 >/dev/null
  defer kubectl -n "$DEP_NS" scale deployment kubefledged-webhook-server --replicas=2
  wait_until 60 dep_webhooks_ready_are 0 || fail "webhook pods still ready"
  wait_until 30 bash -c "[ -z \"\$(kubectl -n $DEP_NS get endpoints kubefledged-webhook-server -o jsonpath='{.subsets[*].addresses[*].ip}')\" ]" ||
    fail "webhook endpoints still listed"
  # the webhook is really down: an edit is refused
  out=$(kns annotate imagecache ic1 kubefledged.io/e2e-touch=1 2>&1) && fail "an update went through with no webhook"
  assert_contains "$out" 'failed calling webhook "validate-image-cache.kubefledged.io"'
  log "with the webhook down, an update is refused: ${out:0:160}"

  kubectl label node "$NODE2_NAME" "kubefledged.io/e2e=$label" >/dev/null
  defer kubectl label node "$NODE2_NAME" kubefledged.io/e2e-
  timed t ic_wait_op ic1 ImageCacheRefresh Succeeded 120
  log "status Succeeded/ImageCacheRefresh recorded with no webhook, ${t}s after labelling $NODE2_NAME"
  ic_seen_full ic1 "Processing/ImageCacheRefresh/Image cache is being refreshed. Please view the status after some time" ||
    fail "Processing was not recorded while the webhook was down"
  images_on "$NODE2_NAME" "$img"
  images_not_on "$NODE1_NAME" "$img"
  out=$(kubectl -n "$DEP_NS" logs deploy/kubefledged-controller --tail=-1 | grep 'status write failed' || true)
  assert_eq "" "$out" "controller status writes failed"

  # back up: same CA, admission works again
  kubectl -n "$DEP_NS" scale deployment kubefledged-webhook-server --replicas=2 >/dev/null
  wait_until 90 dep_webhooks_ready_are 2 || fail "the webhook did not come back"
  wait_until 10 ca_synced "$DEP_NS" "$DEP_SECRET" "$DEP_VWC" || fail "caBundle out of sync after the webhook came back"
  kns annotate imagecache ic1 kubefledged.io/e2e-touch=1 >/dev/null || fail "updates still refused after the webhook came back"
}
