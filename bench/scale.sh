#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run from traps and through run_op
# Scale benchmark (make scale; docs/scale.md): on the running test bed (make cluster-up), add SCALE_NODES
# simulated nodes, run `kubefledged controller` out of cluster in SCALE_MODE, create one ImageCache of
# SCALE_IMAGES fresh images selecting exactly those nodes, and measure three operations, each with a
# controller process of its own (so that its counters, peak RSS and CPU belong to that operation):
#   create (-> Succeeded), a warm refresh (annotation), a purge (annotation).
# For each: seconds; the controller's Jobs, status writes and API requests (its own client's counters,
# printed when it stops; start-up LISTs and WATCHes included); its peak RSS (VmHWM) and CPU; the API server's
# CPU; cluster-wide API requests by verb and by resource (apiserver_request_total deltas from the API
# server's /metrics); the ImageCache's and the largest NodeImageCache's size in bytes (kubectl get -o json).
# Job mode also measures the raw-Jobs floor in the same run (the same N x I pull Jobs created directly and
# awaited until Complete, as bench/controller.sh does) and prints the ratio (target <= 1.1 at >= 100 nodes
# x 20 images).
#
#   SCALE_MODE=jobs      jobs: kubemark hollow nodes (testbed/hollow.sh), the controller's pull/delete Jobs
#                        agent: `kubefledged agent-sim` (simulated nodes, real agent code on a fake runtime)
#                        and `kubefledged controller --mode=agent`
#   SCALE_NODES=100 SCALE_IMAGES=20
#   SCALE_KEEP=1         leave the simulated nodes, the namespace and its ImageCache for inspection
#   SCALE_FLOOR=1        job mode: measure the raw-Jobs floor (0: skip it)
#   SCALE_CHECK=1        fail (exit 1) unless the ImageCache stays <= 256 KiB and kube-fledged's API requests
#                        for the create stay within SCALE_MAX_REQUESTS (default: per mode, printed)
#   SCALE_EXIT_AFTER=3s  job mode: how long a hollow node's containers run
#   SCALE_PULL_LATENCY=0s  agent mode: the simulated runtime's pull time
#   SCALE_KCM_QPS=Q[,B]  restart kube-controller-manager with this client rate limit first (testbed/up.sh
#                        --kcm-qps); its setting is printed either way
#   SCALE_TIMEOUT=1800   seconds each operation may take
#   SCALE_CONTROLLER_ARGS  more flags for `kubefledged controller` (e.g. --jobs-max-surge=200)
#
# The last line printed is exactly
#   scale: mode=M nodes=N images=I pairs=P seconds=S api_requests=R controller_rss_kib=K imagecache_bytes=B
# S: create -> Succeeded; R: kube-fledged's API requests for the create (the controller's own count; in agent
# mode plus the agents' NodeImageCache status writes); K: the controller's peak RSS over the three
# operations; B: the largest ImageCache seen.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER=${KF_CLUSTER_DIR:-$ROOT/.cluster}
[ -f "$CLUSTER/env" ] || { echo "scale: no cluster ($CLUSTER/env): make cluster-up first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$CLUSTER/env"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
MODE=${SCALE_MODE:-jobs} N=${SCALE_NODES:-100} I=${SCALE_IMAGES:-20}
KEEP=${SCALE_KEEP:-0} FLOOR=${SCALE_FLOOR:-1} CHECK=${SCALE_CHECK:-0} TIMEOUT=${SCALE_TIMEOUT:-1800}
case $MODE in jobs|agent) ;; *) echo "scale: SCALE_MODE must be jobs or agent, not '$MODE'" >&2; exit 2 ;; esac
[[ $N =~ ^[1-9][0-9]*$ && $I =~ ^[1-9][0-9]*$ ]] || { echo "scale: SCALE_NODES and SCALE_IMAGES must be positive integers" >&2; exit 2; }
P=$(( N * I ))
BIN=${KF_BIN:-$ROOT/build/src/kubefledged}
IMAGE=${KF_IMAGE:-$REGISTRY/kubefledged/kubefledged:dev}
GOLDEN=$ROOT/tests/unit/data/ic/job-pull.json
OUT=$ROOT/bench/out/scale-$MODE-$N-$I; rm -rf "$OUT"; mkdir -p "$OUT"
NS=kf-scale-$(printf "%04x%04x" $RANDOM $RANDOM) FNS=""
IC=scale
APISERVER_PID=$(cat "$CLUSTER/run/apiserver.pid")
[ -x "$BIN" ] || { echo "scale: no $BIN: make build" >&2; exit 1; }
say() { printf '[scale %s] %s\n' "$(date +%T)" "$*"; }

