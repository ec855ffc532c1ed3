# Helpers for end-to-end test cases (tests/e2e/cases/*.sh), sourced by tests/e2e/run.sh into every test.
#
# A case file defines functions named test_*. Each runs in its own bash process with `set -euo pipefail`,
# .cluster/env sourced (KUBECONFIG, REGISTRY, NODE1_NAME, ... see docs/testbed.md), a fresh namespace
# $E2E_NS (created before, deleted after, even on failure) and its output going to $E2E_LOG
# (build/e2e-logs/<case>.<test>.log). A test passes by returning, fails on any failing command.
#
#   fail MSG                        fail the test now
#   skip MSG                        end the test as skipped (exit 77)
#   log MSG                         timestamped line in the test log
#   assert_eq EXPECTED ACTUAL [MSG]
#   assert_contains HAYSTACK NEEDLE [MSG]
#   assert_not_contains HAYSTACK NEEDLE [MSG]
#   wait_until TIMEOUT_S CMD...     run CMD every 0.5 s until it succeeds; returns 1 (fails the test)
#                                   after TIMEOUT_S seconds. CMD's output is discarded.
#   defer CMD...                    run CMD when the test ends, pass or fail (last registered runs first)
#   kns ARGS...                     kubectl -n "$E2E_NS" ARGS...
#   kapply                          kubectl apply -n "$E2E_NS" -f - (manifest on stdin)
#   unique NAME                     NAME-<6 random lowercase chars>, for fresh image names and objects
#   gen_images PREFIX COUNT [TAG]   push COUNT fresh images $REGISTRY/PREFIX-001:TAG ... (testbed/images.sh gen);
#                                   prints the references, one per line
#   node_sock NODE                  the runtime socket of NODE (a name like rk8s-node2, or an index):
#                                   containerd's, or dockerd's on a Docker node (NODEn_CRI_SOCKET)
#   node_runtime NODE               containerd or docker (NODEn_RUNTIME)
#   node_images NODE                image references in NODE's image store, sorted: containerd's (namespace
#                                   k8s.io) or dockerd's (tags, repo@sha256 digests, image ids)
#   node_has_image NODE IMAGE       true if IMAGE (full reference, e.g. $REGISTRY/busybox:1) is on NODE
#   node_rmi NODE IMAGE             remove IMAGE from NODE the way crictl rmi does: every reference to the
#                                   same image (tags, @sha256 digests, the config id) goes
#   cluster_stop NAME...            stop processes of the test bed (testbed/ctl.sh stop): apiserver, etcd,
#                                   controller-manager, scheduler, kube-proxy, registry, registry-auth,
#                                   kubelet-rk8s-nodeN, containerd-rk8s-nodeN. SIGKILL after 10 s.
#   cluster_start                   bring every stopped process back and wait until the cluster is ready
#                                   (testbed/ctl.sh start, i.e. testbed/up.sh); a lone kubelet or containerd
#                                   comes back alone and the node's pods keep running
#   host_service NAME PORT          Service NAME (port 3443) in $E2E_NS whose Endpoints are the host's PORT
#                                   (KF_HOST_IP): the API server reaches a webhook running on the host
#   host_vwc NAME SVC LABEL CA      ValidatingWebhookConfiguration NAME: ImageCache CREATE/UPDATE in namespaces
#                                   labelled LABEL=$E2E_NS go to Service SVC of $E2E_NS, trusting CA (base64)
#   job_complete JOB                true if Job JOB in $E2E_NS has condition Complete=True
#   pod_waiting_reasons SELECTOR    the containers' waiting reasons of pods matching SELECTOR, one per line
# shellcheck shell=bash

E2E_ROOT=${E2E_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }

assert_eq() {
  [ "$1" == "$2" ] || fail "${3:-values differ}: expected '$1', got '$2'"
}
assert_contains() {
  case "$1" in *"$2"*) ;; *) fail "${3:-missing text}: '$2' not in: $1" ;; esac
}
assert_not_contains() {
  case "$1" in *"$2"*) fail "${3:-unexpected text}: '$2' found in: $1" ;; *) ;; esac
}

wait_until() {
  local timeout=$1; shift
  local end=$(( SECONDS + timeout ))
  while true; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "wait_until: timed out after ${timeout}s: $*" >&2
      return 1
    fi
    sleep 0.5
  done
}

