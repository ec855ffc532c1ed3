# End-to-end: the controller under failure (issue 10, items 2 to 13), on the real local cluster. Each test
# reproduces a defect of the earlier controller (or of upstream) and checks that it is gone: upstream's CRD
# (no status subresource, a schema that prunes our fields), a Processing status with no operation behind it,
# Job deletions refused, edits made while an operation was interrupted, references that do not parse, both
# annotations at once, nodes that join or leave mid-operation, deletes that fail, images another cache
# still wants, and delete Jobs kept out of tenant namespaces.
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"

# upstream v0.10's CRD: no subresources, no printer columns, and upstream's status schema (spec §1.5), which
# prunes every status field of ours.
upstream_crd() {
  kubectl create --dry-run=client -o json -f "$E2E_ROOT/deploy/kubefledged-crd.yaml" | jq '
    del(.spec.versions[0].subresources, .spec.versions[0].additionalPrinterColumns) |
    .spec.versions[0].schema.openAPIV3Schema.properties.status = {
      type: "object", required: ["message", "reason", "startTime", "status"],
      properties: {
        status: {type: "string"}, reason: {type: "string"}, message: {type: "string"},
        startTime: {type: "string", format: "date-time"}, completionTime: {type: "string", format: "date-time"},
        failures: {type: "object", additionalProperties: {type: "array", items: {type: "object",
          required: ["message", "node", "reason"],
          properties: {node: {type: "string"}, reason: {type: "string"}, message: {type: "string"}}}}}}}' |
    kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Established --timeout=30s crd/imagecaches.kubefledged.io >/dev/null
}

_reason_status_is() { [ "$(ic_json "$1" '{.status.reason}/{.status.status}')" = "$2" ]; }  # NAME REASON/STATUS
_no_annotation() { [ -z "$(ic_json "$1" "{.metadata.annotations.kubefledged\.io/$2}")" ] &&
  ! kns get imagecache "$1" -o json | jq -e --arg a "kubefledged.io/$2" '.metadata.annotations // {} | has($a)' >/dev/null; }
_status_patches() { grep -c "PATCH .*/imagecaches/$1" "$E2E_LOG.controller" || true; }

# Item 2: on upstream's CRD the status used to be written in a 1 ms loop and edits and refreshes never ran.
test_upstream_crd_no_status_loop_edits_and_refreshes_run() {
  local img n1 n2 n
  mapfile -t img < <(gen_images "$(unique kfe2e/upcrd)" 2)
  upstream_crd
  defer kf_crd_ensure
  KF_KEEP_CRD=1 kf_controller_start -v=6
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\"]}]"
  wait_until 90 _reason_status_is ic1 ImageCacheCreate/Succeeded || fail "create never ended: $(ic_status ic1)"
  [ -n "$(ic_json ic1 '{.metadata.annotations.kubefledged\.io/status}')" ] || fail "our status fields were not kept aside"
  # no loop: nothing is written while nothing happens
  sleep 2; n1=$(_status_patches ic1); sleep 5; n2=$(_status_patches ic1)
  assert_eq "$n1" "$n2" "status writes while idle (a loop)"
  # an edit is applied: img1 added, img0 removed
  ic_apply ic1 <<< "[{\"images\": [\"${img[1]}\"]}]"
  wait_until 90 _reason_status_is ic1 ImageCacheUpdate/Succeeded || fail "the edit never ran: $(ic_status ic1)"
  for n in $KF_NODES; do expect_images "$n" "${img[1]}"; expect_no_images "$n" "${img[0]}"; done
  # a refresh runs and its annotation goes
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  wait_until 60 _no_annotation ic1 refresh-imagecache || fail "refresh annotation never removed"
  assert_eq "ImageCacheRefresh/Succeeded" "$(ic_json ic1 '{.status.reason}/{.status.status}')"
  # the CRD upgraded later: the controller notices and writes through the status subresource again
  kf_crd_ensure
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  wait_until 60 _no_annotation ic1 refresh-imagecache || fail "refresh annotation never removed after the upgrade"
  wait_until 30 _ic_op_done ic1 ImageCacheRefresh Succeeded || fail "no conditions after the CRD upgrade: $(kns get ic ic1 -o json | jq -c .status)"
  sleep 2; n1=$(_status_patches ic1); sleep 5; n2=$(_status_patches ic1)
  assert_eq "$n1" "$n2" "status writes while idle after the CRD upgrade"
}

