#!/usr/bin/env bash
# Starts the local real Kubernetes v1.20.2 cluster (make cluster-up). Design: docs/testbed.md.
#
#   testbed/up.sh [--nodes N] [--labels SPEC] [--runtimes SPEC] [--kcm-qps QPS[,BURST]]
#     --nodes N       run nodes rk8s-node1..N (default 2)
#     --labels SPEC   space-separated NODE:KEY=VALUE[,KEY=VALUE...]; NODE is an index or a name,
#                     e.g. '2:tier=backend 3:tier=backend,zone=b' or 'rk8s-node2:tier=backend'
#     --runtimes SPEC space-separated NODE:RUNTIME, RUNTIME containerd (every node's default) or docker
#                     (kubelet's dockershim on Debian's dockerd), e.g. '3:docker'
#     --kcm-qps Q[,B] kube-controller-manager's --kube-api-qps (default 20) and --kube-api-burst (default
#                     30, or 1.5 x Q): Job throughput for scale runs; "default" resets
#
# Idempotent: components already running are kept, missing nodes are added, labels re-applied; a node
# whose runtime changed, or a controller-manager whose QPS changed, is restarted. --labels, --runtimes
# and --kcm-qps are remembered (.cluster/state/) and apply to later runs that do not give them.
# All state is under .cluster/ (KF_CLUSTER_DIR overrides); .cluster/env is the contract for tests.
# Stop with testbed/down.sh.
set -euo pipefail
TAG=up
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=testbed/pki.sh
. "$KF_ROOT/testbed/pki.sh"

usage() { sed -n '2,18p' "$0" >&2; exit 2; }
NODES=2 LABELS="" RUNTIMES_ARG="-" KCM_QPS_ARG=""
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) NODES=${2:?}; shift 2 ;;
    --nodes=*) NODES=${1#*=}; shift ;;
    --labels) LABELS=${2-}; shift 2 ;;
    --labels=*) LABELS=${1#*=}; shift ;;
    --runtimes) RUNTIMES_ARG=${2-}; shift 2 ;;
    --runtimes=*) RUNTIMES_ARG=${1#*=}; shift ;;
    --kcm-qps) KCM_QPS_ARG=${2:?}; shift 2 ;;
    --kcm-qps=*) KCM_QPS_ARG=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "up.sh: unknown argument $1" >&2; usage ;;
  esac
done
if ! [[ $NODES =~ ^[1-9][0-9]*$ ]] || [ "$NODES" -gt 100 ]; then die "--nodes must be 1..100"; fi
[ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet, network namespaces)"
for c in etcd containerd runc docker-registry htpasswd ctr nsenter unshare ip iptables curl openssl python3 cc jq; do
  command -v "$c" >/dev/null || die "missing command $c: run hack/deps.sh"
done
mkdir -p "$RUN" "$STATE" "$LOGS" "$CLUSTER_DIR/nodes"
exec > >(tee -a "$LOGS/up.log") 2>&1
# A failed up leaves what it started running, for inspection; down stops it.
on_exit() {
  local rc=$?
  [ $rc = 0 ] || echo "[up] FAILED (exit $rc): the cluster is partly up; logs in $LOGS/; stop it with make cluster-down" >&2
}
trap on_exit EXIT
say "cluster dir $CLUSTER_DIR (id $cluster_id)"

# Nodes already running beyond --nodes stay up and stay in the env file.
for d in "$CLUSTER_DIR"/nodes/rk8s-node*; do
  [ -d "$d" ] || continue
  n=${d##*rk8s-node}
  if [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt "$NODES" ] && daemon_alive "kubelet-rk8s-node$n"; then NODES=$n; fi
done

# Node runtimes: given, remembered; not given (an empty spec counts as given), the remembered ones. A node
# not named runs containerd. Checked here, before anything starts.
if [ "$RUNTIMES_ARG" != - ]; then state_set runtimes RUNTIMES "$RUNTIMES_ARG"; RUNTIMES=$RUNTIMES_ARG
else RUNTIMES=""; state_load runtimes; fi
declare -A NODE_RT=()
for spec in $RUNTIMES; do
  node=${spec%%:*} rt=${spec#*:}
  [ "$node" != "$spec" ] || die "bad runtime spec '$spec' (want NODE:RUNTIME, e.g. 2:docker)"
  case $rt in containerd|docker) ;; *) die "runtime spec '$spec': unknown runtime '$rt' (containerd or docker)" ;; esac
  [[ $node =~ ^rk8s-node([0-9]+)$ ]] && node=${BASH_REMATCH[1]}
  [[ $node =~ ^[1-9][0-9]*$ ]] || die "runtime spec '$spec': no node '$node' (an index or rk8s-nodeN)"
  if [ "$node" -gt "$NODES" ]; then
    [ "$RUNTIMES_ARG" = - ] && continue   # remembered from a run with more nodes
    die "runtime spec '$spec': no node $node in this cluster (1..$NODES)"
  fi
  NODE_RT[$node]=$rt
