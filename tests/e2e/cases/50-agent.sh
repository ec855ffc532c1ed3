# 50-agent.sh - `kubefledged agent` on the real test bed, out of cluster, one process per node
# (`kubefledged agent --node-name=$NODEi_NAME --cri-socket-path=$NODEi_CRI_SOCKET --kubeconfig=...`), with
# NodeImageCache specs written by the tests themselves (no controller): pulls land in containerd, a
# missing image fails in seconds, an image removed with ctr comes back within 10 s, a private image pulls
# with its dockerconfigjson Secret and fails Unauthorized without, an image used by a running pod survives
# a Delete, a Delete of one of two entries of an image keeps it and removes exactly the reference asked
# for, a SIGKILL mid-pull converges without pulling again what is there, the disk threshold refuses a
# pull, a node's object goes away with the node, no pod is created meanwhile, and the Docker Engine path
# against a real dockerd (testbed/dockerd.sh, as 10-cri.sh).
# Run by tests/e2e/run.sh (see tests/e2e/lib.sh for the helpers).
# shellcheck shell=bash

AG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=../kf.sh
. "$AG_ROOT/tests/e2e/kf.sh" # expect_images, expect_no_images
AG_KF=${KF_BIN:-$AG_ROOT/build/src/kubefledged}

# ---- helpers (prefixed ag_) ----

