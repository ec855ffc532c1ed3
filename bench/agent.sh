#!/usr/bin/env bash
# Node agent benchmark on the local real cluster (make cluster-up; make build), issue 8:
#   (a) the runtime's own floor: IMAGES fresh images pulled straight into each node's containerd with
#       `ctr images pull`, 8 at once per node, on every node at the same time;
#   (b) the agents alone: IMAGES other fresh images written into every node's NodeImageCache spec at once
#       (no controller), one `kubefledged agent` per node out of cluster with --max-parallel-pulls=8, from
#       the write to every image Present in every status.
# Prints both times and their ratio (target: agents <= 1.2 x the floor), the agents' API requests per node x
# image pair (their own counters; target <= 0.05) and status writes, a warm refresh (the same specs written
# again: target 0 pulls and 0 writes), the self-heal latency (an image removed with ctr until it is back,
# three times) and the agents' peak RSS; then
#   (c) kube-fledged in agent mode: the controller (--mode=agent, out of cluster) and the same agents, an
#       ImageCache of IMAGES fresh images from create to Succeeded (ratio to (a): target <= 1.2), its API
#       requests per pair (controller + agents; target <= 0.05) and the controller's peak RSS;
#   (d) the job floor: the same number of pull Jobs created directly (bench/controller.sh's floor), and the
#       ratio (d) / (c) (target >= 5).
# Asserts nothing.
#
#   bench/agent.sh [IMAGES]       default 100
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "${KF_CLUSTER_DIR:-$ROOT/.cluster}/env"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
N=${1:-100}
BIN=$ROOT/build/src/kubefledged
ID=$(printf "%04x%04x" $RANDOM $RANDOM)
OUT=$ROOT/bench/out/agent-$ID; mkdir -p "$OUT"
read -r -a NODES <<< "$KF_NODES"
PIDS=()

[ -x "$BIN" ] || { echo "bench: no $BIN (make build)" >&2; exit 1; }
sock() { local v=NODE$1_CRI_SOCKET; echo "${!v}"; }
certs() { echo "$CLUSTER_DIR/nodes/${NODES[$1-1]}/certs.d"; }
NS=kfbench-$ID
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${NODES[@]}"; do kubectl delete nodeimagecache "$p" --ignore-not-found --wait=false >/dev/null 2>&1 || true; done
  kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

others=$(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.containers[0].args[0]}{"\n"}{end}' |
         awk '$2 == "controller" || $2 == "agent" { printf "%s ", $1 }')
if [ -n "$others" ]; then
  echo "bench: kube-fledged runs in this cluster (${others% }): remove it first (make remove-kubefledged or helm uninstall)" >&2
  exit 1
fi
for n in "${NODES[@]}"; do
  if kubectl get nodeimagecache "$n" >/dev/null 2>&1; then
    echo "bench: NodeImageCache $n exists (a controller in agent mode?): delete it first" >&2; exit 1
  fi
done
kubectl apply -f "$ROOT/deploy/kubefledged-crd-nodeimagecache.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=30s crd/nodeimagecaches.kubefledged.io >/dev/null
echo "bench/agent.sh: $N fresh images x ${#NODES[@]} nodes ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"

