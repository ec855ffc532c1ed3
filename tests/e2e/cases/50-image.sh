# End-to-end: the multi-architecture image on the test bed. `make image IMAGE_ARCHS=all` pushes an image index
# (linux/amd64, linux/arm64, linux/arm/v7) to the test bed's plain-HTTP registry; the index read back through
# the registry API names the three platforms and each manifest's config says the same; a pod started from
# the index's tag runs on the (amd64) nodes, i.e. containerd picked the right manifest. The push to HTTPS
# registries with credentials is tested without a cluster by tests/image/push-test.sh (make image-test).
# shellcheck shell=bash

# jq: a platform (of an index entry or a config) as os/arch[/variant]
PLATFORM='"\(.os)/\(.architecture)\(if .variant then "/" + .variant else "" end)"'

test_multiarch_index_on_testbed_registry_runs_in_cluster() {
  local tag repo=kubefledged/kubefledged idx plats d cfg out
  tag=$(unique multiarch)
  log "make image IMAGE_ARCHS=all IMAGE_TAG=$tag"
  make -C "$E2E_ROOT" --no-print-directory image IMAGE_ARCHS=all IMAGE_TAG="$tag" > "$E2E_LOG.image" 2>&1 ||
    { tail -30 "$E2E_LOG.image"; fail "make image IMAGE_ARCHS=all failed"; }
  cat "$E2E_LOG.image"
  out=$(grep "^$REGISTRY/$repo:$tag@sha256:" "$E2E_LOG.image") || fail "make image printed no reference"
  defer curl -s -o /dev/null -X DELETE "http://$REGISTRY/v2/$repo/manifests/${out#*@}"

  idx=$(curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' -D "$E2E_LOG.headers" "http://$REGISTRY/v2/$repo/manifests/$tag")
  assert_contains "$(cat "$E2E_LOG.headers")" "Content-Type: application/vnd.oci.image.index.v1+json"
  assert_contains "$(cat "$E2E_LOG.headers")" "Docker-Content-Digest: ${out#*@}"
  plats=$(jq -r "[.manifests[].platform | $PLATFORM] | join(\" \")" <<< "$idx")
  assert_eq "linux/amd64 linux/arm64/v8 linux/arm/v7" "$plats" "the index's platforms"
  for d in $(jq -r '.manifests[].digest' <<< "$idx"); do
    cfg=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$repo/manifests/$d" | jq -r .config.digest)
    out=$(curl -sf "http://$REGISTRY/v2/$repo/blobs/$cfg" | jq -r "$PLATFORM")
    assert_eq "$(jq -r --arg d "$d" ".manifests[] | select(.digest == \$d) | .platform | $PLATFORM" <<< "$idx")" \
      "$out" "manifest $d: its config's platform"
    log "$d: $out"
  done

  kapply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: version}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65532, runAsNonRoot: true}
  containers:
  - {name: kubefledged, image: "$REGISTRY/$repo:$tag", imagePullPolicy: Always, args: [version]}
EOF
  done_() { local p; p=$(kns get pod version -o jsonpath='{.status.phase}'); [ "$p" = Succeeded ] || [ "$p" = Failed ]; }
  wait_until 120 done_ || fail "pod version did not finish: $(kns get pod version -o wide)"
  out=$(kns logs version)
  log "pod: $out"
  assert_eq Succeeded "$(kns get pod version -o jsonpath='{.status.phase}')" "pod phase ($out)"
  assert_contains "$out" "kubefledged 0.1.0"
}