BG=() SIM_PID="" STARTED_HOLLOW=0
# The NodeImageCaches of simulated nodes: the garbage collector removes them after their Nodes, in its own
# time; a next run's nodes have the same names, and its controller must not find the old objects (it would
# patch them, then see them deleted under it). Deleted here, and awaited.
sim_nics_gone() {
  local left
  left=$(kubectl get nodeimagecaches -o name 2>/dev/null | grep '/kf-sim-' || true)
  [ -z "$left" ] || xargs kubectl delete --wait=true --timeout=300s >/dev/null 2>&1 <<< "$left" || true
}

cleanup() {
  local p
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then
    say "SCALE_KEEP=1: left namespace $NS (ImageCache $IC) and the simulated nodes; remove them with:"
    say "  kubectl delete namespace $NS; $([ "$MODE" = jobs ] && echo "testbed/hollow.sh down" || echo "kill $SIM_PID (agent-sim deletes its nodes)")"
    return
  fi
  kubectl delete namespace "$NS" ${FNS:+"$FNS"} --wait=false >/dev/null 2>&1 || true
  if [ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null; then wait "$SIM_PID" 2>/dev/null || true; fi
  sim_nics_gone
  if [ "$STARTED_HOLLOW" = 1 ]; then "$ROOT/testbed/hollow.sh" down >/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- preconditions ---------------------------------------------------------------------------------------
others=$(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.containers[0].args[0]}{"\n"}{end}' |
         awk '$2 == "controller" { printf "%s ", $1 }')
[ -z "$others" ] || { echo "scale: a kube-fledged controller runs in this cluster (${others% }): remove it first" >&2; exit 1; }
if [ -n "${SCALE_KCM_QPS:-}" ]; then
  "$ROOT/testbed/up.sh" --nodes "$KF_NODE_COUNT" --kcm-qps "$SCALE_KCM_QPS" > "$OUT/up.log" 2>&1 ||
    { tail -5 "$OUT/up.log"; echo "scale: testbed/up.sh --kcm-qps $SCALE_KCM_QPS failed" >&2; exit 1; }
fi
kcm_pid=$(cat "$CLUSTER/run/controller-manager.pid")
KCM_LIMIT=$(tr '\0' '\n' < "/proc/$kcm_pid/cmdline" | sed -n 's/^--kube-api-\(qps\|burst\)=/\1 /p' | xargs)
KCM_LIMIT=${KCM_LIMIT:-qps 20 burst 30 (defaults)}
kubectl apply -f "$ROOT/deploy/kubefledged-crd.yaml" >/dev/null
[ "$MODE" = jobs ] || kubectl apply -f "$ROOT/deploy/kubefledged-crd-nodeimagecache.yaml" >/dev/null
kubectl create namespace "$NS" >/dev/null
say "mode $MODE: $N simulated nodes x $I images = $P pairs, namespace $NS; kube-controller-manager client: $KCM_LIMIT"

# ---- simulated nodes ---------------------------------------------------------------------------------------
t=$(now)
if [ "$MODE" = jobs ]; then
  SELECTOR='{"kubemark": "true"}' LABEL=kubemark=true
  have=$(kubectl get nodes -l "$LABEL" -o name | wc -l)
  if [ "$have" -gt "$N" ]; then
    echo "scale: $have hollow nodes exist, more than SCALE_NODES=$N: testbed/hollow.sh down first" >&2; exit 1
  fi
  [ "$have" = "$N" ] || STARTED_HOLLOW=1
  "$ROOT/testbed/hollow.sh" up "$N" --exit-after "${SCALE_EXIT_AFTER:-3s}" 2>&1 | sed 's/^/  /'
  mapfile -t SIM_NODES < <(kubectl get nodes -l "$LABEL" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
else
  SELECTOR='{"kubefledged.io/scale": "sim"}' LABEL=kubefledged.io/scale=sim
  sim_nics_gone # an earlier run's, if its clean-up did not finish
  "$BIN" agent-sim --kubeconfig="$KUBECONFIG" --nodes="$N" --node-prefix=kf-sim- --node-labels="$LABEL" \
    --pull-latency="${SCALE_PULL_LATENCY:-0s}" --delete-nodes-on-exit > "$OUT/agent-sim.log" 2>&1 &
  SIM_PID=$!
  deadline=$(( SECONDS + 120 + N / 10 ))
  until grep -q "agent-sim: $N nodes ready" "$OUT/agent-sim.log"; do
    kill -0 "$SIM_PID" 2>/dev/null || { tail -5 "$OUT/agent-sim.log"; echo "scale: agent-sim exited" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "scale: agent-sim: not $N nodes ready in time" >&2; exit 1; }
    sleep 0.5
  done
  mapfile -t SIM_NODES < <(kubectl get nodes -l "$LABEL" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
fi
[ "${#SIM_NODES[@]}" = "$N" ] || { echo "scale: $N simulated nodes wanted, ${#SIM_NODES[@]} labelled $LABEL" >&2; exit 1; }
say "$N simulated nodes Ready in $(secs "$t" "$(now)") s"

# ---- measuring helpers ---------------------------------------------------------------------------------------
# API requests as the API server counts them: "verb resource/subresource count" per line
api_counts() {
  kubectl get --raw /metrics | awk '/^apiserver_request_total\{/ {
      v = r = s = ""
      if (match($0, /verb="[^"]*"/)) v = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /resource="[^"]*"/)) r = substr($0, RSTART + 10, RLENGTH - 11)
      if (match($0, /subresource="[^"]*"/)) s = substr($0, RSTART + 13, RLENGTH - 14)
      n[v " " r (s == "" ? "" : "/" s)] += $NF
    } END { for (k in n) print k, n[k] }'
}
# api_delta BEFORE AFTER: the same lines, differences only
api_delta() { awk 'NR == FNR { b[$1 " " $2] = $3; next } { d = $3 - b[$1 " " $2]; if (d > 0) print $1, $2, d }' "$1" "$2"; }
# summaries of a delta file
by_verb() { awk '{ n[$1] += $3; t += $3 } END { printf "%d:", t; for (k in n) printf " %s %d", k, n[k]; print "" }' "$1"; }
by_resource() { awk '{ n[$2] += $3 } END { for (k in n) print n[k], k }' "$1" | sort -rn | head -"${2:-8}" | awk '{ printf "%s %s, ", $2, $1 }' | sed 's/, $//'; }
count_of() { awk -v r="$2" '$2 == r { t += $3 } END { print t + 0 }' "$1"; }   # DELTA RESOURCE

ic_bytes() { kubectl -n "$NS" get imagecache "$IC" -o json 2>/dev/null | wc -c; }
nic_bytes() { # the largest NodeImageCache of the simulated nodes
  [ "$MODE" = agent ] || { echo 0; return; }
  kubectl get nodeimagecaches -o json 2>/dev/null | jq '[.items[] | tojson | length] | max // 0'
}

# watch_into FILE KUBECTL-GET-ARGS...: a kubectl watch printing $JP per event into FILE (stopped at exit)
watch_into() { local f=$1; shift; kubectl "$@" --watch -o jsonpath="$JP" > "$f" 2>/dev/null & BG+=($!); }

MAX_RSS=0 MAX_IC=0 MAX_NIC=0
declare -A SECS KF_REQ

# run_op OP ACTION: one operation with a controller process of its own. ACTION creates the cache or sets
# the annotation; the operation ends when the cache reports OP's reason with a final status.
run_op() {
  local op=$1 action=$2 reason log=$OUT/controller-$1.log pid t0 t1 st="" a0=$OUT/api-$1.0 a1=$OUT/api-$1.1 d=$OUT/api-$1.delta
  case $op in create) reason=ImageCacheCreate ;; refresh) reason=ImageCacheRefresh ;; purge) reason=ImageCachePurge ;; esac
  local mode_flag=(); [ "$MODE" = jobs ] || mode_flag=(--mode=agent)
  # shellcheck disable=SC2086  # SCALE_CONTROLLER_ARGS: flags, split on blanks
  BUSYBOX_IMAGE=$IMAGE KUBEFLEDGED_CRI_CLIENT_IMAGE=$IMAGE KUBEFLEDGED_NAMESPACE=$NS \
    "$BIN" controller --kubeconfig="$KUBECONFIG" --leader-elect=false --image-cache-refresh-frequency=0s -v=1 \
      "${mode_flag[@]}" ${SCALE_CONTROLLER_ARGS:-} > "$log" 2>&1 &
  pid=$!
  sleep 2
  kill -0 "$pid" 2>/dev/null || { tail -5 "$log"; echo "scale: the controller exited" >&2; exit 1; }
  JP='{.status.status} {.status.reason}{"\n"}'
  watch_into "$OUT/watch-$op" -n "$NS" get imagecaches --field-selector "metadata.name=$IC"
  api_counts > "$a0"
  local api_cpu0 sim_cpu0=0; api_cpu0=$(cpu_s "$APISERVER_PID"); [ -z "$SIM_PID" ] || sim_cpu0=$(cpu_s "$SIM_PID")
  t0=$(now)
  $action
  local deadline=$(( SECONDS + TIMEOUT ))
  while :; do
    st=$(awk -v r="$reason" '$2 == r && ($1 == "Succeeded" || $1 == "Failed" || $1 == "NoImagesPulledOrDeleted") { s = $1 } END { print s }' "$OUT/watch-$op" 2>/dev/null)
    [ -z "$st" ] || break
    kill -0 "$pid" 2>/dev/null || { tail -5 "$log"; echo "scale: the controller exited during $op" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "scale: $op did not finish in ${TIMEOUT}s (status: $(tail -1 "$OUT/watch-$op"))" >&2; exit 1; }
    sleep 0.2
  done
  t1=$(now)
  api_counts > "$a1"
  local api_cpu1 sim_cpu1=0 hwm cpu icb nicb
  api_cpu1=$(cpu_s "$APISERVER_PID"); [ -z "$SIM_PID" ] || sim_cpu1=$(cpu_s "$SIM_PID")
  hwm=$(proc_field "$pid" VmHWM); cpu=$(cpu_s "$pid")
  icb=$(ic_bytes); nicb=$(nic_bytes)
  kill -TERM "$pid"; wait "$pid" || true
  api_delta "$a0" "$a1" > "$d"
  local stopped req agent_req=0
  stopped=$(grep -o 'stopped: .*' "$log" | tail -1)
  req=$(sed -n 's/.*API: \([0-9]*\) requests.*/\1/p' <<< "$stopped")
  [ "$MODE" = jobs ] || agent_req=$(count_of "$d" nodeimagecaches/status)
  SECS[$op]=$(secs "$t0" "$t1"); KF_REQ[$op]=$(( ${req:-0} + agent_req ))
  [ "$hwm" -le "$MAX_RSS" ] || MAX_RSS=$hwm
  [ "$icb" -le "$MAX_IC" ] || MAX_IC=$icb
  [ "$nicb" -le "$MAX_NIC" ] || MAX_NIC=$nicb
  say "$op: $st in ${SECS[$op]} s"
  echo "  controller: ${stopped:-no stop line}"
  echo "  controller: peak RSS $hwm KiB, CPU $cpu s; kube-fledged API requests ${KF_REQ[$op]}" \
       "($(ratio "${KF_REQ[$op]}" "$P") per pair$([ "$MODE" = jobs ] || echo "; agents' NodeImageCache status writes $agent_req"))"
  echo "  API server: CPU $(awk -v a="$api_cpu0" -v b="$api_cpu1" 'BEGIN { printf "%.1f", b - a }') s$([ -z "$SIM_PID" ] || echo "; agent-sim CPU $(awk -v a="$sim_cpu0" -v b="$sim_cpu1" 'BEGIN { printf "%.1f", b - a }') s")"
  echo "  cluster API requests $(by_verb "$d")"
  echo "    by resource: $(by_resource "$d" 10)"
  echo "  ImageCache $icb bytes$([ "$MODE" = jobs ] || echo ", largest NodeImageCache $nicb bytes")"
}

