#!/usr/bin/env bash
# deploy.sh - installs kube-fledged into a cluster, or removes it: what the Makefile's deploy targets run.
#
#   hack/deploy.sh yaml-apply      make deploy-using-yaml: apply every manifest of deploy/ (upstream's file
#                                  and object names) in order (CRDs first), wait for the rollouts (controller,
#                                  webhook, node agent) and for the webhook's caBundle; safe to run again at
#                                  any time (an upgrade, or a repair: nothing is deleted, the webhook's CA is
#                                  kept). On the test bed the node agent also mounts the cluster directory
#                                  (its nodes' runtime sockets live there, not under /run).
#   hack/deploy.sh yaml-remove     make remove-kubefledged: delete what yaml-apply created: the webhook
#                                  configuration, the namespace kube-fledged (with the certificate Secret and
#                                  the Lease, the node agent), the cluster roles and bindings labelled
#                                  app=kubefledged, and the CRDs last (which deletes every ImageCache and
#                                  NodeImageCache in the cluster; cached images stay on the nodes)
#   hack/deploy.sh yaml-render F   print deploy/F as yaml-apply applies it (image substituted, test bed mounts)
#   hack/deploy.sh helm-lint       make helm-lint: the chart's CRD equals deploy/'s, helm lint, helm template
#                                  with the defaults and with every switch flipped
#   hack/deploy.sh helm-install    make helm-install: helm upgrade --install of charts/kube-fledged, then wait
#                                  for the webhook's caBundle
#   hack/deploy.sh helm-uninstall  make helm-uninstall: helm uninstall --wait (the CRD stays, as Helm does)
#   hack/deploy.sh helm-upgrade-from-upstream
#                                  make helm-upgrade-from-upstream: upgrade a release installed with upstream
#                                  kube-fledged's chart (or any earlier one) to charts/kube-fledged. `helm
#                                  upgrade` alone never touches nor creates CRDs, so first the chart's CRDs
#                                  replace the old (status subresource, printer columns; every ImageCache
#                                  keeps its status) or are created (NodeImageCache); then a Deployment or DaemonSet whose
#                                  selector the new chart changes (they are immutable; upstream's own
#                                  selectors are kept, so only nameOverride and the like change them) is
#                                  deleted, for helm to create it again; then
#                                  helm-install. The release's previous values are not reused: HELM_ARGS
#                                  gives the new ones, and the ones upstream's chart needed that would break
#                                  this one are named.
#
#   hack/deploy.sh operator-apply  make deploy-using-operator: the operator (deploy/kubefledged-operator/: the KubeFledged
#                                  CRD, its service account and roles, its Deployment), then a KubeFledged (the sample,
#                                  or KUBEFLEDGED_CR=file) with the image set; waits until the operator reports it
#                                  Ready (every workload available, the webhook's caBundle set). Safe to run again.
#   hack/deploy.sh operator-remove make remove-kubefledged-and-operator: deletes every KubeFledged (the operator deletes
#                                  what each installed, cluster-scoped objects included), then the operator, its CRD
#                                  and the namespace, and the CRDs of kube-fledged last, as yaml-remove (every
#                                  ImageCache goes; cached images stay on the nodes). A KubeFledged whose operator
#                                  does not answer within ROLLOUT_TIMEOUT is cleaned up by its owner label instead.
#
# IMAGE=ref    the kubefledged image for the controller, the webhook and the Jobs' helpers. yaml-apply puts
#              it in place of the placeholder docker.io/kubefledged/kubefledged:v0.1.0 on the fly (the files
#              are not edited); helm-install sets image.repository and image.tag from it. Default: on the
#              test bed $REGISTRY/kubefledged/kubefledged:$IMAGE_TAG (IMAGE_TAG=dev, pushed by make image),
#              else the placeholder (yaml) or the chart's default (helm).
# HELM_RELEASE=kube-fledged  HELM_NAMESPACE=kube-fledged  HELM_ARGS='--set ...'   for the helm-* commands
# KUBEFLEDGED_NAMESPACE=kube-fledged  KUBEFLEDGED_CR=file   for the operator-* commands (namespace of the operator and
#              of its KubeFledged, as upstream's make variable; the KubeFledged to apply instead of the sample, whose
#              image.repository and image.tag IMAGE still sets)
# The cluster: the local test bed when its env file was sourced (CLUSTER_DIR), KF_CLUSTER_DIR is set, or no
# KUBECONFIG is set and .cluster/env exists; otherwise kubectl's current context.
# ROLLOUT_TIMEOUT=180s   how long to wait for each Deployment
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPLOY=$ROOT/deploy
PLACEHOLDER=docker.io/kubefledged/kubefledged:v0.1.0
NS=kube-fledged
VWC=kubefledged-webhook-server
SECRET=kubefledged-webhook-server-cert
TIMEOUT=${ROLLOUT_TIMEOUT:-180s}

