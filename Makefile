# kube-fledged in C. The two commands a newcomer needs:
#   make demo    set up everything on a fresh Debian 12 machine, run the operator on a local real cluster
#   make test    every test: unit (plain, ASan+UBSan, valgrind), then end to end on a real local cluster
# Everything else here is a step of those two, runnable on its own.

SHELL := /bin/bash
NODES ?= 2
NODE_LABELS ?=
NODE_RUNTIMES ?=
KCM_QPS ?=
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
IMAGE_TAG ?= dev

.PHONY: all deps build image build-asan build-tsan unit unit-asan unit-tsan unit-valgrind unit-all fuzz cluster-up cluster-down e2e test \
        demo bench scale clean help build-arch unit-arch image-test

all: build

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## deps            install build, test and test-bed packages from Debian (idempotent)
deps:
	@hack/deps.sh

## build           compile bin: build/src/kubefledged
build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build build -j$(JOBS)

## build-asan      compile with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/
build-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKF_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)

## build-tsan      compile with ThreadSanitizer into build-tsan/
build-tsan:
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKF_TSAN=ON >/dev/null
	@cmake --build build-tsan -j$(JOBS)

## unit            unit tests (ctest)
unit: build
	@cd build && ctest -L unit --output-on-failure -j$(JOBS)

## unit-asan       unit tests under ASan + UBSan
unit-asan: build-asan
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest -L unit --output-on-failure -j$(JOBS)

## unit-tsan       unit tests and the client's integration test (a throwaway real kube-apiserver) under ThreadSanitizer
unit-tsan: build-tsan
	@hack/unit-tsan.sh build-tsan

## unit-valgrind   unit tests under valgrind (memcheck, leaks are errors)
unit-valgrind: build
	@hack/valgrind-unit.sh build

unit-all: unit unit-asan unit-valgrind unit-tsan

## fuzz            libFuzzer on the parsers of outside input, FUZZ_SECONDS per target (make test: 30); FUZZ_TARGETS='watch kubeconfig' picks
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_TARGETS='$(FUZZ_TARGETS)' tests/fuzz/run.sh $(FUZZ_SECONDS)

## cluster-up      start the local real cluster: make cluster-up NODES=3 NODE_LABELS='rk8s-node2:tier=backend'
##                 NODE_RUNTIMES='3:docker' (a node on dockerd + dockershim), KCM_QPS=200 (controller-manager client QPS)
cluster-up:
	@testbed/up.sh --nodes $(NODES) $(if $(NODE_LABELS),--labels '$(NODE_LABELS)') \
	  $(if $(NODE_RUNTIMES),--runtimes '$(NODE_RUNTIMES)') $(if $(KCM_QPS),--kcm-qps '$(KCM_QPS)')

## cluster-down    stop every process cluster-up started and undo its host changes
cluster-down:
	@testbed/down.sh

## image           build the image without Docker and push it (docs/deploy.md): IMAGE=registry/repo:tag (HTTPS,
##                 docker config credentials; linux/amd64, arm64, arm/v7), or with no IMAGE the local cluster's
##                 registry (amd64; IMAGE_ARCHS=all for the three). IMAGE_PUSH_ARGS='--plain-http --ca-file F ...'
IMAGE_ARCHS ?=
IMAGE_PUSH_ARGS ?=
image: build
	@IMAGE='$(IMAGE)' IMAGE_ARCHS='$(IMAGE_ARCHS)' IMAGE_TAG='$(IMAGE_TAG)' IMAGE_PUSH_ARGS='$(IMAGE_PUSH_ARGS)' hack/image.sh

## build-arch      cross-compile for arm64 and armhf into build-arm64/, build-armhf/ (hack/deps.sh --cross)
build-arch:
	@hack/build-arch.sh

## unit-arch       the arm64 and armhf builds under qemu-user: `kubefledged version` and the unit tests
unit-arch:
	@hack/build-arch.sh --test

## image-test      the three-architecture image pushed to local registries: plain HTTP, TLS+htpasswd, TLS+token
image-test: build
	@hack/build-arch.sh --image-only && tests/image/push-test.sh

## e2e             end-to-end tests against the running local cluster (E2E=case-name to pick)
e2e: image
	@tests/e2e/run.sh $(E2E)

## test            everything, from a fresh machine: deps, build, unit tests, cluster, e2e, teardown
test:
	@hack/test.sh

## demo            from a fresh machine: cluster, image, make deploy-using-yaml, the sample ImageCache and where its images landed
demo:
	@hack/demo.sh

