# End-to-end: the ImageCache controller (`kubefledged controller`, out of cluster) on the real local
# cluster: Jobs really run on the kubelets, images really land in (and leave) each node's containerd.
# Needs make image (the helper image with the delete command and the static echo/cp).
# Every test runs in both modes (tests/e2e/run.sh): jobs (a Job per node x image) and agent (the node agents,
# one per node, through NodeImageCache objects): same statuses, same results on the nodes.
# e2e-modes: jobs agent
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"

test_create_caches_images_on_matching_nodes() {
  local img n backend
  mapfile -t img < <(gen_images "$(unique kfe2e/create)" 4)
  kf_controller_start
  ic_watch ic1
  ic_apply ic1 <<EOF
[{"images": ["${img[0]}", "${img[1]}"]},
 {"images": ["${img[2]}", "${img[3]}"], "nodeSelector": {"tier": "backend"}}]
EOF
  assert_eq "Succeeded/ImageCacheCreate" "$(ic_wait ic1 Succeeded)"
  ic_seen ic1 Processing || fail "Processing was never reported"
  assert_eq "All requested images pulled succesfully to respective nodes" "$(ic_json ic1 '{.status.message}')"
  assert_eq "" "$(ic_json ic1 '{.status.failures}')" "no failures"
  assert_eq "True" "$(ic_json ic1 '{.status.conditions[?(@.type=="Ready")].status}')"
  [ -n "$(ic_json ic1 '{.status.completionTime}')" ] || fail "no completionTime"
  wait_until 30 jobs_gone ic1 || fail "Jobs left behind: $(jobs_of ic1)"
  [ "$KF_MODE" != agent ] || kf_no_pods || fail "agent mode created pods: $(kns get pods -o name)"
  assert_contains "$(ic_events ic1)" "Normal ImageCacheCreate All requested images pulled succesfully to respective nodes"
  backend=" $(nodes_with tier=backend) "
  [ "$backend" != "  " ] || fail "no node labelled tier=backend (make cluster-up labels node 2)"
  for n in $KF_NODES; do
    expect_images "$n" "${img[0]}" "${img[1]}"
    if [[ $backend == *" $n "* ]]; then expect_images "$n" "${img[2]}" "${img[3]}"
    else expect_no_images "$n" "${img[2]}" "${img[3]}"; fi
  done
}

test_selector_matching_no_node_reports_no_images() {
  local img
  img=$(gen_images "$(unique kfe2e/nowhere)" 1)
  kf_controller_start
  ic_apply ic1 <<EOF
[{"images": ["$img"], "nodeSelector": {"kubefledged.io/e2e": "no-such-node"}}]
EOF
  assert_eq "NoImagesPulledOrDeleted/ImageCacheCreate" "$(ic_wait ic1 NoImagesPulledOrDeleted)"
  assert_eq "No images were pulled or deleted because nodeSelector specified did not match any nodes" \
    "$(ic_json ic1 '{.status.message}')"
  assert_eq "" "$(jobs_of ic1)"
}

test_missing_image_failure_carries_kubelet_reason() {
  local good missing n reasons msg
  good=$(gen_images "$(unique kfe2e/good)" 1)
  missing=$REGISTRY/$(unique kfe2e/missing):1
  kf_controller_start --image-pull-deadline-duration=20s
  ic_apply ic1 <<< "[{\"images\": [\"$good\", \"$missing\"]}]"
  assert_eq "Failed/ImageCacheCreate" "$(ic_wait ic1 Failed 90)"
  assert_eq 'Image pull failed for some images. Please see "failures" section' "$(ic_json ic1 '{.status.message}')"
  for n in $KF_NODES; do
    reasons=$(kns get imagecache ic1 -o json | jq -r --arg i "$missing" --arg n "$n" '.status.failures[$i][] | select(.node == $n) | .reason')
    case "$reasons" in ErrImagePull|ImagePullBackOff) ;; *) fail "node $n: reason '$reasons'" ;; esac
    msg=$(kns get imagecache ic1 -o json | jq -r --arg i "$missing" --arg n "$n" '.status.failures[$i][] | select(.node == $n) | .message')
    assert_contains "$msg" "not found" "the kubelet's pull error is in the message"
    expect_images "$n" "$good"
  done
  assert_eq "null" "$(kns get imagecache ic1 -o json | jq -c --arg i "$good" '.status.failures[$i]')" "good image has no failure"
  assert_contains "$(ic_events ic1)" "Warning ImageCacheCreate Image pull failed for some images"
  wait_until 30 jobs_gone ic1 || fail "Jobs left behind: $(jobs_of ic1)"
}

