# End-to-end: `kubectl fledged` (docs/plugin.md), installed with make install-plugin and run through the
# real kubectl (v1.20, which finds kubectl-fledged on PATH), against a real controller (out of cluster) on
# the test bed, in both modes (jobs: Node.status.images; agent: the agents' NodeImageCaches):
#   - status: the node x image matrix matches what the nodes hold and what failed;
#   - plan: the dry run of an edit (pulls, deletes, sizes from the registry's manifests) is what applying
#     it then does on the nodes;
#   - refresh and purge --wait: the operation's end and result;
#   - clear errors: an unreachable API server, a missing CRD, a missing cache, a bad file, a denied spec.
# e2e-modes: jobs agent
# shellcheck shell=bash disable=SC2154
. "$E2E_ROOT/tests/e2e/kf.sh"

plugin_install() {
  PLUGIN_BIN=$(mktemp -d /tmp/kf-e2e-plugin.XXXXXX)
  defer rm -rf "$PLUGIN_BIN"
  make -s -C "$E2E_ROOT" install-plugin PLUGIN_DIR="$PLUGIN_BIN" >/dev/null || fail "make install-plugin failed"
  export PATH=$PLUGIN_BIN:$PATH
  assert_contains "$(kubectl plugin list 2>&1)" "$PLUGIN_BIN/kubectl-fledged"
}

# jq over `kubectl fledged status NAME -o json`
status_json() { kubectl fledged status "$1" -n "$E2E_NS" -o json; }
cell() { status_json "$1" | jq -r --arg n "$2" --arg i "$3" '.nodes[] | select(.name == $n) | .images[$i].state // "-"'; }
cell_is() { [ "$(cell "$1" "$2" "$3")" = "$4" ]; }      # for wait_until (job mode's node status lags)

node_reports_not() {
  ! kubectl get node "$1" -o json | jq -e --arg i "$2" '[.status.images[].names[]] | index($i)' >/dev/null
}