create_ic() {
  mapfile -t imgs < <("$ROOT/testbed/images.sh" gen "scale/$NS/img" "$I" 2>/dev/null)
  [ "${#imgs[@]}" = "$I" ] || { echo "scale: images.sh gen made ${#imgs[@]} of $I images" >&2; exit 1; }
  jq -n --arg ns "$NS" --arg name "$IC" --argjson sel "$SELECTOR" --argjson imgs "$(printf '%s\n' "${imgs[@]}" | jq -R . | jq -s .)" \
    '{apiVersion: "kubefledged.io/v1alpha2", kind: "ImageCache", metadata: {name: $name, namespace: $ns},
      spec: {cacheSpec: [{images: $imgs, nodeSelector: $sel}]}}' > "$OUT/imagecache.json"
  kubectl create -f "$OUT/imagecache.json" >/dev/null
}
refresh_ic() { kubectl -n "$NS" annotate imagecache "$IC" kubefledged.io/refresh-imagecache= >/dev/null; }

# Job mode's warm refresh decides "already present" from the images each Node reports (hollow kubelets
# update their status every 10 s, and list at most 50 images): wait until every simulated node lists the
# cache's images (as many as fit), so that the refresh is warm as a refresh 15 minutes later would be.
nodes_report_images() {
  local want=$(( I < 45 ? I : 45 ))
  kubectl get nodes -l "$LABEL" -o json | jq -e --arg p "$REGISTRY/scale/$NS/img-" --argjson want "$want" '
    [.items[] | [.status.images[]?.names[] | select(startswith($p))] | unique | length >= $want] | all' >/dev/null
}
settle() {
  local t0; t0=$(now)
  until nodes_report_images; do
    [ "$(secs "$t0" "$(now)" | cut -d. -f1)" -lt 60 ] || { say "warning: after 60 s not every node reports the images"; return 0; }
    sleep 1
  done
  say "every simulated node reports the cache's images ($(secs "$t0" "$(now)") s after Succeeded; not counted)"
}
purge_ic() { kubectl -n "$NS" annotate imagecache "$IC" kubefledged.io/purge-imagecache= >/dev/null; }

