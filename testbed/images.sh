#!/usr/bin/env bash
# Test images for the local cluster, built offline from Debian binaries and pushed with testbed/oci.py.
#
#   testbed/images.sh ensure                        push the standard images below if missing (up.sh runs it)
#   testbed/images.sh gen [--auth] PREFIX COUNT [TAG]
#        push COUNT small distinct images $REGISTRY/PREFIX-001:TAG ... (TAG defaults to 1; the number is
#        zero-padded to 3 digits, more if COUNT needs). Each is busybox:1's layer (mounted, never
#        re-uploaded) plus one tiny layer holding /kf-id = "PREFIX-NNN:TAG"; so the images run like
#        busybox and have distinct digests. Prints one reference per line. 100 images take about a second.
#        KF_GEN_SALT=x changes the content (a new digest under the same names). --auth: push to $REGISTRY_AUTH.
#   testbed/images.sh rm [--auth] REPO TAG          delete a tag's manifest from the registry
#
# Standard images:
#   $REGISTRY/busybox:1          Debian's static busybox with every applet linked in /bin (sh, cp, echo, sleep, wget ...)
#   $REGISTRY/pause:3.2          testbed/pause.c, static; containerd's sandbox_image
#   $REGISTRY/kftest/tools:1     busybox:1 + Debian's curl and openssl with their shared libraries
#   $REGISTRY/kftest/noshell:1   one data file, no shell, no /bin at all
#   $REGISTRY_AUTH/private/app:1 busybox:1 + /app.txt, behind basic auth ($REGISTRY_AUTH_USER/_PASSWORD)
# The registries and credentials come from the environment or, when unset, from .cluster/env.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
TAG=images
if [ -z "${REGISTRY:-}" ] && [ -f "$CLUSTER_DIR/env" ]; then
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/env"
fi
: "${REGISTRY:?REGISTRY is not set (is the cluster up? source .cluster/env)}"
OCI=$KF_ROOT/testbed/oci.py
WORK=$CLUSTER_DIR/images

auth_args() { echo "--user=$REGISTRY_AUTH_USER --password=$REGISTRY_AUTH_PASSWORD"; }

# The busybox root fs: one static binary and a symlink per applet, plus the few files programs expect.
rootfs_busybox() {
  local r=$WORK/rootfs/busybox t a
  [ -d "$r" ] && return 0
  t=$r.tmp; rm -rf "$t" "$r.tgz" "$r.diffid"; mkdir -p "$t/bin" "$t/etc" "$t/root" "$t/tmp" "$t/var"
  chmod 1777 "$t/tmp"
  cp /bin/busybox "$t/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$t/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$t/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$t/etc/group"
  mv "$t" "$r"   # complete or absent, never half-made
}

