# End-to-end, in cluster: kube-fledged installed, changed and removed by its operator, as a user does it:
# make deploy-using-operator (the operator from deploy/kubefledged-operator/, then the sample KubeFledged with
# the image make image pushed), kubectl edits of the KubeFledged, make remove-kubefledged-and-operator. The
# operator runs in cluster from the same image (`kubefledged operator`) with the RBAC of the manifests. See
# 40-deploy-lib.sh: not to be run beside other kube-fledged cases.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"
. "$E2E_ROOT/tests/e2e/cases/40-deploy-lib.sh"

OP_NS=kube-fledged
OP_KF=kube-fledged        # the sample KubeFledged's name, so the objects are named as upstream's operator named them
OP_WH=kube-fledged-webhook-server
OP_CTL=kube-fledged-controller
OP_SEL_WH=app.kubernetes.io/instance=$OP_KF,app.kubernetes.io/part-of=$OP_KF-webhook-server
OP_SEL_CTL=app.kubernetes.io/instance=$OP_KF,app.kubernetes.io/part-of=$OP_KF-controller
OP_OWNER_LABEL=charts.helm.kubefledged.io/owner-uid

op_installed() {
  kubectl get crd kubefledgeds.charts.helm.kubefledged.io >/dev/null 2>&1 || kubectl get namespace "$OP_NS" >/dev/null 2>&1 ||
    kubectl get crd imagecaches.kubefledged.io >/dev/null 2>&1
}
op_down() {
  op_installed || return 0
  local t
  timed t _make remove-kubefledged-and-operator >> "$E2E_LOG.operator" 2>&1 ||
    { tail -20 "$E2E_LOG.operator"; fail "make remove-kubefledged-and-operator failed"; }
  log "make remove-kubefledged-and-operator: ${t}s"
}
kf_get() { kubectl -n "$OP_NS" get kubefledged "$OP_KF" -o jsonpath="$1"; }
kf_cond() { kf_get "{.status.conditions[?(@.type==\"$1\")].$2}"; }      # TYPE FIELD
# the KubeFledged's status speaks of its current generation and says Deployed and Ready
kf_settled() {
  [ "$(kf_get '{.status.observedGeneration}')" = "$(kf_get '{.metadata.generation}')" ] &&
    [ "$(kf_cond Deployed status)/$(kf_cond Ready status)" = True/True ]
}
kf_patch() { kubectl -n "$OP_NS" patch kubefledged "$OP_KF" --type=merge -p "$1" >/dev/null; }
# the objects the KubeFledged's current spec renders (kubefledged operator render, the same code the operator
# runs; operator_chart_parity keeps it equal to helm template), and the ones its status says are applied
rendered_objects() {
  kubectl -n "$OP_NS" get kubefledged "$OP_KF" -o json | "$KF_BIN" operator render --include-crds -f - |
    jq -r '.items[] | "\(.kind) \(.metadata.namespace // "-") \(.metadata.name)"' | sort
}
status_objects() { kf_get '{.status.objects}' | jq -r '.[] | "\(.kind) \(.namespace // "-") \(.name)"' | sort; }
status_objects_exist() {
  local kind ns name
  while read -r kind ns name; do
    if [ "$ns" = - ]; then kubectl get "$kind" "$name"; else kubectl -n "$ns" get "$kind" "$name"; fi >/dev/null ||
      fail "$kind $ns/$name, in the status, does not exist"
  done <<< "$(status_objects)"
}
replicas_are() { [ "$(kubectl -n "$OP_NS" get deployment "$2" -o jsonpath='{.spec.replicas}')" = "$1" ]; } # N DEPLOYMENT
gone() { ! kubectl get "$@" >/dev/null 2>&1; }
# cluster-scoped objects of kube-fledged or its operator, by label or name
cluster_leftovers() {
  { kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations -o name |
      grep -i fledged || true
    kubectl get clusterroles,clusterrolebindings,validatingwebhookconfigurations -l "$OP_OWNER_LABEL" -o name
    kubectl get crd -o name | grep -i fledged || true
    kubectl get rolebindings -A -l app=kubefledged -o name; } | sort -u
}

