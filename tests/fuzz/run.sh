#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined)
# into build-fuzz/ and runs each for SECONDS (default 60), one after the other; prints one line per target
# with executions, coverage and corpus size. Exit status 1 when a target found a crash, leak, timeout or
# broken invariant (the reproducer is in build-fuzz/artifacts-<target>/).
#
#   fuzz_admission   bytes -> wh_review(): AdmissionReview decoding, ImageCache decoding and validation,
#                    reply encoding (seeds: the AdmissionReviews recorded from kube-apiserver in
#                    tests/unit/data/webhook, and tests/fuzz/seeds/admission)
#   fuzz_imagecache  bytes -> ic_spec_parse() + ic_validate() as CREATE, or as UPDATE when the input
#                    holds two objects separated by a newline (seeds: tests/fuzz/seeds/imagecache)
#   fuzz_watch       bytes -> the watch-stream decoder, whole and cut at seeded chunk boundaries: same
#                    events, same end, the line cap held (seeds: tests/fuzz/seeds/watch)
#   fuzz_kubeconfig  bytes -> kube_yaml_load_all() + kube_config_parse(): anchors, aliases, merge keys,
#                    the alias budget (seeds: tests/fuzz/seeds/kubeconfig and tests/unit/data kubeconfigs)
#   fuzz_operator    a byte (release name, CRDs) + a KubeFledged spec as JSON -> op_values_merge() + op_render():
#                    a list of whole objects or an error, deterministic (seeds: tests/fuzz/seeds/operator)
#
# The corpus grows in tests/fuzz/corpus-<target>/ (git-ignored) and is reused by the next run.
# Environment: CC_FUZZ (default clang), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default all,
# e.g. FUZZ_TARGETS="watch kubeconfig"; make fuzz passes it through).
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
targets=${FUZZ_TARGETS:-admission imagecache watch kubeconfig operator}
mkdir -p "$out"

cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -DKF_VERSION=\"fuzz\" -DKF_GIT_VERSION=\"fuzz\" -fno-strict-aliasing -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wextra -Werror -I"$root/src")
read -r -a jansson <<<"$(pkg-config --cflags --libs jansson)"
common=(util/strbuf.c util/util.c util/log.c util/base64.c
        imagecache/ic_types.c util/imageref.c imagecache/ic_validate.c)
declare -A extra=([admission]="webhook/wh_admission.c" [imagecache]=""
                  [watch]="kube/kube_watch.c kube/kube_client.c kube/kube_request.c kube/kube_conn.c util/version.c"
                  [kubeconfig]="kube/kube_yaml.c kube/kube_config.c util/map.c"
                  [operator]="kube/kube_yaml.c util/map.c operator/op_chart.c operator/op_values.c operator/op_render.c
                              operator/op_render_controller.c operator/op_render_webhook.c operator/op_render_agent.c")
declare -A libs=([watch]="libcurl" [kubeconfig]="yaml-0.1" [operator]="yaml-0.1")
declare -A maxlen=([kubeconfig]=8192) # a kubeconfig is small; shorter inputs run ten times faster
declare -A seeds=([admission]="$root/tests/unit/data/webhook $root/tests/fuzz/seeds/admission"
                  [imagecache]="$root/tests/fuzz/seeds/imagecache"
                  [watch]="$root/tests/fuzz/seeds/watch"
                  [kubeconfig]="$root/tests/fuzz/seeds/kubeconfig"
                  [operator]="$root/tests/fuzz/seeds/operator")

for t in $targets; do
	srcs=()
	for f in "${common[@]}" ${extra[$t]}; do srcs+=("$root/src/$f"); done
	if [ "$t" = operator ]; then # the chart the operator carries, as the build embeds it (src/CMakeLists.txt)
		chart=$root/charts/kube-fledged files="op_chart_yaml=$chart/Chart.yaml|op_values_yaml=$chart/values.yaml" n=0
		for f in "$chart"/crds/*.yaml; do files+="|op_crd_$n=$f"; n=$((n + 1)); done
		cmake -DOUT="$out/op_chart_data.c" -DHEADER=operator/op_chart.h "-DFILES=$files" -DLIST=op_chart_crds \
			-DLIST_PREFIX=op_crd_ -P "$root/cmake/embed.cmake"
		srcs+=("$out/op_chart_data.c")
	fi
	ldlibs=()
	[ -z "${libs[$t]:-}" ] || read -r -a ldlibs <<<"$(pkg-config --cflags --libs ${libs[$t]}) -lpthread"
	"$cc" "${cflags[@]}" "${srcs[@]}" "$root/tests/fuzz/fuzz_$t.c" "${jansson[@]}" "${ldlibs[@]}" -o "$out/fuzz_$t"
done

fail=0
printf '%-16s %8s %12s %10s %8s %8s %8s  %s\n' target seconds execs execs/s cov ft corpus result
for t in $targets; do
	corpus=$root/tests/fuzz/corpus-$t
	mkdir -p "$corpus" "$out/artifacts-$t"
	log=$out/fuzz_$t.log
	# shellcheck disable=SC2086
	if "$out/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -dict="$root/tests/fuzz/json.dict" \
		-max_len="${maxlen[$t]:-65536}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/artifacts-$t/" \
		"$corpus" ${seeds[$t]} >"$log" 2>&1; then
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
	rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
	printf '%-16s %8s %12s %10s %8s %8s %8s  %s\n' "$t" "$secs" "${execs:-?}" "$rate" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$result"
done
exit $fail