test_update_adds_and_removes_images() {
  local img n
  mapfile -t img < <(gen_images "$(unique kfe2e/update)" 3)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\", \"${img[1]}\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  for n in $KF_NODES; do expect_images "$n" "${img[0]}" "${img[1]}"; done
  # remove img0, add img2
  ic_apply ic1 <<< "[{\"images\": [\"${img[1]}\", \"${img[2]}\"]}]"
  ic_wait_op ic1 ImageCacheUpdate Succeeded
  for n in $KF_NODES; do
    expect_images "$n" "${img[1]}" "${img[2]}"
    expect_no_images "$n" "${img[0]}"
  done
  assert_contains "$(ic_events ic1)" "Normal ImageCacheUpdate"
}

test_periodic_refresh_restores_image_removed_behind_its_back() {
  local img
  img=$(gen_images "$(unique kfe2e/refresh)" 1)
  kf_controller_start --image-cache-refresh-frequency=10s
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  expect_images "$NODE1_NAME" "$img"
  node_rmi "$NODE1_NAME" "$img"
  expect_no_images "$NODE1_NAME" "$img"
  log "removed $img from $NODE1_NAME behind the controller's back"
  # (agent mode: the agent's own presence poll brings it back within seconds, before any refresh)
  wait_until 150 node_has_image "$NODE1_NAME" "$img" || fail "the periodic refresh did not bring $img back"
  wait_until 60 _reason_is ic1 ImageCacheRefresh || fail "no periodic refresh ran: $(ic_status ic1)"
}

_reason_is() { [ "$(ic_json "$1" '{.status.reason}')" = "$2" ]; }

_no_annotation() {
  ! kns get imagecache "$1" -o json | jq -e --arg k "kubefledged.io/$2-imagecache" '.metadata.annotations[$k] != null' >/dev/null
}

test_refresh_and_purge_annotations() {
  local img n
  mapfile -t img < <(gen_images "$(unique kfe2e/annot)" 2)
  kf_controller_start --image-cache-refresh-frequency=5s
  ic_watch ic1
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\", \"${img[1]}\"]}]"
  ic_wait_seen ic1 Succeeded/ImageCacheCreate # a periodic refresh may follow within 5 s
  # refresh on demand; the annotation is removed when done
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  ic_wait_op ic1 ImageCacheRefresh Succeeded
  wait_until 20 _no_annotation ic1 refresh || fail "refresh annotation not removed"
  # purge: images deleted from every node, annotation removed
  kns annotate imagecache ic1 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op ic1 ImageCachePurge Succeeded
  assert_eq "All cached images succesfully deleted from respective nodes" "$(ic_json ic1 '{.status.message}')"
  wait_until 20 _no_annotation ic1 purge || fail "purge annotation not removed"
  for n in $KF_NODES; do expect_no_images "$n" "${img[@]}"; done
  # a purged cache is left alone by the periodic refresh (ticking every 5 s)
  sleep 15
  assert_eq "Succeeded/ImageCachePurge" "$(ic_status ic1)"
  for n in $KF_NODES; do expect_no_images "$n" "${img[@]}"; done
  # an on-demand refresh brings the images back at once, though the kubelet may still list them
  kns annotate imagecache ic1 kubefledged.io/refresh-imagecache= >/dev/null
  ic_wait_op ic1 ImageCacheRefresh Succeeded
  for n in $KF_NODES; do expect_images "$n" "${img[@]}"; done
}

