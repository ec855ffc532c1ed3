#!/usr/bin/env bash
# Controller benchmark on the local real cluster (make cluster-up; make image):
#   one ImageCache of N distinct images (default 100) on every node, create -> Succeeded,
#   divided by the floor: the same node x image Jobs (the golden pull Job that the unit tests pin to the
#   controller's rendering, tests/unit/data/ic/job-pull.json) created directly by one `kubectl create` and
#   awaited until all are Complete. Both runs use freshly generated images, so both pull cold.
# Also: the controller's peak RSS (VmHWM), CPU seconds (utime+stime), threads, and the API requests it made
# (its own client counters, printed when it stops), against the memory floor of a bare libcurl HTTPS client
# of the same API server (bench/rss_floor.c). Prints figures; asserts nothing.
#
#   bench/controller.sh [IMAGES] [ROUNDS]      defaults 100 and 1 (each round: floor, then controller)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "${KF_CLUSTER_DIR:-$ROOT/.cluster}/env"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
N=${1:-100}; ROUNDS=${2:-1}
BIN=$ROOT/build/src/kubefledged
IMAGE=${KF_IMAGE:-$REGISTRY/kubefledged/kubefledged:dev}
OUT=$ROOT/bench/out; mkdir -p "$OUT"
NS=kf-bench-$(printf "%04x%04x" $RANDOM $RANDOM)
GOLDEN=$ROOT/tests/unit/data/ic/job-pull.json
read -r -a NODES <<< "$KF_NODES"
CTL_PID=