# put_status NAME JQ: replace the cache's status through the status subresource with jq's edit of it
put_status() {
  local obj
  obj=$(kns get imagecache "$1" -o json | jq "$2")
  kubectl replace --raw "/apis/kubefledged.io/v1alpha2/namespaces/$E2E_NS/imagecaches/$1/status" -f - <<< "$obj" >/dev/null
}

# Item 4: a status left Processing with no operation in memory (the reply to the Processing write was lost)
# used to wait forever.
test_processing_without_operation_resumes() {
  local img n
  # (the restart case, where the status is marked Aborted first, is 20-controller's kill test)
  img=$(gen_images "$(unique kfe2e/lost)" 1)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  put_status ic1 '.status.status = "Processing" | .status.reason = "ImageCacheRefresh" | del(.status.completionTime)'
  ic_wait_op ic1 ImageCacheRefresh Succeeded 60
  for n in $KF_NODES; do expect_images "$n" "$img"; done
}

# Item 4: a Job deletion refused (here by an admission webhook that cannot be reached) used to keep the
# cache Processing; now the operation ends and the Job is deleted once deletions work again.
test_failing_job_delete_does_not_hold_the_operation() {
  local img label vwc
  img=$(gen_images "$(unique kfe2e/nodel)" 1)
  label=$(unique deny)
  vwc=kfe2e-$label
  kubectl label namespace "$E2E_NS" "kfe2e-deny=$label" >/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: $vwc}
webhooks:
- name: deny-job-delete.kfe2e.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 2
  clientConfig: {url: "https://127.0.0.1:1/deny"}
  namespaceSelector: {matchLabels: {kfe2e-deny: "$label"}}
  rules: [{operations: ["DELETE"], apiGroups: ["batch"], apiVersions: ["v1"], resources: ["jobs"]}]
EOF
  defer kubectl delete validatingwebhookconfiguration "$vwc" --ignore-not-found
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded 90
  jobs_exist ic1 || fail "the Jobs were deleted although deletions were refused (the test does not test)"
  kubectl delete validatingwebhookconfiguration "$vwc" >/dev/null
  wait_until 60 jobs_gone ic1 || fail "the Jobs were never deleted after deletions worked again: $(jobs_of ic1)"
}

# Item 5: an edit made while an operation was interrupted used to be marked applied without being applied.
test_edit_during_interrupted_refresh_is_applied() {
  local keep gone lat n
  keep=$(gen_images "$(unique kfe2e/keep)" 1)
  gone=$(gen_images "$(unique kfe2e/gone)" 1)
  mapfile -t lat < <(gen_images "$(unique kfe2e/lat)" 6 latest)
  kf_controller_start
  ic_apply ic1 <<EOF
[{"images": ["$keep", "$gone", "${lat[0]}", "${lat[1]}", "${lat[2]}", "${lat[3]}", "${lat[4]}", "${lat[5]}"]}]
EOF
  ic_wait_op ic1 ImageCacheCreate Succeeded 120
  for n in $KF_NODES; do expect_images "$n" "$gone"; done
  # a refresh (the :latest images give it Jobs to run), interrupted
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  wait_until 30 _reason_status_is ic1 ImageCacheRefresh/Processing || fail "no refresh started"
  kf_controller_kill
  ic_apply ic1 <<EOF
[{"images": ["$keep", "${lat[0]}", "${lat[1]}", "${lat[2]}", "${lat[3]}", "${lat[4]}", "${lat[5]}"]}]
EOF
  kf_controller_start
  wait_until 120 _ic_op_done_any ic1 Succeeded || fail "never converged: $(ic_status ic1)"
  for n in $KF_NODES; do expect_images "$n" "$keep"; expect_no_images "$n" "$gone"; done
}
_ic_op_done_any() {  # NAME STATUS: STATUS for the current generation, whatever the operation
  local got r s g o
  got=$(ic_json "$1" '{.status.status}/{.metadata.generation}/{.status.conditions[?(@.type=="Ready")].observedGeneration}')
  IFS=/ read -r s g o <<< "$got"
  [ "$s" = "$2" ] && [ "$g" = "$o" ]
}