test_operator_install_change_remove() {
  local t img f gen out n uid rb
  dep_image_present || fail "$KF_IMAGE is not in the registry: run make image"
  [ -z "$(kubectl get deployments -A -o json | jq -r '.items[] | select(.metadata.name | test("^(kubefledged|kube-fledged)-(controller|operator)$")) | .metadata.name')" ] ||
    fail "kube-fledged is already deployed in this cluster (another test's leftover or someone's install)"
  defer op_down

  # --- install: the operator, then the KubeFledged; the target waits until the operator reports it Ready
  timed t _make deploy-using-operator > "$E2E_LOG.operator" 2>&1 || { tail -40 "$E2E_LOG.operator"; fail "make deploy-using-operator failed"; }
  log "make deploy-using-operator: ${t}s (operator rolled out, KubeFledged Ready)"
  kf_settled || fail "KubeFledged not settled: $(kf_get '{.status}')"
  assert_eq 1 "$(kf_get '{.status.observedGeneration}')" "observedGeneration"
  n=$(kf_get '{.status.objects}' | jq length)
  log "status: Deployed ($(kf_cond Deployed message)), Ready ($(kf_cond Ready message)), $n objects"
  assert_eq "$(rendered_objects)" "$(status_objects)" "the objects applied are not those the spec renders"
  status_objects_exist
  uid=$(kf_get '{.metadata.uid}')
  assert_eq "charts.helm.kubefledged.io/uninstall" "$(kf_get '{.metadata.finalizers[0]}')" "finalizer"
  # the chart's objects, named as upstream's operator named them, owned by the KubeFledged
  assert_eq "KubeFledged/$OP_KF/true" "$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')" "owner of the controller Deployment"
  assert_eq "$uid" "$(kubectl get clusterrole "$OP_CTL" -o jsonpath="{.metadata.labels.charts\.helm\.kubefledged\.io/owner-uid}")" "owner label of a ClusterRole"
  assert_eq "" "$(kubectl get clusterrole "$OP_CTL" -o jsonpath='{.metadata.ownerReferences}')" "a cluster-scoped object with a namespaced owner"
  assert_eq kubefledged-operator "$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.metadata.labels.app\.kubernetes\.io/managed-by}')"
  assert_contains "$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.spec.template.spec.containers[0].args}')" "--mode=agent"
  # mode agent: the agents run as the DaemonSet, one per node; the webhook's CA is in place
  assert_eq "$KF_NODE_COUNT" "$(kubectl -n "$OP_NS" get daemonset kube-fledged-agent -o jsonpath='{.status.numberAvailable}')" "agents available"
  ca_synced "$OP_NS" "$OP_WH-cert" "$OP_WH" || fail "caBundle not set from the webhook's Secret"
  assert_eq 2 "$(dep_ready_webhooks "$OP_NS" "$OP_SEL_WH")" "ready webhook replicas"
  assert_eq "$KF_IMAGE" "$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.spec.template.spec.containers[0].image}')" "controller image"

  # the operator's rights: what it grants (it must hold it), not more (asked of the API server)
  local op=system:serviceaccount:$OP_NS:kubefledged-operator
  _can() { kubectl auth can-i "$@" --as="$op" >/dev/null 2>&1; }
  _can create clusterroles || fail "the operator cannot create ClusterRoles"
  _can patch deployments -n "$OP_NS" || fail "the operator cannot patch Deployments in $OP_NS"
  ! _can create deployments -n kube-system || fail "the operator may create Deployments in kube-system"
  ! _can create pods -n "$OP_NS" || fail "the operator may create pods"
  ! _can list secrets -n kube-system || fail "the operator may list Secrets in kube-system"
  ! _can delete nodes || fail "the operator may delete nodes"
  ! _can escalate clusterroles || fail "the operator may escalate"
  ! _can delete customresourcedefinitions/imagecaches.kubefledged.io || fail "the operator may delete the ImageCache CRD"

  # --- the walkthrough's create step, through the webhook and the agents
  mapfile -t img < <(gen_images "$(unique kfe2e/op)" 3)
  f=$E2E_LOG.imagecache1.yaml
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "\"${img[1]}\", \"${img[2]}\"" > "$f"
  assert_contains "$(try_apply "$f")" "imagecache.kubefledged.io/imagecache1 created"
  timed t ic_wait_op imagecache1 ImageCacheCreate Succeeded 120
  log "create: Succeeded in ${t}s"
  assert_eq "All requested images pulled succesfully to respective nodes" "$(ic_json imagecache1 '{.status.message}')"
  expect_seed_placement "${img[0]}" "${img[1]} ${img[2]}"
  assert_eq "$KF_NODE_COUNT" "$(kubectl get nodeimagecaches -o name | wc -l)" "NodeImageCaches (one per node)"
  ic_yaml imagecache1 "$E2E_NS" "\"${img[0]}\"" "" | sed '/^  - images: \[\]$/,$d' > "$f.nolist"
  out=$(try_apply "$f.nolist") && fail "removing a whole list was accepted"
  denied "$out" "Mismatch in no. of image lists"

  # --- a value changes: the Deployment follows, the status speaks of the new generation
  kf_patch '{"spec":{"webhookServerReplicaCount":3,"controllerReplicaCount":2}}'
  timed t wait_until 120 dep_webhooks_ready_are 3 "$OP_NS" "$OP_SEL_WH" || fail "the webhook did not scale to 3"
  replicas_are 2 "$OP_CTL" || fail "controller replicas not 2"
  wait_until 60 kf_settled || fail "KubeFledged not settled after the change: $(kf_get '{.status.conditions}')"
  assert_eq 2 "$(kf_get '{.status.observedGeneration}')" "observedGeneration after the change"
  wait_until 60 dep_webhooks_ready_are 2 "$OP_NS" "$OP_SEL_CTL" || fail "the second controller replica is not ready"
  log "webhookServerReplicaCount 2 -> 3 and controllerReplicaCount 1 -> 2: 3 webhook replicas ready after ${t}s, Ready again"
  ca_synced "$OP_NS" "$OP_WH-cert" "$OP_WH" || fail "caBundle lost on the change"

  # --- a wrong value the schema cannot see: refused with the value named, nothing changed
  gen=$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.metadata.generation}')
  kf_patch '{"spec":{"controller":{"priorityClassName":"a: b"}}}'
  wait_until 30 bash -c "[ \"\$(kubectl -n $OP_NS get kubefledged $OP_KF -o jsonpath='{.status.conditions[?(@.type==\"Deployed\")].reason}')\" = RenderFailed ]" ||
    fail "no RenderFailed: $(kf_get '{.status.conditions}')"
  assert_contains "$(kf_cond Deployed message)" 'controller.priorityClassName: "a: b" does not read back as one YAML value'
  assert_eq "$gen" "$(kubectl -n "$OP_NS" get deployment "$OP_CTL" -o jsonpath='{.metadata.generation}')" "the Deployment changed on a bad value"
  assert_contains "$(kubectl -n "$OP_NS" get events --field-selector involvedObject.kind=KubeFledged -o jsonpath='{.items[*].reason}')" RenderFailed
  log "a bad value is reported: $(kf_cond Deployed message)"
  # and one the schema sees is refused by the API server itself, naming the field
  out=$(kubectl -n "$OP_NS" patch kubefledged "$OP_KF" --type=merge -p '{"spec":{"mode":"both"}}' 2>&1) && fail "mode: both was accepted"
  assert_contains "$out" 'spec.mode: Unsupported value: "both"'
  kf_patch '{"spec":{"controller":{"priorityClassName":null}}}'
  wait_until 60 kf_settled || fail "not settled after the bad value was taken back"

  # --- drift: an object deleted by hand comes back at the next full reconcile (--reconcile-period=1m)
  kubectl -n "$OP_NS" delete service "$OP_WH" >/dev/null
  timed t wait_until 75 kubectl -n "$OP_NS" get service "$OP_WH" || fail "the deleted Service did not come back within 75 s"
  log "a Service deleted by hand was applied again after ${t}s"

  # --- the webhook off: its objects go (the configuration first), the rest stays
  kf_patch '{"spec":{"webhookServer":{"enable":false}}}'
  timed t wait_until 60 gone validatingwebhookconfiguration "$OP_WH" || fail "the ValidatingWebhookConfiguration stayed"
  wait_until 60 kf_settled || fail "not settled with the webhook off"
  for o in "deployment/$OP_WH" "service/$OP_WH" "secret/$OP_WH-cert" "serviceaccount/$OP_WH" "role/$OP_WH" "rolebinding/$OP_WH"; do
    gone -n "$OP_NS" "$o" || fail "$o stayed with the webhook off"
  done
  gone clusterrole "$OP_WH" || fail "ClusterRole $OP_WH stayed"
  gone clusterrolebinding "$OP_WH" || fail "ClusterRoleBinding $OP_WH stayed"
  kubectl -n "$OP_NS" get "deployment/$OP_CTL" daemonset/kube-fledged-agent >/dev/null || fail "the controller or the agents went too"
  assert_eq "$(rendered_objects)" "$(status_objects)" "the objects applied with the webhook off"
  assert_not_contains "$(status_objects)" "webhook-server"
  status_objects_exist
  assert_contains "$(kubectl -n "$OP_NS" get events --field-selector involvedObject.kind=KubeFledged,reason=Pruned -o jsonpath='{.items[*].message}')" "ValidatingWebhookConfiguration $OP_WH"
  log "webhookServer.enable=false: the webhook's 9 objects deleted in ${t}s"
  # no webhook: the edit it refused above goes through now, and the controller carries it out
  assert_contains "$(try_apply "$f.nolist")" "imagecache.kubefledged.io/imagecache1 configured"
  ic_wait_op imagecache1 ImageCacheUpdate Succeeded 120

  # --- remove: nothing left, namespaced or cluster-scoped, no KubeFledged, no CRD
  timed t _make remove-kubefledged-and-operator >> "$E2E_LOG.operator" 2>&1 ||
    { tail -30 "$E2E_LOG.operator"; fail "make remove-kubefledged-and-operator failed"; }
  log "make remove-kubefledged-and-operator: ${t}s"
  assert_contains "$(cat "$E2E_LOG.operator")" "deleting every KubeFledged; the operator deletes what each installed"
  assert_not_contains "$(cat "$E2E_LOG.operator")" "still there: deleting the objects labelled" "the operator's finalizer did not do the work"
  gone namespace "$OP_NS" || fail "namespace $OP_NS left"
  assert_eq "" "$(cluster_leftovers)" "cluster-scoped objects left"
  gone crd kubefledgeds.charts.helm.kubefledged.io || fail "the KubeFledged CRD is left"
  assert_eq "" "$(kubectl get pods -A -l app.kubernetes.io/managed-by=kubefledged-operator -o name)" "pods left"
  rb=$(kubectl get rolebindings,roles,serviceaccounts,secrets,services,deployments,daemonsets,leases -A -l "$OP_OWNER_LABEL=$uid" -o name)
  assert_eq "" "$rb" "objects of the KubeFledged left"
  images_on "$NODE1_NAME" "${img[0]}"
  log "after the removal: nothing of kube-fledged or its operator is left; cached images stay on the nodes"
}