test_private_image_with_image_pull_secrets() {
  local img msg
  img=$(gen_images --auth "$(unique private/app)" 1)
  kns create secret docker-registry regcred --docker-server="$REGISTRY_AUTH" \
    --docker-username="$REGISTRY_AUTH_USER" --docker-password="$REGISTRY_AUTH_PASSWORD" >/dev/null
  kf_controller_start --image-pull-deadline-duration=20s
  IC_SPEC_EXTRA='"imagePullSecrets": [{"name": "regcred"}]' ic_apply with-secret \
    <<< "[{\"images\": [\"$img\"], \"nodeSelector\": {\"kubernetes.io/hostname\": \"$NODE1_NAME\"}}]"
  ic_apply without-secret <<< "[{\"images\": [\"$img\"], \"nodeSelector\": {\"kubernetes.io/hostname\": \"$NODE2_NAME\"}}]"
  ic_wait_op with-secret ImageCacheCreate Succeeded 60
  expect_images "$NODE1_NAME" "$img"
  # the same image without the secret fails: the registry really asks for credentials
  ic_wait_op without-secret ImageCacheCreate Failed 90
  msg=$(kns get imagecache without-secret -o json | jq -r --arg i "$img" '.status.failures[$i][0].message')
  # the runtime's own words: containerd quotes the registry's 401, dockerd says it had no credentials to send
  if [ "$(node_runtime "$NODE2_NAME")" = docker ]; then assert_contains "$msg" "no basic auth credentials"
  else assert_contains "$msg" "401 Unauthorized"; fi
  expect_no_images "$NODE2_NAME" "$img"
}

test_controller_killed_mid_operation_converges() {
  local img missing n spec
  mapfile -t img < <(gen_images "$(unique kfe2e/kill)" 6)
  missing=$(unreachable_image)   # fails at the deadline: the operation stays Processing meanwhile
  kf_controller_start --image-pull-deadline-duration=25s
  spec=$(printf '"%s",' "${img[@]}")
  ic_watch ic1
  ic_apply ic1 <<< "[{\"images\": [${spec} \"$missing\"]}]"
  wait_until 30 kf_work_started ic1 || fail "the work never reached the nodes"
  kf_controller_kill
  [ "$KF_MODE" = agent ] || [ -n "$(jobs_of ic1)" ] || fail "expected running Jobs to survive the crash"
  assert_eq "Processing/ImageCacheCreate" "$(ic_status ic1)"
  kf_controller_start --image-pull-deadline-duration=25s
  # the interrupted operation is reported Aborted (upstream's word), then resumes and finishes
  ic_wait_op ic1 ImageCacheCreate Failed 120
  ic_seen ic1 Aborted || fail "Aborted was never reported"
  for n in $KF_NODES; do expect_images "$n" "${img[@]}"; done
  assert_eq "$missing" "$(kns get imagecache ic1 -o json | jq -r '.status.failures | keys | join(",")')"
  wait_until 30 ns_jobs_gone || fail "orphan Jobs: $(kns get jobs -o name)"
  assert_contains "$(cat "$E2E_LOG.controller")" "resuming"
}

test_edit_while_processing_is_applied() {
  local img missing n
  mapfile -t img < <(gen_images "$(unique kfe2e/edit)" 2)
  missing=$(unreachable_image)   # fails at the deadline: the operation stays Processing meanwhile
  kf_controller_start --image-pull-deadline-duration=20s
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\", \"$missing\"]}]"
  wait_until 30 ic_status_is ic1 Processing || fail "never Processing"
  # upstream drops this edit (issue #103); it must be applied once the running operation ends
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\", \"${img[1]}\"]}]"
  assert_eq 2 "$(ic_json ic1 '{.metadata.generation}')"
  ic_wait_op ic1 ImageCacheUpdate Succeeded 120
  for n in $KF_NODES; do expect_images "$n" "${img[@]}"; done
  assert_eq "" "$(ic_json ic1 '{.status.failures}')"
}