ag_setup() {
  [ -x "$AG_KF" ] || fail "$AG_KF not built (make build)"
  kubectl apply -f "$AG_ROOT/deploy/kubefledged-crd-nodeimagecache.yaml" >/dev/null
  kubectl wait --for=condition=Established --timeout=30s crd/nodeimagecaches.kubefledged.io >/dev/null
  AG_TMP=$(mktemp -d /tmp/kf-e2e-agent.XXXXXX)
  defer rm -rf "$AG_TMP"
  AG_ID=$(unique a); AG_ID=${AG_ID#a-}
}

ag_stop_pid() { # PID: SIGTERM, then SIGKILL after 10 s
  local i
  kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# ag_start KEY [FLAGS...]: an agent for node N, the leading digits of KEY (1, 1b: a second one for node 1),
# log $E2E_LOG.agent-KEY; sets AG_PID[KEY], AG_PORT[KEY]. AG_NODE (node name) and AG_SOCKET (socket) run
# it for something else than a test bed node.
declare -A AG_PID AG_PORT
ag_start() {
  local i=$1 n=${1%%[!0-9]*} name sock log port v; shift
  v=NODE${n:-0}_NAME; name=${AG_NODE:-${!v:-}}
  v=NODE${n:-0}_CRI_SOCKET; sock=${AG_SOCKET:-${!v:-}}
  [ -n "$name" ] && [ -n "$sock" ] || fail "ag_start $i: no node name or socket"
  log=$E2E_LOG.agent-$i
  : > "$log" # a log of an earlier run must not give away its port
  "$AG_KF" agent --kubeconfig="$KUBECONFIG" --node-name="$name" --cri-socket-path="$sock" \
    --metrics-bind-address=127.0.0.1:0 -v=1 "$@" >> "$log" 2>&1 &
  AG_PID[$i]=$!
  defer ag_stop_pid "${AG_PID[$i]}"
  wait_until 10 grep -q 'serving /metrics' "$log" || fail "agent $i did not start: $(tail -5 "$log")"
  port=$(grep -o 'serving /metrics.*(port [0-9]*)' "$log" | tail -1 | grep -o '[0-9]*)$' | tr -d ')')
  AG_PORT[$i]=$port
  log "agent $i ($name) started, pid ${AG_PID[$i]}, metrics port $port: $*"
}

# ag_metric N NAME{labels}: the value of a series of agent N's /metrics, 0 when absent.
ag_metric() {
  local out v
  out=$(curl -sf "http://127.0.0.1:${AG_PORT[$1]}/metrics") || { echo 0; return; }
  v=$(awk -v k="$2" '$1 == k {print $2}' <<< "$out")
  echo "${v:-0}"
}

# ag_nic NODE ENTRY...: writes NodeImageCache NODE. ENTRY is IMAGE (Pull), -IMAGE (Delete) or
# IMAGE@GEN (Pull with pullGeneration GEN). AG_SECRETS='ns/name ...' adds pullSecrets to Pull entries;
# AG_OWNER_UID sets an ownerReference to Node NODE. Deleted when the test ends.
ag_nic() {
  local node=$1 e img action gen items="" sec="" s owner=""; shift
  for s in ${AG_SECRETS:-}; do sec+="${sec:+,}{\"namespace\":\"${s%/*}\",\"name\":\"${s#*/}\"}"; done
  for e in "$@"; do
    action=Pull; gen=0; img=$e
    if [ "${e:0:1}" = - ]; then action=Delete; img=${e:1}; fi
    if [[ $img == *@[0-9]* ]]; then gen=${img##*@}; img=${img%@*}; fi
    items+="${items:+,}{\"image\":\"$img\",\"action\":\"$action\",\"pullGeneration\":$gen,\"owners\":[{\"namespace\":\"$E2E_NS\",\"name\":\"c1\"}]"
    [ "$action" = Pull ] && [ -n "$sec" ] && items+=",\"pullSecrets\":[$sec]"
    items+="}"
  done
  [ -z "${AG_OWNER_UID:-}" ] ||
    owner=",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"$node\",\"uid\":\"$AG_OWNER_UID\"}]"
  kubectl apply -f - >/dev/null <<EOM
{"apiVersion":"kubefledged.io/v1alpha1","kind":"NodeImageCache",
 "metadata":{"name":"$node"$owner},"spec":{"nodeName":"$node","images":[$items]}}
EOM
  if [ -z "${AG_NIC_DEFERRED[$node]:-}" ]; then
    AG_NIC_DEFERRED[$node]=1
    defer kubectl delete nodeimagecache "$node" --ignore-not-found --wait=false
  fi
}
declare -A AG_NIC_DEFERRED

ag_field() { # NODE IMAGE FIELD
  kubectl get nodeimagecache "$1" -o jsonpath="{.status.images[?(@.image==\"$2\")].$3}" 2>/dev/null
}
ag_state_is() { [ "$(ag_field "$1" "$2" state)" = "$3" ]; } # NODE IMAGE STATE
ag_wait_state() { # NODE IMAGE STATE [T]
  wait_until "${4:-60}" ag_state_is "$1" "$2" "$3" ||
    fail "$2 on $1: never $3 (now: $(ag_field "$1" "$2" state) $(ag_field "$1" "$2" reason) $(ag_field "$1" "$2" message))"
}
ag_all_present() { # NODE IMAGE...
  local node=$1 i; shift
  for i in "$@"; do ag_state_is "$node" "$i" Present || return 1; done
}
ag_nic_rv() { kubectl get nodeimagecache "$1" -o jsonpath='{.metadata.resourceVersion}'; }
ag_now() { date +%s.%N; }
ag_since() { echo "$(date +%s.%N) - $1" | bc; }
ag_pods() { kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}' | sort; }

# ---- tests ----

test_agent_pulls_land_in_containerd_and_steady_state_writes_nothing() {
  ag_setup
  local pods_before imgs rv w1 p1
  pods_before=$(ag_pods)
  mapfile -t imgs < <(gen_images "kfa-$AG_ID/pull" 6)
  [ ${#imgs[@]} = 6 ] || fail "gen_images gave ${#imgs[@]} images"
  ag_nic "$NODE1_NAME" "${imgs[@]}"
  ag_nic "$NODE2_NAME" "${imgs[@]:0:3}"
  ag_start 1 --poll-interval=1s
  ag_start 2 --poll-interval=1s
  wait_until 60 ag_all_present "$NODE1_NAME" "${imgs[@]}" || fail "node 1 never had every image Present"
  wait_until 60 ag_all_present "$NODE2_NAME" "${imgs[@]:0:3}" || fail "node 2 never had its images Present"
  expect_images "$NODE1_NAME" "${imgs[@]}"
  expect_images "$NODE2_NAME" "${imgs[@]:0:3}"
  expect_no_images "$NODE2_NAME" "${imgs[@]:3}"
  assert_eq "6/6/0/0" "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.desired}/{.status.present}/{.status.failed}/{.status.pulling}')"
  assert_contains "$(ag_field "$NODE1_NAME" "${imgs[0]}" digest)" "sha256:"
  assert_contains "$(ag_field "$NODE1_NAME" "${imgs[0]}" imageID)" "sha256:"
  assert_eq "containerd://1.6.20~ds1" "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.agent.runtime}')"
  assert_eq "Unsupported" "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.agent.pinning}')"
  assert_eq 6 "$(ag_metric 1 'kubefledged_agent_pulls_total{result="success",cause=""}')"
  # Steady state: 5 polls (1 s) later, no pull and no write (the object's resourceVersion stays).
  sleep 1
  rv=$(ag_nic_rv "$NODE1_NAME"); w1=$(ag_metric 1 'kubefledged_agent_status_writes_total{result="ok"}')
  p1=$(ag_metric 1 'kubefledged_agent_pulls_total{result="success",cause=""}')
  sleep 5
  assert_eq "$rv" "$(ag_nic_rv "$NODE1_NAME")" "the settled agent wrote its object"
  assert_eq "$w1" "$(ag_metric 1 'kubefledged_agent_status_writes_total{result="ok"}')"
  assert_eq "$p1" "$(ag_metric 1 'kubefledged_agent_pulls_total{result="success",cause=""}')"
  log "node 1: $w1 status writes for 6 pulls, none in 5 s of steady state"
  # A warm refresh (the spec written again, same content): no pull, no write.
  ag_nic "$NODE1_NAME" "${imgs[@]}"
  sleep 3
  assert_eq "$rv" "$(ag_nic_rv "$NODE1_NAME")" "a warm refresh wrote the object"
  assert_eq "$p1" "$(ag_metric 1 'kubefledged_agent_pulls_total{result="success",cause=""}')"
  # No pod anywhere, in any namespace.
  assert_eq "$pods_before" "$(ag_pods)" "pods were created or deleted while the agents cached images"
}

test_agent_missing_image_fails_fast() {
  ag_setup
  local img=$REGISTRY/kfa-$AG_ID/missing:1 t0 took
  ag_nic "$NODE1_NAME" "$img"
  t0=$(ag_now)
  ag_start 1
  ag_wait_state "$NODE1_NAME" "$img" Failed 10
  took=$(ag_since "$t0")
  log "failed after ${took}s"
  assert_eq ErrImagePull "$(ag_field "$NODE1_NAME" "$img" reason)"
  assert_eq ImageNotFound "$(ag_field "$NODE1_NAME" "$img" cause)"
  assert_contains "$(ag_field "$NODE1_NAME" "$img" message)" "$img: not found"
  assert_eq 1 "$(ag_metric 1 'kubefledged_agent_pulls_total{result="failed",cause="ImageNotFound"}')"
  assert_eq 1 "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.failed}')"
}

test_agent_image_removed_with_ctr_comes_back_within_10s() {
  ag_setup
  local img t0 took
  img=$(gen_images "kfa-$AG_ID/heal" 1)
  ag_nic "$NODE1_NAME" "$img"
  ag_start 1 # the default --poll-interval (5s)
  ag_wait_state "$NODE1_NAME" "$img" Present 30
  node_rmi "$NODE1_NAME" "$img"
  node_has_image "$NODE1_NAME" "$img" && fail "ctr did not remove $img"
  t0=$(ag_now)
  wait_until 10 node_has_image "$NODE1_NAME" "$img" || fail "$img not back within 10 s"
  took=$(ag_since "$t0")
  log "back after ${took}s"
  wait_until 5 grep -q "pulled $img again" "$E2E_LOG.agent-1" || fail "no self-heal line in the log"
  assert_eq 1 "$(ag_metric 1 kubefledged_agent_self_heal_pulls_total)"
}

test_agent_private_image_with_and_without_pull_secret() {
  ag_setup
  local imgs cfg
  mapfile -t imgs < <("$E2E_ROOT/testbed/images.sh" gen --auth "kfa-$AG_ID/private" 2 2>/dev/null)
  [ ${#imgs[@]} = 2 ] || fail "images.sh gen --auth gave ${#imgs[@]} images"
  kns create secret docker-registry regcred --docker-server="$REGISTRY_AUTH" \
    --docker-username="$REGISTRY_AUTH_USER" --docker-password="$REGISTRY_AUTH_PASSWORD" >/dev/null
  AG_SECRETS="$E2E_NS/regcred" ag_nic "$NODE1_NAME" "${imgs[0]}"
  # Node 2 names a Secret that does not exist: an anonymous pull, refused.
  AG_SECRETS="$E2E_NS/nosuch" ag_nic "$NODE2_NAME" "${imgs[1]}"
  ag_start 1
  ag_start 2
  ag_wait_state "$NODE1_NAME" "${imgs[0]}" Present 30
  expect_images "$NODE1_NAME" "${imgs[0]}"
  ag_wait_state "$NODE2_NAME" "${imgs[1]}" Failed 15
  assert_eq Unauthorized "$(ag_field "$NODE2_NAME" "${imgs[1]}" cause)"
  # the runtime's own words: containerd quotes the registry's 401, dockerd says it had no credentials to send
  if [ "$(node_runtime "$NODE2_NAME")" = docker ]; then
    assert_contains "$(ag_field "$NODE2_NAME" "${imgs[1]}" message)" "no basic auth credentials"
  else assert_contains "$(ag_field "$NODE2_NAME" "${imgs[1]}" message)" "401 Unauthorized"; fi
  assert_contains "$(ag_field "$NODE2_NAME" "${imgs[1]}" message)" "pull secret $E2E_NS/nosuch"
  expect_no_images "$NODE2_NAME" "${imgs[1]}"
  # The password is in no log and in no object the agent wrote.
  cfg=$(cat "$E2E_LOG".agent-*; kubectl get nic "$NODE1_NAME" "$NODE2_NAME" -o json)
  assert_not_contains "$cfg" "$REGISTRY_AUTH_PASSWORD" "the password leaked"
}

test_agent_image_used_by_a_running_pod_survives_a_delete() {
  ag_setup
  local img
  img=$(gen_images "kfa-$AG_ID/inuse" 1)
  ag_nic "$NODE1_NAME" "$img"
  ag_start 1 --poll-interval=1s
  ag_wait_state "$NODE1_NAME" "$img" Present 30
  kapply <<EOM
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"user"},
 "spec":{"nodeName":"$NODE1_NAME","dnsPolicy":"Default","terminationGracePeriodSeconds":1,
         "containers":[{"name":"c","image":"$img","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}
EOM
  kns wait --for=condition=Ready pod/user --timeout=60s >/dev/null
  ag_nic "$NODE1_NAME" "-$img"
  wait_until 15 eval '[ "$(ag_field "$NODE1_NAME" "$img" reason)" = ImageInUse ]' ||
    fail "the Delete was not kept: $(ag_field "$NODE1_NAME" "$img" state) $(ag_field "$NODE1_NAME" "$img" message)"
  assert_eq Present "$(ag_field "$NODE1_NAME" "$img" state)"
  assert_contains "$(ag_field "$NODE1_NAME" "$img" message)" "of pod $E2E_NS/user (running)"
  expect_images "$NODE1_NAME" "$img"
  assert_eq 0 "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.desired}')"
  # The pod goes (and its container): the Delete still asked for is done at a following poll.
  kns delete pod user --wait=true --timeout=60s >/dev/null
  ag_wait_state "$NODE1_NAME" "$img" Absent 30
  expect_no_images "$NODE1_NAME" "$img"
}

# A second name for an image in the registry (blobs mounted, not copied): NAME:TAG -> NAME:NEWTAG.
ag_retag() {
  local repo=${1%:*} tag=${1##*:} m=$AG_TMP/manifest ct
  repo=${repo#"$REGISTRY"/}
  ct=$(curl -sf -D - -o "$m" -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}') ||
    fail "cannot GET manifest $1"
  curl -sf -o /dev/null -X PUT -H "Content-Type: $ct" --data-binary "@$m" "http://$REGISTRY/v2/$repo/manifests/$2" ||
    fail "cannot PUT manifest $repo:$2"
  echo "$REGISTRY/$repo:$2"
}

test_agent_delete_of_one_owner_keeps_the_image_and_removes_exactly_the_reference() {
  ag_setup
  local img other
  img=$(gen_images "kfa-$AG_ID/shared" 1)
  other=$(ag_retag "$img" second)
  ag_nic "$NODE1_NAME" "$img" "$other"
  ag_start 1 --poll-interval=1s
  ag_wait_state "$NODE1_NAME" "$other" Present 30
  ag_wait_state "$NODE1_NAME" "$img" Present 30
  # Still wanted by one cache (Pull) and asked away by another (Delete) in the same spec: kept, no removal.
  # The other tag of the same image is asked away: exactly that name goes.
  ag_nic "$NODE1_NAME" "$img" "-$img" "-$other"
  ag_wait_state "$NODE1_NAME" "$other" Absent 15
  expect_no_images "$NODE1_NAME" "$other"
  expect_images "$NODE1_NAME" "$img"
  assert_eq Present "$(ag_field "$NODE1_NAME" "$img" state)"
  assert_eq 1 "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.desired}')"
  assert_eq 1 "$(ag_metric 1 'kubefledged_agent_deletes_total{result="removed"}')"
  sleep 2
  expect_images "$NODE1_NAME" "$img"
}

ag_absent_count() { # NODE IMAGE...: how many are not on the node
  local node=$1 i n=0 have; shift
  have=$(node_images "$node")
  for i in "$@"; do grep -qxF -- "$i" <<< "$have" || n=$((n + 1)); done
  echo "$n"
}

test_agent_sigkill_mid_pull_converges() {
  ag_setup
  local imgs absent pulled present_before
  mapfile -t imgs < <(gen_images "kfa-$AG_ID/kill" 40)
  [ ${#imgs[@]} = 40 ] || fail "gen_images gave ${#imgs[@]} images"
  ag_nic "$NODE1_NAME" "${imgs[@]}"
  ag_start 1 --max-parallel-pulls=2 --poll-interval=1s
  # Kill it once some but not all images are in.
  wait_until 60 eval '[ "$(ag_absent_count "$NODE1_NAME" "${imgs[@]}")" -le 34 ]' || fail "no pull progress"
  kill -KILL "${AG_PID[1]}"
  wait "${AG_PID[1]}" 2>/dev/null || true
  sleep 1 # what containerd finishes of the interrupted pulls
  absent=$(ag_absent_count "$NODE1_NAME" "${imgs[@]}")
  present_before=$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.present}')
  log "killed with $((40 - absent)) of 40 images on the node ($present_before Present in the status)"
  [ "$absent" -gt 0 ] || fail "every image was in before the kill: the test did not kill mid-pull"
  ag_start 1b --max-parallel-pulls=4 --poll-interval=1s
  wait_until 60 ag_all_present "$NODE1_NAME" "${imgs[@]}" || fail "not every image Present after the restart"
  expect_images "$NODE1_NAME" "${imgs[@]}"
  pulled=$(ag_metric 1b 'kubefledged_agent_pulls_total{result="success",cause=""}')
  log "the restarted agent pulled $pulled images ($absent were missing)"
  # Nothing present is pulled again (a pull in flight at the kill may still have landed since).
  [ "$pulled" -le "$absent" ] || fail "the restarted agent pulled $pulled images, only $absent were missing"
  [ "$pulled" -ge $((absent - 2)) ] || fail "the restarted agent pulled $pulled images, $absent were missing"
  assert_eq 40 "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.present}')"
}

test_agent_disk_threshold_refuses_a_pull() {
  ag_setup
  local img
  img=$(gen_images "kfa-$AG_ID/disk" 1)
  ag_nic "$NODE1_NAME" "$img"
  ag_start 1 --image-fs-threshold=1
  ag_wait_state "$NODE1_NAME" "$img" Failed 15
  assert_eq ImageFsThresholdExceeded "$(ag_field "$NODE1_NAME" "$img" reason)"
  assert_contains "$(ag_field "$NODE1_NAME" "$img" message)" "over the threshold of 1% (--image-fs-threshold)"
  assert_eq 1 "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.imageFs.thresholdPercent}')"
  [ "$(kubectl get nic "$NODE1_NAME" -o jsonpath='{.status.imageFs.capacityBytes}')" -gt 0 ] || fail "no capacity"
  expect_no_images "$NODE1_NAME" "$img"
  [ "$(ag_metric 1 kubefledged_agent_disk_refusals_total)" -ge 1 ] || fail "no disk refusal counted"
  assert_eq 0 "$(ag_metric 1 'kubefledged_agent_pulls_total{result="success",cause=""}')"
}

test_agent_node_object_goes_away_with_the_node() {
  ag_setup
  local node=kf-e2e-gone-$AG_ID uid
  kubectl create -f - >/dev/null <<EOM
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$node","labels":{"kubefledged.io/simulated":"true"}},
 "spec":{"taints":[{"key":"kubefledged.io/simulated","value":"true","effect":"NoSchedule"}]}}
EOM
  defer kubectl delete node "$node" --ignore-not-found --wait=false
  uid=$(kubectl get node "$node" -o jsonpath='{.metadata.uid}')
  AG_OWNER_UID=$uid ag_nic "$node" "$REGISTRY/busybox:1"
  kubectl get nic "$node" >/dev/null
  kubectl delete node "$node" --wait=true >/dev/null
  wait_until 60 eval '! kubectl get nic "$node" >/dev/null 2>&1' || fail "NodeImageCache $node outlived its Node"
}

# ---- the Docker Engine path, against a real dockerd on node 1's containerd (as 10-cri.sh) ----

ag_dockerd() { # starts dockerd in $AG_TMP/dk; sets AG_DOCKER_SOCK
  local dockerd=${KF_DOCKERD:-} d=$AG_TMP/dk pid
  [ -n "$dockerd" ] || dockerd=$("$E2E_ROOT/testbed/dockerd.sh") || fail "no dockerd: testbed/dockerd.sh failed"
  mkdir -p "$d/data" "$d/exec"
  PATH=$(dirname "$dockerd"):$(dirname "$dockerd")/../bin:$PATH setsid "$dockerd" -H "unix://$d/docker.sock" \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" --containerd "$NODE1_CRI_SOCKET" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false --insecure-registry "$REGISTRY" \
    >"$d/log" 2>&1 &
  pid=$!
  defer ag_stop_pid "$pid"
  wait_until 10 curl -sf --unix-socket "$d/docker.sock" http://localhost/_ping || fail "dockerd did not start: $(tail -5 "$d/log")"
  AG_DOCKER_SOCK=$d/docker.sock
}
ag_docker_refs() {
  local out
  out=$(curl -sf --unix-socket "$AG_DOCKER_SOCK" http://localhost/images/json)
  python3 -c 'import json, sys; [print(t) for i in json.load(sys.stdin) for t in (i.get("RepoTags") or [])]' <<< "$out"
}
ag_docker_has() { local out; out=$(ag_docker_refs); grep -qxF -- "$1" <<< "$out"; }

test_agent_docker_engine_pull_fail_keep_and_delete_exactly() {
  ag_setup
  ag_dockerd
  local node=kf-e2e-docker-$AG_ID imgs other missing=$REGISTRY/kfa-$AG_ID/dk-missing:1
  mapfile -t imgs < <(gen_images "kfa-$AG_ID/dk" 2)
  other=$(ag_retag "${imgs[0]}" second)
  ag_nic "$node" "${imgs[@]}" "$other" "$missing"
  AG_NODE=$node AG_SOCKET=$AG_DOCKER_SOCK ag_start d --poll-interval=1s
  ag_wait_state "$node" "${imgs[0]}" Present 30
  ag_wait_state "$node" "${imgs[1]}" Present 30
  ag_wait_state "$node" "$other" Present 30
  ag_wait_state "$node" "$missing" Failed 10
  assert_eq ImageNotFound "$(ag_field "$node" "$missing" cause)"
  assert_contains "$(ag_field "$node" "$missing" message)" "manifest unknown"
  assert_contains "$(kubectl get nic "$node" -o jsonpath='{.status.agent.runtime}')" "docker://"
  assert_eq docker "$(kubectl get nic "$node" -o jsonpath='{.status.agent.api}')"
  ag_docker_has "${imgs[1]}" || fail "${imgs[1]} is not in dockerd"
  # A container (created, not started) uses imgs[1]; its Delete is kept. The other tag of imgs[0] goes,
  # imgs[0] itself stays.
  curl -sf --unix-socket "$AG_DOCKER_SOCK" -H 'Content-Type: application/json' \
    -d "{\"Image\":\"${imgs[1]}\",\"Cmd\":[\"true\"],\"Labels\":{\"io.kubernetes.pod.name\":\"p\",\"io.kubernetes.pod.namespace\":\"$E2E_NS\"}}" \
    "http://localhost/containers/create?name=kfa-$AG_ID" >/dev/null || fail "cannot create a container"
  ag_nic "$node" "${imgs[0]}" "-${imgs[1]}" "-$other"
  ag_wait_state "$node" "$other" Absent 15
  wait_until 10 eval '[ "$(ag_field "$node" "${imgs[1]}" reason)" = ImageInUse ]' || fail "the used image was not kept"
  assert_contains "$(ag_field "$node" "${imgs[1]}" message)" "pod $E2E_NS/p (created)"
  ag_docker_has "${imgs[0]}" || fail "${imgs[0]} went with its other tag"
  ag_docker_has "$other" && fail "$other is still in dockerd"
  ag_docker_has "${imgs[1]}" || fail "the used image was removed"
}

# ---- in cluster: deploy/'s DaemonSet and RBAC as make deploy-using-yaml applies them ----

test_agent_daemonset_in_cluster() {
  ag_setup
  local img suffix=kfa-$AG_ID f ready
  img=$(gen_images "kfa-$AG_ID/ds" 1)
  # deploy/'s objects under names of our own, in the test's namespace
  for f in serviceaccount-agent clusterrole-agent clusterrolebinding-agent daemonset-agent; do
    IMAGE=$KF_IMAGE "$E2E_ROOT/hack/deploy.sh" yaml-render "kubefledged-$f.yaml" |
      sed "s/namespace: kube-fledged/namespace: $E2E_NS/; s/kubefledged-agent\$/kubefledged-agent-$suffix/" \
      > "$AG_TMP/$f.yaml"
  done
  defer kubectl delete clusterrole,clusterrolebinding "kubefledged-agent-$suffix" --ignore-not-found
  kubectl apply -f "$AG_TMP/serviceaccount-agent.yaml" -f "$AG_TMP/clusterrole-agent.yaml" \
    -f "$AG_TMP/clusterrolebinding-agent.yaml" >/dev/null
  ag_nic "$NODE2_NAME" "$img"
  kubectl apply -f "$AG_TMP/daemonset-agent.yaml" >/dev/null
  kns rollout status "daemonset/kubefledged-agent-$suffix" --timeout=120s ||
    fail "the DaemonSet did not roll out: $(kns describe pods | tail -20)"
  ready=$(kns get pods -l "kubefledged=kubefledged-agent-$suffix" -o jsonpath='{range .items[*]}{.spec.nodeName}={.status.containerStatuses[0].ready} {end}')
  log "agent pods: $ready"
  assert_contains "$ready" "$NODE1_NAME=true"
  assert_contains "$ready" "$NODE2_NAME=true"
  ag_wait_state "$NODE2_NAME" "$img" Present 60
  expect_images "$NODE2_NAME" "$img"
  expect_no_images "$NODE1_NAME" "$img"
  # it found the socket through the node's annotation, under --host-root, with no capability
  assert_eq "/host$NODE2_CRI_SOCKET" "$(kubectl get nic "$NODE2_NAME" -o jsonpath='{.status.agent.socket}')"
  [ "$(kubectl get nic "$NODE2_NAME" -o jsonpath='{.status.imageFs.capacityBytes}')" -gt 0 ] ||
    fail "the image filesystem's capacity was not read under /host"
}
