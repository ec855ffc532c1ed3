# 10-cri.sh - `kubefledged cri` against a real containerd (the cluster's node 1), as delete Jobs use it.
# Run by tests/e2e/run.sh: every test_* in its own bash (set -euo pipefail) with .cluster/env and
# tests/e2e/lib.sh sourced (REGISTRY, NODE1_CRI_SOCKET, fail, skip, assert_*, defer, gen_images, node_images).
#
# What matters most here: `rmi` of one tag must never remove other tags of the same image (CRI
# RemoveImage would), an absent image is a success, failures carry the runtime's gRPC text, and image
# strings are never interpreted by a shell.
# shellcheck shell=bash

CRI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CRI_KF=${KF_BIN:-$CRI_ROOT/build/src/kubefledged}

# ---- helpers (prefixed cri_ so they cannot clash with other cases) ----

cri_setup() {
  [ -x "$CRI_KF" ] || { fail "$CRI_KF not built (make build)"; return 1; }
  [ -S "${NODE1_CRI_SOCKET:-}" ] || { fail "NODE1_CRI_SOCKET=${NODE1_CRI_SOCKET:-} is not a socket"; return 1; }
  CRI_TMP=$(mktemp -d /tmp/kf-e2e-cri.XXXXXX)
  defer rm -rf "$CRI_TMP"
  CRI_TLOG=$CRI_TMP/termination-log
  : > "$CRI_TLOG"
  CRI_ID=$(printf '%04x%04x' $RANDOM $RANDOM)
}

# cri_run ARGS...: runs `kubefledged cri` on node 1; sets CRI_RC, CRI_OUT, CRI_ERR.
cri_run() {
  CRI_RC=0
  "$CRI_KF" cri --runtime-endpoint="unix://$NODE1_CRI_SOCKET" --termination-log="$CRI_TLOG" --timeout=1m "$@" \
    >"$CRI_TMP/out" 2>"$CRI_TMP/err" || CRI_RC=$?
  CRI_OUT=$(cat "$CRI_TMP/out")
  CRI_ERR=$(cat "$CRI_TMP/err")
}

cri_ok() { # ARGS...: must exit 0
  cri_run "$@"
  [ "$CRI_RC" = 0 ] || { fail "kubefledged cri $* exited $CRI_RC: $CRI_ERR"; return 1; }
}

cri_stop_pid() { # PID: SIGTERM, then wait up to 5 s for it to go
  local i
  kill "$1" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}

# cri_gen PREFIX TAG: one fresh image $REGISTRY/PREFIX-001:TAG; prints the reference.
cri_gen() {
  local ref
  ref=$(KF_GEN_SALT=$CRI_ID gen_images "$1" 1 "$2" | tail -1) || { fail "images.sh gen $1 failed"; return 1; }
  [ -n "$ref" ] || { fail "images.sh gen $1 printed nothing"; return 1; }
  echo "$ref"
}

# cri_copy SRC_REPO SRC_TAG DST_REPO DST_TAG: the same manifest under another name, in the registry
# (so the node sees one image with two references). Blobs are mounted across repositories, not copied.
cri_copy() {
  local m=$CRI_TMP/manifest ct d
  ct=$(curl -sf -D - -o "$m" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}') ||
    { fail "cannot GET manifest $1:$2"; return 1; }
  if [ "$1" != "$3" ]; then
    for d in $(grep -o 'sha256:[0-9a-f]\{64\}' "$m" | sort -u); do
      curl -sf -o /dev/null -X POST "http://$REGISTRY/v2/$3/blobs/uploads/?mount=$d&from=$1" ||
        { fail "cannot mount blob $d into $3"; return 1; }
    done
  fi
  curl -sf -o /dev/null -X PUT -H "Content-Type: $ct" --data-binary "@$m" "http://$REGISTRY/v2/$3/manifests/$4" ||
    { fail "cannot PUT manifest $3:$4"; return 1; }
}