done
node_rt() { echo "${NODE_RT[$1]:-containerd}"; }
# dockerd for Docker nodes: testbed/dockerd.sh once (it asks apt for the candidate version, 2 to 30 s on a
# busy machine), then the path remembered while it exists.
DOCKERD=""
for n in $(seq "$NODES"); do
  [ "$(node_rt "$n")" = docker ] || continue
  state_load docker
  if [ ! -x "$DOCKERD" ]; then
    DOCKERD=$("$KF_ROOT/testbed/dockerd.sh") || die "no dockerd for the Docker node(s): testbed/dockerd.sh failed"
    state_set docker DOCKERD "$DOCKERD"
  fi
  break
done

# kube-controller-manager's client rate limit, remembered like the specs above.
if [ -n "$KCM_QPS_ARG" ]; then state_set kcm KCM_QPS "$KCM_QPS_ARG"; KCM_QPS=$KCM_QPS_ARG
else KCM_QPS=default; state_load kcm; fi
case $KCM_QPS in
  default) KCM_FLAGS=() ;;
  *) [[ $KCM_QPS =~ ^([1-9][0-9]*)(,([1-9][0-9]*))?$ ]] || die "--kcm-qps '$KCM_QPS': want QPS or QPS,BURST (positive integers) or default"
     KCM_FLAGS=(--kube-api-qps="${BASH_REMATCH[1]}" --kube-api-burst="${BASH_REMATCH[3]:-$(( BASH_REMATCH[1] * 3 / 2 ))}") ;;
esac

# ---- 1. Kubernetes binaries (built once, cached by source version and recipe) -----------------------
K8S_BIN=$("$KF_ROOT/testbed/build-k8s.sh" 2> >(tee -a "$LOGS/build-k8s.log" >&2))
[ -x "$K8S_BIN/kube-apiserver" ] || die "build-k8s.sh gave no binaries"
say "kubernetes binaries: $K8S_BIN"

# ---- 2. network namespace -----------------------------------------------------------------------------
subnet_used() { local a; a=$(ip -4 -o addr show; ip -4 route show); grep -q "10\.240\.$1\." <<< "$a"; }
net_up() {
  state_load net
  if netns_exists && ! ip link show "$HOST_VETH" >/dev/null 2>&1; then
    daemon_alive apiserver && die "namespace $NETNS lost its veth while running: run testbed/down.sh first"
    ip netns del "$NETNS"
  fi
  if ! netns_exists; then
    local o=${NET_OCTET:-}
    if [ -z "$o" ] || subnet_used "$o"; then
      for o in $(seq 1 250); do subnet_used "$o" || break; done
    fi
    state_set net NET_OCTET "$o"; NET_OCTET=$o
    # iproute2 makes /run/netns (a bind mount of itself) on first use; down undoes that if it was us.
    [ -d /run/netns ] || touch "$RUN/run-netns-created"
    ip netns add "$NETNS"
    ip link add "$HOST_VETH" type veth peer name "$NS_VETH" netns "$NETNS"
    ip addr add "10.240.$o.1/24" dev "$HOST_VETH"
    ip link set "$HOST_VETH" up
    in_ns ip link set lo up
    in_ns ip link set "$NS_VETH" up
    in_ns ip addr add "10.240.$o.2/24" dev "$NS_VETH"
    # Forwarding between pod bridges and the veth, inside the namespace only: the host is untouched.
    in_ns sysctl -qw net.ipv4.ip_forward=1
    # Host -> pods and Services (handy for debugging); a second cluster on the host skips them.
    local cidr
    for cidr in "$POD_CIDR" "$SERVICE_CIDR"; do
      if [ -z "$(ip -4 route show "$cidr")" ]; then ip route add "$cidr" via "10.240.$o.2" dev "$HOST_VETH"
      else warn "host route for $cidr exists already; this cluster's $cidr is reachable only from inside"; fi
    done
  fi
  HOST_IP=10.240.$NET_OCTET.1
  API_IP=10.240.$NET_OCTET.2
  local n ip have
  for n in $(seq "$NODES"); do
    ip=10.240.$NET_OCTET.$((10 + n))
    have=$(in_ns ip -4 -o addr show dev "$NS_VETH")
    grep -qF " $ip/" <<< "$have" || in_ns ip addr add "$ip/24" dev "$NS_VETH"
  done
}
net_up
node_ip() { echo "10.240.$NET_OCTET.$((10 + $1))"; }
say "network namespace $NETNS: host $HOST_IP, api $API_IP, nodes $(node_ip 1)..$(node_ip "$NODES")"

# ---- 3. host sysctls the kubelet will change: saved before the first kubelet of any cluster ---------
sysctl_save

