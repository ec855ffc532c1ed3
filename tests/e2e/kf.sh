# Helpers for the kube-fledged end-to-end cases (sourced by tests/e2e/cases/2*.sh on top of lib.sh).
#
#   KF_BIN                         the kubefledged binary under test (build/src/kubefledged)
#   KF_IMAGE                       its image in the cluster registry (make image pushes it)
#   kf_controller_start [FLAGS..]  run `kubefledged controller` out of cluster against the test bed, with
#                                  short test defaults; stopped (SIGTERM) when the test ends; log in
#                                  $E2E_LOG.controller. Sets KF_CTL_PID. Installs deploy/'s CRD first unless
#                                  KF_KEEP_CRD=1. /metrics on a free loopback port: kf_controller_metrics_url
#   kf_controller_kill             SIGKILL it (mid-operation crash)
#   KF_MODE                        jobs (default) or agent: in agent mode kf_controller_start passes --mode=agent and
#                                  first starts one `kubefledged agent` per node (kf_agents_start; logs in
#                                  $E2E_LOG.agent.NODE), as the DaemonSet would
#   kf_work_started NAME           the cache's work reached the nodes: Jobs exist (jobs mode) or the caches'
#                                  images are in NodeImageCache specs (agent mode)
#   kf_no_pods                     true when no pod exists in the test's namespace (agent mode caches without pods)
#   kf_wait_alone                  wait (up to 120 s) until no ImageCache is left in other namespaces (earlier
#                                  tests' namespaces are deleted in the background), for tests that look at
#                                  the whole cluster
#   ic_apply NAME < lists.json     create/replace ImageCache NAME in $E2E_NS with spec.cacheSpec from stdin
#                                  (JSON or YAML flow list); extra spec via IC_SPEC_EXTRA='"imagePullSecrets":[...]'
#   ic_status NAME                 "status/reason" of the cache
#   ic_wait NAME STATUS [T]        wait until .status.status is STATUS (default 120 s), then print status/reason
#   ic_json NAME PATH              kubectl jsonpath of the cache
#   jobs_of NAME                   names of the cache's Jobs (label imagecache=NAME)
# shellcheck shell=bash

KF_BIN=${KF_BIN:-$E2E_ROOT/build/src/kubefledged}
KF_IMAGE=${KF_IMAGE:-$REGISTRY/kubefledged/kubefledged:dev}