# cri_two_tags PREFIX: one fresh image pulled on node 1 under two tags, $CRI_REPO:t1 and $CRI_REPO:t2.
cri_two_tags() {
  local ref
  ref=$(cri_gen "$1" t1) || return 1
  CRI_REPO=${ref%:*}
  cri_copy "${CRI_REPO#"$REGISTRY"/}" t1 "${CRI_REPO#"$REGISTRY"/}" t2 || return 1
  cri_ok pull "$CRI_REPO:t1" || return 1
  cri_ok pull "$CRI_REPO:t2" || return 1
}

# ---- tests ----

test_cri_version_reports_containerd() {
  cri_setup || return 1
  cri_ok version || return 1
  assert_contains "$CRI_OUT" "RuntimeName:  containerd"
  assert_contains "$CRI_OUT" "RuntimeApiVersion:  v1"
  assert_contains "$CRI_OUT" "CRIService:  runtime.v1"
}

# runtime.v1alpha2 (kubelet <= 1.22 era runtimes): the same operations on the old service path.
test_cri_v1alpha2_service_works_the_same() {
  cri_setup || return 1
  cri_run --cri-api=v1alpha2 version
  if [ "$CRI_RC" != 0 ] && [[ $CRI_ERR == *Unimplemented* ]]; then
    skip "this containerd has no runtime.v1alpha2"
  fi
  assert_eq 0 "$CRI_RC"
  assert_contains "$CRI_OUT" "CRIService:  runtime.v1alpha2"
  local ref repo
  ref=$(cri_gen "cri-alpha-$CRI_ID" t1) || return 1
  repo=${ref%:*}
  cri_copy "${repo#"$REGISTRY"/}" t1 "${repo#"$REGISTRY"/}" t2 || return 1
  cri_ok --cri-api=v1alpha2 pull "$repo:t1" || return 1
  cri_ok --cri-api=v1alpha2 pull "$repo:t2" || return 1
  cri_ok --cri-api=v1alpha2 rmi "$repo:t1" || return 1
  assert_contains "$CRI_OUT" "untagged $repo:t1"
  cri_ok --cri-api=v1alpha2 images -q || return 1
  assert_contains "$CRI_OUT" "$repo:t2"
  cri_ok --cri-api=v1alpha2 rmi "$repo:t2" || return 1
}

test_cri_pull_images_inspect() {
  cri_setup || return 1
  local ref repo
  ref=$(cri_gen "cri-pull-$CRI_ID" t1) || return 1
  repo=${ref%:*}
  cri_ok pull "$ref" || return 1
  assert_contains "$CRI_OUT" "pulled $ref (sha256:"
  assert_contains "$(cat "$CRI_TLOG")" "pulled $ref (sha256:"
  cri_ok images -q || return 1
  assert_contains "$CRI_OUT" "$ref"
  cri_ok images || return 1
  assert_contains "$CRI_OUT" "IMAGE"
  assert_contains "$CRI_OUT" "$repo"
  cri_ok inspect "$ref" || return 1
  assert_contains "$CRI_OUT" "\"$ref\""
  assert_contains "$CRI_OUT" "\"$repo@sha256:"
  cri_ok rmi "$ref" || return 1
  assert_contains "$CRI_OUT" "removed image $ref"
  cri_run inspect "$ref"
  assert_eq 1 "$CRI_RC"
  assert_contains "$CRI_ERR" "not present"
}

test_cri_rmi_one_of_two_tags_keeps_the_other() {
  cri_setup || return 1
  cri_two_tags "cri-shared-$CRI_ID" || return 1
  local repo=$CRI_REPO
  cri_ok inspect "$repo:t1" || return 1
  assert_contains "$CRI_OUT" "\"$repo:t2\"" # one image, two tags

  cri_ok rmi "$repo:t1" || return 1
  assert_contains "$CRI_OUT" "untagged $repo:t1"
  assert_contains "$(cat "$CRI_TLOG")" "untagged $repo:t1"
  cri_ok images -q || return 1
  assert_contains "$CRI_OUT" "$repo:t2"
  assert_not_contains "$CRI_OUT" "$repo:t1"
  cri_ok inspect "$repo:t2" || return 1
  assert_contains "$CRI_OUT" "\"$repo@sha256:" # the repository's digest stays with t2
  # and as containerd itself sees it
  node_has_image 1 "$repo:t2" || fail "$repo:t2 is gone from node 1's containerd"
  ! node_has_image 1 "$repo:t1" || fail "$repo:t1 is still in node 1's containerd"

  cri_ok rmi "$repo:t2" || return 1
  assert_contains "$CRI_OUT" "removed image $repo:t2"
  cri_ok images -q || return 1
  assert_not_contains "$CRI_OUT" "$repo"
}