# ---- job mode: the raw-Jobs floor ------------------------------------------------------------------------------
FLOOR_S=""
floor_run() {
  FNS=$NS-floor
  local imgs list=$OUT/raw-jobs.json t0 t1 a0=$OUT/api-floor.0 a1=$OUT/api-floor.1 api_cpu0 done=0 deadline
  imgs=$("$ROOT/testbed/images.sh" gen "scale/$NS/raw" "$I" 2>/dev/null)
  # in a namespace of its own, which is then deleted: one request, and the namespace and garbage collectors
  # clean up (a delete-collection of 2,000 Jobs outlasts the API server's request timeout)
  kubectl create namespace "$FNS" >/dev/null
  raw_jobs_list "$GOLDEN" "$FNS" raw "$IMAGE" "$(printf '%s\n' "${SIM_NODES[@]}")" "$imgs" > "$list"
  # four creators at once: the floor is the fastest way to get these Jobs run, not kubectl's pace
  local k
  for k in 0 1 2 3; do jq -c --argjson k $k '.items |= [to_entries[] | select(.key % 4 == $k) | .value]' "$list" > "$list.$k"; done
  JP='{.metadata.name} {.status.succeeded}{"\n"}'
  watch_into "$OUT/watch-raw" -n "$FNS" get jobs -l run=raw
  api_counts > "$a0"; api_cpu0=$(cpu_s "$APISERVER_PID")
  t0=$(now)
  local creators=()
  for k in 0 1 2 3; do kubectl create -f "$list.$k" > /dev/null & creators+=($!); done
  for k in "${creators[@]}"; do wait "$k" || { echo "scale: kubectl create of the raw Jobs failed" >&2; exit 1; }; done
  deadline=$(( SECONDS + TIMEOUT ))
  until [ "$done" -ge "$P" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "scale: raw Jobs: $done of $P Complete after ${TIMEOUT}s" >&2; exit 1; }
    sleep 0.2
    done=$(awk '$2 == 1 { s[$1] = 1 } END { print length(s) }' "$OUT/watch-raw")
  done
  t1=$(now)
  api_counts > "$a1"; api_delta "$a0" "$a1" > "$OUT/api-floor.delta"
  FLOOR_S=$(secs "$t0" "$t1")
  say "floor: $P Jobs created directly (4 kubectl creates at once) and Complete in $FLOOR_S s"
  echo "  API server: CPU $(awk -v a="$api_cpu0" -v b="$(cpu_s "$APISERVER_PID")" 'BEGIN { printf "%.1f", b - a }') s;" \
       "cluster API requests $(by_verb "$OUT/api-floor.delta")"
  echo "    by resource: $(by_resource "$OUT/api-floor.delta" 10)"
  # wait until its namespace is gone, so that the controller's run does not share the cluster with the floor's
  # garbage collection
  kubectl delete namespace "$FNS" --wait=false >/dev/null
  t0=$(now)
  while kubectl get namespace "$FNS" >/dev/null 2>&1; do sleep 2; done
  say "floor's namespace deleted in $(secs "$t0" "$(now)") s (not counted)"
}