test_same_name_in_two_namespaces() {
  local good missing other
  good=$(gen_images "$(unique kfe2e/ns-a)" 1)
  missing=$REGISTRY/$(unique kfe2e/missing):1
  other=$E2E_NS-b
  kubectl create namespace "$other" >/dev/null
  defer kubectl delete namespace "$other" --wait=false
  kf_controller_start --image-pull-deadline-duration=20s
  ic_apply same <<< "[{\"images\": [\"$good\"]}]"
  kubectl apply -n "$other" -f - >/dev/null <<EOF
{"apiVersion": "kubefledged.io/v1alpha2", "kind": "ImageCache", "metadata": {"name": "same"},
 "spec": {"cacheSpec": [{"images": ["$missing"]}]}}
EOF
  ic_wait_op same ImageCacheCreate Succeeded 60
  wait_until 90 ic_status_in_ns_is "$other" same Failed ||
    fail "the other namespace's cache did not fail"
  assert_eq "" "$(ic_json same '{.status.failures}')" "results did not mix"
  assert_eq "$missing" "$(kubectl -n "$other" get imagecache same -o json | jq -r '.status.failures | keys | join(",")')"
}

test_node_labelled_later_gets_images_at_once() {
  local img node
  img=$(gen_images "$(unique kfe2e/late)" 1)
  node=$(nodes_without tier=backend | head -1)
  [ -n "$node" ] || skip "every node is tier=backend"
  kf_controller_start   # periodic refresh off: only the node event can bring the image
  ic_apply ic1 <<< "[{\"images\": [\"$img\"], \"nodeSelector\": {\"tier\": \"backend\"}}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  expect_no_images "$node" "$img"
  kubectl label node "$node" tier=backend >/dev/null
  defer kubectl label node "$node" tier-
  wait_until 60 node_has_image "$node" "$img" || fail "$node got no image after being labelled tier=backend"
  ic_wait_op ic1 ImageCacheRefresh Succeeded 30
}

_apiserver_ready() { kubectl get --raw /readyz >/dev/null 2>&1; }

test_apiserver_restart_mid_operation_converges() {
  local img missing
  mapfile -t img < <(gen_images "$(unique kfe2e/apirestart)" 2)
  missing=$(unreachable_image)   # fails at the deadline: the operation stays Processing meanwhile
  kf_controller_start --image-pull-deadline-duration=30s
  ic_apply ic1 <<< "[{\"images\": [\"${img[0]}\", \"$missing\"]}]"
  wait_until 30 ic_status_is ic1 Processing || fail "never Processing"
  log "stopping kube-apiserver"
  cluster_stop apiserver
  kubectl get --raw /readyz >/dev/null 2>&1 && fail "the API server still answers"
  sleep 3
  cluster_start
  wait_until 60 _apiserver_ready
  kill -0 "$KF_CTL_PID" || fail "the controller died with the API server"
  ic_wait_op ic1 ImageCacheCreate Failed 120
  # watches are live again: a new cache is served
  ic_apply ic2 <<< "[{\"images\": [\"${img[1]}\"]}]"
  ic_wait_op ic2 ImageCacheCreate Succeeded 60
  expect_images "$NODE1_NAME" "${img[@]}"
}

# Issue 10 item 12 / issue 8: a removal never takes an image a container on the node uses.
test_image_used_by_a_running_pod_survives_a_purge() {
  local img n
  img=$(gen_images "$(unique kfe2e/inuse)" 1)
  kf_controller_start
  ic_apply ic1 <<< "[{\"images\": [\"$img\"]}]"
  ic_wait_op ic1 ImageCacheCreate Succeeded
  kapply >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
 "spec": {"nodeName": "$NODE1_NAME", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 1,
          "containers": [{"name": "app", "image": "$img", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}
EOF
  kns wait --for=condition=Ready --timeout=60s pod/user >/dev/null || fail "the user pod did not start"
  kns annotate imagecache ic1 kubefledged.io/purge-imagecache= >/dev/null
  ic_wait_op ic1 ImageCachePurge Succeeded 90
  expect_images "$NODE1_NAME" "$img"
  for n in $KF_NODES; do [ "$n" = "$NODE1_NAME" ] || expect_no_images "$n" "$img"; done
  assert_contains "$(ic_events ic1)" "ImagesKept"
  kns delete pod user --wait=false >/dev/null
}
