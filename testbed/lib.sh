# Shared by testbed/up.sh, down.sh and images.sh: paths, naming, timing, daemons by pid file, the
# cluster's network namespace, ports. Sourced, never run. Design and rationale: docs/testbed.md.
#
# Everything a cluster owns is named after a short id derived from its state directory, so two
# checkouts can never touch each other's processes, interfaces or cgroups:
#   network namespace  kf-<id>          (all cluster processes run inside it)
#   host veth          kfh-<id>         (peer "kfn0" inside the namespace)
#   cgroup root        /kf-<id>/rk8s-nodeN in every cgroup v1 hierarchy
# shellcheck shell=bash disable=SC2034  # the variables here are used by the scripts that source this

KF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${KF_CLUSTER_DIR:-$KF_ROOT/.cluster}
RUN=$CLUSTER_DIR/run          # pid files, saved sysctls: only meaningful while up
STATE=$CLUSTER_DIR/state      # choices that survive down/up: subnet, ports, registry password
LOGS=$CLUSTER_DIR/logs
PKI=$CLUSTER_DIR/pki
KCFG=$CLUSTER_DIR/kubeconfig

cluster_id=$(printf '%s' "$CLUSTER_DIR" | sha256sum | cut -c1-6)
NETNS=kf-$cluster_id
NETNS_PATH=/run/netns/$NETNS
HOST_VETH=kfh-$cluster_id
NS_VETH=kfn0
CGROUP_ROOT=/kf-$cluster_id
POD_CIDR=10.244.0.0/16        # node N gets 10.244.N.0/24 on bridge kfbrN
SERVICE_CIDR=10.96.0.0/16     # the `kubernetes` Service is 10.96.0.1
KUBE_SVC_IP=10.96.0.1
# Host sysctls the kubelet rewrites at every start (pkg/kubelet/cm setupKernelTunables); saved at up,
# restored at down. Network sysctls (ip_forward, route_localnet, ...) live in the namespace instead.
HOST_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
              kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# Debian's interpreter when present: a pyenv shim on PATH costs ~0.1 s per call. Stdlib only.
PYTHON=$(command -v /usr/bin/python3 || command -v python3 || echo python3)

# ---- timing and messages ---------------------------------------------------------------------------
now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
T0=${T0:-$(now_ms)}
TAG=${TAG:-testbed}
elapsed() { local d=$(( $(now_ms) - T0 )); printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100)); }
say() { printf '[%s %ss] %s\n' "$TAG" "$(elapsed)" "$*"; }
warn() { printf '[%s %ss] WARNING: %s\n' "$TAG" "$(elapsed)" "$*" >&2; }
die() { printf '[%s %ss] ERROR: %s\n' "$TAG" "$(elapsed)" "$*" >&2; exit 1; }

# wait_for DESC TIMEOUT_S CMD...: polls CMD every 0.2 s; dies with DESC after TIMEOUT_S.
wait_for() {
  local desc=$1 timeout=$2; shift 2
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ms)" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $desc (logs: $LOGS/)"
    sleep 0.2
  done
}

# ---- host sysctls -------------------------------------------------------------------------------------
# The values are global, so they are saved once for all test bed clusters on this host (two checkouts
# may run one each): the first up saves them, each up registers its cluster, and the down of the last
# registered cluster restores them. A lock keeps two ups/downs from interleaving.
SYSCTL_DIR=/run/kube-fledged-testbed
sysctl_save() {
  mkdir -p "$SYSCTL_DIR/users"
  (
    flock 9
    if [ ! -s "$SYSCTL_DIR/sysctl.orig" ]; then
      for k in "${HOST_SYSCTLS[@]}"; do echo "$k=$(sysctl -n "$k")"; done > "$SYSCTL_DIR/sysctl.orig.tmp"
      mv "$SYSCTL_DIR/sysctl.orig.tmp" "$SYSCTL_DIR/sysctl.orig"
    fi
    echo "$CLUSTER_DIR" > "$SYSCTL_DIR/users/$cluster_id"
  ) 9> "$SYSCTL_DIR/lock"
}
# sysctl_restore: prints "restored", "shared" (other clusters still registered) or nothing.
sysctl_restore() {
  [ -d "$SYSCTL_DIR" ] || return 0
  (
    flock 9
    rm -f "$SYSCTL_DIR/users/$cluster_id"
    if [ -n "$(ls -A "$SYSCTL_DIR/users" 2>/dev/null)" ]; then echo shared; exit 0; fi
    if [ -s "$SYSCTL_DIR/sysctl.orig" ]; then
      while IFS='=' read -r k v; do sysctl -qw "$k=$v" || echo "could not restore $k=$v" >&2; done < "$SYSCTL_DIR/sysctl.orig"
      echo restored
    fi
    rm -rf "$SYSCTL_DIR/users" "$SYSCTL_DIR/sysctl.orig"
  ) 9> "$SYSCTL_DIR/lock"
  # the last one out removes the directory (the lock file in it is harmless to lose once nobody holds it)
  if [ ! -d "$SYSCTL_DIR/users" ]; then rm -rf "$SYSCTL_DIR"; fi
}

