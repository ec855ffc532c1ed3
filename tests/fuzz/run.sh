#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined)
# into build-fuzz/ and runs each for SECONDS (default 60; 0 = build only), one after the other; prints one line per target
# with executions, coverage and corpus size. Exit status 1 when a target found a crash, leak, timeout or
# broken invariant (the reproducer is in build-fuzz/artifacts-<target>/).
#
#   fuzz_admission   bytes -> wh_review(): AdmissionReview decoding, ImageCache decoding and validation,
#                    reply encoding (seeds: the AdmissionReviews recorded from kube-apiserver in
#                    tests/unit/data/webhook, and tests/fuzz/seeds/admission)
#   fuzz_imagecache  bytes -> ic_spec_parse() + ic_validate() as CREATE, or as UPDATE when the input
#                    holds two objects separated by a newline (seeds: tests/fuzz/seeds/imagecache)
#   fuzz_cri_grpc    a runtime's reply (header lines + body) through the CRI client: gRPC status and
#                    framing, protobuf-c decoding of every reply, cri_rmi acting on an ImageStatus reply
#   fuzz_cri_docker  dockerd's replies through the Docker client's parsers (images, inspect, version,
#                    the pull progress stream, delete, error bodies)
#   fuzz_imageref    image references (imageref_parse, canonical form round trip) and the property of
#                    cri rmi's choice: only the asked-for reference is ever "own" (cri_rmi_partition)
#   fuzz_tracker     tenant-writable Job/Pod/Event JSON through ic_job_result, ic_pull_error, ic_task_expire
#   fuzz_wh_cabundle a hostile ValidatingWebhookConfiguration through the caBundle patch (with an applier
#                    as oracle)
#   fuzz_wh_certs    the certificate Secret's data and PEM blocks through OpenSSL and GnuTLS
#   fuzz_watch       bytes -> the watch-stream decoder, whole and cut at seeded chunk boundaries: same
#                    events, same end, the line cap held (seeds: tests/fuzz/seeds/watch)
#   fuzz_kubeconfig  bytes -> kube_yaml_load_all() + kube_config_parse(): anchors, aliases, merge keys,
#                    the alias budget (seeds: tests/fuzz/seeds/kubeconfig and tests/unit/data kubeconfigs)
#   fuzz_operator    a byte (release name, CRDs) + a KubeFledged spec as JSON -> op_values_merge() + op_render():
#                    a list of whole objects or an error, deterministic (seeds: tests/fuzz/seeds/operator)
# Each target's file says its input format and invariants; seeds are in tests/fuzz/seeds/<target>.
#
# The corpus grows in tests/fuzz/corpus-<target>/ (git-ignored) and is reused by the next run.
# Environment: CC_FUZZ (default clang), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default all),
# FUZZ_JOBS (targets fuzzed at a time, default one per CPU), FUZZ_RUNS (stop a target after this many executions, e.g. 10000000 for a long run; SECONDS still caps it).
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
all_targets=(admission imagecache)
all_targets+=(cri_grpc cri_docker imageref tracker wh_cabundle wh_certs)
all_targets+=(watch kubeconfig operator)
targets=${FUZZ_TARGETS:-${all_targets[*]}}
mkdir -p "$out"

cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -fno-strict-aliasing -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wextra -Werror -I"$root/src"
        -DKF_VERSION='"fuzz"' -DKF_GIT_VERSION='"fuzz"')
read -r -a jansson <<<"$(pkg-config --cflags --libs jansson)"
common=(util/strbuf.c util/util.c util/log.c util/base64.c
        imagecache/ic_types.c util/imageref.c imagecache/ic_validate.c)
declare -A extra=([admission]="webhook/wh_admission.c" [imagecache]="")
declare -A seeds=([admission]="$root/tests/unit/data/webhook $root/tests/fuzz/seeds/admission"
                  [imagecache]="$root/tests/fuzz/seeds/imagecache")