# the size of an image for linux/amd64 as its manifest says (config + layers), asked with curl
manifest_bytes() {
  local repo=${1#"$REGISTRY"/} tag
  tag=${repo##*:}; repo=${repo%:*}
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag" | jq '.config.size + ([.layers[].size] | add)'
}

test_plugin_status_plan_refresh_purge() {
  local a b c missing n1 n2 out plan rc file
  plugin_install
  n1=$NODE1_NAME n2=$NODE2_NAME
  mapfile -t img < <(gen_images "$(unique kfe2e/plugin)" 3)
  a=${img[0]} b=${img[1]} c=${img[2]}
  missing=$REGISTRY/$(unique kfe2e/missing):1
  kf_wait_alone   # the mode is found from every ImageCache of the cluster
  KF_AGENT_DEADLINE=15s kf_controller_start --image-pull-deadline-duration=15s
  ic_apply ic1 <<EOF
[{"images": ["$a", "$missing"]},
 {"images": ["$b"], "nodeSelector": {"kubernetes.io/hostname": "$n2"}}]
EOF
  assert_eq "Failed/ImageCacheCreate" "$(ic_wait ic1 Failed 120)"

  # status: the matrix is what the nodes hold
  out=$(kubectl fledged status ic1 -n "$E2E_NS")
  log "status:"$'\n'"$out"
  assert_contains "$out" "ImageCache $E2E_NS/ic1 ($KF_MODE mode)"
  assert_contains "$out" "status:   Failed (ImageCacheCreate)"
  assert_contains "$out" "progress: 5/5 node-image pairs done, 2 failed"
  wait_until 30 cell_is ic1 "$n1" "$a" Present || fail "$a on $n1: $(cell ic1 "$n1" "$a")"
  wait_until 30 cell_is ic1 "$n2" "$b" Present || fail "$b on $n2: $(cell ic1 "$n2" "$b")"
  assert_eq "-" "$(cell ic1 "$n1" "$b")" "$b is not for $n1"
  assert_eq "Failed" "$(cell ic1 "$n1" "$missing")"
  assert_contains "$(status_json ic1 | jq -r --arg n "$n2" --arg i "$missing" '.nodes[] | select(.name == $n) | .images[$i].message')" \
    "not found"
  expect_images "$n1" "$a"
  expect_images "$n2" "$a" "$b"
  expect_no_images "$n1" "$b"
  out=$(kubectl fledged status -n "$E2E_NS")
  assert_contains "$out" "ImageCache $E2E_NS/ic1"
  assert_contains "$(kubectl fledged status -A -o json | jq -r '.items[] | .namespace + "/" + .name')" "$E2E_NS/ic1"

  # plan an edit: c everywhere instead of b on n2, the missing image dropped (an update keeps the lists and
  # their selectors, or the webhook denies it: the plan says so too, checked below)
  file=$E2E_LOG.edit.yaml
  cat > "$file" <<EOF
apiVersion: kubefledged.io/v1alpha2
kind: ImageCache
metadata:
  name: ic1
  namespace: $E2E_NS
  labels: {app: kubefledged, kubefledged: imagecache}
spec:
  cacheSpec:
  - images: ["$a", "$c"]
  - images: ["$c"]
    nodeSelector: {kubernetes.io/hostname: "$n2"}
EOF
  plan=$(kubectl fledged plan -f "$file" --plain-http-registries="$REGISTRY" -o json)
  log "plan: $(jq -c . <<< "$plan")"
  assert_eq "update" "$(jq -r .operation <<< "$plan")"
  for n in "$n1" "$n2"; do
    assert_eq "$c" "$(jq -r --arg n "$n" '.nodes[] | select(.name == $n) | [.pull[].image] | join(" ")' <<< "$plan")" "pulls on $n"
    assert_eq "$a" "$(jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .present | join(" ")' <<< "$plan")" "present on $n"
  done
  # deletes: what the applied spec gave each node and the edit does not; the missing image was never pulled
  assert_eq "$missing:false $b:true" \
    "$(jq -r --arg n "$n2" '.nodes[] | select(.name == $n) | [.delete[] | .image + ":" + (.onNode | tostring)] | sort | join(" ")' <<< "$plan")"
  assert_eq "$missing:false" \
    "$(jq -r --arg n "$n1" '.nodes[] | select(.name == $n) | [.delete[] | .image + ":" + (.onNode | tostring)] | join(" ")' <<< "$plan")"
  assert_eq "$(manifest_bytes "$c")" "$(jq -r --arg i "$c" '.images[] | select(.image == $i) | .sizes["linux/amd64"]' <<< "$plan")" \
    "size of $c"
  assert_eq "0" "$(jq -r .totals.unknown <<< "$plan")"
  out=$(kubectl fledged plan -f "$file" --plain-http-registries="$REGISTRY")
  log "plan:"$'\n'"$out"
  assert_contains "$out" "update of the live object"
  assert_contains "$out" "total: 2 pulls, 2 already present, 3 deletes, 0 kept; download "
  assert_contains "$out" "the node does not hold it: nothing to remove"
  # without the plain-HTTP hint the registry cannot be asked: sizes unknown, the plan still made
  out=$(kubectl fledged plan -f "$file" --registry-timeout=3s)
  assert_contains "$out" "size unknown: registry $REGISTRY unreachable: "
  # the plan is what applying it does
  kubectl apply -f "$file" >/dev/null
  ic_wait_op ic1 ImageCacheUpdate Succeeded 120
  for n in "$n1" "$n2"; do expect_images "$n" "$a" "$c"; done
  expect_no_images "$n2" "$b"
  wait_until 30 cell_is ic1 "$n2" "$c" Present || fail "$c on $n2: $(cell ic1 "$n2" "$c")"
  assert_eq "-" "$(cell ic1 "$n2" "$b")" "$b left the columns once removed"
  # the same file again: no change
  assert_eq "none" "$(kubectl fledged plan -f "$file" --no-sizes -o json | jq -r .operation)"
  # one list less: the webhook's own words, exit status 1
  rc=0
  out=$(head -n -2 "$file" | kubectl fledged plan -f - --no-sizes) || rc=$?
  assert_eq "1" "$rc" "exit status of a denied plan"
  assert_contains "$out" "DENIED: the admission webhook would reject this object: Mismatch in no. of image lists"

  # refresh --wait: a removed image comes back (job mode plans from Node.status.images: wait until the
  # kubelet stops reporting it)
  node_rmi "$n1" "$c"
  [ "$KF_MODE" = agent ] || wait_until 60 node_reports_not "$n1" "$c" || fail "$n1 still reports $c"
  out=$(kubectl fledged refresh ic1 -n "$E2E_NS" --wait)
  log "refresh: $out"
  assert_contains "$out" "ImageCache $E2E_NS/ic1: refresh requested"
  assert_contains "$out" "refresh finished after "
  assert_contains "$out" "Succeeded (ImageCacheRefresh)"
  assert_eq "" "$(ic_json ic1 '{.metadata.annotations.kubefledged\.io/refresh-imagecache}')"
  # (agent mode: the agent may not have noticed the removal when the refresh asks; it pulls the image
  # again itself within its poll interval)
  if [ "$KF_MODE" = agent ]; then wait_until 30 node_has_image "$n1" "$c" || fail "$c is not back on $n1"
  else expect_images "$n1" "$c"; fi

  # purge --wait: gone from the nodes, the matrix says so
  out=$(kubectl fledged purge ic1 -n "$E2E_NS" --wait)
  log "purge: $out"
  assert_contains "$out" "Succeeded (ImageCachePurge)"
  for n in "$n1" "$n2"; do expect_no_images "$n" "$a" "$c"; done
  out=$(kubectl fledged status ic1 -n "$E2E_NS")
  assert_contains "$out" "purged (or being purged or deleted)"
  wait_until 30 cell_is ic1 "$n1" "$a" Removed || fail "$a on $n1 after the purge: $(cell ic1 "$n1" "$a")"

  # a failed operation: --wait exits 1
  ic_apply ic2 <<< "[{\"images\": [\"$missing\"]}]"
  ic_wait ic2 Failed 120 >/dev/null
  rc=0
  out=$(kubectl fledged refresh ic2 -n "$E2E_NS" --wait) || rc=$?
  assert_eq "1" "$rc" "exit status of a refresh that failed"
  assert_contains "$out" "Failed (ImageCacheRefresh)"
  assert_contains "$out" "failed: $missing on "
}

test_plugin_clear_errors() {
  [ "$KF_MODE" = jobs ] || skip "the same in both modes: checked in jobs mode"
  local out rc kc
  plugin_install
  kf_crd_ensure
  # an API server nobody listens on
  kc=$E2E_LOG.kubeconfig
  cat > "$kc" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
EOF
  rc=0; out=$(kubectl fledged status --kubeconfig="$kc" 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" "kubectl fledged status: cannot reach the Kubernetes API server at https://127.0.0.1:1 (context x): "
  rc=0; out=$(KUBECONFIG=$kc kubectl fledged refresh x 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" "cannot reach the Kubernetes API server at https://127.0.0.1:1"
  # no such cache, no such file, a file that is not an ImageCache, a spec the webhook would deny
  rc=0; out=$(kubectl fledged status nope -n "$E2E_NS" 2>&1) || rc=$?
  assert_eq "1 kubectl fledged status: ImageCache $E2E_NS/nope not found" "$rc $out"
  rc=0; out=$(kubectl fledged plan -f /nonexistent.yaml 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" "/nonexistent.yaml"
  rc=0; out=$(printf 'apiVersion: kubefledged.io/v1alpha1\nkind: ImageCache\nmetadata: {name: x}\nspec: {cacheSpec: []}\n' |
    kubectl fledged plan -f - 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" 'apiVersion: "kubefledged.io/v1alpha1": want kubefledged.io/v1alpha2'
  rc=0; out=$(printf 'apiVersion: kubefledged.io/v1alpha2\nkind: ImageCache\nmetadata: {name: x}\nspec: {cacheSpec: [{images: [a:1, a:1]}]}\n' |
    kubectl fledged plan -n "$E2E_NS" -f - --no-sizes 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" "DENIED: the admission webhook would reject this object: Duplicate image names within image list: a:1"
  rc=0; out=$(kubectl fledged frobnicate 2>&1) || rc=$?
  assert_eq "2" "$rc"
  assert_contains "$out" 'unknown command "frobnicate"'
  # the CRD missing (this test's own namespace holds no cache; kf_crd_ensure puts it back)
  defer kf_crd_ensure
  kubectl delete crd imagecaches.kubefledged.io --wait=true >/dev/null
  rc=0; out=$(kubectl fledged status -A 2>&1) || rc=$?
  assert_eq "1" "$rc"
  assert_contains "$out" "the ImageCache CRD (imagecaches.kubefledged.io, version v1alpha2) is not installed in the cluster at $APISERVER_URL"
}
