# Helpers shared by the benchmarks (bench/controller.sh, bench/scale.sh). Sourced, never run.
# shellcheck shell=bash

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }        # T0 T1: seconds between
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# proc_field PID KEY: a field of /proc/PID/status (VmHWM, VmRSS, RssAnon, Threads ...), "0" once it is gone
proc_field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# cpu_s PID: CPU seconds (user + system) the process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# raw_jobs_list GOLDEN NS RUN IMAGE NODES IMGS: a v1 List of the controller's pull Job (GOLDEN, the Job the
# unit tests pin to its rendering, tests/unit/data/ic/job-pull.json) for every node x image, without the
# owner reference, labelled app=rawjobs,run=RUN, with IMAGE as the init container's image. NODES and IMGS
# are newline-separated names and references.
raw_jobs_list() {
  local golden=$1 ns=$2 run=$3 image=$4 nodes=$5 imgs=$6
  jq -c --arg ns "$ns" --arg run "$run" --arg busybox "$image" \
        --argjson imgs "$(jq -R . <<< "$imgs" | jq -s .)" --argjson nodes "$(jq -R . <<< "$nodes" | jq -s .)" '
    . as $job | {apiVersion: "v1", kind: "List", items: [
      $nodes[] as $n | $imgs[] as $i | $job
      | .metadata = {generateName: "raw-", namespace: $ns, labels: {app: "rawjobs", run: $run}}
      | .spec.template.metadata = {labels: {app: "rawjobs", run: $run}}
      | .spec.template.spec.nodeSelector = {"kubernetes.io/hostname": $n}
      | .spec.template.spec.initContainers[0].image = $busybox
      | .spec.template.spec.containers[0].image = $i
      | del(.spec.template.spec.imagePullSecrets)]}' "$golden"
}