declare -A pkgs=() # pkg-config packages beyond jansson
cri="cri/cri.c cri/cri_grpc.c cri/cri_rmi.c cri/cri_docker.c util/version.c pb"
extra+=([cri_grpc]="$cri" [cri_docker]="$cri" [imageref]="$cri")
pkgs+=([cri_grpc]="libcurl libprotobuf-c" [cri_docker]="libcurl libprotobuf-c" [imageref]="libcurl libprotobuf-c")
extra+=([tracker]="imagecache/ic_tracker.c imagecache/ic_status.c imagecache/ic_task.c util/map.c")
extra+=([wh_cabundle]="webhook/wh_cabundle.c")
extra+=([wh_certs]="webhook/wh_certs.c webhook/wh_tls.c")
pkgs+=([wh_certs]="openssl gnutls")
extra+=([watch]="kube/kube_watch.c kube/kube_client.c kube/kube_request.c kube/kube_conn.c util/version.c")
extra+=([kubeconfig]="kube/kube_yaml.c kube/kube_config.c util/map.c")
pkgs+=([watch]="libcurl" [kubeconfig]="yaml-0.1")
seeds+=([watch]="$root/tests/fuzz/seeds/watch" [kubeconfig]="$root/tests/fuzz/seeds/kubeconfig")
extra+=([operator]="kube/kube_yaml.c util/map.c operator/op_chart.c operator/op_values.c operator/op_render.c
                    operator/op_render_controller.c operator/op_render_webhook.c operator/op_render_agent.c
                    operator/op_render_metrics.c op_chart")
pkgs+=([operator]="yaml-0.1")
seeds+=([operator]="$root/tests/fuzz/seeds/operator")
declare -A maxlen=([kubeconfig]=8192) # a kubeconfig is small; shorter inputs run ten times faster
maxlen+=([wh_certs]=6144) # default 65536; the real Secret is about 5 KiB, and a 64 KiB bundle is ~100 certificates, all parsed
for t in cri_grpc cri_docker imageref tracker wh_cabundle wh_certs; do seeds[$t]=$root/tests/fuzz/seeds/$t; done

for t in $targets; do
	srcs=() inc=()
	for f in "${common[@]}" ${extra[$t]:-}; do
		if [ "$f" = pb ]; then # the CRI messages, generated as the cmake build does
			mkdir -p "$out/pb"
			for p in cri_api cri_containerd; do
				[ "$out/pb/$p.pb-c.c" -nt "$root/src/cri/$p.proto" ] ||
					protoc-c --c_out="$out/pb" -I"$root/src/cri" "$root/src/cri/$p.proto"
				srcs+=("$out/pb/$p.pb-c.c")
			done
			inc=(-I"$out/pb" -I"$root/src/cri")
		elif [ "$f" = op_chart ]; then # the chart the operator carries, embedded as the build does (src/CMakeLists.txt)
			chart=$root/charts/kube-fledged files="op_chart_yaml=$chart/Chart.yaml|op_values_yaml=$chart/values.yaml" n=0
			for c in "$chart"/crds/*.yaml; do files+="|op_crd_$n=$c"; n=$((n + 1)); done
			cmake -DOUT="$out/op_chart_data.c" -DHEADER=operator/op_chart.h "-DFILES=$files" -DLIST=op_chart_crds \
				-DLIST_PREFIX=op_crd_ -P "$root/cmake/embed.cmake" >/dev/null
			srcs+=("$out/op_chart_data.c")
		else
			srcs+=("$root/src/$f")
		fi
	done
	libs=()
	[ -z "${pkgs[$t]:-}" ] || read -r -a libs <<<"$(pkg-config --cflags --libs ${pkgs[$t]})"
	"$cc" "${cflags[@]}" "${inc[@]}" "${srcs[@]}" "$root/tests/fuzz/fuzz_$t.c" "${jansson[@]}" "${libs[@]}" \
		-lpthread -o "$out/fuzz_$t"
done

[ "$secs" != 0 ] || exit 0 # 0: build only
# run_one TARGET: fuzzes it; its exit status is the fuzzer's
run_one() {
	local t=$1 corpus=$root/tests/fuzz/corpus-$1
	mkdir -p "$corpus" "$out/artifacts-$t"
	# shellcheck disable=SC2086
	"$out/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -dict="$root/tests/fuzz/json.dict" \
		${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -max_len="${maxlen[$t]:-65536}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/artifacts-$t/" \
		"$corpus" ${seeds[$t]} >"$out/fuzz_$t.log" 2>&1
}

# FUZZ_JOBS targets at a time (default: one per CPU); each keeps its own seconds
jobs=${FUZZ_JOBS:-$(nproc)}
declare -A rc=()
running=()
for t in $targets; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n || true
		still=()
		for r in "${running[@]}"; do
			if kill -0 "${r#*:}" 2>/dev/null; then still+=("$r"); else wait "${r#*:}"; rc[${r%%:*}]=$?; fi
		done
		running=("${still[@]}")
	done
	run_one "$t" &
	running+=("$t:$!")
done
for r in "${running[@]}"; do
	wait "${r#*:}"; rc[${r%%:*}]=$?
done

fail=0
printf '%-16s %8s %12s %10s %8s %8s %8s  %s\n' target seconds execs execs/s cov ft corpus result
for t in $targets; do
	log=$out/fuzz_$t.log
	if [ "${rc[$t]:-1}" = 0 ]; then
		result=ok
	else
		result="FAILED (see $log)"
		fail=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	rate=$(( ${execs:-0} / (${took:-$secs} > 0 ? ${took:-$secs} : 1) ))
	printf '%-16s %8s %12s %10s %8s %8s %8s  %s\n' "$t" "${took:-$secs}" "${execs:-?}" "$rate" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$result"
done
exit $fail