# ---- 4. ports ------------------------------------------------------------------------------------------
state_load ports
KEEP=0; daemon_alive registry && KEEP=1; KEEP=$KEEP pick_port REGISTRY_PORT host "$HOST_IP" 5000
KEEP=0; daemon_alive registry-auth && KEEP=1; KEEP=$KEEP pick_port REGISTRY_AUTH_PORT host "$HOST_IP" 5001
KEEP=0; daemon_alive etcd && KEEP=1
KEEP=$KEEP pick_port ETCD_PORT ns 127.0.0.1 2379
KEEP=$KEEP pick_port ETCD_PEER_PORT ns 127.0.0.1 2380
KEEP=0; daemon_alive apiserver && KEEP=1; KEEP=$KEEP pick_port APISERVER_PORT ns "$API_IP" 6443
KEEP=0; daemon_alive controller-manager && KEEP=1; KEEP=$KEEP pick_port CM_PORT ns 127.0.0.1 10257
KEEP=0; daemon_alive scheduler && KEEP=1; KEEP=$KEEP pick_port SCHED_PORT ns 127.0.0.1 10259
KEEP=0; daemon_alive kube-proxy && KEEP=1
KEEP=$KEEP pick_port PROXY_METRICS_PORT ns 127.0.0.1 10249
KEEP=$KEEP pick_port PROXY_HEALTHZ_PORT ns "$API_IP" 10256
for n in $(seq "$NODES"); do
  KEEP=0; daemon_alive "kubelet-rk8s-node$n" && KEEP=1
  KEEP=$KEEP pick_port "KUBELET_PORT_$n" ns "$(node_ip "$n")" 10250
  KEEP=$KEEP pick_port "KUBELET_HEALTHZ_PORT_$n" ns "$(node_ip "$n")" 10248
done
REGISTRY=$HOST_IP:$REGISTRY_PORT
REGISTRY_AUTH=$HOST_IP:$REGISTRY_AUTH_PORT
APISERVER_URL=https://$API_IP:$APISERVER_PORT
say "ports: registry $REGISTRY_PORT, registry-auth $REGISTRY_AUTH_PORT, apiserver $APISERVER_PORT, etcd $ETCD_PORT"

# ---- 5. PKI and kubeconfigs ------------------------------------------------------------------------------
pki_ensure "$API_IP" "$APISERVER_PORT" "$NODES"
say "pki and kubeconfigs ready"

# ---- 6. env file: written before anything starts, so a half-up cluster can be inspected --------------
# --labels given: remembered; not given: the labels of earlier runs stay on the nodes, so the spec does too.
LABELS_SAVED=0
if [ -n "$LABELS" ]; then state_set labels LABELS "$LABELS"; else state_load labels; LABELS_SAVED=1; fi
state_load auth
if [ -z "${REGISTRY_AUTH_PASSWORD:-}" ]; then
  REGISTRY_AUTH_PASSWORD=$(openssl rand -hex 12); state_set auth REGISTRY_AUTH_PASSWORD "$REGISTRY_AUTH_PASSWORD"
fi
REGISTRY_AUTH_USER=kftest
write_env() {
  local n f=$CLUSTER_DIR/env
  {
    echo "# Written by testbed/up.sh; source it: . .cluster/env   (contract: docs/testbed.md)"
    printf 'export CLUSTER_DIR=%q\n' "$CLUSTER_DIR"
    printf 'export KUBECONFIG=%q\n' "$KCFG/admin.conf"
    printf 'export K8S_BIN=%q\n' "$K8S_BIN"
    # shellcheck disable=SC2016
    printf 'case ":$PATH:" in *":$K8S_BIN:"*) ;; *) export PATH="$K8S_BIN:$PATH" ;; esac\n'
    printf 'export APISERVER_URL=%q\n' "$APISERVER_URL"
    printf 'export REGISTRY=%q\n' "$REGISTRY"
    printf 'export REGISTRY_AUTH=%q\n' "$REGISTRY_AUTH"
    printf 'export REGISTRY_AUTH_USER=%q\n' "$REGISTRY_AUTH_USER"
    printf 'export REGISTRY_AUTH_PASSWORD=%q\n' "$REGISTRY_AUTH_PASSWORD"
    printf 'export KF_CA_CERT=%q\n' "$PKI/ca.crt"
    printf 'export KF_NETNS=%q\n' "$NETNS"
    printf 'export KF_HOST_IP=%q\n' "$HOST_IP"
    printf 'export KF_POD_CIDR=%q\n' "$POD_CIDR"
    printf 'export KF_SERVICE_CIDR=%q\n' "$SERVICE_CIDR"
    printf 'export KF_NODE_COUNT=%q\n' "$NODES"
    printf 'export KF_NODE_LABELS=%q\n' "$LABELS"
    printf 'export KF_NODE_RUNTIMES=%q\n' "$RUNTIMES"
    [ -z "$DOCKERD" ] || printf 'export KF_DOCKER=%q\n' "$(dirname "$DOCKERD")/../bin/docker"
    printf 'export KF_NODES="%s"\n' "$(for n in $(seq "$NODES"); do node_name "$n"; done | xargs)"
    for n in $(seq "$NODES"); do
      printf 'export NODE%d_NAME=%q\n' "$n" "$(node_name "$n")"
      printf 'export NODE%d_RUNTIME=%q\n' "$n" "$(node_rt "$n")"
      printf 'export NODE%d_CRI_SOCKET=%q\n' "$n" "$(node_cri_sock "$n")"
      printf 'export NODE%d_IP=%q\n' "$n" "$(node_ip "$n")"
    done
    printf 'export KF_BUSYBOX_IMAGE=%q\n' "$REGISTRY/busybox:1"
    printf 'export KF_PAUSE_IMAGE=%q\n' "$REGISTRY/pause:3.2"
    printf 'export KF_TOOLS_IMAGE=%q\n' "$REGISTRY/kftest/tools:1"
    printf 'export KF_NOSHELL_IMAGE=%q\n' "$REGISTRY/kftest/noshell:1"
    printf 'export KF_PRIVATE_IMAGE=%q\n' "$REGISTRY_AUTH/private/app:1"
  } > "$f.tmp"
  mv "$f.tmp" "$f"
}
node_cri_sock() { if [ "$(node_rt "$1")" = docker ]; then node_docker_sock "$1"; else node_sock "$1"; fi; }
write_env
export KUBECONFIG=$KCFG/admin.conf
kubectl() { "$K8S_BIN/kubectl" "$@"; }

