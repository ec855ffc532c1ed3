#!/usr/bin/env bash
# Prints the path of a dockerd from Debian's docker.io package, for the tests of the Docker Engine client
# (tests/e2e/cases/10-cri.sh). The package is downloaded and unpacked, not installed (so it neither
# replaces the machine's docker CLI nor starts a daemon), into
#   ${XDG_CACHE_HOME:-~/.cache}/kube-fledged-c/docker.io/<version>/
# A second run finds it there and returns at once. The daemon it prints needs only runc and containerd,
# which the test bed installs anyway.
set -euo pipefail
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c/docker.io
ver=$(apt-cache policy docker.io 2>/dev/null | sed -n 's/^ *Candidate: //p')
case "$ver" in ""|"(none)") echo "dockerd.sh: Debian's archive offers no docker.io package" >&2; exit 1 ;; esac
out=$cache/$ver
if [ ! -x "$out/usr/sbin/dockerd" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # apt's sandbox user cannot write into a root-only temp dir; download as the caller (quietly).
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "docker.io=$ver" >/dev/null) ||
    { echo "dockerd.sh: apt-get download docker.io=$ver failed" >&2; exit 1; }
  dpkg-deb -x "$tmp"/docker.io_*.deb "$tmp/x"
  rm -rf "$out"; mv "$tmp/x" "$out"
fi
echo "$out/usr/sbin/dockerd"