# Item 6: one reference that does not parse used to mark the whole cache CacheSpecValidationFailed (nothing
# cached), and the cache could not even be purged.
test_invalid_reference_does_not_block_the_valid_ones() {
  local good n reason
  good=$(gen_images "$(unique kfe2e/valid)" 1)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$good\", \"Not;A/Reference\"]}]"
  ic_wait_op ic1 ImageCacheCreate Failed 90
  for n in $KF_NODES; do
    expect_images "$n" "$good"
    reason=$(kns get imagecache ic1 -o json | jq -r --arg n "$n" '.status.failures["Not;A/Reference"][] | select(.node == $n) | .reason')
    assert_eq InvalidImageName "$reason" "failure of the invalid reference on $n"
  done
  kns annotate imagecache ic1 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op ic1 ImageCachePurge Succeeded 90
  for n in $KF_NODES; do expect_no_images "$n" "$good"; done
}

# Item 7: with both annotations set at once, the refresh used to undo the purge.
test_purge_wins_over_a_refresh_set_with_it() {
  local img n
  img=$(gen_images "$(unique kfe2e/both)" 1)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  kns annotate imagecache ic1 kubefledged.io/purge-imagecache= kubefledged.io/refresh-imagecache= >/dev/null
  ic_wait_op ic1 ImageCachePurge Succeeded 90
  wait_until 30 _no_annotation ic1 refresh-imagecache || fail "refresh annotation left"
  wait_until 30 _no_annotation ic1 purge-imagecache || fail "purge annotation left"
  sleep 8
  assert_eq "Succeeded/ImageCachePurge" "$(ic_status ic1)" "something ran after the purge"
  for n in $KF_NODES; do expect_no_images "$n" "$img"; done
}

# Item 8: a refresh of a node that started matching a list used to overwrite the failures of the others.
test_node_join_keeps_the_failures_of_other_nodes() {
  local good missing key n1 nodes
  good=$(gen_images "$(unique kfe2e/joingood)" 1)
  missing=$REGISTRY/$(unique kfe2e/joinmissing):1
  key=kfe2e-join-$(unique x)
  n1=${KF_NODES%% *}
  kf_controller_start --image-pull-deadline-duration=15s
  ic_apply ic1 <<< "[{\"images\": [\"$missing\"]}, {\"images\": [\"$good\"], \"nodeSelector\": {\"$key\": \"yes\"}}]"
  ic_wait_op ic1 ImageCacheCreate Failed 90
  nodes=$(kns get imagecache ic1 -o json | jq -r --arg i "$missing" '[.status.failures[$i][].node] | sort | join(" ")')
  assert_eq "$(tr ' ' '\n' <<< "$KF_NODES" | sort | xargs)" "$nodes" "failures before the join"
  kubectl label node "$n1" "$key=yes" >/dev/null
  defer kubectl label node "$n1" "$key-"
  wait_until 60 node_has_image "$n1" "$good" || fail "the node that started matching got nothing"
  wait_until 60 _reason_status_is ic1 ImageCacheRefresh/Failed || fail "no node-join refresh: $(ic_status ic1)"
  nodes=$(kns get imagecache ic1 -o json | jq -r --arg i "$missing" '[.status.failures[$i][].node] | sort | join(" ")')
  assert_eq "$(tr ' ' '\n' <<< "$KF_NODES" | sort | xargs)" "$nodes" "failures after the join (the other nodes' were dropped)"
}