# curl and openssl with every shared library ldd names, at the same paths; openssl.cnf for `openssl req`.
rootfs_tools() {
  local r=$WORK/rootfs/tools t lib
  [ -d "$r" ] && return 0
  t=$r.tmp; rm -rf "$t" "$r.tgz" "$r.diffid"; mkdir -p "$t/usr/bin" "$t/usr/lib/ssl"
  cp /usr/bin/curl /usr/bin/openssl "$t/usr/bin/"
  for lib in $(ldd /usr/bin/curl /usr/bin/openssl | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
    cp --parents -L "$lib" "$t/"
  done
  cp -L /usr/lib/ssl/openssl.cnf "$t/usr/lib/ssl/openssl.cnf"
  mv "$t" "$r"
}

rootfs_small() { # NAME FILE CONTENT
  local r=$WORK/rootfs/$1
  rm -rf "$r" "$r.tgz" "$r.diffid"; mkdir -p "$(dirname "$r/$2")"
  printf '%s\n' "$3" > "$r/$2"
}

build_pause() {
  local r=$WORK/rootfs/pause
  [ -x "$r/pause" ] && return 0
  rm -f "$r.tgz" "$r.diffid"; mkdir -p "$r"
  cc -Os -static -s -o "$r/pause" "$KF_ROOT/testbed/pause.c"
}

exists() { "$PYTHON" "$OCI" exists "$@"; }

ensure() {
  local t0 missing=0
  t0=$(now_ms)
  mkdir -p "$WORK"
  # busybox first: the others share its layer.
  if ! exists "$REGISTRY" busybox 1; then
    rootfs_busybox
    "$PYTHON" "$OCI" push "$REGISTRY" busybox 1 --layer "$WORK/rootfs/busybox" --cmd '["sh"]' --env PATH=/bin >/dev/null
    missing=$((missing + 1))
  fi
  if ! exists "$REGISTRY" pause 3.2; then
    build_pause
    "$PYTHON" "$OCI" push "$REGISTRY" pause 3.2 --layer "$WORK/rootfs/pause" --entrypoint '["/pause"]' >/dev/null
    missing=$((missing + 1))
  fi
  if ! exists "$REGISTRY" kftest/tools 1; then
    rootfs_busybox; rootfs_tools
    "$PYTHON" "$OCI" push "$REGISTRY" kftest/tools 1 --layer "$WORK/rootfs/busybox" --layer "$WORK/rootfs/tools" \
      --cmd '["sh"]' --env PATH=/usr/bin:/bin >/dev/null
    missing=$((missing + 1))
  fi
  if ! exists "$REGISTRY" kftest/noshell 1; then
    rootfs_small noshell data/hello.txt "an image without a shell"
    "$PYTHON" "$OCI" push "$REGISTRY" kftest/noshell 1 --layer "$WORK/rootfs/noshell" --cmd '["/data/hello.txt"]' >/dev/null
    missing=$((missing + 1))
  fi
  # shellcheck disable=SC2046
  if ! exists "$REGISTRY_AUTH" private/app 1 $(auth_args); then
    rootfs_busybox; rootfs_small app app.txt "private app 1"
    # shellcheck disable=SC2046
    "$PYTHON" "$OCI" push "$REGISTRY_AUTH" private/app 1 $(auth_args) --layer "$WORK/rootfs/busybox" \
      --layer "$WORK/rootfs/app" --cmd '["cat", "/app.txt"]' --env PATH=/bin >/dev/null
    missing=$((missing + 1))
  fi
  echo "images: $missing of 5 pushed ($(( $(now_ms) - t0 )) ms)"
}

gen() {
  local reg=$REGISTRY extra=()
  if [ "${1:-}" = --auth ]; then
    reg=$REGISTRY_AUTH; shift
    # shellcheck disable=SC2207
    extra=($(auth_args))
    [ "$#" -ge 2 ] || usage
    # the base must be in the same registry for the layer mount: private/app:1 carries busybox's layer.
    "$PYTHON" "$OCI" gen "$reg" "$1" "$2" "${3:-1}" --base private/app:1 --salt "${KF_GEN_SALT:-}" "${extra[@]}"
    return
  fi
  [ "$#" -ge 2 ] || usage
  "$PYTHON" "$OCI" gen "$reg" "$1" "$2" "${3:-1}" --base busybox:1 --salt "${KF_GEN_SALT:-}"
}

rm_image() {
  local reg=$REGISTRY extra=()
  if [ "${1:-}" = --auth ]; then
    reg=$REGISTRY_AUTH
    # shellcheck disable=SC2207
    extra=($(auth_args))
    shift
  fi
  [ "$#" -eq 2 ] || usage
  "$PYTHON" "$OCI" delete "$reg" "$1" "$2" "${extra[@]}"
}

usage() { sed -n '2,12p' "$0" >&2; exit 2; }

case "${1:-}" in
  ensure) ensure ;;
  gen) shift; gen "$@" ;;
  rm) shift; rm_image "$@" ;;
  *) usage ;;
esac
