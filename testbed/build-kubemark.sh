#!/usr/bin/env bash
# Builds kubemark (the hollow node: real kubelet code on a fake container runtime; docs/scale.md) from the
# same Debian source package and with the same recipe as testbed/build-k8s.sh, plus one opt-in patch, and
# caches the binary under
#   ${XDG_CACHE_HOME:-~/.cache}/kube-fledged-c/kubemark/<source version>-<script hash>/bin/kubemark
# A second run finds it there and returns at once. Prints the bin directory on stdout.
#
# The recipe (docs/testbed.md, "Building Kubernetes"): a. GOPATH mode; b. Debian's reflect2 1.0.2 for the
# vendored 1.0.1; c. openapi-gen; d. the kube-openapi#230 fix; upstream's version ldflags and tags. These
# steps repeat build-k8s.sh's on purpose: that script's cache key is its own hash, so moving them into a
# shared file would rebuild every machine's cached cluster binaries. Fold the two together the next time
# build-k8s.sh has to change anyway.
#
# Three patches, for Jobs on hollow nodes:
#   e. with KF_HOLLOW_CONTAINER_EXIT_AFTER=<Go duration> in a hollow node's environment, every container of
#      its fake runtime exits with code 0 that long after it started, so Jobs complete; unset, containers run
#      forever as in stock kubemark;
#   f. the hollow kubelet's fake host utilities report the container runtimes' usual sockets
#      (/var/run/docker.sock, /run/containerd/containerd.sock, /var/run/crio/crio.sock and their /run and
#      /var/run twins) as sockets, so that the controller's delete Jobs, which mount one with hostPath type
#      Socket, start there; stock kubemark calls every path a directory;
#   g. the fake OS's file table behind a mutex (many pods starting at once on one hollow node crashed it).
#
# Never touches the cluster binaries' cache (build-k8s.sh's): only the Go build cache beside them is shared
# (concurrent builds are safe there). Its entries are keyed by the source directory too, so the tree is always
# unpacked at the same path, kubemark/work: the first build compiles about 1,700 packages (about 200 s on an
# idle machine, 32 minutes with the load average at 12), a rebuild after a change of this script takes
# about 30 s. Runs of this script serialize on kubemark/.lock, and nothing else uses kubemark/work.
set -euo pipefail
root=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c
cache=$root/kubemark
log() { printf '[build-kubemark %5.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - t0 ))e-3" "$*" >&2; }
t0=$(( $(date +%s%N) / 1000000 ))

srcver=$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$srcver" ] || { echo "build-kubemark: no source package 'kubernetes' (deb-src entries missing? run hack/deps.sh)" >&2; exit 1; }
key="$srcver-$(sha256sum "$0" | cut -c1-12)"
out=$cache/$key
if [ -x "$out/bin/kubemark" ]; then log "cached: $out/bin"; echo "$out/bin"; exit 0; fi

mkdir -p "$out" "$root/k8s/gocache"
# The lock is taken by a child on our fd 9 (flock(2) locks belong to the open file, which we keep), and
# waited for with `wait`, which a signal interrupts: killed while it waits, this script leaves nothing behind.
exec 9> "$cache/.lock"
flock 9 & lock_pid=$!
trap 'kill $lock_pid 2>/dev/null; exit 130' INT TERM
wait $lock_pid
if [ -x "$out/bin/kubemark" ]; then log "built by another run meanwhile: $out/bin"; echo "$out/bin"; exit 0; fi
work=$cache/work
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
cd "$work"
log "apt-get source kubernetes=$srcver (download only)"
apt-get source --download-only -qq "kubernetes=$srcver" >/dev/null 2>&1 || apt-get source --download-only "kubernetes=$srcver"
orig=$(find . -maxdepth 1 -name 'kubernetes_*.orig.tar.*' | head -1)
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

# (e) the opt-in exit of the fake runtime's containers
frs=$tree/staging/src/k8s.io/cri-api/pkg/apis/testing/fake_runtime_service.go
python3 - "$frs" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
anchor = """	// Set container to running.
	c.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.StartedAt = time.Now().UnixNano()
"""
patch = anchor + """
	// kube-fledged test bed (testbed/build-kubemark.sh): KF_HOLLOW_CONTAINER_EXIT_AFTER=<duration> makes
	// every container exit 0 that long after its start, so that Jobs on hollow nodes complete.
	if d, err := time.ParseDuration(os.Getenv("KF_HOLLOW_CONTAINER_EXIT_AFTER")); err == nil && d > 0 {
		startedAt := c.StartedAt
		go func() {
			time.Sleep(d)
			r.Lock()
			defer r.Unlock()
			if c, ok := r.Containers[containerID]; ok && c.StartedAt == startedAt &&
				c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				c.State = runtimeapi.ContainerState_CONTAINER_EXITED
				c.FinishedAt = time.Now().UnixNano()
				c.ExitCode = 0
				c.Reason = "Completed"
			}
		}()
	}
"""
imp = 'import (\n\t"fmt"\n'
if s.count(anchor) != 1 or s.count(imp) != 1:
    sys.exit("build-kubemark: fake_runtime_service.go is not what the patch expects")
s = s.replace(anchor, patch).replace(imp, 'import (\n\t"fmt"\n\t"os"\n')
open(p, "w").write(s)
PY

# (g) the fake OS's map and slice behind a mutex: the kubelet's pod workers create containers' files in
# parallel, and with a Job's twenty pods starting on one hollow node at once stock kubemark dies of
# "fatal error: concurrent map writes" in FakeOS.Create (fixed upstream after 1.20)
fos=$tree/pkg/kubelet/container/testing/os.go
python3 - "$fos" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
edits = [
    ('import (\n\t"errors"\n\t"os"\n\t"time"\n)', 'import (\n\t"errors"\n\t"os"\n\t"sync"\n\t"time"\n)'),
    ('\tFiles      map[string][]*os.FileInfo\n}', '\tFiles      map[string][]*os.FileInfo\n\tmu         sync.Mutex\n}'),
    ('func (f *FakeOS) Remove(path string) error {\n', 'func (f *FakeOS) Remove(path string) error {\n\tf.mu.Lock()\n\tdefer f.mu.Unlock()\n'),
    ('func (f *FakeOS) RemoveAll(path string) error {\n', 'func (f *FakeOS) RemoveAll(path string) error {\n\tf.mu.Lock()\n\tdefer f.mu.Unlock()\n'),
    ('func (f *FakeOS) Create(path string) (*os.File, error) {\n', 'func (f *FakeOS) Create(path string) (*os.File, error) {\n\tf.mu.Lock()\n\tdefer f.mu.Unlock()\n'),
    ('func (f *FakeOS) Glob(pattern string) ([]string, error) {\n', 'func (f *FakeOS) Glob(pattern string) ([]string, error) {\n\tf.mu.Lock()\n\tdefer f.mu.Unlock()\n'),
]
for a, b in edits:
    if s.count(a) != 1:
        sys.exit("build-kubemark: os.go is not what the patch expects: " + a[:40])
    s = s.replace(a, b)
open(p, "w").write(s)
PY

# (f) runtime sockets for hostPath type Socket
hk=$tree/pkg/kubemark/hollow_kubelet.go
grep -q 'HostUtil:             hostutil.NewFakeHostUtil(nil),' "$hk"
socks=""
for p in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock /var/run/containerd/containerd.sock \
         /var/run/crio/crio.sock /run/crio/crio.sock; do socks+="\"$p\": hostutil.FileTypeSocket, "; done
sed -i "s|HostUtil:             hostutil.NewFakeHostUtil(nil),|HostUtil:             hostutil.NewFakeHostUtil(map[string]hostutil.FileType{$socks}),|" "$hk"

export GOPATH=$work/gopath GO111MODULE=off GOCACHE=$root/k8s/gocache GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local
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
log "go build kubemark"
mkdir -p "$work/bin"
CGO_ENABLED=0 go build -tags selinux,notest -ldflags "$ld" -o "$work/bin/kubemark" ./cmd/kubemark
"$work/bin/kubemark" --version >&2 || true
rm -rf "${out:?}/bin"; mv "$work/bin" "$out/bin"
log "done: $out/bin"
echo "$out/bin"