# ---- 7. registries (host side of the veth: reachable from the host and from every node) -------------
start_registry() { # NAME PORT [htpasswd]
  local name=$1 port=$2 auth=${3:-} d=$CLUSTER_DIR/$1
  if daemon_alive "$name"; then return 0; fi
  mkdir -p "$d/data"
  {
    printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$d/data"
    printf '  maintenance:\n    uploadpurging:\n      enabled: false\n'
    printf 'http:\n  addr: %s\n' "$HOST_IP:$port"
    if [ -n "$auth" ]; then
      htpasswd -Bbn "$REGISTRY_AUTH_USER" "$REGISTRY_AUTH_PASSWORD" > "$d/htpasswd"
      printf 'auth:\n  htpasswd:\n    realm: kube-fledged-testbed\n    path: %s\n' "$d/htpasswd"
    fi
  } > "$d/config.yml"
  # docker-registry reads REGISTRY_<SECTION>_<KEY> variables as configuration overrides, and .cluster/env
  # exports REGISTRY, REGISTRY_AUTH, ...: a shell that sourced it would hand the registry a broken config.
  local unset=() v
  for v in $(compgen -e); do case $v in REGISTRY*) unset+=(-u "$v") ;; esac; done
  start_daemon "$name" env "${unset[@]}" docker-registry serve "$d/config.yml"
}
start_registry registry "$REGISTRY_PORT"
start_registry registry-auth "$REGISTRY_AUTH_PORT" htpasswd
registry_up() { local c; c=$(curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/"); [ "$c" = 200 ] || [ "$c" = 401 ]; }
wait_for "registry $REGISTRY" 20 registry_up "$REGISTRY"
wait_for "registry $REGISTRY_AUTH" 20 registry_up "$REGISTRY_AUTH"
say "registries up: $REGISTRY, $REGISTRY_AUTH (basic auth)"
# Images are built and pushed while the control plane starts; the kubelets wait for them (pause).
REGISTRY=$REGISTRY REGISTRY_AUTH=$REGISTRY_AUTH REGISTRY_AUTH_USER=$REGISTRY_AUTH_USER \
  REGISTRY_AUTH_PASSWORD=$REGISTRY_AUTH_PASSWORD "$KF_ROOT/testbed/images.sh" ensure > "$LOGS/images.log" 2>&1 &
images_pid=$!

# ---- 8. nodes: containerd now (it needs only the registries), kubelets after the API server -----------
# Paths the kubelet 1.20 and containerd hard-code; each node's containerd runs in its own mount namespace
# with node-local directories bound over them, and the kubelet joins that namespace (runc must see the
# kubelet's volume mounts). Mount points are created on the host only if missing (and removed at down).
HARD_CODED=(/var/log/pods:pod-logs /var/log/containers:container-logs
            /var/lib/kubelet/device-plugins:device-plugins /var/lib/cni:cni-cache /run/containerd:run-containerd
            /run/netns:netns)
# and on a Docker node: dockerd's /etc/docker (key.json, certs.d) and dockershim's checkpoints.
HARD_CODED_DOCKER=(/etc/docker:docker/etc /var/lib/dockershim:dockershim)
# (/run/netns: containerd pins each pod's network namespace with a file there; bound per node, so the host's
# `ip netns` never lists them. The cluster namespace's own /run/netns/kf-<id> is opened by nsenter before it
# enters the node's mount namespace.)
ensure_host_dir() {
  local d=$1 top=$1
  [ -d "$d" ] && return 0
  while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
  mkdir -p "$d"
  grep -qxF "$top" "$RUN/host-dirs" 2>/dev/null || echo "$top" >> "$RUN/host-dirs"
}

node_configs() { # N: writes the node's config files into $d/*.new
  local n=$1 name d sock ip reg rt
  name=$(node_name "$n"); d=$(node_dir "$n"); sock=$(node_sock "$n"); ip=$(node_ip "$n"); rt=$(node_rt "$n")
  mkdir -p "$d"/{containerd/root,containerd/state,containerd/opt,runc,cni/net.d,cni/ipam,certs.d,kubelet/pki} \
           "$d"/{pod-logs,container-logs,device-plugins,cni-cache,run-containerd,netns} "$(dirname "$sock")"
  echo "$rt" > "$d/runtime.new"
  if [ "$rt" = docker ]; then
    mkdir -p "$d"/docker/{root,exec,etc} "$d/dockershim" "$(dirname "$(node_docker_sock "$n")")"
    # dockerd on the node's containerd (namespace moby), like Debian's docker.service does; no bridge, no
    # iptables (pods get their network from the kubelet's CNI); containers under the node's cgroup;
    # the local registries over plain HTTP; runc-oom.sh as runc (see there); live-restore, so that
    # containers outlive a dockerd restart as they outlive a containerd restart.
    jq -n --arg sock "unix://$(node_docker_sock "$n")" --arg d "$d/docker" --arg ctrd "$sock" \
          --arg cg "$CGROUP_ROOT/$name/docker" --arg r1 "$REGISTRY" --arg r2 "$REGISTRY_AUTH" \
          --arg runc "$KF_ROOT/testbed/runc-oom.sh" '{
      hosts: [$sock], "data-root": ($d + "/root"), "exec-root": ($d + "/exec"), pidfile: ($d + "/docker.pid"),
      containerd: $ctrd, bridge: "none", iptables: false, "ip-forward": false, "ip-masq": false,
      "userland-proxy": false, "insecure-registries": [$r1, $r2], "exec-opts": ["native.cgroupdriver=cgroupfs"],
      "cgroup-parent": $cg, "storage-driver": "overlay2", "oom-score-adjust": 0, "live-restore": true,
      runtimes: {"kf-runc": {path: $runc}}, "default-runtime": "kf-runc", "log-level": "warn"}' \
      > "$d/docker/daemon.json.new"
  fi
  for reg in "$REGISTRY" "$REGISTRY_AUTH"; do
    mkdir -p "$d/certs.d/$reg"
    printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$reg" "$reg" \
      > "$d/certs.d/$reg/hosts.toml"
  done
  cat > "$d/containerd.toml.new" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$sock"
[debug]
  level = "info"
$([ "$rt" = docker ] && echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]   # dockerd is the CRI here (dockershim)')
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/containerd/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$REGISTRY/pause:3.2"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_apparmor = true
    # This VM's root lacks CAP_SYS_RESOURCE: oom_score_adj below our own (0) would fail every sandbox.
    restrict_oom_score_adj = true
    enable_selinux = false
    max_container_log_line_size = 16384
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "/usr/sbin/runc"
          Root = "$d/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$d/cni/net.d"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$d/certs.d"
EOF
  # The bridge is the pods' default gateway (10.244.N.1), so pods reach Services, other nodes' pods,
  # the API server and the registries through the namespace's routing and kube-proxy's rules.
  cat > "$d/cni/net.d/10-$name.conflist.new" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge", "bridge": "kfbr$n", "isGateway": true, "isDefaultGateway": true,
      "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{"subnet": "10.244.$n.0/24", "gateway": "10.244.$n.1"}]],
                "dataDir": "$d/cni/ipam" }
    },
    { "type": "portmap", "capabilities": {"portMappings": true} }
  ]
}
EOF
  local kp=KUBELET_PORT_$n hp=KUBELET_HEALTHZ_PORT_$n
  cat > "$d/kubelet-config.yaml.new" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: ${!kp}