cleanup() {
  [ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null || true
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A controller deployed in the cluster (make demo's, a Helm release) would serve the benchmark's cache too.
others=$(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.containers[0].args[0]}{"\n"}{end}' |
         awk '$2 == "controller" { printf "%s ", $1 }')
if [ -n "$others" ]; then
  echo "bench: a kube-fledged controller runs in this cluster (${others% }): remove it first (make remove-kubefledged or helm uninstall)" >&2
  exit 1
fi
kubectl apply -f "$ROOT/deploy/kubefledged-crd.yaml" >/dev/null
kubectl create namespace "$NS" >/dev/null
echo "bench: $N images x ${#NODES[@]} nodes = $(( N * ${#NODES[@]} )) node-image pairs, namespace $NS, image $IMAGE"

all_complete() { # LABEL COUNT
  local done
  done=$(kubectl -n "$NS" get jobs -l "$1" -o jsonpath='{range .items[*]}{.status.succeeded}{"\n"}{end}' | grep -c '^1$' || true)
  [ "$done" -ge "$2" ]
}

floor_run() { # round
  local tag=raw$1 imgs list t0 t1
  mapfile -t imgs < <("$ROOT/testbed/images.sh" gen "bench/$tag-$NS" "$N" 2>/dev/null)
  list=$OUT/$tag.json
  raw_jobs_list "$GOLDEN" "$NS" "$tag" "$IMAGE" "$(printf '%s\n' "${NODES[@]}")" "$(printf '%s\n' "${imgs[@]}")" > "$list"
  t0=$(now)
  kubectl create -f "$list" >/dev/null
  until all_complete "run=$tag" "$(( N * ${#NODES[@]} ))"; do sleep 0.5; done
  t1=$(now)
  FLOOR=$(secs "$t0" "$t1")
  echo "floor round $1: $(( N * ${#NODES[@]} )) Jobs created directly and Complete in ${FLOOR}s"
  kubectl -n "$NS" delete jobs -l "run=$tag" --wait=false >/dev/null
}

controller_run() { # round
  local tag=kf$1 imgs t0 t1 log=$OUT/controller-$1.log status
  mapfile -t imgs < <("$ROOT/testbed/images.sh" gen "bench/$tag-$NS" "$N" 2>/dev/null)
  BUSYBOX_IMAGE=$IMAGE KUBEFLEDGED_CRI_CLIENT_IMAGE=$IMAGE KUBEFLEDGED_NAMESPACE=$NS \
    "$BIN" controller --kubeconfig="$KUBECONFIG" --leader-elect=false --metrics-bind-address=127.0.0.1:0 > "$log" 2>&1 &
  CTL_PID=$!
  sleep 3
  local idle_rss idle_cpu
  idle_rss=$(proc_field "$CTL_PID" VmRSS); idle_cpu=$(cpu_s "$CTL_PID")
  jq -n --arg ns "$NS" --argjson imgs "$(printf '%s\n' "${imgs[@]}" | jq -R . | jq -s .)" \
    '{apiVersion: "kubefledged.io/v1alpha2", kind: "ImageCache", metadata: {name: "bench", namespace: $ns},
      spec: {cacheSpec: [{images: $imgs}]}}' > "$OUT/$tag-ic.json"
  t0=$(now)
  kubectl create -f "$OUT/$tag-ic.json" >/dev/null
  local anon=0 file=0 a f
  while :; do
    status=$(kubectl -n "$NS" get imagecache bench -o jsonpath='{.status.status}')
    # VmHWM has no anonymous/file split: sample both while the operation runs
    a=$(proc_field "$CTL_PID" RssAnon); f=$(proc_field "$CTL_PID" RssFile)
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    [ "${f:-0}" -gt "$file" ] && file=$f
    case "$status" in Succeeded|Failed|NoImagesPulledOrDeleted) break ;; esac
    sleep 0.2
  done
  t1=$(now)
  KF=$(secs "$t0" "$t1")
  local hwm threads cpu
  hwm=$(proc_field "$CTL_PID" VmHWM); threads=$(proc_field "$CTL_PID" Threads); cpu=$(cpu_s "$CTL_PID")
  kill -TERM "$CTL_PID"; wait "$CTL_PID" || true; CTL_PID=
  echo "controller round $1: ImageCache of $N images -> $status in ${KF}s"
  echo "  controller: RSS idle $idle_rss kB, peak (VmHWM) $hwm kB, CPU $idle_cpu s idle -> $cpu s total, $threads threads"
  echo "  peak RSS: $(awk -v a="$hwm" 'BEGIN { printf "%.1f", a / 1024 }') MiB (target <= 10), $(awk -v a="$hwm" -v b="$RSS_FLOOR" 'BEGIN { printf "%.2f", a / b }') x the bare libcurl client, $(( hwm - RSS_FLOOR )) kB above it"
  echo "  sampled every 0.2 s: anonymous (heap, stacks) at most $anon kB, file-backed (binary and shared libraries) at most $file kB"
  echo "  $(grep -o 'stopped: .*' "$log")"
  kubectl -n "$NS" delete imagecache bench --wait=false >/dev/null
}

# The memory floor: a bare libcurl HTTPS client of the same API server (bench/rss_floor.c), same libraries.
rss_floor() {
  local d=$OUT/rss-floor
  mkdir -p "$d"
  cc -O2 -Wall -Wextra -o "$d/rss_floor" "$ROOT/bench/rss_floor.c" -lcurl
  kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$d/ca.pem"
  kubectl config view --raw --minify -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$d/cert.pem"
  kubectl config view --raw --minify -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > "$d/key.pem"
  read -r RSS_FLOOR ANON_FLOOR < <("$d/rss_floor" "$APISERVER_URL/version" "$d/ca.pem" "$d/cert.pem" "$d/key.pem")
  echo "memory floor: a bare libcurl (OpenSSL) HTTPS client after 3 GETs: VmHWM $RSS_FLOOR kB, of which anonymous $ANON_FLOOR kB"
}
rss_floor

for r in $(seq "$ROUNDS"); do
  floor_run "$r"
  controller_run "$r"
  echo "round $r: ratio controller / floor = $(awk -v a="$KF" -v b="$FLOOR" 'BEGIN { printf "%.2f", a / b }') (target <= 1.3)"
done
