#!/usr/bin/env bash
# Stop and restart single processes of the running test bed cluster, for tests of outages and restarts.
#
#   testbed/ctl.sh status               every process with its pid, or "stopped"
#   testbed/ctl.sh stop NAME...         SIGTERM, SIGKILL after 10 s (returns when it is gone)
#   testbed/ctl.sh start                bring back whatever is stopped (testbed/up.sh with the current node count)
#   testbed/ctl.sh restart NAME...      stop, then start
#
# NAME: etcd apiserver controller-manager scheduler kube-proxy registry registry-auth
#       kubelet-rk8s-nodeN containerd-rk8s-nodeN, and dockerd-rk8s-nodeN on a Docker node
# A stopped kubelet or containerd comes back alone, as on a real node: the other one and the node's pods
# keep running (the new containerd reconnects to the running shims). The same holds for dockerd on a
# Docker node (live-restore).
# After an etcd restart the running API server takes up to about 70 s to reconnect (its client backs
# off); start waits for it.
set -euo pipefail
TAG=ctl
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
[ -f "$CLUSTER_DIR/env" ] || die "no cluster in $CLUSTER_DIR"

NODE_COUNT=$(sed -n 's/^export KF_NODE_COUNT=//p' "$CLUSTER_DIR/env")
names() {
  echo etcd apiserver controller-manager scheduler kube-proxy registry registry-auth
  local n
  for n in $(seq "$NODE_COUNT"); do
    echo "containerd-rk8s-node$n kubelet-rk8s-node$n"
    [ "$(node_runtime "$n")" != docker ] || echo "dockerd-rk8s-node$n"
  done
}
check() { local n; for n in $(names); do [ "$n" = "$1" ] && return 0; done; die "unknown process '$1' (known: $(names | xargs))"; }
stop() {
  local n pid
  for n in "$@"; do check "$n"; done
  for n in "$@"; do
    if pid=$(daemon_pid "$n"); then
      stop_pid "$pid" 10
      say "$n stopped (pid $pid)"
    else
      say "$n was not running"
    fi
  done
}
start() { "$KF_ROOT/testbed/up.sh" --nodes "$NODE_COUNT"; }

case "${1:-}" in
  status)
    for n in $(names); do
      if pid=$(daemon_pid "$n"); then printf '%-24s %s\n' "$n" "$pid"; else printf '%-24s stopped\n' "$n"; fi
    done ;;
  stop) shift; [ $# -gt 0 ] || die "stop what?"; stop "$@" ;;
  start) start ;;
  restart) shift; [ $# -gt 0 ] || die "restart what?"; stop "$@"; start ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