# ---- the network namespace -------------------------------------------------------------------------
# (Output is captured before grep reads it: under pipefail, `cmd | grep -q` fails at random when grep
# exits at the first match and cmd dies of SIGPIPE.)
netns_exists() { local l; [ -e "$NETNS_PATH" ] && l=$(ip netns list 2>/dev/null) && grep -qw "$NETNS" <<< "$l"; }
# in_ns CMD...: runs CMD in the cluster's network namespace, nothing else changes (not `ip netns exec`,
# which remounts /sys and so hides /sys/fs/cgroup from the kubelet).
in_ns() { nsenter --net="$NETNS_PATH" -- "$@"; }

# ---- daemons ---------------------------------------------------------------------------------------
pidfile() { echo "$RUN/$1.pid"; }
# daemon_pid NAME: prints the pid if the recorded process is alive AND is ours (its command line
# names this cluster's directory), so a recycled pid is never mistaken for one of ours.
daemon_pid() {
  local f pid state
  f=$(pidfile "$1"); [ -s "$f" ] || return 1
  pid=$(cat "$f"); [ -d "/proc/$pid" ] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  local cmd; cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || return 1
  case "$cmd" in *"$CLUSTER_DIR"*) ;; *) return 1 ;; esac
  echo "$pid"
}
daemon_alive() { daemon_pid "$1" >/dev/null; }

# start_daemon NAME CMD...: starts CMD detached (own session, stdin /dev/null), appends its output to
# logs/NAME.log and records its pid. The pid is written by the process itself before it execs, so it
# is right even when setsid has to fork. CMD must exec its daemon (nsenter and unshare do).
start_daemon() {
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"
  printf '\n===== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >> "$LOGS/$name.log"
  rm -f "$(pidfile "$name")"
  # shellcheck disable=SC2016  # expanded by sh, not here
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$(pidfile "$name")" "$@" \
    < /dev/null >> "$LOGS/$name.log" 2>&1 &
  for _ in $(seq 50); do [ -s "$(pidfile "$name")" ] && return 0; sleep 0.02; done
  die "$name did not start (see $LOGS/$name.log)"
}

# stop_pid PID TIMEOUT_S: SIGTERM, then SIGKILL after TIMEOUT_S; returns when the pid is gone or a
# zombie (PID 1 here reaps orphans lazily).
stop_pid() {
  local pid=$1 timeout=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq $(( timeout * 10 ))); do
    pid_gone "$pid" && return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 50); do pid_gone "$pid" && return 0; sleep 0.1; done
  warn "pid $pid survived SIGKILL"
}
pid_gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# stop_daemon NAME [TIMEOUT_S]: stops the recorded process if it is ours; removes the pid file.
stop_daemon() {
  local name=$1 timeout=${2:-20} pid
  if pid=$(daemon_pid "$name"); then stop_pid "$pid" "$timeout"; fi
  rm -f "$(pidfile "$name")"
}

