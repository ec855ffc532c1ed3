#!/usr/bin/env bash
# Builds Kubernetes v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
# kubectl) from Debian's `kubernetes` source package with Debian's Go, and caches the binaries under
#   ${XDG_CACHE_HOME:-~/.cache}/kube-fledged-c/k8s/<source version>-<patch hash>/bin
# A second run finds them there and returns at once. Prints the bin directory on stdout.
#
# Go 1.19 needs four fixes to build and run this tree (docs/testbed.md, "Building Kubernetes"):
#   a. GOPATH mode (GO111MODULE=off), as upstream's own hack/ scripts do;
#   b. the vendored reflect2 1.0.1 crashes with Go >= 1.18: use Debian's reflect2 1.0.2;
#   c. pkg/generated/openapi is generated at build time: run openapi-gen;
#   d. kube-openapi#230: CRD validation must not reject "" (the apiserver refuses every empty string in a
#      custom resource otherwise, kubernetes#99804).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c/k8s
log() { printf '[build-k8s %5.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - t0 ))e-3" "$*" >&2; }
t0=$(( $(date +%s%N) / 1000000 ))

srcver=$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$srcver" ] || { echo "build-k8s: no source package 'kubernetes' (deb-src entries missing? run hack/deps.sh)" >&2; exit 1; }
# The build recipe is part of the key: changing this script rebuilds.
key="$srcver-$(sha256sum "$0" | cut -c1-12)"
out=$cache/$key
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
have=1; for b in "${bins[@]}"; do [ -x "$out/bin/$b" ] || have=0; done
if [ $have = 1 ]; then log "cached: $out/bin"; echo "$out/bin"; exit 0; fi

mkdir -p "$out" "$cache/gocache"
work=$out/work; rm -rf "$work"; mkdir -p "$work"
cd "$work"
log "apt-get source kubernetes=$srcver (download only)"
apt-get source --download-only -qq "kubernetes=$srcver" >/dev/null 2>&1 || apt-get source --download-only "kubernetes=$srcver"
orig=$(ls kubernetes_*.orig.tar.* | head -1)
mkdir -p gopath/src/k8s.io/kubernetes
tar -xf "$orig" -C gopath/src/k8s.io/kubernetes --strip-components=1
tree=$work/gopath/src/k8s.io/kubernetes
log "unpacked $orig"

# (b) reflect2 1.0.2 from Debian
apt-get download -qq golang-github-modern-go-reflect2-dev >/dev/null 2>&1 || apt-get download golang-github-modern-go-reflect2-dev
dpkg-deb -x golang-github-modern-go-reflect2-dev_*.deb r2
r2=$tree/vendor/github.com/modern-go/reflect2
cp "$r2/LICENSE" r2.LICENSE; rm -rf "$r2"; mkdir -p "$r2"
cp r2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$r2/"; cp r2.LICENSE "$r2/LICENSE"

# (d) kube-openapi#230
tf=$tree/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go
grep -q 'if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {' "$tf"
sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$tf"

export GOPATH=$work/gopath GO111MODULE=off GOCACHE=$cache/gocache GOPROXY=off GOFLAGS= GOTOOLCHAIN=local
cd "$tree"

# (c) openapi-gen, same inputs as Makefile.generated_files
log "openapi-gen"
go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) -type f -name '*.go' \
  | sed 's|^./staging/src|vendor|; s|^./||' \
  | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
  | xargs grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' \
  | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' > "$work/openapi-dirs.txt"
"$work/openapi-gen" --logtostderr -i "$(paste -sd, "$work/openapi-dirs.txt")" -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$work/violations.report" \
  > "$work/openapi-gen.log" 2>&1

ld="-s -w -buildid="
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ld+=" -X '$pkg.gitVersion=v1.20.2' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=20'"
  ld+=" -X '$pkg.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56' -X '$pkg.gitTreeState=clean'"
  ld+=" -X '$pkg.buildDate=2021-01-13T13:20:00Z'"
done
mkdir -p "$out/bin.tmp"
for b in "${bins[@]}"; do
  cgo=0; [ "$b" = kubelet ] && cgo=1
  log "go build $b"
  CGO_ENABLED=$cgo go build -tags selinux,notest -ldflags "$ld" -o "$out/bin.tmp/$b" "./cmd/$b"
done
rm -rf "$out/bin"; mv "$out/bin.tmp" "$out/bin"
"$out/bin/kube-apiserver" --version >&2
cd "$out"; rm -rf "$work"
log "done: $out/bin"
echo "$out/bin"