# ---- the run -----------------------------------------------------------------------------------------------------
[ "$MODE" = jobs ] && [ "$FLOOR" = 1 ] && floor_run
run_op create create_ic
[ "$MODE" = agent ] || settle
run_op refresh refresh_ic
run_op purge purge_ic
if [ -n "$SIM_PID" ]; then
  say "agent-sim ($N nodes, real agent code on a simulated runtime): peak RSS $(proc_field "$SIM_PID" VmHWM) KiB, CPU $(cpu_s "$SIM_PID") s over the run"
fi
if [ -n "$FLOOR_S" ]; then
  say "job mode: create ${SECS[create]} s vs raw-Jobs floor $FLOOR_S s: ratio $(ratio "${SECS[create]}" "$FLOOR_S") (target <= 1.1 at >= 100 nodes x 20 images)"
fi
say "upstream's design at this size: $P Jobs per create (and $P DELETEs), $(( 2 * P + 10 )) API requests," \
    "about $(( (2 * P + 9) / 5 )) s of them at its client's 5 QPS; a warm refresh makes a Job for every image past the" \
    "kubelet's 50 per node ($(( I > 50 ? N * (I - 50) : 0 )) here), a purge $P delete Jobs"

rc=0
if [ "$CHECK" = 1 ]; then
  if [ "$MODE" = jobs ]; then def=$(( 3 * P + 50 )); else def=$(( P / 20 + 3 * N + 50 )); fi
  max=${SCALE_MAX_REQUESTS:-$def}
  if [ "$MAX_IC" -gt 262144 ]; then echo "scale: CHECK FAILED: ImageCache $MAX_IC bytes > 256 KiB" >&2; rc=1; fi
  if [ "${KF_REQ[create]}" -gt "$max" ]; then echo "scale: CHECK FAILED: ${KF_REQ[create]} API requests for the create > $max" >&2; rc=1; fi
  [ $rc = 1 ] || say "checks passed: ImageCache $MAX_IC <= 262144 bytes, ${KF_REQ[create]} <= $max API requests for the create"
fi
echo "scale: mode=$MODE nodes=$N images=$I pairs=$P seconds=${SECS[create]} api_requests=${KF_REQ[create]} controller_rss_kib=$MAX_RSS imagecache_bytes=$MAX_IC"
exit $rc