env_file=
if [ -n "${KF_CLUSTER_DIR:-}" ]; then env_file=$KF_CLUSTER_DIR/env
elif [ -n "${CLUSTER_DIR:-}" ]; then env_file=$CLUSTER_DIR/env
elif [ -z "${KUBECONFIG:-}" ] && [ -f "$ROOT/.cluster/env" ]; then env_file=$ROOT/.cluster/env
fi
if [ -n "$env_file" ]; then
  [ -f "$env_file" ] || { echo "deploy: no $env_file: start the test bed first (make cluster-up)" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$env_file"
  IMAGE=${IMAGE:-$REGISTRY/kubefledged/kubefledged:${IMAGE_TAG:-dev}}
fi
CHART=$ROOT/charts/kube-fledged
RELEASE=${HELM_RELEASE:-kube-fledged}
HELM_NS=${HELM_NAMESPACE:-kube-fledged}
helm() { "$ROOT/hack/helm.sh" "$@"; }

t0=$SECONDS
say() { printf '[deploy %3ds] %s\n' $((SECONDS - t0)) "$*"; }

# render FILE: the manifest with the image substituted
render() {
  sed "s|$PLACEHOLDER|${IMAGE:-$PLACEHOLDER}|g" "$DEPLOY/$1" | if [ "$1" = kubefledged-daemonset-agent.yaml ] && [ -n "${CLUSTER_DIR:-}" ]; then
    # The test bed's runtime sockets are in its cluster directory (the nodes' cri-socket annotations say so).
    awk -v d="$CLUSTER_DIR" '
      {print}
      /^        volumeMounts:$/ {print "        - name: testbed-cluster-dir\n          mountPath: /host" d "\n          readOnly: true"}
      /^      volumes:$/ {print "      - name: testbed-cluster-dir\n        hostPath:\n          path: " d "\n          type: Directory"}'
  else cat; fi
}
apply() {
  local f
  for f in "$@"; do render "kubefledged-$f.yaml" | kubectl apply -f -; done
}

# ca_in_sync NS SECRET VWC: the caBundle is in place when it equals the CA of the webhook's Secret.
ca_in_sync() {
  local s v
  s=$(kubectl -n "$1" get secret "$2" -o jsonpath='{.data.ca\.crt}' 2>/dev/null) || return 1
  v=$(kubectl get validatingwebhookconfiguration "$3" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" = "$v" ]
}
# wait_ca NS SECRET VWC WEBHOOK_SELECTOR
wait_ca() {
  local end=$((SECONDS + 60))
  until ca_in_sync "$1" "$2" "$3"; do
    if [ $SECONDS -ge $end ]; then
      echo "deploy: the caBundle of $3 was not set from Secret $1/$2 within 60 s; webhook logs:" >&2
      kubectl -n "$1" logs -l "$4" --tail=20 >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  say "caBundle of $3 = CA of Secret $1/$2"
}

do_apply() {
  kubectl get --raw /version >/dev/null || { echo "deploy: the cluster does not answer (kubectl get --raw /version)" >&2; exit 1; }
  say "image ${IMAGE:-$PLACEHOLDER}"
  apply namespace crd crd-nodeimagecache
  kubectl wait --for=condition=Established --timeout=60s crd/imagecaches.kubefledged.io \
    crd/nodeimagecaches.kubefledged.io >/dev/null
  apply serviceaccount-controller role-controller rolebinding-controller clusterrole-controller \
    clusterrolebinding-controller deployment-controller
  # The certificate Secret only when missing: the webhook may fill it in but not create it, and one made by
  # an earlier build has type kubernetes.io/tls, which a re-apply (Opaque) could not change.
  kubectl -n "$NS" get secret "$SECRET" >/dev/null 2>&1 || apply secret-webhook-server
  apply serviceaccount-webhook-server role-webhook-server rolebinding-webhook-server clusterrole-webhook-server \
    clusterrolebinding-webhook-server service-webhook-server networkpolicy-webhook-server deployment-webhook-server
  # The webhook configuration goes last, once a replica serves: before that, with failurePolicy Fail, every
  # ImageCache create or update would be refused. Re-applying it later does not touch the live caBundle.
  kubectl -n "$NS" rollout status deployment/kubefledged-webhook-server --timeout="$TIMEOUT"
  say "webhook server ready"
  apply validatingwebhook
  wait_ca "$NS" "$SECRET" "$VWC" kubefledged=kubefledged-webhook-server
  kubectl -n "$NS" rollout status deployment/kubefledged-controller --timeout="$TIMEOUT"
  say "controller ready"
  apply serviceaccount-agent clusterrole-agent clusterrolebinding-agent clusterrole-agent-pull-secrets daemonset-agent
  kubectl -n "$NS" rollout status daemonset/kubefledged-agent --timeout="$TIMEOUT"
  say "node agent ready on every node"
  kubectl -n "$NS" get pods -o wide
}

do_remove() {
  say "removing kube-fledged"
  # The webhook configuration first: with failurePolicy Fail and its server gone, it would refuse every
  # ImageCache create and update in the cluster.
  kubectl delete validatingwebhookconfiguration -l app=kubefledged --ignore-not-found
  # The pods first, and waited for: the namespace then goes in one pass of the namespace controller (about
  # 6 s) instead of several (25 s and more). Deployments and ReplicaSets are deleted without cascading and
  # the pods directly, so that this does not wait in the garbage collector's queue (a busy cluster's GC,
  # e.g. one deleting many namespaces, took 35 to 60 s here).
  if kubectl get namespace "$NS" >/dev/null 2>&1; then
    kubectl -n "$NS" delete deployments,daemonsets -l app=kubefledged --cascade=orphan
    kubectl -n "$NS" delete replicasets -l app=kubefledged --cascade=orphan
    kubectl -n "$NS" delete pods -l app=kubefledged --wait=false
    local end=$((SECONDS + 120))
    while [ -n "$(kubectl -n "$NS" get pods -o name 2>/dev/null)" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
    say "kube-fledged's pods are gone"
  fi
  kubectl delete namespace "$NS" --ignore-not-found --timeout="$TIMEOUT"
  kubectl delete clusterrolebinding,clusterrole -l app=kubefledged --ignore-not-found
  say "deleting the CRDs imagecaches.kubefledged.io and nodeimagecaches.kubefledged.io: this deletes every ImageCache"
  say "in every namespace (and their Jobs) and every NodeImageCache; images already cached stay on the nodes (purge a"
  say "cache before deleting it to remove them)"
  kubectl delete crd imagecaches.kubefledged.io nodeimagecaches.kubefledged.io --ignore-not-found --timeout="$TIMEOUT"
  say "kube-fledged removed"
}

helm_lint() {
  local crd
  for crd in kubefledged-crd.yaml kubefledged-crd-nodeimagecache.yaml; do
    cmp -s "$DEPLOY/$crd" "$CHART/crds/$crd" || {
      echo "helm-lint: $CHART/crds/$crd differs from deploy/$crd; copy it: cp deploy/$crd charts/kube-fledged/crds/" >&2
      exit 1
    }
  done
  helm lint --strict "$CHART"
  local out
  out=$(helm template kube-fledged "$CHART" -n kube-fledged)
  out+=$(helm template kf "$CHART" -n other --set controller.hostNetwork=true \
    --set controller.priorityClassName=system-cluster-critical --set webhookServer.hostNetwork=true \
    --set webhookServer.priorityClassName=system-cluster-critical --set webhookServerReplicaCount=3 \
    --set 'imagePullSecrets[0].name=regcred' --set 'tolerations[0].operator=Exists' --set nodeSelector.a=b \
    --set 'args.controllerExtraArgs[0]=-v=2' --set args.controllerJobsMaxSurge=10 --set serviceMonitor.enabled=true \
    --set 'serviceMonitor.labels.release=prometheus' \
    --set 'webhookServer.networkPolicy.apiServerCIDRs[0]=10.0.0.10/32' --set secret.create=false)
  out+=$(helm template kf "$CHART" --set webhookServer.enable=false --set serviceAccount.create=false \
    --set clusterRole.create=false --set clusterRoleBinding.create=false --set mode=jobs \
    --set webhookServer.networkPolicy.enabled=false --set controller.metricsPort=0)
  out+=$(helm template kf "$CHART" --set 'agent.extraHostPaths[0]=/srv/containerd' --set 'agent.tolerations=null' \
    --set agent.priorityClassName=system-node-critical --set 'agent.extraArgs[0]=-v=2')
  if helm template kf "$CHART" --set mode=both >/dev/null 2>&1; then
    echo "helm-lint: mode=both was accepted" >&2; exit 1
  fi
  say "helm template: $(grep -c '^kind:' <<< "$out") objects rendered in 4 configurations"
}

# image_sets: the --set arguments that put IMAGE (REPOSITORY:TAG) in the chart, into the array HELM_SET
image_sets() {
  HELM_SET=()
  if [ -n "${IMAGE:-}" ]; then
    [[ $IMAGE != *@* && ${IMAGE##*:} != */* && $IMAGE == *:* ]] || { echo "deploy: IMAGE must be REPOSITORY:TAG for helm, got $IMAGE" >&2; exit 2; }
    HELM_SET=(--set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}")
  fi
}

helm_install() {
  local set
  image_sets
  set=("${HELM_SET[@]}")
  # The test bed's runtime sockets are in its cluster directory (see render).
  [ -z "${CLUSTER_DIR:-}" ] || set+=(--set "agent.extraHostPaths[0]=$CLUSTER_DIR")
  say "helm upgrade --install $RELEASE into namespace $HELM_NS${IMAGE:+, image $IMAGE}"
  # shellcheck disable=SC2086  # HELM_ARGS is a list of words on purpose
  helm upgrade --install "$RELEASE" "$CHART" -n "$HELM_NS" --create-namespace --wait --timeout "$TIMEOUT" \
    "${set[@]}" ${HELM_ARGS:-}
  local vals web vwc secret sel
  vals=$(helm get values "$RELEASE" -n "$HELM_NS" -a -o json)
  if [ "$(jq -r '.webhookServer.enable and .validatingWebhook.create and (.args.webhookServerCertFile == "")' <<< "$vals")" = true ]; then
    web=$(kubectl -n "$HELM_NS" get deploy -l "app.kubernetes.io/instance=$RELEASE" -o name | grep -- '-webhook-server$')
    vwc=$(kubectl get validatingwebhookconfiguration -l "app.kubernetes.io/instance=$RELEASE" -o jsonpath='{.items[0].metadata.name}')
    secret=$(kubectl -n "$HELM_NS" get "$web" -o json | jq -r '.spec.template.spec.containers[0].args[] | select(startswith("--tls-secret=")) | sub("--tls-secret="; "")')
    sel=$(kubectl -n "$HELM_NS" get "$web" -o json | jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")')
    wait_ca "$HELM_NS" "$secret" "$vwc" "$sel"
  fi
  kubectl -n "$HELM_NS" get pods -l "app.kubernetes.io/instance=$RELEASE" -o wide
}

helm_uninstall() {
  say "helm uninstall $RELEASE (namespace $HELM_NS)"
  helm uninstall "$RELEASE" -n "$HELM_NS" --wait --timeout "$TIMEOUT"
  # --wait covers the release's own objects; their ReplicaSets and pods go with the garbage collector
  local end=$((SECONDS + 120))
  while [ -n "$(kubectl -n "$HELM_NS" get replicasets,pods -l "app.kubernetes.io/instance=$RELEASE" -o name 2>/dev/null)" ]; do
    [ $SECONDS -lt $end ] || { echo "deploy: pods of $RELEASE still there after 120 s" >&2; exit 1; }
    sleep 0.5
  done
  say "release $RELEASE and its pods are gone"
  say "the CRDs stay (Helm never deletes CRDs; deleting them deletes every ImageCache and NodeImageCache):"
  say "  kubectl delete crd imagecaches.kubefledged.io nodeimagecaches.kubefledged.io"
}

helm_upgrade_from_upstream() {
  local rel chart crd vals stale manifest name want have
  rel=$(helm list -n "$HELM_NS" --filter "^$RELEASE\$" -o json)
  [ "$(jq length <<< "$rel")" = 1 ] || { echo "deploy: no Helm release $RELEASE in namespace $HELM_NS (see helm list -A)" >&2; exit 1; }
  chart=$(jq -r '.[0].chart' <<< "$rel")
  say "release $RELEASE in namespace $HELM_NS: chart $chart, status $(jq -r '.[0].status' <<< "$rel"); upgrading to charts/kube-fledged"

  # 1. values: the old release's are not reused; say which of them would mean something else now
  vals=$(helm get values "$RELEASE" -n "$HELM_NS" -o json)
  [ "$vals" != null ] || vals='{}'
  stale=$(jq -r '[paths(scalars) | map(tostring) | join(".")] | map(select(test(
    "^(command\\.|image\\.kubefledged|image\\.busybox|args\\.webhookServer(CertFile|KeyFile|Port)$|webhookService\\.targetPort$|validatingWebhookCABundle$)"))) | join(", ")' <<< "$vals")
  if [ "$vals" != "{}" ]; then
    say "the release's own values are not carried over; give the ones you still want in HELM_ARGS (e.g. -f values.yaml): $(jq -c . <<< "$vals")"
  fi
  [ -z "$stale" ] || say "of those, leave out (they were for upstream's images and its init container, see docs/deploy.md): $stale"

  # 2. the CRDs, which helm upgrade never touches (nor creates: crds/ is read at install only): each replaced
  # whole (an apply would keep upstream's status schema, whose required fields and pruning stay) or created
  # (NodeImageCache, new in this chart: the agents wait for it), saved for later kubectl applies
  for crd in "$CHART"/crds/*.yaml; do
    name=$(kubectl create --dry-run=client -o jsonpath='{.metadata.name}' -f "$crd")
    if kubectl get crd "$name" >/dev/null 2>&1; then
      kubectl replace --save-config -f "$crd"
    else
      kubectl create --save-config -f "$crd"
    fi
    kubectl wait --for=condition=Established --timeout=60s "crd/$name" >/dev/null
  done
  say "CRD imagecaches.kubefledged.io is the chart's: subresources $(kubectl get crd imagecaches.kubefledged.io -o jsonpath='{.spec.versions[0].subresources}')"

  # 3. Deployments and DaemonSets (the agents) whose selector would change: deleted, helm creates them again
  image_sets
  # shellcheck disable=SC2086  # HELM_ARGS is a list of words on purpose
  manifest=$(helm template "$RELEASE" "$CHART" -n "$HELM_NS" --skip-crds "${HELM_SET[@]}" ${HELM_ARGS:-} |
    kubectl create --dry-run=client -o json -f - | jq -c 'if .kind == "List" then .items[] else . end | select(.kind == "Deployment" or .kind == "DaemonSet") | {kind: (.kind | ascii_downcase), name: .metadata.name, sel: .spec.selector}')
  local kind
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    kind=$(jq -r .kind <<< "$d"); name=$(jq -r .name <<< "$d"); want=$(jq -cS .sel <<< "$d")
    have=$(kubectl -n "$HELM_NS" get "$kind" "$name" -o json 2>/dev/null | jq -cS .spec.selector) || continue
    [ "$have" != "$want" ] || continue
    say "$kind/$name: selector $have becomes $want, which Kubernetes refuses to change (\"field is immutable\"): deleting it, helm creates it again"
    kubectl -n "$HELM_NS" delete "$kind" "$name" --wait=true --timeout="$TIMEOUT"
  done <<< "$manifest"

  # 4. the chart
  helm_install
  say "release $RELEASE upgraded from $chart to $(helm list -n "$HELM_NS" --filter "^$RELEASE\$" -o json | jq -r '.[0].chart')"
}

# ---- the operator (deploy/kubefledged-operator/) ----
OPDIR=$DEPLOY/kubefledged-operator
OP_CRD=kubefledgeds.charts.helm.kubefledged.io
KF_NS=${KUBEFLEDGED_NAMESPACE:-kube-fledged}
OP_OWNER_LABEL=charts.helm.kubefledged.io/owner-uid

# op_render FILE: an operator manifest with the image and the namespace substituted
op_render() {
  sed -e "s|$PLACEHOLDER|${IMAGE:-$PLACEHOLDER}|g" -e "s|namespace: kube-fledged\$|namespace: $KF_NS|" "$OPDIR/$1"
}

# op_cr: the KubeFledged to apply: image.repository and image.tag from IMAGE; on the test bed also the nodes'
# runtime sockets, which live in its cluster directory (see render)
op_cr() {
  local cr=${KUBEFLEDGED_CR:-$OPDIR/crds/charts.helm.kubefledged.io_v1alpha2_kubefledged_cr.yaml} patch='{}'
  [ -f "$cr" ] || { echo "deploy: KUBEFLEDGED_CR=$cr: no such file" >&2; exit 2; }
  image_sets
  [ -z "${IMAGE:-}" ] || patch=$(jq -cn --arg r "${IMAGE%:*}" --arg t "${IMAGE##*:}" '{image: {repository: $r, tag: $t}}')
  [ -z "${CLUSTER_DIR:-}" ] || patch=$(jq -c --arg d "$CLUSTER_DIR" '.agent.extraHostPaths = [$d]' <<< "$patch")
  # kubectl turns the YAML into JSON, jq merges the overrides into the spec
  sed "s|namespace: kube-fledged\$|namespace: $KF_NS|" "$cr" | kubectl create --dry-run=client -o json -f - |
    jq --argjson p "$patch" '.spec = ((.spec // {}) * $p)'
}

do_operator_apply() {
  kubectl get --raw /version >/dev/null || { echo "deploy: the cluster does not answer (kubectl get --raw /version)" >&2; exit 1; }
  say "image ${IMAGE:-$PLACEHOLDER}, namespace $KF_NS"
  if [ "$KF_NS" = kube-fledged ]; then apply namespace
  else kubectl get namespace "$KF_NS" >/dev/null 2>&1 || kubectl create namespace "$KF_NS"; fi
  kubectl apply -f "$OPDIR/crds/charts.helm.kubefledged.io_kubefledgeds_crd.yaml"
  kubectl wait --for=condition=Established --timeout=60s "crd/$OP_CRD" >/dev/null
  local f
  for f in service_account.yaml clusterrole.yaml clusterrole_binding.yaml role.yaml role_binding.yaml operator.yaml; do
    op_render "$f" | kubectl apply -f -
  done
  kubectl -n "$KF_NS" rollout status deployment/kubefledged-operator --timeout="$TIMEOUT"
  say "operator ready"
  local cr name
  cr=$(op_cr)
  name=$(jq -r .metadata.name <<< "$cr")
  kubectl apply -f - <<< "$cr"
  if ! kubectl -n "$KF_NS" wait --for=condition=Ready "kubefledged/$name" --timeout="$TIMEOUT" >/dev/null; then
    echo "deploy: KubeFledged $KF_NS/$name is not Ready after $TIMEOUT; its status and the operator's log:" >&2
    kubectl -n "$KF_NS" get kubefledged "$name" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2
    kubectl -n "$KF_NS" logs deployment/kubefledged-operator --tail=20 >&2 || true
    exit 1
  fi
  say "KubeFledged $KF_NS/$name Ready: $(kubectl -n "$KF_NS" get kubefledged "$name" -o jsonpath='{.status.conditions[?(@.type=="Deployed")].message}')"
  kubectl -n "$KF_NS" get pods -o wide
}

# op_force_cleanup NS NAME: what the operator's finalizer does, by hand (the operator is gone or stuck)
op_force_cleanup() {
  local uid
  uid=$(kubectl -n "$1" get kubefledged "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null) || return 0
  say "KubeFledged $1/$2 still there: deleting the objects labelled $OP_OWNER_LABEL=$uid and its finalizer by hand"
  kubectl delete validatingwebhookconfigurations,clusterrolebindings,clusterroles -l "$OP_OWNER_LABEL=$uid" --ignore-not-found
  kubectl -n "$1" delete daemonsets,deployments,services,networkpolicies,secrets,leases,rolebindings,roles,serviceaccounts \
    -l "$OP_OWNER_LABEL=$uid" --ignore-not-found
  # the Prometheus Operator's kind (serviceMonitor.enabled), only where its CRD is installed: kubectl refuses a
  # resource type the cluster does not know
  if kubectl api-resources --api-group=monitoring.coreos.com -o name 2>/dev/null | grep -qx servicemonitors.monitoring.coreos.com; then
    kubectl -n "$1" delete servicemonitors.monitoring.coreos.com -l "$OP_OWNER_LABEL=$uid" --ignore-not-found
  fi
  kubectl -n "$1" patch kubefledged "$2" --type=merge -p '{"metadata":{"finalizers":null}}' || true
}

do_operator_remove() {
  say "removing kube-fledged and its operator"
  if kubectl get crd "$OP_CRD" >/dev/null 2>&1; then
    local kfs
    kfs=$(kubectl get kubefledgeds -A -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}')
    if [ -n "$kfs" ]; then
      say "deleting every KubeFledged; the operator deletes what each installed: $(tr '\n' ' ' <<< "$kfs")"
      kubectl delete kubefledgeds -A --all --wait=false
      local ns name end
      case $TIMEOUT in *m) end=$((SECONDS + ${TIMEOUT%m} * 60));; *) end=$((SECONDS + ${TIMEOUT%s}));; esac
      while [ -n "$(kubectl get kubefledgeds -A -o name)" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
      while read -r ns name; do [ -z "$name" ] || op_force_cleanup "$ns" "$name"; done <<< "$kfs"
    fi
  fi
  if kubectl get namespace "$KF_NS" >/dev/null 2>&1; then
    # the pods the operator's Deployments and DaemonSet left to the garbage collector, directly (see do_remove)
    kubectl -n "$KF_NS" delete deployment kubefledged-operator --cascade=orphan --ignore-not-found
    kubectl -n "$KF_NS" delete replicasets -l 'app.kubernetes.io/managed-by=kubefledged-operator' --cascade=orphan
    kubectl -n "$KF_NS" delete replicasets -l name=kubefledged-operator --cascade=orphan
    kubectl -n "$KF_NS" delete pods -l 'app.kubernetes.io/managed-by=kubefledged-operator' --wait=false
    kubectl -n "$KF_NS" delete pods -l name=kubefledged-operator --wait=false
    local end=$((SECONDS + 120))
    while [ -n "$(kubectl -n "$KF_NS" get pods -o name 2>/dev/null)" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
    say "the pods are gone"
  fi
  kubectl delete clusterrolebinding,clusterrole -l app=kubefledged-operator --ignore-not-found
  kubectl delete crd "$OP_CRD" --ignore-not-found --timeout="$TIMEOUT"
  kubectl delete namespace "$KF_NS" --ignore-not-found --timeout="$TIMEOUT"
  # the controller's bindings for the agents' pull secrets, in the ImageCaches' namespaces
  kubectl delete rolebindings -A -l app=kubefledged,kubefledged=kubefledged-agent --ignore-not-found
  say "deleting the CRDs imagecaches.kubefledged.io and nodeimagecaches.kubefledged.io: this deletes every ImageCache"
  say "in every namespace (and their Jobs) and every NodeImageCache; images already cached stay on the nodes"
  kubectl delete crd imagecaches.kubefledged.io nodeimagecaches.kubefledged.io --ignore-not-found --timeout="$TIMEOUT"
  say "kube-fledged and its operator removed"
}

case ${1:-} in
  yaml-apply) do_apply ;;
  yaml-remove) do_remove ;;
  yaml-render) [ -f "$DEPLOY/${2:-}" ] || { echo "deploy: yaml-render: no deploy/${2:-}" >&2; exit 2; }; render "$2" ;;
  helm-lint) helm_lint ;;
  helm-install) helm_install ;;
  helm-uninstall) helm_uninstall ;;
  helm-upgrade-from-upstream) helm_upgrade_from_upstream ;;
  operator-apply) do_operator_apply ;;
  operator-remove) do_operator_remove ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
