#!/usr/bin/env bash
# make demo (for now): installs what is missing, builds, starts the local real cluster with two nodes
# (node 2 labelled tier=backend) and shows it. The cluster stays up for you; the operator demo comes
# with the controller.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
hack/deps.sh
make --no-print-directory build
make --no-print-directory cluster-up NODES="${DEMO_NODES:-2}" NODE_LABELS="${DEMO_NODE_LABELS:-2:tier=backend}"
# shellcheck disable=SC1091
. .cluster/env
echo
kubectl get nodes -o wide --show-labels
cat <<EOT

Demo ready in $((SECONDS - t0)) s. The cluster is running; use it with:
  . .cluster/env                 # KUBECONFIG, PATH with kubectl v1.20.2, REGISTRY, NODE1_CRI_SOCKET, ...
  kubectl get nodes
  kubectl run hello --image=\$REGISTRY/busybox:1 --restart=Never -- echo hello; kubectl logs hello
  testbed/images.sh gen demo/app 5          # push 5 small images to \$REGISTRY
  make e2e                                  # end-to-end tests against it
Stop it (every process, mount, interface and cgroup it made) with:
  make cluster-down
EOT
