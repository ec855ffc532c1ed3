#!/usr/bin/env bash
# build-arch.sh - cross-compiles kube-fledged for other Debian architectures (arm64, armhf = linux/arm/v7)
# into build-<arch>/ with Debian's cross compilers and multiarch libraries (cmake/toolchain-<arch>.cmake;
# hack/deps.sh --cross installs them), and with --test checks each build under qemu-user: the binary prints
# its version and every unit test passes (ctest -L unit, run through qemu-<cpu>-static).
#
#   hack/build-arch.sh [--test] [--image-only] [ARCH...]     default ARCHs: arm64 armhf
#     --image-only   build only what the image holds (kubefledged, kf-static-helper), not the unit tests
#     --test         then run `kubefledged version` and the unit tests under qemu (implies a full build)
# BUILD_TYPE (RelWithDebInfo) and JOBS (nproc) as for make build. Every step is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
test=0 image_only=0 archs=()
for a in "$@"; do
  case $a in
    --test) test=1;;
    --image-only) image_only=1;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    all) archs+=(arm64 armhf);;
    amd64|arm64|armhf) archs+=("$a");;
    *) echo "build-arch: unknown argument \"$a\" (arm64, armhf, --test, --image-only)" >&2; exit 2;;
  esac
done
[ ${#archs[@]} -gt 0 ] || archs=(arm64 armhf)
[ $test = 0 ] || image_only=0
host=$(dpkg --print-architecture)
declare -A qemu=([arm64]=qemu-aarch64-static [armhf]=qemu-arm-static)
declare -A cc=([arm64]=aarch64-linux-gnu-gcc [armhf]=arm-linux-gnueabihf-gcc)
t0=$SECONDS
for arch in "${archs[@]}"; do
  [ "$arch" != "$host" ] || continue   # the host's own build is build/ (make build)
  command -v "${cc[$arch]}" >/dev/null || { echo "build-arch: ${cc[$arch]} not found: run hack/deps.sh --cross" >&2; exit 1; }
  dir=build-$arch t=$SECONDS
  cmake --no-warn-unused-cli -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE="cmake/toolchain-$arch.cmake" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
  if [ $image_only = 1 ]; then
    cmake --build "$dir" -j"${JOBS:-$(nproc)}" --target kubefledged kf-static-helper >/dev/null
  else
    cmake --build "$dir" -j"${JOBS:-$(nproc)}" >/dev/null
  fi
  echo "build-arch: $arch: built $dir in $((SECONDS - t)) s"
  [ $test = 1 ] || continue
  q=$(command -v "${qemu[$arch]}") || { echo "build-arch: ${qemu[$arch]} not found: run hack/deps.sh --cross" >&2; exit 1; }
  t=$SECONDS
  v=$("$q" "$dir/src/kubefledged" version) || { echo "build-arch: $arch: kubefledged version failed under $q" >&2; exit 1; }
  echo "build-arch: $arch: $(head -1 <<< "$v") ($(tail -1 <<< "$v"))"
  [ "$("$q" "$dir/src/kf-static-helper" echo ok)" = ok ] || { echo "build-arch: $arch: kf-static-helper does not run" >&2; exit 1; }
  (cd "$dir" && ctest -L unit --output-on-failure -j"${JOBS:-$(nproc)}") > "$dir/unit-qemu.log" 2>&1 || {
    grep -E 'Failed|\*\*\*|ERROR|LINE' "$dir/unit-qemu.log" | head -40 >&2
    echo "build-arch: $arch: unit tests FAILED under qemu (log: $dir/unit-qemu.log)" >&2; exit 1
  }
  echo "build-arch: $arch: $(grep -E 'tests passed' "$dir/unit-qemu.log") under qemu in $((SECONDS - t)) s"
done
echo "build-arch: done in $((SECONDS - t0)) s"
