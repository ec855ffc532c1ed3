#!/usr/bin/env bash
# make demo: kube-fledged on a real local cluster, from a fresh Debian 12 machine, in one command.
#   1. installs what is missing (hack/deps.sh), builds (make build)
#   2. starts the local cluster, 2 nodes, node 2 labelled tier=backend (make cluster-up; kept if already up)
#   3. builds the kubefledged image without Docker and pushes it to the cluster's registry (make image)
#   4. installs kube-fledged from deploy/ as a user would (make deploy-using-yaml)
#   5. pushes three demo images to the local registry (testbed/images.sh gen)
#   6. creates the sample ImageCache (deploy/kubefledged-imagecache.yaml: one list for every node, one for
#      tier=backend) with its images swapped for the local ones, and waits for its final status
#   7. prints `kubectl get imagecaches`, the status, and a node x image table read from each node's
#      containerd image store (ctr), then how to go on and how to clean up
# The cluster and kube-fledged stay up. Timings of every step are printed as [demo Ns], and at the end.
#   DEMO_NODES=2 DEMO_NODE_LABELS='2:tier=backend'   the cluster (defaults shown)
#   KF_CLUSTER_DIR=/tmp/x                            a second cluster beside .cluster (see docs/testbed.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER=${KF_CLUSTER_DIR:-$ROOT/.cluster}
NS=kube-fledged
IC=imagecache1

T0=$SECONDS
timings=()
step_t0=$SECONDS
end_step() { [ -z "${step_name:-}" ] || timings+=("$(printf '  %-20s %5ds' "$step_name" $((SECONDS - step_t0)))"); }
step() { # NAME WHAT: starts a step (and closes the previous one)
  end_step
  step_name=$1 step_t0=$SECONDS
  printf '\n\033[1m[demo %3ds] %s\033[0m\n' $((SECONDS - T0)) "$2"
}
on_exit() {
  local rc=$?
  [ "$rc" = 0 ] || echo "demo: failed in step \"${step_name:-}\" (exit $rc); the cluster is left as it is (make cluster-down stops it)" >&2
}
trap on_exit EXIT

step deps "dependencies (hack/deps.sh)"
hack/deps.sh
step build "build (make build)"
make --no-print-directory build >/dev/null
version=$(build/src/kubefledged version)
echo "built ${version%%$'\n'*}"

step cluster-up "local cluster (make cluster-up)"
make --no-print-directory cluster-up NODES="${DEMO_NODES:-2}" NODE_LABELS="${DEMO_NODE_LABELS:-2:tier=backend}"
# shellcheck disable=SC1091
. "$CLUSTER/env"
kubectl get nodes -L tier

step image "image without Docker (make image)"
make --no-print-directory image | sed '/Built target/d'

step deploy-using-yaml "kube-fledged from deploy/ (make deploy-using-yaml)"
make --no-print-directory deploy-using-yaml

step demo-images "demo images in the local registry (testbed/images.sh gen)"
# the sample's three images, by the same names, from the local registry
nginx=$(testbed/images.sh gen demo/nginx 1 1.23.1)
cassandra=$(testbed/images.sh gen demo/cassandra 1 v7)
etcd=$(testbed/images.sh gen demo/etcd 1 3.5.4-0)
printf '  %s\n' "$nginx" "$cassandra" "$etcd"

step imagecache "the sample ImageCache (deploy/kubefledged-imagecache.yaml, local images), until its final status"
# A cache left by an earlier demo is purged (its images leave the nodes) and deleted, so that this run
# shows a fresh create with real pulls.
if kubectl -n "$NS" get imagecache "$IC" >/dev/null 2>&1; then
  echo "purging and deleting the $IC of an earlier demo"
  kubectl -n "$NS" annotate imagecache "$IC" kubefledged.io/purge-imagecache= >/dev/null
  for _ in $(seq 240); do
    [ "$(kubectl -n "$NS" get imagecache "$IC" -o jsonpath='{.status.reason}/{.status.status}')" != ImageCachePurge/Succeeded ] || break
    sleep 0.5
  done
  kubectl -n "$NS" delete imagecache "$IC" >/dev/null