test_cri_rmi_across_repositories_removes_only_its_own() {
  cri_setup || return 1
  local ref a b
  ref=$(cri_gen "cri-cross-a-$CRI_ID" v1) || return 1
  a=${ref%:*}
  b=$REGISTRY/cri-cross-b-$CRI_ID
  cri_copy "${a#"$REGISTRY"/}" v1 "${b#"$REGISTRY"/}" v1 || return 1
  cri_ok pull "$a:v1" || return 1
  cri_ok pull "$b:v1" || return 1
  cri_ok rmi "$b:v1" || return 1
  assert_contains "$CRI_OUT" "untagged $b:v1"
  cri_ok inspect "$a:v1" || return 1
  assert_contains "$CRI_OUT" "\"$a:v1\""
  assert_contains "$CRI_OUT" "\"$a@sha256:"
  assert_not_contains "$CRI_OUT" "$b" # neither b's tag nor b's digest entry is left
  cri_ok rmi "$a:v1" || return 1
}

test_cri_rmi_absent_image_succeeds() {
  cri_setup || return 1
  local ref=$REGISTRY/cri-absent-$CRI_ID:nope
  cri_ok rmi "$ref" || return 1
  assert_eq "$CRI_OUT" "image $ref not present"
  assert_eq "$(cat "$CRI_TLOG")" "image $ref not present"
  cri_ok rmi "$ref" || return 1 # and again
}

test_cri_pull_missing_image_fails_with_not_found() {
  cri_setup || return 1
  local ref=$REGISTRY/cri-missing-$CRI_ID:0
  cri_run pull "$ref"
  assert_eq 1 "$CRI_RC"
  assert_contains "$CRI_ERR" "pull $ref: rpc error: code = NotFound desc = "
  assert_contains "$CRI_ERR" "not found"
  assert_contains "$(cat "$CRI_TLOG")" "rpc error: code = NotFound"
}

test_cri_pull_with_credentials() {
  if [ -z "${REGISTRY_AUTH:-}" ] || [ -z "${REGISTRY_AUTH_USER:-}" ]; then
    skip "no REGISTRY_AUTH in the cluster env"
  fi
  cri_setup || return 1
  local ref
  ref=$(KF_GEN_SALT=$CRI_ID gen_images --auth "cri-private-$CRI_ID" 1 v1 | tail -1)
  [ -n "$ref" ] || fail "images.sh gen --auth printed nothing"
  cri_run pull "$ref"
  assert_eq 1 "$CRI_RC"
  assert_contains "$CRI_ERR" "401 Unauthorized"
  cri_run pull --creds "$REGISTRY_AUTH_USER:wrong-$CRI_ID" "$ref"
  assert_eq 1 "$CRI_RC"
  cri_ok pull --creds "$REGISTRY_AUTH_USER:$REGISTRY_AUTH_PASSWORD" "$ref" || return 1
  cri_ok rmi "$ref" || return 1
  cri_ok pull --auth "$(printf '%s:%s' "$REGISTRY_AUTH_USER" "$REGISTRY_AUTH_PASSWORD" | base64 -w0)" "$ref" || return 1
  cri_ok rmi "$ref" || return 1
}

test_cri_rejects_shell_syntax_in_references() {
  cri_setup || return 1
  local ref cmd
  for ref in "\$(touch $CRI_TMP/pwned1)" "a;b" "a;touch $CRI_TMP/pwned2" "\`touch $CRI_TMP/pwned3\`" \
             "busybox|touch $CRI_TMP/pwned4" "busybox && touch $CRI_TMP/pwned5" "$(printf 'busybox\ntouch x')"; do
    for cmd in rmi pull inspect; do
      cri_run "$cmd" "$ref"
      assert_eq 2 "$CRI_RC"
      assert_contains "$CRI_ERR" "invalid image reference"
    done
  done
  # the termination log names the bad value (escaped), so a failed delete Job says why
  assert_contains "$(cat "$CRI_TLOG")" "invalid image reference \"busybox\\ntouch x\""
  assert_eq 0 "$(find "$CRI_TMP" -name 'pwned*' | wc -l)" "a shell ran"
  # nothing reached the runtime (other cases may pull meanwhile, so look for our names only)
  cri_ok images -q || return 1
  assert_not_contains "$CRI_OUT" "pwned"
  assert_not_contains "$CRI_OUT" "touch"
}