_E2E_DEFERRED=()
defer() {
  local q
  printf -v q '%q ' "$@"
  _E2E_DEFERRED+=("$q")
}
_e2e_run_deferred() {
  E2E_RC=$?   # the test's exit status, for deferred steps that keep evidence of a failure
  local i
  for (( i = ${#_E2E_DEFERRED[@]} - 1; i >= 0; i-- )); do
    eval "${_E2E_DEFERRED[$i]}" || echo "defer: '${_E2E_DEFERRED[$i]}' failed" >&2
  done
}

# keep_pod_logs NS: when the test is failing (from deferred steps, before an installation is removed), the
# logs of every pod of NS (kube-fledged's own, in-cluster) go to $E2E_LOG.pods.NS
keep_pod_logs() {
  [ "${E2E_RC:-0}" != 0 ] || return 0
  local p
  for p in $(kubectl -n "$1" get pods -o name 2>/dev/null); do
    echo "==== $p"; kubectl -n "$1" logs "$p" --all-containers --timestamps --tail=400 2>&1
  done > "$E2E_LOG.pods.$1" 2>&1
}

kns() { kubectl -n "$E2E_NS" "$@"; }
kapply() { kubectl apply -n "$E2E_NS" -f -; }
unique() { echo "$1-$(tr -dc a-z0-9 < /dev/urandom | head -c6)"; }
gen_images() { "$E2E_ROOT/testbed/images.sh" gen "$@" 2>/dev/null; }

# _node_var NODE FIELD: NODEi_FIELD of the node given by name or index
_node_var() {
  local node=$1 i v
  if [[ $node =~ ^[0-9]+$ ]]; then v=NODE${node}_$2; echo "${!v:?no node $node}"; return; fi
  for (( i = 1; i <= KF_NODE_COUNT; i++ )); do
    v=NODE${i}_NAME
    if [ "${!v}" = "$node" ]; then v=NODE${i}_$2; echo "${!v:-}"; return; fi
  done
  fail "no node named $node"
}
node_sock() { _node_var "$1" CRI_SOCKET; }
node_runtime() { local r; r=$(_node_var "$1" RUNTIME); echo "${r:-containerd}"; }
# _node_docker NODE ARGS...: the docker CLI (Debian's, unpacked by testbed/dockerd.sh) against NODE's dockerd
_node_docker() { local sock; sock=$(node_sock "$1"); shift; "${KF_DOCKER:-docker}" -H "unix://$sock" "$@"; }

# Output is captured before grep sees it: `ctr | grep -q` under pipefail fails at random when grep
# exits early and ctr dies of SIGPIPE.
node_images() {
  local out
  if [ "$(node_runtime "$1")" = docker ]; then
    out=$(_node_docker "$1" images --no-trunc --digests \
            --format '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}} {{.ID}}' | tr ' ' '\n' | awk '!/<none>/')
  else
    out=$(ctr -a "$(node_sock "$1")" -n k8s.io images ls -q)
  fi
  sort -u <<< "$out"
}
node_has_image() {
  local out
  out=$(node_images "$1")
  grep -qxF -- "$2" <<< "$out"
}
node_rmi() {
  local sock out digest refs id
  if [ "$(node_runtime "$1")" = docker ]; then
    id=$(_node_docker "$1" image inspect -f '{{.Id}}' "$2" 2>/dev/null) || return 0
    _node_docker "$1" rmi -f "$id" >/dev/null
    return
  fi
  sock=$(node_sock "$1")
  out=$(ctr -a "$sock" -n k8s.io images ls)
  digest=$(awk -v r="$2" '$1 == r {print $3}' <<< "$out")
  [ -n "$digest" ] || return 0
  refs=$(awk -v d="$digest" 'NR > 1 && $3 == d {print $1}' <<< "$out")
  # shellcheck disable=SC2086
  ctr -a "$sock" -n k8s.io images rm $refs >/dev/null
}

cluster_stop() { KF_CLUSTER_DIR=$CLUSTER_DIR "$E2E_ROOT/testbed/ctl.sh" stop "$@"; }
cluster_start() {
  local out=/dev/null
  [ -z "${E2E_LOG:-}" ] || out=$E2E_LOG.up
  KF_CLUSTER_DIR=$CLUSTER_DIR "$E2E_ROOT/testbed/ctl.sh" start >> "$out" 2>&1 || fail "cluster_start failed (see $out)"
}

job_complete() {
  [ "$(kns get job "$1" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')" = True ]
}
pod_waiting_reasons() {
  kns get pods -l "$1" -o jsonpath='{range .items[*]}{range .status.containerStatuses[*]}{.state.waiting.reason}{"\n"}{end}{end}'
}

host_service() {
  kubectl apply -n "$E2E_NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  ports: [{name: webhook-server, port: 3443, targetPort: $2, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: $1}
subsets:
- addresses: [{ip: $KF_HOST_IP}]
  ports: [{name: webhook-server, port: $2, protocol: TCP}]
EOF
}
host_vwc() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: $1
  labels: {app: kubefledged, kubefledged: kubefledged-webhook-server}
webhooks:
- name: validate-image-cache.kubefledged.io
  admissionReviewVersions: ["v1beta1", "v1"]
  timeoutSeconds: 5
  failurePolicy: Fail
  sideEffects: None
  namespaceSelector: {matchLabels: {$3: $E2E_NS}}
  clientConfig:
    service: {namespace: $E2E_NS, name: $2, path: /validate-image-cache, port: 3443}
    caBundle: $4
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: ["kubefledged.io"]
    apiVersions: ["v1alpha2"]
    resources: ["imagecaches"]
    scope: Namespaced
EOF
}