# ---- ports -----------------------------------------------------------------------------------------
# Chosen ports are kept in state/ports.env so URLs stay stable across down/up; a saved port is given
# up only when something else now listens on it.
declare -A KF_PORTS_TAKEN=()
# port_busy WHERE IP PORT: is PORT in use on IP (or on a wildcard address) in WHERE (host|ns)?
port_busy() {
  local where=$1 ip=$2 port=$3 out
  if [ "$where" = ns ]; then out=$(in_ns ss -Htln 2>/dev/null) || out=""; else out=$(ss -Htln 2>/dev/null) || out=""; fi
  awk -v ip="$ip" -v port="$port" '{
      n = split($4, a, ":"); p = a[n]; addr = substr($4, 1, length($4) - length(p) - 1)
      gsub(/[\[\]]/, "", addr); sub(/%.*/, "", addr)
      if (p == port && (addr == ip || addr == "0.0.0.0" || addr == "*" || addr == "::")) found = 1
    } END { exit !found }' <<< "$out"
}
# pick_port VAR WHERE IP PREFERRED: sets VAR (and saves it) to the saved port, else PREFERRED, else a
# random free port in 20000-32000 (below the ephemeral range, so an outgoing connection never steals it).
# A port whose daemon is already running is passed as KEEP=1 and never re-checked.
pick_port() {
  local var=$1 where=$2 ip=$3 pref=$4 cand saved
  saved=${!var:-}
  for cand in $saved $pref; do
    if [ "${KEEP:-0}" = 1 ] && [ "$cand" = "$saved" ]; then break; fi
    if [ -z "${KF_PORTS_TAKEN[$ip:$cand]:-}" ] && ! port_busy "$where" "$ip" "$cand"; then break; fi
    cand=""
  done
  if [ -z "$cand" ]; then
    local i
    for i in $(seq 200); do
      cand=$(( 20000 + RANDOM % 12000 ))
      [ -z "${KF_PORTS_TAKEN[$ip:$cand]:-}" ] && ! port_busy "$where" "$ip" "$cand" && break
      cand=""
    done
    [ -n "$cand" ] || die "no free port for $var"
  fi
  KF_PORTS_TAKEN[$ip:$cand]=1
  printf -v "$var" '%s' "$cand"
  state_set ports "$var" "$cand"
}

# state_set FILE KEY VALUE: records KEY=VALUE in state/FILE.env (sourced by later runs).
state_set() {
  local f=$STATE/$1.env
  mkdir -p "$STATE"; touch "$f"
  grep -v "^$2=" "$f" > "$f.tmp" || true
  printf '%s=%q\n' "$2" "$3" >> "$f.tmp"
  mv "$f.tmp" "$f"
}
state_load() { local f=$STATE/$1.env; if [ -f "$f" ]; then # shellcheck disable=SC1090
  . "$f"; fi; }

