#!/usr/bin/env bash
# kubemark hollow nodes inside the running test bed cluster (make cluster-up), for scale runs (docs/scale.md):
# each is the real kubelet code (registration, heartbeats, pod lifecycle, status) on kubemark's fake
# container runtime, so the API server, etcd, scheduler and controller-manager see real nodes and pods.
#
#   testbed/hollow.sh up N [--labels K=V,...] [--exit-after D]   run hollow-1..hollow-N (adds the missing
#                                        ones, keeps running ones), wait until all N are Ready
#   testbed/hollow.sh down               stop every hollow node of this cluster, delete their Node objects
#   testbed/hollow.sh status             how many run, how many Nodes are Ready
#
#   --labels      extra node labels (every hollow node has kubemark=true)
#   --exit-after  a container of the fake runtime exits 0 this long after it started (Go duration, default
#                 3s; 0 = never, as in stock kubemark): what lets Jobs on hollow nodes complete
#
# Each hollow node runs in the cluster's network namespace (its kubelet adds KUBE-* iptables chains there)
# and in a mount namespace of its own with private /tmp (kubemark's root dir and its fake CRI socket
# /tmp/kubelet_remote.sock are fixed there) and /var/log/{pods,containers}. It serves on its own
# --kubelet-port (12000 + N) and authenticates as system:node:hollow-N (its own client certificate, so the
# Node authorizer and NodeRestriction treat it like any node). Pids are in .cluster/run/hollow/, logs in
# .cluster/logs/hollow/, per-node state in .cluster/hollow/; only those pids are ever stopped. The binary is
# built and cached by testbed/build-kubemark.sh. Hollow nodes have no InternalIP: kubectl logs/exec do not
# work on them. testbed/down.sh stops them too. KF_KUBEMARK=/path/to/kubemark uses that binary instead.
set -euo pipefail
TAG=hollow
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=testbed/pki.sh
. "$KF_ROOT/testbed/pki.sh"
usage() { sed -n '2,22p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (namespaces)"
[ -f "$CLUSTER_DIR/env" ] || die "no cluster in $CLUSTER_DIR: make cluster-up first"
# shellcheck disable=SC1091
. "$CLUSTER_DIR/env"
HDIR=$CLUSTER_DIR/hollow
PORT_BASE=12000

ready_count() {
  kubectl get nodes -l kubemark=true -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | grep -c '^True$' || true
}
running() { local f; for f in "$RUN"/hollow/*.pid; do [ -e "$f" ] || continue; f=${f##*/}; daemon_alive "hollow/${f%.pid}" && echo "${f%.pid}"; done; return 0; }

# node_kubeconfig NAME: a client certificate for system:node:NAME (made once, kept in pki/hollow/)
node_kubeconfig() {
  local name=$1
  mkdir -p "$PKI/hollow" "$KCFG/hollow"
  pki_leaf "hollow/$name" ca "/O=system:nodes/CN=system:node:$name" clientAuth
  [ -s "$KCFG/hollow/$name.conf" ] || write_kubeconfig "$KCFG/hollow/$name.conf" "system:node:$name" "hollow/$name" "$APISERVER_URL"
}

up() {
  local n=${1:-} labels="kubemark=true" exit_after=3s bin i name d busy
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "up: want a node count, got '${n}'"
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --labels) labels+=",${2:?}"; shift 2 ;;
      --labels=*) labels+=",${1#*=}"; shift ;;
      --exit-after) exit_after=${2:?}; shift 2 ;;
      --exit-after=*) exit_after=${1#*=}; shift ;;
      *) usage ;;
    esac
  done
  [[ $exit_after =~ ^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$|^0$ ]] || die "--exit-after '$exit_after': want a Go duration like 3s"
  if [ -n "${KF_KUBEMARK:-}" ]; then bin=$(dirname "$KF_KUBEMARK")
  else bin=$("$KF_ROOT/testbed/build-kubemark.sh" 2> >(tee -a "$LOGS/build-kubemark.log" >&2)); fi
  [ -x "$bin/kubemark" ] || die "no kubemark binary in $bin (testbed/build-kubemark.sh, or KF_KUBEMARK)"
  if [ ! -d /var/log/pods ] || [ ! -d /var/log/containers ]; then die "/var/log/pods or /var/log/containers missing: is the cluster up?"; fi
  mkdir -p "$RUN/hollow" "$LOGS/hollow" "$HDIR"
  busy=$(in_ns ss -Htln 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u | tr '\n' ' ')
  # certificates and kubeconfigs first (four openssl at a time), then every node at once
  local missing=()
  for i in $(seq "$n"); do [ -s "$KCFG/hollow/hollow-$i.conf" ] || missing+=("hollow-$i"); done
  [ ${#missing[@]} = 0 ] || printf '%s\n' "${missing[@]}" | xargs -P 4 -I{} bash -c "$(declare -f node_kubeconfig pki_leaf write_kubeconfig); PKI='$PKI' KCFG='$KCFG' APISERVER_URL='$APISERVER_URL' node_kubeconfig {}"
  local started=0
  for i in $(seq "$n"); do
    name=hollow-$i d=$HDIR/$name
    daemon_alive "hollow/$name" && continue
    [[ " $busy " != *" $((PORT_BASE + i)) "* ]] || die "port $((PORT_BASE + i)) for $name is taken in $NETNS"
    mkdir -p "$d/tmp" "$d/pod-logs" "$d/container-logs"
    # The node's directory may itself be under /tmp (a checkout in /tmp), hidden once /tmp is bound over: /tmp
    # is bound last, and the kubeconfig (self-contained) is read from the node's own /tmp, at a path that
    # still names the cluster directory (daemon_pid stops only processes whose command line does).
    kc=/tmp$KCFG/hollow/$name.conf
    mkdir -p "$d$(dirname "$kc")"
    install -m 600 "$KCFG/hollow/$name.conf" "$d$kc"
    # shellcheck disable=SC2016  # expanded by the inner sh
    start_daemon "hollow/$name" nsenter --net="$NETNS_PATH" -- unshare -m --propagation slave \
      env KF_HOLLOW_CONTAINER_EXIT_AFTER="$exit_after" sh -c \
      'mount --bind "$0/pod-logs" /var/log/pods && mount --bind "$0/container-logs" /var/log/containers &&
       mount --bind "$0/tmp" /tmp && exec "$@"' "$d" \
      "$bin/kubemark" --morph=kubelet --name="$name" --kubeconfig="$kc" \
      --kubelet-port=$((PORT_BASE + i)) --kubelet-read-only-port=0 --node-labels="$labels" --v=0
    started=$((started + 1))
  done
  say "$started hollow node(s) started ($(running | wc -l) running); waiting until $n are Ready"
  local deadline=$(( $(now_ms) + (60 + n / 4) * 1000 ))
  until [ "$(ready_count)" -ge "$n" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "only $(ready_count) of $n hollow nodes Ready (logs: $LOGS/hollow/)"
    sleep 1
  done
  say "$(ready_count) hollow node(s) Ready (labels $labels, containers exit after $exit_after)"
}

down() {
  say "$(hollow_stop_all) hollow node(s) stopped"
  # One delete-collection request: kubectl would delete them one by one (about 5 per second).
  if curl -sf -o /dev/null --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" -X DELETE \
       "$APISERVER_URL/api/v1/nodes?labelSelector=kubemark%3Dtrue"; then
    say "Node objects labelled kubemark=true deleted"
  else
    warn "could not delete the hollow Node objects (is the API server up?)"
  fi
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  status) echo "hollow nodes running: $(running | wc -l), Ready: $(ready_count)" ;;
  *) usage ;;
esac