# ---- (a) the runtime's floor ----
mapfile -t FLOOR_IMGS < <("$ROOT/testbed/images.sh" gen "kfbench-$ID/ctr" "$N" 2>/dev/null)
[ ${#FLOOR_IMGS[@]} = "$N" ] || { echo "bench: images.sh gen gave ${#FLOOR_IMGS[@]} images" >&2; exit 1; }
printf '%s\n' "${FLOOR_IMGS[@]}" > "$OUT/floor-images"
t0=$(now)
for i in $(seq ${#NODES[@]}); do
  xargs -P 8 -n 1 ctr -a "$(sock "$i")" -n k8s.io images pull --hosts-dir "$(certs "$i")" < "$OUT/floor-images" \
    > "$OUT/ctr-$i.log" 2>&1 &
done
wait
FLOOR=$(secs "$t0" "$(now)")
echo "runtime floor: $((N * ${#NODES[@]})) pulls with ctr, 8 at once per node: ${FLOOR}s"

# ---- (b) the agents alone ----
mapfile -t IMGS < <("$ROOT/testbed/images.sh" gen "kfbench-$ID/agent" "$N" 2>/dev/null)
[ ${#IMGS[@]} = "$N" ] || { echo "bench: images.sh gen gave ${#IMGS[@]} images" >&2; exit 1; }
PORTS=()
for i in $(seq ${#NODES[@]}); do
  "$BIN" agent --kubeconfig="$KUBECONFIG" --node-name="${NODES[$i-1]}" --cri-socket-path="$(sock "$i")" \
    --max-parallel-pulls=8 --max-parallel-pulls-per-registry=8 --metrics-bind-address=127.0.0.1:0 \
    > "$OUT/agent-$i.log" 2>&1 &
  PIDS+=($!)
done
for i in $(seq ${#NODES[@]}); do
  for _ in $(seq 100); do grep -q 'serving /metrics' "$OUT/agent-$i.log" && break; sleep 0.1; done
  PORTS+=("$(grep -o '(port [0-9]*)' "$OUT/agent-$i.log" | tr -dc 0-9)")
done
sleep 1 # informers listed (no object yet)
spec() { # NODE: the NodeImageCache with every image
  local items="" img
  for img in "${IMGS[@]}"; do items+="${items:+,}{\"image\":\"$img\",\"owners\":[{\"namespace\":\"bench\",\"name\":\"c\"}]}"; done
  echo "{\"apiVersion\":\"kubefledged.io/v1alpha1\",\"kind\":\"NodeImageCache\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"nodeName\":\"$1\",\"images\":[$items]}}"
}
for n in "${NODES[@]}"; do spec "$n"; done > "$OUT/specs.json"
api_requests() { # every request of every agent so far
  local p s=0 v
  for p in "${PORTS[@]}"; do
    v=$(curl -sf "http://127.0.0.1:$p/metrics" | awk 'index($1, "kubefledged_agent_api_requests_total{") == 1 {s += $2} END {print s + 0}')
    s=$((s + v))
  done
  echo "$s"
}
all_present() {
  local n
  for n in "${NODES[@]}"; do
    [ "$(kubectl get nodeimagecache "$n" -o jsonpath='{.status.present}' 2>/dev/null)" = "$N" ] || return 1
  done
}
REQ0=$(api_requests)
t0=$(now)
kubectl apply -f "$OUT/specs.json" >/dev/null
until all_present; do sleep 0.2; done
AGENTS=$(secs "$t0" "$(now)")
echo "agents: $((N * ${#NODES[@]})) node x image pairs from the specs' write to all Present: ${AGENTS}s"
echo "ratio agents / runtime floor = $(awk -v a="$AGENTS" -v b="$FLOOR" 'BEGIN { printf "%.2f", a / b }') (target <= 1.2)"

metric() { # PORT SERIES
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2; f=1} END {if (!f) print 0}'
}
sum_metric() {
  local p s=0
  for p in "${PORTS[@]}"; do s=$(( s + $(metric "$p" "$1") )); done
  echo "$s"
}
REQ=$(api_requests)
W1=$(sum_metric 'kubefledged_agent_status_writes_total{result="ok"}')
P1=$(sum_metric 'kubefledged_agent_pulls_total{result="success",cause=""}')
echo "status writes: $W1 for $((N * ${#NODES[@]})) pulls ($P1 pulled)"
echo "API requests per node x image pair: $(awk -v r="$((REQ - REQ0))" -v p="$((N * ${#NODES[@]}))" 'BEGIN { printf "%.3f", r / p }')" \
     "($((REQ - REQ0)) requests of the agents from the specs' write to all Present; target <= 0.05);" \
     "$REQ0 more when they started (list, watch, one read each)"

# A warm refresh: every object touched (an annotation: the agents get an event and look again, as after a
# controller's refresh that changed no spec); nothing to pull, nothing to write.
sleep 6
W1=$(sum_metric 'kubefledged_agent_status_writes_total{result="ok"}')
for n in "${NODES[@]}"; do kubectl annotate nodeimagecache "$n" --overwrite kubefledged.io/bench-touch="$(now)" >/dev/null; done
sleep 11 # two polls
echo "warm refresh: $(( $(sum_metric 'kubefledged_agent_pulls_total{result="success",cause=""}') - P1 )) pulls," \
     "$(( $(sum_metric 'kubefledged_agent_status_writes_total{result="ok"}') - W1 )) status writes (target 0 and 0)"

# Self-heal: remove an image the way crictl rmi does (every reference), time until it is back.
heal=()
for k in 1 2 3; do
  img=${IMGS[$((k * 7))]}
  s=$(sock 1)
  refs=$(ctr -a "$s" -n k8s.io images ls | awk -v r="$img" 'NR > 1 && $1 == r {print $3}')
  refs=$(ctr -a "$s" -n k8s.io images ls | awk -v d="$refs" 'NR > 1 && $3 == d {print $1}')
  # shellcheck disable=SC2086
  ctr -a "$s" -n k8s.io images rm $refs >/dev/null
  t0=$(now)
  until ctr -a "$s" -n k8s.io images ls -q | grep -qxF -- "$img"; do sleep 0.1; done
  heal+=("$(secs "$t0" "$(now)")")
  sleep 1
done
echo "self-heal: an image removed with ctr was back after ${heal[*]} s (--poll-interval=5s; target < 10)"

RSS=""
for p in "${PIDS[@]}"; do RSS+="$(awk '/VmHWM/ {print $2}' "/proc/$p/status") "; done
echo "agents' peak RSS (VmHWM): ${RSS% } kB"

# ---- (c) kube-fledged in agent mode: controller + agents, from an ImageCache's create to Succeeded ----
kubectl apply -f "$ROOT/deploy/kubefledged-crd.yaml" >/dev/null
kubectl create namespace "$NS" >/dev/null
for n in "${NODES[@]}"; do kubectl delete nodeimagecache "$n" --wait=true >/dev/null; done
mapfile -t CIMGS < <("$ROOT/testbed/images.sh" gen "kfbench-$ID/ic" "$N" 2>/dev/null)
REQA0=$(api_requests)
KUBEFLEDGED_NAMESPACE=$NS "$BIN" controller --mode=agent --kubeconfig="$KUBECONFIG" --leader-elect=false \
  --image-cache-refresh-frequency=0s --metrics-bind-address=0 > "$OUT/controller.log" 2>&1 &
CTL=$!
PIDS+=("$CTL")
until grep -q 'caches synced' "$OUT/controller.log"; do sleep 0.1; done
jq -n --arg ns "$NS" --argjson imgs "$(printf '%s\n' "${CIMGS[@]}" | jq -R . | jq -s .)" \
  '{apiVersion: "kubefledged.io/v1alpha2", kind: "ImageCache", metadata: {name: "bench", namespace: $ns},
    spec: {cacheSpec: [{images: $imgs}]}}' > "$OUT/ic.json"
t0=$(now)
kubectl create -f "$OUT/ic.json" >/dev/null
until [ "$(kubectl -n "$NS" get imagecache bench -o jsonpath='{.status.status}')" = Succeeded ]; do sleep 0.2; done
KF=$(secs "$t0" "$(now)")
sleep 6 # the agents' last coalesced writes are part of the operation's cost
REQA=$(api_requests)
CTL_HWM=$(proc_field "$CTL" VmHWM)
kill -TERM "$CTL"; wait "$CTL" 2>/dev/null || true
CTL_REQ=$(grep -o 'API: [0-9]* requests' "$OUT/controller.log" | tr -dc 0-9)
PAIRS=$((N * ${#NODES[@]}))
echo "kube-fledged, agent mode: ImageCache of $N images on ${#NODES[@]} nodes, create -> Succeeded in ${KF}s;" \
     "ratio to the runtime floor $(ratio "$KF" "$FLOOR") (target <= 1.2)"
echo "  API requests: controller $CTL_REQ (start-up lists and watches included), agents $((REQA - REQA0));" \
     "per node x image pair $(awk -v r="$((CTL_REQ + REQA - REQA0))" -v p="$PAIRS" 'BEGIN { printf "%.3f", r / p }') (target <= 0.05)"
echo "  controller peak RSS (VmHWM) $CTL_HWM kB; $(grep -o 'stopped: .*' "$OUT/controller.log")"

for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
for i in $(seq ${#NODES[@]}); do grep 'API requests' "$OUT/agent-$i.log" | sed "s/.*] /node $i, whole run: /" || true; done

# ---- (d) the job floor: the same pairs as pull Jobs created directly ----
mapfile -t JIMGS < <("$ROOT/testbed/images.sh" gen "kfbench-$ID/job" "$N" 2>/dev/null)
raw_jobs_list "$ROOT/tests/unit/data/ic/job-pull.json" "$NS" jobfloor "$REGISTRY/busybox:1" \
  "$(printf '%s\n' "${NODES[@]}")" "$(printf '%s\n' "${JIMGS[@]}")" > "$OUT/jobs.json"
t0=$(now)
kubectl create -f "$OUT/jobs.json" >/dev/null
until [ "$(kubectl -n "$NS" get jobs -l run=jobfloor -o jsonpath='{range .items[*]}{.status.succeeded}{"\n"}{end}' | grep -c '^1$' || true)" -ge "$PAIRS" ]; do
  sleep 0.5
done
JOBS=$(secs "$t0" "$(now)")
echo "job floor: $PAIRS pull Jobs created directly and Complete in ${JOBS}s; agent mode is $(ratio "$JOBS" "$KF") x faster (target >= 5)"
echo "(logs in $OUT)"