# ---- nodes -----------------------------------------------------------------------------------------
node_name() { echo "rk8s-node$1"; }
node_dir() { echo "$CLUSTER_DIR/nodes/rk8s-node$1"; }
# Sockets must fit a sockaddr_un (108 bytes, and containerd appends ".ttrpc"); deep checkouts fall back
# to a short per-cluster directory under /run.
node_socket_path() { # N FILE
  local s
  s="$(node_dir "$1")/$2"
  [ ${#s} -le 96 ] || s=/run/kf-$cluster_id/rk8s-node$1/$2
  echo "$s"
}
# node_sock N: the node's containerd. Every node has one: the kubelet's CRI on a containerd node, the
# containerd under dockerd (namespace "moby", CRI plugin off) on a Docker node.
node_sock() { node_socket_path "$1" containerd.sock; }
# node_docker_sock N: the Engine API socket of a Docker node's dockerd.
node_docker_sock() { node_socket_path "$1" docker.sock; }
# node_runtime N: containerd or docker, as the node was last started (its directory says: up.sh writes
# the file "runtime" there before it starts the node).
node_runtime() { local r; r=$(cat "$(node_dir "$1")/runtime" 2>/dev/null) || r=containerd; echo "${r:-containerd}"; }

# docker_api SOCK METHOD PATH: one Engine API call (curl on the unix socket); prints the body.
docker_api() { curl -sf --max-time 60 --unix-socket "$1" -X "$2" "http://localhost/v1.41$3"; }
# docker_rm_all SOCK: force-removes every container of a dockerd (SIGKILL, no grace): down's analogue of
# the CRI stop-all on a containerd node.
docker_rm_all() {
  local ids id
  ids=$(docker_api "$1" GET '/containers/json?all=1' | jq -r '.[].Id') || return 1
  for id in $ids; do docker_api "$1" DELETE "/containers/$id?force=1&v=1" >/dev/null || return 1; done
}

# hollow_stop_all: stops every kubemark hollow node of this cluster (testbed/hollow.sh; pids in
# run/hollow/), SIGKILL after 10 s; prints how many were running.
hollow_stop_all() {
  local pids=() f pid
  for f in "$RUN"/hollow/*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/}
    pid=$(daemon_pid "hollow/${f%.pid}") && { kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); }
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do pid_gone "$pid" && break; sleep 0.1; done
    pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$RUN"/hollow/*.pid
  echo "${#pids[@]}"
}

# ---- stopping a node (down.sh, and up.sh when a node's configuration changed) ------------------------
# kill_shims SOCK: containerd shims outlive containerd by design; ours are the ones whose command line
# carries our socket ("-address SOCK").
kill_shims() {
  local sock=$1 p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case "$(tr '\0' ' ' 2>/dev/null < "$p/cmdline")" in
      *containerd-shim*" -address $sock "*) kill -KILL "$pid" 2>/dev/null || true ;;
    esac
  done
}
# cgroup_dirs CG: the directories of cgroup CG (e.g. /kf-abc123/rk8s-node1) in every mounted hierarchy.
cgroup_dirs() { local h; for h in /sys/fs/cgroup/*/; do [ -d "$h${1#/}" ] && echo "$h${1#/}"; done; return 0; }
# kill_cgroup_procs CG: SIGKILLs every process left in CG's tree (pod processes whose shim is gone).
# Everything in there was started by our containerd for our kubelet.
kill_cgroup_procs() {
  local cg=$1 pids d
  for _ in $(seq 50); do
    pids=""
    for d in $(cgroup_dirs "$cg"); do
      pids+=" $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
    done
    pids=$(echo "$pids" | xargs -n1 2>/dev/null | sort -u | xargs)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  warn "processes left in cgroup $cg: $pids"
}
remove_cgroup() { local d; for d in $(cgroup_dirs "$1"); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; done; }

# node_stop N: kubelet first (so it restarts nothing), then every pod through CRI (containers die,
# CNI DEL runs, rootfs mounts go), then containerd, then shims and pod processes that survived.
# A Docker node: every container force-removed through dockerd (no CNI DEL: the kubelet that ran it is
# gone, so the node's IPAM allocations are dropped instead; the pods' network namespaces, and with them
# their veths, die with the containers), then dockerd, then the same as above.
node_stop() {
  local n=$1 name sock dsock docker=0
  name=$(node_name "$n"); sock=$(node_sock "$n"); dsock=$(node_docker_sock "$n")
  stop_daemon "kubelet-$name" 20
  if daemon_alive "dockerd-$name"; then
    docker=1
    timeout 90 bash -c "$(declare -f docker_api docker_rm_all); docker_rm_all '$dsock'" 2>>"$LOGS/down.log" \
      || warn "$name: removing containers through dockerd failed (see $LOGS/down.log); killing them instead"
    stop_daemon "dockerd-$name" 20
    rm -rf "$(node_dir "$n")/cni/ipam/$name"
  fi
  if [ $docker = 0 ] && daemon_alive "containerd-$name" && [ -S "$sock" ]; then
    timeout 90 "$PYTHON" "$KF_ROOT/testbed/cri.py" "$sock" stop-all >/dev/null 2>>"$LOGS/down.log" \
      || warn "$name: stopping pods through CRI failed (see $LOGS/down.log); killing them instead"
  fi
  stop_daemon "containerd-$name" 20
  kill_shims "$sock"
  kill_cgroup_procs "$CGROUP_ROOT/$name"
  remove_cgroup "$CGROUP_ROOT/$name"
}
