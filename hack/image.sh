#!/usr/bin/env bash
# image.sh - what `make image` runs: cross-builds what each architecture needs, then builds and pushes the image
# (hack/build-image.sh; make build has built this machine's binaries already).
#
#   make image IMAGE=registry.example.com/kubefledged/kubefledged:v0.1.0   HTTPS, docker config credentials;
#                                                     linux/amd64 + linux/arm64 + linux/arm/v7 (an image index)
#   make image                                        the test bed's registry (plain HTTP):
#                                                     $REGISTRY/kubefledged/kubefledged:$IMAGE_TAG, amd64 only
#   make image IMAGE_ARCHS=all                        the test bed's registry, all three architectures
# IMAGE_ARCHS: Debian architectures, "all" = amd64 arm64 armhf. IMAGE_PUSH_ARGS: more options for
# hack/build-image.sh (--plain-http, --ca-file FILE, --docker-config DIR, --format docker, --index, --oci-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${IMAGE:-} archs=${IMAGE_ARCHS:-} extra=()
if [ -z "$ref" ]; then
  env=${KF_CLUSTER_DIR:-.cluster}/env
  [ -f "$env" ] || { echo "make image: no IMAGE=registry/repo:tag given and no test bed ($env): run make cluster-up, or give IMAGE" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$env"
  ref=$REGISTRY/kubefledged/kubefledged:${IMAGE_TAG:-dev} archs=${archs:-amd64} extra=(--plain-http)
fi
archs=${archs:-all}
[ "$archs" != all ] || archs="amd64 arm64 armhf"
host=$(dpkg --print-architecture) foreign=()
for a in ${archs//,/ }; do [ "$a" = "$host" ] || foreign+=("$a"); done
[ ${#foreign[@]} -eq 0 ] || hack/build-arch.sh --image-only "${foreign[@]}"
# shellcheck disable=SC2086  # IMAGE_PUSH_ARGS is a list of options
exec hack/build-image.sh --arch "$archs" --push "$ref" "${extra[@]}" ${IMAGE_PUSH_ARGS:-}