test_cri_unreachable_socket_is_named() {
  cri_setup || return 1
  local rc=0 err
  err=$("$CRI_KF" cri --runtime-endpoint="unix://$CRI_TMP/no.sock" version 2>&1 >/dev/null) || rc=$?
  assert_eq 1 "$rc"
  assert_contains "$err" "connect to unix socket $CRI_TMP/no.sock: No such file or directory"
  rc=0
  "$CRI_KF" cri --runtime-endpoint=unix:///x.sock frobnicate >/dev/null 2>&1 || rc=$?
  assert_eq 2 "$rc"
}

# An image ID (or a prefix of one) is not a reference: removing by ID removes the image with every tag.
# The webhook denies IDs; here the last line of defence, on the real containerd: refused, nothing removed.
test_cri_rmi_refuses_image_ids() {
  cri_setup || return 1
  local repo id hex digest
  cri_two_tags "cri-id-$CRI_ID" || return 1
  repo=$CRI_REPO
  cri_ok inspect "$repo:t1" || return 1
  id=$(jq -r .status.id <<<"$CRI_OUT")
  digest=$(jq -r '.status.repoDigests[0]' <<<"$CRI_OUT")
  hex=${id#sha256:}
  [[ $id == sha256:* ]] && [ ${#hex} = 64 ] || fail "no image id in: $CRI_OUT"
  for bad in "$id" "$hex" "sha256:${hex:0:12}"; do
    cri_run rmi "$bad"
    assert_eq 2 "$CRI_RC" "rmi $bad"
    assert_contains "$CRI_ERR" "an image ID is not an image reference"
    assert_contains "$(cat "$CRI_TLOG")" "an image ID is not an image reference"
  done
  # a short hex name containerd does not know is looked up as an ID prefix: the image found does not
  # carry that name, so nothing is removed
  cri_run rmi "${hex:0:12}"
  assert_eq 1 "$CRI_RC" "rmi ${hex:0:12}"
  assert_contains "$CRI_ERR" "do not include it; nothing removed"
  node_has_image 1 "$repo:t1" || fail "$repo:t1 was removed"
  node_has_image 1 "$repo:t2" || fail "$repo:t2 was removed"
  # by digest: only the digest name goes, both tags stay
  cri_ok rmi "$digest" || return 1
  assert_contains "$CRI_OUT" "untagged $digest"
  node_has_image 1 "$repo:t1" || fail "$repo:t1 went with its digest"
  node_has_image 1 "$repo:t2" || fail "$repo:t2 went with its digest"
  ! node_has_image 1 "$digest" || fail "$digest is still there"
  cri_ok rmi "$repo:t1" "$repo:t2" || return 1
}

# Docker Engine API against a real dockerd: Debian's docker.io, unpacked (not installed) and cached by
# testbed/dockerd.sh, or KF_DOCKERD=/path/to/dockerd. dockerd runs on node 1's containerd in its own
# namespace ("moby"), in a temp dir, stopped by PID. Sets CRI_DK (the client command, as an array).
cri_dockerd_start() {
  local dockerd=${KF_DOCKERD:-} d pid
  [ -n "$dockerd" ] || dockerd=$("$E2E_ROOT/testbed/dockerd.sh") || fail "no dockerd: testbed/dockerd.sh failed"
  [ -x "$dockerd" ] || fail "KF_DOCKERD=$dockerd is not an executable"
  d=$CRI_TMP/dk
  mkdir -p "$d/data" "$d/exec"
  PATH=$(dirname "$dockerd"):$(dirname "$dockerd")/../bin:$PATH setsid "$dockerd" -H "unix://$d/docker.sock" \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" --containerd "$NODE1_CRI_SOCKET" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false --insecure-registry "$REGISTRY" \
    >"$d/log" 2>&1 &
  pid=$!
  defer cri_stop_pid "$pid" # before the temp dir goes (defers run last-first)
  wait_until 10 curl -sf --unix-socket "$d/docker.sock" http://localhost/_ping || fail "dockerd did not start: $(tail -5 "$d/log")"
  CRI_DK=("$CRI_KF" cri --runtime=docker --runtime-endpoint="unix://$d/docker.sock" --termination-log="$CRI_TLOG")
  CRI_DK_SOCK=$d/docker.sock
}

test_cri_docker_engine_untags_one_reference() {
  cri_setup || return 1
  cri_dockerd_start || return 1
  local dk=("${CRI_DK[@]}") ref repo
  ref=$(cri_gen "cri-docker-$CRI_ID" t1) || return 1
  repo=${ref%:*}
  cri_copy "${repo#"$REGISTRY"/}" t1 "${repo#"$REGISTRY"/}" t2 || return 1
  local out rc=0
  "${dk[@]}" version >"$CRI_TMP/dv" 2>&1 || rc=$?
  out=$("${dk[@]}" pull "$repo:t1" 2>&1 && "${dk[@]}" pull "$repo:t2" 2>&1 && "${dk[@]}" rmi "$repo:t1" 2>&1 &&
        "${dk[@]}" images -q 2>&1 && "${dk[@]}" rmi "$repo:t1" 2>&1) || rc=$?
  assert_eq 0 "$rc"
  assert_contains "$(cat "$CRI_TMP/dv")" "RuntimeName:  docker"
  assert_contains "$out" "untagged $repo:t1"
  assert_contains "$out" "$repo:t2"
  assert_contains "$out" "image $repo:t1 not present"
}

# On dockerd: IDs refused; a name dockerd does not know (which it would resolve as an ID prefix, and
# DELETE ?force=1 then removed the whole image) is "not present"; a digest untags only the digest.
test_cri_docker_refuses_image_ids() {
  cri_setup || return 1
  cri_dockerd_start || return 1
  local dk=("${CRI_DK[@]}") ref repo id hex digest rc out
  ref=$(cri_gen "cri-dkid-$CRI_ID" t1) || return 1
  repo=${ref%:*}
  cri_copy "${repo#"$REGISTRY"/}" t1 "${repo#"$REGISTRY"/}" t2 || return 1
  "${dk[@]}" pull "$repo:t1" >/dev/null && "${dk[@]}" pull "$repo:t2" >/dev/null || fail "docker pull failed"
  out=$("${dk[@]}" inspect "$repo:t1") || fail "inspect failed"
  id=$(jq -r .status.id <<<"$out")
  digest=$(jq -r '.status.repoDigests[0]' <<<"$out")
  hex=${id#sha256:}
  [ ${#hex} = 64 ] || fail "no image id in: $out"
  for bad in "$id" "$hex" "sha256:${hex:0:12}"; do
    rc=0
    out=$("${dk[@]}" rmi "$bad" 2>&1) || rc=$?
    assert_eq 2 "$rc" "rmi $bad"
    assert_contains "$out" "an image ID is not an image reference"
  done
  rc=0
  out=$("${dk[@]}" rmi "${hex:0:12}" 2>&1) || rc=$?
  assert_eq 0 "$rc" "rmi ${hex:0:12}: $out"
  assert_contains "$out" "image ${hex:0:12} not present"
  out=$("${dk[@]}" images -q) || fail "images failed"
  assert_contains "$out" "$repo:t1"
  assert_contains "$out" "$repo:t2"
  # by digest: the digest goes, the tags stay
  out=$("${dk[@]}" rmi "$digest" 2>&1) || fail "rmi $digest: $out"
  assert_contains "$out" "untagged $digest"
  out=$(curl -sf --unix-socket "$CRI_DK_SOCK" "http://localhost/images/$repo:t1/json") || fail "$repo:t1 is gone"
  assert_eq "[\"$repo:t1\",\"$repo:t2\"]" "$(jq -c '.RepoTags | sort' <<<"$out")"
  assert_eq "[]" "$(jq -c '.RepoDigests' <<<"$out")"
}