# The image by digest, for the Jobs the out-of-cluster controller creates: nodes keep an older ":dev" (pull
# policy IfNotPresent), so a tag would run yesterday's helper. Falls back to the tag.
kf_image_pinned() {
  local ref=${KF_IMAGE#*/} d
  d=$(curl -sfI -H 'Accept: application/vnd.oci.image.index.v1+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "http://${KF_IMAGE%%/*}/v2/${ref%:*}/manifests/${ref##*:}" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  if [ -n "$d" ]; then echo "${KF_IMAGE%:*}@$d"; else echo "$KF_IMAGE"; fi
}

KF_MODE=${KF_MODE:-jobs}

kf_crd_ensure() {
  kubectl apply -f "$E2E_ROOT/deploy/kubefledged-crd.yaml" -f "$E2E_ROOT/deploy/kubefledged-crd-nodeimagecache.yaml" >/dev/null
  kubectl wait --for=condition=Established --timeout=30s crd/imagecaches.kubefledged.io \
    crd/nodeimagecaches.kubefledged.io >/dev/null
}

# One agent per node, out of cluster, as the DaemonSet would run them; started once per test.
KF_AGENT_PIDS=()
kf_agents_start() {
  local i name sock pid
  [ ${#KF_AGENT_PIDS[@]} -eq 0 ] || return 0
  for (( i = 1; i <= KF_NODE_COUNT; i++ )); do
    name=NODE${i}_NAME; sock=NODE${i}_CRI_SOCKET
    "$KF_BIN" agent --kubeconfig="$KUBECONFIG" --node-name="${!name}" --cri-socket-path="${!sock}" \
      --image-pull-deadline-duration="${KF_AGENT_DEADLINE:-20s}" --metrics-bind-address=0 -v=1 "$@" \
      >> "$E2E_LOG.agent.${!name}" 2>&1 &
    pid=$!
    KF_AGENT_PIDS+=("$pid")
    defer kf_controller_stop "$pid"
  done
  log "agents started (pids ${KF_AGENT_PIDS[*]})"
}

kf_work_started() {
  if [ "$KF_MODE" = agent ]; then
    kubectl get nodeimagecaches -o json |
      jq -e --arg ns "$E2E_NS" --arg n "$1" '[.items[].spec.images[]?.owners[]? | select(.namespace == $ns and .name == $n)] | length > 0' >/dev/null
  else
    jobs_exist "$1"
  fi
}
kf_no_pods() { [ -z "$(kns get pods -o name)" ]; }
_kf_alone() { [ -z "$(kubectl get imagecaches -A -o jsonpath='{.items[?(@.metadata.namespace!="'"$E2E_NS"'")].metadata.name}')" ]; }
kf_wait_alone() {
  wait_until 120 _kf_alone || fail "ImageCaches of other namespaces remain: $(kubectl get imagecaches -A --no-headers)"
}

kf_controller_start() {
  [ -x "$KF_BIN" ] || fail "no $KF_BIN: run make build"
  [ -n "${KF_KEEP_CRD:-}" ] || kf_crd_ensure
  local mode=()
  if [ "$KF_MODE" = agent ]; then
    kf_agents_start
    mode=(--mode=agent)
  fi
  local img; img=$(kf_image_pinned)
  BUSYBOX_IMAGE=$img KUBEFLEDGED_CRI_CLIENT_IMAGE=$img KUBEFLEDGED_NAMESPACE=$E2E_NS \
    "$KF_BIN" controller "${mode[@]}" --kubeconfig="$KUBECONFIG" --leader-elect=false \
      --image-cache-refresh-frequency=0s --image-pull-deadline-duration=60s --metrics-bind-address=127.0.0.1:0 \
      -v=1 "$@" \
      >> "$E2E_LOG.controller" 2>&1 &
  KF_CTL_PID=$!
  defer kf_controller_stop "$KF_CTL_PID"
  log "controller started (pid $KF_CTL_PID): $*"
}

# kf_controller_metrics_url: http://127.0.0.1:PORT of the controller's /metrics, /healthz, /readyz (from the
# log lines of the controller KF_CTL_PID)
kf_controller_metrics_url() {
  local port
  port=$(grep -E "^[IWE][0-9]{4} [0-9:.]+ +$KF_CTL_PID " "$E2E_LOG.controller" |
    sed -n 's/.*serving \/metrics, \/healthz and \/readyz on .* (port \([0-9]*\)).*/\1/p' | tail -1)
  [ -n "$port" ] && echo "http://127.0.0.1:$port"
}

kf_controller_stop() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

kf_controller_kill() {
  kill -KILL "$KF_CTL_PID"
  wait "$KF_CTL_PID" 2>/dev/null || true
  log "controller $KF_CTL_PID killed"
}

ic_apply() {
  local name=$1 lists
  lists=$(cat)
  kapply <<EOM
{"apiVersion": "kubefledged.io/v1alpha2", "kind": "ImageCache",
 "metadata": {"name": "$name", "labels": {"app": "kubefledged", "kubefledged": "imagecache"}},
 "spec": {"cacheSpec": $lists ${IC_SPEC_EXTRA:+, $IC_SPEC_EXTRA}}}
EOM
}

ic_json() { kns get imagecache "$1" -o jsonpath="$2"; }
ic_status() { ic_json "$1" '{.status.status}/{.status.reason}'; }
ic_wait() {
  wait_until "${3:-120}" ic_status_is "$1" "$2" || fail "ImageCache $1 never reached $2 (now: $(ic_status "$1"))"
  ic_status "$1"
}
jobs_of() { kns get jobs -l "imagecache=$1" -o jsonpath='{.items[*].metadata.name}'; }

# Predicates for wait_until (which runs its command again on every poll: never pass it "$(...)", that
# would be expanded once, before the first poll).
ic_status_is() { [ "$(ic_json "$1" '{.status.status}')" = "$2" ]; }          # NAME STATUS
ic_status_in_ns_is() {                                                       # NS NAME STATUS
  [ "$(kubectl -n "$1" get imagecache "$2" -o jsonpath='{.status.status}')" = "$3" ]
}
jobs_gone() { [ -z "$(jobs_of "$1")" ]; }                                    # NAME
jobs_exist() { [ -n "$(jobs_of "$1")" ]; }                                   # NAME
ns_jobs_gone() { [ -z "$(kns get jobs -o name)" ]; }

# ic_wait_op NAME REASON STATUS [T]: wait until the operation REASON finished with STATUS for the cache's
# current generation (Ready condition's observedGeneration == metadata.generation).
_ic_op_done() {
  local got
  got=$(ic_json "$1" '{.status.reason}/{.status.status}/{.metadata.generation}/{.status.conditions[?(@.type=="Ready")].observedGeneration}')
  IFS=/ read -r r s g o <<< "$got"
  [ "$r" = "$2" ] && [ "$s" = "$3" ] && [ "$g" = "$o" ]
}
ic_wait_op() {
  wait_until "${4:-120}" _ic_op_done "$1" "$2" "$3" ||
    fail "ImageCache $1: no $2 ending $3 (now: $(ic_json "$1" '{.status.reason}/{.status.status} gen {.metadata.generation}'))"
}

# ic_watch NAME: record every status the cache goes through, one "status/reason" per line, in
# $E2E_LOG.watch.NAME (stopped when the test ends). ic_seen NAME STATUS: was STATUS recorded?
ic_watch() {  # may start before the cache exists (agent mode can finish an operation within a second)
  kns get imagecaches --field-selector "metadata.name=$1" --watch -o jsonpath='{.status.status}/{.status.reason}{"\n"}' \
    > "$E2E_LOG.watch.$1" 2>/dev/null &
  defer kill $! 2>/dev/null
  sleep 0.5
}

# unreachable_image: a reference to a registry that refuses connections: its pull fails only at the
# deadline (the kubelet backs off; an agent retries it as a transient error), so an operation stays
# Processing that long in both modes
unreachable_image() { echo "$KF_HOST_IP:1/$(unique kfe2e/unreachable):1"; }
ic_seen() { grep -q "^$2/" "$E2E_LOG.watch.$1"; }
# ic_wait_seen NAME STATUS/REASON [TIMEOUT]: until ic_watch recorded that line (an operation that a later one
# may follow before a poll would see it, e.g. with a short refresh period on a loaded machine)
ic_wait_seen() {
  wait_until "${3:-120}" grep -qx "$2" "$E2E_LOG.watch.$1" ||
    fail "ImageCache $1: never $2 (seen: $(sort -u "$E2E_LOG.watch.$1" | xargs))"
}

# ic_events NAME: "type reason message" of the cache's Events
ic_events() {
  kns get events --field-selector "involvedObject.kind=ImageCache,involvedObject.name=$1" \
    -o jsonpath='{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}'
}

# nodes_with LABEL_SELECTOR / nodes_without: node names
nodes_with() { kubectl get nodes -l "$1" -o jsonpath='{.items[*].metadata.name}'; }
nodes_without() {
  local all sel n
  all=$(kubectl get nodes -o jsonpath='{.items[*].metadata.name}'); sel=" $(nodes_with "$1") "
  for n in $all; do [[ $sel == *" $n "* ]] || echo "$n"; done
}

# expect_images NODE IMAGE... / expect_no_images NODE IMAGE...
expect_images() {
  local node=$1 i; shift
  for i in "$@"; do node_has_image "$node" "$i" || fail "$i is not on $node"; done
}
expect_no_images() {
  local node=$1 i; shift
  for i in "$@"; do ! node_has_image "$node" "$i" || fail "$i is still on $node"; done
}