readOnlyPort: 0
healthzBindAddress: $ip
healthzPort: ${!hp}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT/$name
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podCIDR: 10.244.$n.0/24
maxPods: 110
serializeImagePulls: false
# Never garbage-collect images: an image cache test bed must not lose images behind its back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
runtimeRequestTimeout: 5m
nodeStatusUpdateFrequency: 4s
EOF
}

# Installs the .new files; prints "changed" if any differed from the installed one.
install_configs() {
  local f changed=""
  for f in "$@"; do
    if ! cmp -s "$f.new" "$f"; then mv "$f.new" "$f"; changed=changed; else rm -f "$f.new"; fi
  done
  echo "$changed"
}

setup_cgroups() { # N: the kubelet insists that cgroupRoot exists in every hierarchy
  local name h dir
  name=$(node_name "$1")
  for h in /sys/fs/cgroup/*/; do
    for dir in "$h${CGROUP_ROOT#/}" "$h${CGROUP_ROOT#/}/$name"; do
      [ -d "$dir" ] || mkdir "$dir"
      if [ -f "$dir/cpuset.cpus" ] && [ -z "$(cat "$dir/cpuset.cpus")" ]; then
        cat "$(dirname "$dir")/cpuset.cpus" > "$dir/cpuset.cpus"
        cat "$(dirname "$dir")/cpuset.mems" > "$dir/cpuset.mems"
      fi
    done
  done
}

start_containerd() { # N
  local n=$1 name d binds="" pair extra=()
  name=$(node_name "$n"); d=$(node_dir "$n")
  [ "$(node_rt "$n")" != docker ] || extra=("${HARD_CODED_DOCKER[@]}")
  for pair in "${HARD_CODED[@]}" "${extra[@]}"; do
    ensure_host_dir "${pair%%:*}"
    binds+="mount --bind '$d/${pair#*:}' '${pair%%:*}' && "
  done
  start_daemon "containerd-$name" nsenter --net="$NETNS_PATH" -- unshare -m --propagation slave \
    sh -c "${binds}exec containerd --config '$d/containerd.toml'"
}

# restart_containerd N KUBELET_PID: a new containerd in the mount namespace the kubelet still holds (the
# bind mounts are there); it finds its shims and containers again through the node-local /run/containerd.
restart_containerd() {
  local n=$1 kpid=$2 name d
  name=$(node_name "$n"); d=$(node_dir "$n")
  start_daemon "containerd-$name" nsenter --mount="/proc/$kpid/ns/mnt" --net="$NETNS_PATH" -- \
    containerd --config "$d/containerd.toml"
}

# start_dockerd N: a Docker node's dockerd, in the mount namespace of its containerd (the node-local binds
# are there, and the kubelet joins it too).
start_dockerd() {
  local n=$1 name d cpid
  name=$(node_name "$n"); d=$(node_dir "$n")
  cpid=$(daemon_pid "containerd-$name") || die "containerd of $name is not running"
  rm -f "$d/docker/docker.pid"   # left by a dockerd that was killed; it refuses to start otherwise
  start_daemon "dockerd-$name" nsenter --mount="/proc/$cpid/ns/mnt" --net="$NETNS_PATH" -- \
    env PATH="$(dirname "$DOCKERD"):$PATH" "$DOCKERD" --config-file="$d/docker/daemon.json"
}

start_kubelet() { # N
  local n=$1 name d cpid rtflags
  name=$(node_name "$n"); d=$(node_dir "$n")
  cpid=$(daemon_pid "containerd-$name") || die "containerd of $name is not running"
  if [ "$(node_rt "$n")" = docker ]; then
    # kubelet 1.20's built-in dockershim serves CRI on its own socket and drives dockerd; pod networks
    # come from the same CNI config as on a containerd node.
    rtflags=(--container-runtime=docker --docker-endpoint="unix://$(node_docker_sock "$n")"
             --docker="unix://$(node_docker_sock "$n")" --container-runtime-endpoint="unix://$(node_socket_path "$n" dockershim.sock)"
             --network-plugin=cni --cni-conf-dir="$d/cni/net.d" --cni-bin-dir=/usr/lib/cni --cni-cache-dir="$d/cni-cache")
  else
    rtflags=(--container-runtime=remote --container-runtime-endpoint="unix://$(node_sock "$n")" --containerd="$(node_sock "$n")")
  fi
  start_daemon "kubelet-$name" nsenter --mount="/proc/$cpid/ns/mnt" --net="$NETNS_PATH" -- "$K8S_BIN/kubelet" \
    --config="$d/kubelet-config.yaml" --kubeconfig="$KCFG/$name.conf" \
    --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" --hostname-override="$name" --node-ip="$(node_ip "$n")" \
    "${rtflags[@]}" --pod-infra-container-image="$REGISTRY/pause:3.2" \
    --oom-score-adj=0 --v=1
}

for n in $(seq "$NODES"); do
  name=$(node_name "$n"); d=$(node_dir "$n")
  node_configs "$n"
  cfgs=("$d/runtime" "$d/containerd.toml" "$d/cni/net.d/10-$name.conflist" "$d/kubelet-config.yaml")
  [ "$(node_rt "$n")" != docker ] || cfgs+=("$d/docker/daemon.json")
  changed=$(install_configs "${cfgs[@]}")
  if [ -n "$changed" ] && { daemon_alive "containerd-$name" || daemon_alive "kubelet-$name" || daemon_alive "dockerd-$name"; }; then
    say "$name: configuration changed, restarting it"; node_stop "$n"
  fi
  # The kubelet lives in containerd's mount namespace. One of them alone was stopped (testbed/ctl.sh, a
  # test): restart just that one, as on a real node; pods keep running. Both gone: clean up, start fresh.
  if daemon_alive "containerd-$name"; then continue; fi
  if kpid=$(daemon_pid "kubelet-$name"); then
    restart_containerd "$n" "$kpid"; continue
  fi
  node_stop "$n"
  setup_cgroups "$n"
  start_containerd "$n"
done
# dockerd on Docker nodes (a lone dockerd that was stopped comes back alone: its containers kept running
# (live-restore) and the kubelet's dockershim reconnects).
dockers=()
for n in $(seq "$NODES"); do
  [ "$(node_rt "$n")" = docker ] || continue
  dockers+=("$n")
  name=$(node_name "$n")
  daemon_alive "dockerd-$name" && continue
  wait_for "containerd of $name" 30 ctr -a "$(node_sock "$n")" version
  start_dockerd "$n"
done
say "containerd started on $NODES node(s)${dockers:+, dockerd on node(s) ${dockers[*]}}"

# ---- 9. etcd and the control plane, all inside the namespace ------------------------------------------
if ! daemon_alive etcd; then
  mkdir -p "$CLUSTER_DIR/etcd"
  start_daemon etcd nsenter --net="$NETNS_PATH" -- etcd --name kf --data-dir "$CLUSTER_DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kf=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --quota-backend-bytes 2147483648 --snapshot-count 10000 --log-level warn
fi
wait_for etcd 30 in_ns curl -sf "http://127.0.0.1:$ETCD_PORT/health"
say "etcd healthy"

P=$PKI
if ! daemon_alive apiserver; then
  start_daemon apiserver nsenter --net="$NETNS_PATH" -- "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$API_IP" --advertise-address="$API_IP" --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --enable-aggregator-routing=true \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
    --cert-dir="$CLUSTER_DIR/apiserver" --event-ttl=1h --v=1
fi
api_ready() { curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$APISERVER_URL/readyz"; }
wait_for "kube-apiserver readyz" 90 api_ready
say "kube-apiserver ready at $APISERVER_URL"

# A running controller-manager with another client rate limit than asked for is restarted (it keeps no
# state of its own: everything is in the API server).
if pid=$(daemon_pid controller-manager); then
  have=$(tr '\0' '\n' < "/proc/$pid/cmdline" | grep -- '^--kube-api-' | xargs) || true
  if [ "$have" != "${KCM_FLAGS[*]}" ]; then
    say "kube-controller-manager: client rate limit '${have:-default}' -> '${KCM_FLAGS[*]:-default}', restarting it"
    stop_daemon controller-manager 10
  fi
fi
if ! daemon_alive controller-manager; then
  start_daemon controller-manager nsenter --net="$NETNS_PATH" -- "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$KCFG/controller-manager.conf" \
    --authentication-kubeconfig="$KCFG/controller-manager.conf" --authorization-kubeconfig="$KCFG/controller-manager.conf" \
    --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 --leader-elect=false \
    --cert-dir="$CLUSTER_DIR/controller-manager" \
    --controllers='*,bootstrapsigner,tokencleaner' --use-service-account-credentials=true \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --allocate-node-cidrs=false --cluster-cidr="$POD_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" \
    --node-monitor-grace-period=40s --pod-eviction-timeout=5m "${KCM_FLAGS[@]}" --v=1
fi
if ! daemon_alive scheduler; then
  start_daemon scheduler nsenter --net="$NETNS_PATH" -- "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$KCFG/scheduler.conf" \
    --authentication-kubeconfig="$KCFG/scheduler.conf" --authorization-kubeconfig="$KCFG/scheduler.conf" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 --leader-elect=false \
    --cert-dir="$CLUSTER_DIR/scheduler" --v=1
fi
# One kube-proxy serves every node: all kubelets share this namespace and hence one set of iptables
# rules. --masquerade-all SNATs every Service connection to the bridge's address, so a pod reaching a
# pod on its own bridge through a Service gets the reply back through the same conntrack entry.
if ! daemon_alive kube-proxy; then
  start_daemon kube-proxy nsenter --net="$NETNS_PATH" -- "$K8S_BIN/kube-proxy" \
    --kubeconfig="$KCFG/kube-proxy.conf" --hostname-override=rk8s-node1 --bind-address="$API_IP" \
    --proxy-mode=iptables --masquerade-all --cluster-cidr="$POD_CIDR" \
    --metrics-bind-address="127.0.0.1:$PROXY_METRICS_PORT" --healthz-bind-address="$API_IP:$PROXY_HEALTHZ_PORT" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --oom-score-adj=0 --v=1
fi

# ---- 10. kubelets (they need the API server, and the pause image in the registry) ---------------------------
wait "$images_pid" || { cat "$LOGS/images.log"; die "test images could not be pushed"; }
say "$(tail -1 "$LOGS/images.log")"
for n in $(seq "$NODES"); do
  name=$(node_name "$n")
  daemon_alive "kubelet-$name" && continue
  wait_for "containerd of $name" 30 ctr -a "$(node_sock "$n")" version
  [ "$(node_rt "$n")" != docker ] || wait_for "dockerd of $name" 30 docker_api "$(node_docker_sock "$n")" GET /_ping
  start_kubelet "$n"
done
say "kubelets started on $NODES node(s)"

kubelet_healthy() { local v=KUBELET_HEALTHZ_PORT_$1; curl -sf "http://$(node_ip "$1"):${!v}/healthz"; }
for n in $(seq "$NODES"); do
  wait_for "kubelet $(node_name "$n") healthz" 90 kubelet_healthy "$n"
  say "kubelet $(node_name "$n") healthy"
done

# ---- 11. Ready nodes, labels, annotations -----------------------------------------------------------------
# Node objects of an earlier, larger run of this cluster (etcd keeps them): without a kubelet they stay
# NotReady forever, pods bound to them never finish, and anything that targets all nodes waits for them.
# Deleting them lets the pod GC remove their pods.
stale=$(kubectl get nodes -o name | sed -n 's|^node/rk8s-node\([0-9]*\)$|\1|p' | awk -v n="$NODES" '$1 > n {print "rk8s-node" $1}')
if [ -n "$stale" ]; then
  # shellcheck disable=SC2086
  kubectl delete node $stale >/dev/null
  say "deleted Node objects of nodes not in this cluster: ${stale//$'\n'/ }"
fi
nodes_ready() {
  local ready n
  ready=$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}') || return 1
  for n in $(seq "$NODES"); do grep -qx "$(node_name "$n")=True" <<< "$ready" || return 1; done
}
wait_for "all $NODES node(s) Ready" 120 nodes_ready
say "all $NODES node(s) Ready"

declare -A NODE_LABELS=()
for spec in $LABELS; do
  node=${spec%%:*} kv=${spec#*:}
  if [ "$node" = "$spec" ] || [ -z "$kv" ]; then die "bad label spec '$spec' (want NODE:KEY=VALUE[,KEY=VALUE])"; fi
  [[ $node =~ ^[0-9]+$ ]] && node=$(node_name "$node")
  if ! [[ $node =~ ^rk8s-node([0-9]+)$ ]] || [ "${BASH_REMATCH[1]}" -lt 1 ] || [ "${BASH_REMATCH[1]}" -gt "$NODES" ]; then
    [ $LABELS_SAVED = 1 ] && continue   # remembered from a run with more nodes
    die "label spec '$spec': no node $node in this cluster (1..$NODES)"
  fi
  NODE_LABELS[$node]+="${kv//,/ } "
done
for n in $(seq "$NODES"); do
  name=$(node_name "$n")
  kubectl annotate node "$name" --overwrite "kubeadm.alpha.kubernetes.io/cri-socket=$(node_cri_sock "$n")" >/dev/null
  # shellcheck disable=SC2086
  [ -z "${NODE_LABELS[$name]:-}" ] || kubectl label node "$name" --overwrite ${NODE_LABELS[$name]} >/dev/null
  # spec.podCIDR can be set once; kube-proxy and tools read it like on a cluster with node IPAM.
  if [ -z "$(kubectl get node "$name" -o jsonpath='{.spec.podCIDR}')" ]; then
    kubectl patch node "$name" -p "{\"spec\":{\"podCIDR\":\"10.244.$n.0/24\",\"podCIDRs\":[\"10.244.$n.0/24\"]}}" >/dev/null
  fi
done
[ -z "$LABELS" ] || say "labels applied: $LABELS"

# ---- 12. ready for workloads ---------------------------------------------------------------------------
wait_for "default ServiceAccount" 60 kubectl -n default get serviceaccount default
kube_proxy_synced() { local r; r=$(in_ns iptables -t nat -S KUBE-SERVICES 2>/dev/null) && grep -qF "$KUBE_SVC_IP/32" <<< "$r"; }
wait_for "kube-proxy rules for the kubernetes Service" 60 kube_proxy_synced
wait_for "controller-manager healthz" 30 in_ns curl -skf "https://127.0.0.1:$CM_PORT/healthz"
wait_for "scheduler healthz" 30 in_ns curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
say "cluster up: $NODES node(s), total $(elapsed)s   (. $CLUSTER_DIR/env; kubectl get nodes)"