# Item 9: appliedSpec recorded intent: an image whose delete failed was forgotten and never deleted.
test_failed_delete_is_retried_by_the_next_refresh() {
  local a b n
  a=$(gen_images "$(unique kfe2e/dela)" 1)
  b=$(gen_images "$(unique kfe2e/delb)" 1)
  # delete Jobs that cannot run: the runtime socket does not exist on the nodes
  kf_controller_start --cri-socket-path=/nonexistent/kfe2e.sock --image-pull-deadline-duration=15s
  ic_apply ic1 <<< "[{\"images\": [\"$a\", \"$b\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  ic_apply ic1 <<< "[{\"images\": [\"$a\"]}]"
  ic_wait_op ic1 ImageCacheUpdate Failed 90
  assert_contains "$(ic_json ic1 '{.status.appliedSpec}')" "$b" "the image whose delete failed is still applied"
  for n in $KF_NODES; do expect_images "$n" "$b"; done
  kf_controller_stop "$KF_CTL_PID"
  kf_controller_start
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  ic_wait_op ic1 ImageCacheRefresh Succeeded 90
  for n in $KF_NODES; do expect_images "$n" "$a"; expect_no_images "$n" "$b"; done
  assert_not_contains "$(ic_json ic1 '{.status.appliedSpec}')" "$b"
}

# Item 10: a node deleted mid-pull used to fail the cache with "Check if node is ready" for a node that no
# longer exists.
test_node_deleted_mid_operation_is_cancelled() {
  local img key ghost n1
  img=$(gen_images "$(unique kfe2e/ghost)" 1)
  key=kfe2e-ghost-$(unique x)
  ghost=$(unique kfe2e-ghost)
  n1=${KF_NODES%% *}
  kubectl label node "$n1" "$key=yes" >/dev/null
  defer kubectl label node "$n1" "$key-"
  # a Node with no kubelet behind it: its Job's pod never runs
  kubectl create -f - >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "$ghost", "labels": {"kubernetes.io/hostname": "$ghost", "$key": "yes"}}}
EOF
  defer kubectl delete node "$ghost" --ignore-not-found
  kf_controller_start --image-pull-deadline-duration=90s
  ic_apply ic1 <<< "[{\"images\": [\"$img\"], \"nodeSelector\": {\"$key\": \"yes\"}}]"
  wait_until 60 node_has_image "$n1" "$img" || fail "the real node got nothing"
  sleep 3
  assert_eq "Processing" "$(ic_json ic1 '{.status.status}')" "the ghost node's task should still be running"
  kubectl delete node "$ghost" >/dev/null
  ic_wait_op ic1 ImageCacheCreate Succeeded 45
  assert_eq "" "$(ic_json ic1 '{.status.failures}')"
}

# Item 12: purging one cache used to delete an image another cache still lists for the same nodes.
test_purge_keeps_an_image_another_cache_wants() {
  local img n
  img=$(gen_images "$(unique kfe2e/shared)" 1)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_apply ic2 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  ic_wait_op ic2 ImageCacheCreate Succeeded
  kns annotate imagecache ic1 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op ic1 ImageCachePurge Succeeded 90
  for n in $KF_NODES; do expect_images "$n" "$img"; done
  assert_contains "$(ic_events ic1)" "ImagesKept"
  kns annotate imagecache ic2 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op ic2 ImageCachePurge Succeeded 90
  for n in $KF_NODES; do expect_no_images "$n" "$img"; done
}

# Item 13: delete Jobs mount the runtime socket; they used to run in the tenant's namespace.
test_delete_jobs_run_in_the_controllers_namespace() {
  local img tenant n
  img=$(gen_images "$(unique kfe2e/tenant)" 1)
  tenant=$(unique e2e-tenant)
  kubectl create namespace "$tenant" >/dev/null
  defer kubectl delete namespace "$tenant" --wait=false
  kf_controller_start --job-retention-policy=retain
  kubectl -n "$tenant" apply -f - >/dev/null <<EOF
{"apiVersion": "kubefledged.io/v1alpha2", "kind": "ImageCache", "metadata": {"name": "ic1"},
 "spec": {"cacheSpec": [{"images": ["$img"]}]}}
EOF
  wait_until 90 ic_status_in_ns_is "$tenant" ic1 Succeeded || fail "create never succeeded"
  kubectl -n "$tenant" annotate imagecache ic1 kubefledged.io/purge-imagecache= >/dev/null
  wait_until 90 _tenant_purged "$tenant" || fail "purge never succeeded"
  for n in $KF_NODES; do expect_no_images "$n" "$img"; done
  assert_eq "" "$(kubectl -n "$tenant" get jobs -o json | jq -r '.items[] | select(.metadata.annotations["kubefledged.io/action"] == "delete") | .metadata.name')" \
    "delete Jobs in the tenant's namespace"
  [ -n "$(kns get jobs -o json | jq -r --arg ns "$tenant" '.items[] | select(.metadata.annotations["kubefledged.io/imagecache"] == "\($ns)/ic1") | .metadata.name')" ] ||
    fail "no delete Job in the controller's namespace"
  kubectl -n "$tenant" delete imagecache ic1 >/dev/null
  wait_until 60 _no_delete_jobs_of "$tenant" || fail "delete Jobs of a deleted cache left in the controller's namespace"
}
_tenant_purged() { [ "$(kubectl -n "$1" get imagecache ic1 -o jsonpath='{.status.reason}/{.status.status}')" = ImageCachePurge/Succeeded ]; }
_no_delete_jobs_of() {
  [ -z "$(kns get jobs -o json | jq -r --arg ns "$1" '.items[] | select(.metadata.annotations["kubefledged.io/imagecache"] == "\($ns)/ic1") | .metadata.name')" ]
}