## bench           benchmarks under bench/ (need a running cluster)
bench: build
	@bench/run.sh

## scale           scale run on the running cluster (docs/scale.md): SCALE_MODE=jobs|agent SCALE_NODES=100 SCALE_IMAGES=20
##                 (jobs: kubemark hollow nodes and the raw-Jobs floor; agent: kubefledged agent-sim), SCALE_KEEP=1 keeps them
scale: image
	@bench/scale.sh

## install-plugin  put `kubectl fledged` on PATH: the binary as PLUGIN_DIR/kubectl-fledged (default /usr/local/bin; docs/plugin.md)
PLUGIN_DIR ?= /usr/local/bin
.PHONY: install-plugin
install-plugin: build
	@install -d '$(PLUGIN_DIR)' && install -m 0755 build/src/kubefledged '$(PLUGIN_DIR)/kubectl-fledged'
	@echo "installed $(PLUGIN_DIR)/kubectl-fledged: try kubectl fledged status -A"

clean:
	rm -rf build build-asan build-tsan build-fuzz build-arm64 build-armhf

# ---- deployment: kube-fledged into a cluster (the test bed's when .cluster/env exists), see docs/deploy.md ----
IMAGE ?=
HELM_RELEASE ?= kube-fledged
HELM_NAMESPACE ?= kube-fledged
HELM_ARGS ?=
KUBEFLEDGED_NAMESPACE ?= kube-fledged
KUBEFLEDGED_CR ?=
.PHONY: deploy-using-yaml remove-kubefledged helm-lint helm-install helm-uninstall helm-upgrade-from-upstream \
        deploy-using-operator remove-kubefledged-and-operator

## deploy-using-yaml  install from deploy/ (IMAGE=ref; default on the test bed: $REGISTRY/kubefledged/kubefledged:$(IMAGE_TAG)); re-run safely
deploy-using-yaml:
	@IMAGE='$(IMAGE)' IMAGE_TAG='$(IMAGE_TAG)' hack/deploy.sh yaml-apply

## remove-kubefledged delete what deploy-using-yaml made; the CRD last, which deletes every ImageCache
remove-kubefledged:
	@hack/deploy.sh yaml-remove

## helm-lint        helm lint + template of charts/kube-fledged; its CRD must equal deploy/'s
helm-lint:
	@hack/deploy.sh helm-lint

## helm-install     helm upgrade --install (HELM_RELEASE, HELM_NAMESPACE, HELM_ARGS='--set ...', IMAGE=repo:tag)
helm-install:
	@IMAGE='$(IMAGE)' IMAGE_TAG='$(IMAGE_TAG)' HELM_RELEASE='$(HELM_RELEASE)' HELM_NAMESPACE='$(HELM_NAMESPACE)' \
	  HELM_ARGS='$(HELM_ARGS)' hack/deploy.sh helm-install

## helm-uninstall   helm uninstall HELM_RELEASE (the CRD stays, as Helm does)
helm-uninstall:
	@HELM_RELEASE='$(HELM_RELEASE)' HELM_NAMESPACE='$(HELM_NAMESPACE)' hack/deploy.sh helm-uninstall

## helm-upgrade-from-upstream  a release of upstream's chart (HELM_RELEASE, HELM_NAMESPACE) to ours: the CRD first, then helm upgrade (HELM_ARGS: your values)
helm-upgrade-from-upstream:
	@IMAGE='$(IMAGE)' IMAGE_TAG='$(IMAGE_TAG)' HELM_RELEASE='$(HELM_RELEASE)' HELM_NAMESPACE='$(HELM_NAMESPACE)' \
	  HELM_ARGS='$(HELM_ARGS)' hack/deploy.sh helm-upgrade-from-upstream

## deploy-using-operator  the operator (deploy/kubefledged-operator/) and a KubeFledged it installs kube-fledged from (IMAGE=repo:tag, KUBEFLEDGED_NAMESPACE, KUBEFLEDGED_CR=file)
deploy-using-operator:
	@IMAGE='$(IMAGE)' IMAGE_TAG='$(IMAGE_TAG)' KUBEFLEDGED_NAMESPACE='$(KUBEFLEDGED_NAMESPACE)' KUBEFLEDGED_CR='$(KUBEFLEDGED_CR)' \
	  hack/deploy.sh operator-apply

## remove-kubefledged-and-operator  every KubeFledged (the operator removes what it installed), the operator, the CRDs last
remove-kubefledged-and-operator:
	@KUBEFLEDGED_NAMESPACE='$(KUBEFLEDGED_NAMESPACE)' hack/deploy.sh operator-remove
