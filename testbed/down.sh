#!/usr/bin/env bash
# Stops the local cluster (make cluster-down) and undoes every host change up.sh made.
#
#   testbed/down.sh [--purge]     --purge also deletes all state (etcd, node stores, registries, PKI)
#
# Only processes recorded in .cluster/run/*.pid are signalled (and only if their command line names this
# cluster's directory), plus what those processes left behind: containerd shims carrying our sockets and
# pod processes inside our cgroup tree. Works after a failed or partial up; running it twice is harmless.
# Ends with a check that nothing is left and says so.
set -euo pipefail
TAG=down
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
PURGE=0
case "${1:-}" in
  --purge) PURGE=1 ;;
  "") ;;
  *) echo "usage: testbed/down.sh [--purge]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root"
if [ ! -d "$CLUSTER_DIR" ]; then say "nothing to do: no $CLUSTER_DIR"; exit 0; fi
mkdir -p "$RUN" "$LOGS"

# ---- kubemark hollow nodes (testbed/hollow.sh), then nodes, in parallel (each spends most of its time
# waiting for containerd to exit) ---------------------------------------------------------------------------
hollow=$(hollow_stop_all); [ "$hollow" = 0 ] || say "$hollow hollow node(s) stopped"
pids=()
for d in "$CLUSTER_DIR"/nodes/rk8s-node*; do
  [ -d "$d" ] || continue
  n=${d##*rk8s-node}
  [[ $n =~ ^[0-9]+$ ]] || continue
  ( node_stop "$n"; say "node $(node_name "$n") stopped" ) & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || warn "stopping a node failed"; done

# ---- control plane, then registries ---------------------------------------------------------------
# The API server may wait for in-flight requests of clients that are gone (seen: 30 s); its state is in
# etcd, so 10 s then SIGKILL is plenty. etcd gets longer to sync its WAL.
for c in kube-proxy:10 scheduler:10 controller-manager:10 apiserver:10 etcd:30 registry:10 registry-auth:10; do
  if daemon_alive "${c%:*}"; then stop_daemon "${c%:*}" "${c#*:}"; say "${c%:*} stopped"; else rm -f "$(pidfile "${c%:*}")"; fi
done

# Last resort, for a run/ directory that was lost: a daemon of the kinds up.sh starts whose command line
# names this cluster's directory is ours by construction (each gets its config or data path there).
strays=""
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "${exe##*/}" in
    etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet|containerd|dockerd|docker-registry|kubemark) ;;
    *) continue ;;
  esac
  cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
  case "$cmd" in *"$CLUSTER_DIR/"*) ;; *) continue ;; esac
  [ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] || strays+=" ${p#/proc/}"
done
if [ -n "$strays" ]; then
  warn "stopping processes without a pid file that belong to this cluster:$strays"
  for pid in $strays; do stop_pid "$pid" 10; done
fi

# ---- host sysctls the kubelet changed (restored when the last cluster on this host goes) -------------
case "$(sysctl_restore)" in
  restored) say "host sysctls restored" ;;
  shared) say "host sysctls left to the other test bed cluster(s) still up: $(cd "$SYSCTL_DIR/users" && echo *)" ;;
esac

# ---- cgroups, network namespace, mounts, host directories ---------------------------------------------
kill_cgroup_procs "$CGROUP_ROOT"
remove_cgroup "$CGROUP_ROOT"
# Deleting the veth takes its host routes with it; deleting the namespace takes the pod bridges and
# kube-proxy's iptables rules with it (they never existed on the host).
ip link del "$HOST_VETH" 2>/dev/null || true
if [ -e "$NETNS_PATH" ]; then ip netns del "$NETNS" 2>/dev/null || umount "$NETNS_PATH" 2>/dev/null || true; rm -f "$NETNS_PATH"; fi
for _ in $(seq 50); do ip link show "$HOST_VETH" >/dev/null 2>&1 || break; sleep 0.1; done
if [ -e "$RUN/run-netns-created" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
  # Only when empty: another cluster's (or anybody's) namespace keeps it. umount without -l fails if busy.
  if grep -q ' /run/netns ' /proc/mounts; then umount /run/netns 2>/dev/null || true; fi
  rmdir /run/netns 2>/dev/null || true
fi
rm -f "$RUN/run-netns-created"
# Per-node mounts live in the nodes' private mount namespaces and vanish with them; anything visible on
# the host would be a bug, so unmount it (deepest first) and say so.
mapfile -t mnts < <(awk -v d="$CLUSTER_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
for m in "${mnts[@]}"; do warn "unmounting leftover $m"; umount -l "$m" || true; done
if [ -s "$RUN/host-dirs" ]; then
  # Only the (empty) mount-point directories up.sh created because they did not exist.
  while read -r hd; do find "$hd" -depth -type d -empty -delete 2>/dev/null || true; done < "$RUN/host-dirs"
  rm -f "$RUN/host-dirs"
fi
rm -rf "/run/kf-$cluster_id"

if [ $PURGE = 1 ]; then
  rm -rf "$CLUSTER_DIR"
  say "state purged: $CLUSTER_DIR"
fi

# ---- verify ---------------------------------------------------------------------------------------
left=""
for f in "$RUN"/*.pid "$RUN"/hollow/*.pid; do [ -e "$f" ] && left+=" pidfile:$(basename "$f")"; done
[ -z "$(cgroup_dirs "$CGROUP_ROOT")" ] || left+=" cgroup:$CGROUP_ROOT"
ip link show "$HOST_VETH" >/dev/null 2>&1 && left+=" link:$HOST_VETH"
[ -e "$NETNS_PATH" ] && left+=" netns:$NETNS"
grep -qF "$CLUSTER_DIR" /proc/mounts && left+=" mounts"
if [ -n "$left" ]; then warn "left behind:$left"; exit 1; fi
say "cluster down, nothing left behind"