fi
sample=$(sed -e "s|ghcr.io/jitesoft/nginx:1.23.1|$nginx|" -e "s|us.gcr.io/k8s-artifacts-prod/cassandra:v7|$cassandra|" \
  -e "s|us.gcr.io/k8s-artifacts-prod/etcd:3.5.4-0|$etcd|" -e '/^#/d' deploy/kubefledged-imagecache.yaml)
echo "$sample"
kubectl apply -f - <<< "$sample"
t_create=$SECONDS
final=
while [ $((SECONDS - t_create)) -lt 300 ]; do
  final=$(kubectl -n "$NS" get imagecache "$IC" -o jsonpath='{.status.status}')
  case $final in Succeeded|Failed|NoImagesPulledOrDeleted|Aborted) break ;; esac
  sleep 0.5
done
echo "final status $final, $((SECONDS - t_create)) s after kubectl apply"

step result "result"
echo "$ kubectl get imagecaches -A"
kubectl get imagecaches -A
echo
echo "$ kubectl -n $NS get imagecache $IC -o yaml   (status)"
kubectl -n "$NS" get imagecache "$IC" -o yaml | sed -n '/^status:/,$p'
echo
mode=$(kubectl -n "$NS" get deploy kubefledged-controller -o json | jq -r '.spec.template.spec.containers[0].args[] | select(startswith("--mode=")) | sub("--mode="; "")' 2>/dev/null)
echo "controller mode: ${mode:-jobs}"
if [ "${mode:-jobs}" = agent ]; then
  echo
  echo "$ kubectl get nodeimagecaches   (one per node: spec by the controller, status by the node's agent)"
  kubectl get nodeimagecaches
  echo
  echo "$ kubectl get nodeimagecaches -o custom-columns=...   (what each agent reports, per image)"
  kubectl get nodeimagecaches -o json | jq -r '.items[] | .metadata.name as $n | (.status.images // [])[] |
    "  \($n)  \(.state)  \(.image | sub("^[^/]*/"; ""))  \(.digest // "" | .[0:19])  \((.sizeBytes // 0) / 1024 | floor) KiB"'
  echo "  (kubectl get pods -A: no pod was made to cache an image; the agent DaemonSet pulled through each runtime)"
fi
echo
echo "images in each node's containerd store (ctr -a \$NODEn_CRI_SOCKET -n k8s.io images ls -q):"
images=("$nginx" "$cassandra" "$etcd")
printf '  %-12s' node
for i in "${images[@]}"; do printf ' %-34s' "${i#*/}"; done
printf '\n'
for (( n = 1; n <= KF_NODE_COUNT; n++ )); do
  name_v=NODE${n}_NAME sock_v=NODE${n}_CRI_SOCKET
  have=$(ctr -a "${!sock_v}" -n k8s.io images ls -q)
  labels=$(kubectl get node "${!name_v}" -o jsonpath='{.metadata.labels.tier}')
  printf '  %-12s' "${!name_v}"
  for i in "${images[@]}"; do
    if grep -qxF -- "$i" <<< "$have"; then printf ' %-34s' cached; else printf ' %-34s' -; fi
  done
  printf '  %s\n' "${labels:+tier=$labels}"
done
[ "$final" = Succeeded ] || { echo "demo: the ImageCache ended $final" >&2; exit 1; }

end_step
cat <<EOT

Timings:
$(printf '%s\n' "${timings[@]}")
$(printf '  %-20s %5ds' total $((SECONDS - T0)))

kube-fledged is running on the local cluster. Go on with:
  . ${CLUSTER/#$ROOT\//}/env   # KUBECONFIG, PATH with kubectl v1.20.2, REGISTRY, NODE1_CRI_SOCKET, ...
  # add or remove images; refresh now; delete the images from the nodes; what the controller did:
  kubectl -n $NS edit imagecache $IC
  kubectl -n $NS annotate imagecache $IC kubefledged.io/refresh-imagecache=
  kubectl -n $NS annotate imagecache $IC kubefledged.io/purge-imagecache=
  kubectl -n $NS logs deploy/kubefledged-controller
  kubectl get nodeimagecaches -o yaml   # agent mode: each node's images, as its agent reports them
  testbed/images.sh gen demo/app 5   # more images to cache
Clean up:
  make remove-kubefledged   # kube-fledged and its CRD (so every ImageCache); cached images stay on the nodes
  make cluster-down         # the whole cluster: every process, mount, interface and cgroup it made
EOT
