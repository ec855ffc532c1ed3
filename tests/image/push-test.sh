#!/usr/bin/env bash
# push-test.sh - tests the image build and push (hack/build-image.sh, hack/push-image.sh) against real
# Debian docker-registry instances it starts on 127.0.0.1, no cluster and no internet needed (make image-test):
#   plain      plain HTTP, no auth (as the test bed's registry): push the three-architecture index, fetch it back
#              through the registry API, check its media type, the three platforms, each manifest's config
#              (architecture, variant, entry point) and that every blob's content matches its digest; a second
#              push uploads nothing; --format docker pushes a Docker manifest list
#   basic      HTTPS with a CA of its own (--ca-file, and unknown without it) + htpasswd (Basic): credentials
#              from a docker config "auth" entry ($DOCKER_CONFIG); no config, a wrong password: clear errors
#   bearer     HTTPS + token authentication (the registry's auth.token; tests/e2e/token-server.py issues the
#              JWTs): credentials as username/password in --docker-config, then an identity token (OAuth2
#              refresh_token POST), then a credential helper (credHelpers -> docker-credential-NAME on PATH);
#              anonymous: a clear error. The token server's log proves which grant each push used.
# The layout pushed is build/image-test/oci (hack/build-image.sh --arch all; rebuilt when a binary is newer;
# IMAGE_TEST_OCI=DIR pushes another layout instead).
#
#   tests/image/push-test.sh [plain|basic|bearer]...     default: all three
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(plain basic bearer)
work=$(mktemp -d /tmp/kf-push-test.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failed=0
say() { printf '[push-test %s] %s\n' "$(date +%T)" "$*"; }
fail() { echo "push-test: FAIL: $*" >&2; exit 1; }
assert_contains() { case $1 in *"$2"*) ;; *) fail "${3:-}: \"$2\" not in: $1";; esac; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- the layout: three architectures, built once ----
oci=${IMAGE_TEST_OCI:-$ROOT/build/image-test/oci}
if [ -z "${IMAGE_TEST_OCI:-}" ]; then
  stale=0
  [ -f "$oci/index.json" ] || stale=1
  for b in build/src/kubefledged build-arm64/src/kubefledged build-armhf/src/kubefledged; do
    [ -x "$b" ] || fail "$b missing: make build and hack/build-arch.sh --image-only first (make image-test does)"
    [ $stale = 1 ] || [ ! "$b" -nt "$oci/index.json" ] || stale=1
  done
  if [ $stale = 1 ]; then
    say "building the three-architecture layout into $oci"
    rm -rf "$oci"
    hack/build-image.sh --arch all --oci-dir "$oci" --tag test >/dev/null
  fi
fi
top=$(jq -r '.manifests[0].digest' "$oci/index.json")

# ---- registries ----
start_registry() { # NAME -> sets url; config.yml body on stdin (after http.addr)
  local name=$1 port d
  port=$(free_port) d=$work/$name
  mkdir -p "$d/data"
  { printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$d/data"
    printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
    cat; } > "$d/config.yml"
  # docker-registry reads REGISTRY_* variables as configuration (the test bed's env file exports some)
  local unset=() v
  for v in $(compgen -e); do case $v in REGISTRY*) unset+=(-u "$v");; esac; done
  env "${unset[@]}" docker-registry serve "$d/config.yml" > "$d/log" 2>&1 &
  pids+=($!)
  host=127.0.0.1:$port
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --cacert "$work/ca.crt" "https://$host/v2/" && return 0
    curl -s -o /dev/null "http://$host/v2/" && return 0
    sleep 0.2
  done
  cat "$d/log" >&2; fail "registry $name did not start"
}
pki() {
  [ -f "$work/ca.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=kf-push-test-ca \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
  openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') -out "$work/tls.crt" 2>/dev/null
  # the token signer (RS256), trusted by the registry through rootcertbundle
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kf-push-test-token-signer \
    -keyout "$work/signer.key" -out "$work/signer.crt" 2>/dev/null
  password=$(openssl rand -hex 12)
  printf '%s' "$password" > "$work/password"
}
b64() { printf '%s' "$1" | base64 -w0; }
# refused WHAT NEEDLE CMD...: CMD must fail with NEEDLE in its error output, which is shown
refused() {
  local what=$1 needle=$2; shift 2
  if "$@" >/dev/null 2>"$work/err"; then fail "$what: the push worked"; fi
  assert_contains "$(cat "$work/err")" "$needle" "$what"
  say "  $what: $(tail -1 "$work/err")"
}

# check_index BASE AUTH-HEADER-FILE FORMAT [TAG PLATFORMS]: TAG (test) names an index of PLATFORMS (the three)
# whose manifests, configs and layers are all there with the right content
check_index() {
  local base=$1 hdr=$2 fmt=$3 tag=${4:-test} want=${5:-linux/amd64 linux/arm64/v8 linux/arm/v7} mt_index mt_manifest ct plats d cfg arch variant ep
  if [ "$fmt" = oci ]; then
    mt_index=application/vnd.oci.image.index.v1+json mt_manifest=application/vnd.oci.image.manifest.v1+json
  else
    mt_index=application/vnd.docker.distribution.manifest.list.v2+json mt_manifest=application/vnd.docker.distribution.manifest.v2+json
  fi
  ct=$(curl -sf --cacert "$work/ca.crt" -H @"$hdr" -H "Accept: $mt_index" -D - -o "$work/index.json" "$base/manifests/$tag" |
       tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}')
  [ "$ct" = "$mt_index" ] || fail "tag $tag: Content-Type \"$ct\", want $mt_index"
  plats=$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)\(if .variant then "/" + .variant else "" end)"] | join(" ")' "$work/index.json")
  [ "$plats" = "$want" ] || fail "tag $tag: platforms $plats, want $want"
  for d in $(jq -r '.manifests[].digest' "$work/index.json"); do
    curl -sf --cacert "$work/ca.crt" -H @"$hdr" -H "Accept: $mt_manifest" -o "$work/m.json" "$base/manifests/$d" || fail "manifest $d not there"
    [ "sha256:$(sha256sum < "$work/m.json" | cut -d' ' -f1)" = "$d" ] || fail "manifest $d: content does not match the digest"
    [ "$(jq -r .mediaType "$work/m.json")" = "$mt_manifest" ] || fail "manifest $d: mediaType $(jq -r .mediaType "$work/m.json")"
    for b in $(jq -r '.config.digest, .layers[].digest' "$work/m.json"); do
      curl -sf --cacert "$work/ca.crt" -H @"$hdr" -L -o "$work/blob" "$base/blobs/$b" || fail "blob $b not there"
      [ "sha256:$(sha256sum < "$work/blob" | cut -d' ' -f1)" = "$b" ] || fail "blob $b: content does not match"
    done
    cfg=$(jq -r .config.digest "$work/m.json")
    curl -sf --cacert "$work/ca.crt" -H @"$hdr" -L -o "$work/cfg.json" "$base/blobs/$cfg"
    arch=$(jq -r .architecture "$work/cfg.json") variant=$(jq -r '.variant // ""' "$work/cfg.json")
    ep=$(jq -c .config.Entrypoint "$work/cfg.json")
    [ "$(jq -r --arg d "$d" '.manifests[] | select(.digest == $d) | "\(.platform.architecture)/\(.platform.variant // "")"' "$work/index.json")" = "$arch/$variant" ] ||
      fail "manifest $d: config says $arch/$variant, the index another platform"
    [ "$ep" = '["/usr/bin/kubefledged"]' ] || fail "manifest $d: entry point $ep"
  done
}

case_plain() {
  start_registry plain < /dev/null
  local out
  out=$(hack/push-image.sh --oci-dir "$oci" --plain-http "$host/kf/plain:test" 2>"$work/err") || { cat "$work/err" >&2; fail "plain push"; }
  [ "$out" = "$host/kf/plain:test@$top" ] || fail "plain push printed \"$out\""
  assert_contains "$(cat "$work/err")" "index of 3 manifests: 6 blobs uploaded"
  : > "$work/nohdr"
  check_index "http://$host/v2/kf/plain" "$work/nohdr" oci
  hack/push-image.sh --oci-dir "$oci" --plain-http "$host/kf/plain:test" >/dev/null 2>"$work/err"
  assert_contains "$(cat "$work/err")" "0 blobs uploaded (0 bytes), 6 already there" "second push"
  # Docker media types: a manifest list (of amd64 alone, forced with --index, to keep the test short). Same
  # binary, same layer and config (deterministic build): only the manifests differ, nothing else is uploaded.
  hack/build-image.sh --arch amd64 --index --format docker --oci-dir "$work/docker-oci" --tag docker >/dev/null 2>&1
  hack/push-image.sh --oci-dir "$work/docker-oci" --plain-http "$host/kf/plain:docker" >/dev/null 2>"$work/err"
  assert_contains "$(cat "$work/err")" "0 blobs uploaded (0 bytes), 2 already there" "docker format"
  check_index "http://$host/v2/kf/plain" "$work/nohdr" docker docker linux/amd64
  # https against a plain-HTTP registry: a clear error, not a hang
  refused "https to a plain-HTTP registry" "push-image: HEAD https://$host/v2/kf/plain/blobs/" hack/push-image.sh --oci-dir "$oci" "$host/kf/plain:test"
  say "plain: index pushed to $host and checked (OCI and Docker media types)"
}

case_basic() {
  pki
  htpasswd -Bbn kfpush "$password" > "$work/htpasswd"
  start_registry basic <<EOF
  tls:
    certificate: $work/tls.crt
    key: $work/tls.key
auth:
  htpasswd:
    realm: kf-push-test
    path: $work/htpasswd
EOF
  local cfgdir=$work/docker-basic out
  mkdir -p "$cfgdir"
  # no credentials at all
  refused "no credentials" "asks for a user name and password (Basic) and $cfgdir/config.json has none for it" env DOCKER_CONFIG="$cfgdir" hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" "$host/kf/basic:test"
  # the CA not trusted
  printf '{"auths":{"%s":{"auth":"%s"}}}' "$host" "$(b64 "kfpush:$password")" > "$cfgdir/config.json"
  refused "unknown CA" "SSL certificate problem: unable to get local issuer certificate (a private CA? give --ca-file FILE" env DOCKER_CONFIG="$cfgdir" hack/push-image.sh --oci-dir "$oci" "$host/kf/basic:test"
  # a wrong password
  printf '{"auths":{"https://%s":{"auth":"%s"}}}' "$host" "$(b64 "kfpush:wrong")" > "$cfgdir/config.json"
  refused "wrong password" "starting an upload to kf/basic: HTTP 401 from $host: UNAUTHORIZED: authentication required (sent the credentials for $host from $cfgdir/config.json)" env DOCKER_CONFIG="$cfgdir" hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" "$host/kf/basic:test"
  # right: the "auth" entry docker login writes
  printf '{"auths":{"%s":{"auth":"%s"}}}' "$host" "$(b64 "kfpush:$password")" > "$cfgdir/config.json"
  out=$(env DOCKER_CONFIG="$cfgdir" hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" "$host/kf/basic:test" 2>"$work/err") ||
    { cat "$work/err" >&2; fail "basic push"; }
  [ "$out" = "$host/kf/basic:test@$top" ] || fail "basic push printed \"$out\""
  if grep -q "$password" "$work/err"; then fail "the password was printed"; fi
  printf 'Authorization: Basic %s\n' "$(b64 "kfpush:$password")" > "$work/basic-hdr"
  check_index "https://$host/v2/kf/basic" "$work/basic-hdr" oci
  say "basic: index pushed to https://$host with htpasswd credentials from \$DOCKER_CONFIG and checked"
}

case_bearer() {
  pki
  local tport cfgdir=$work/docker-bearer out tok
  tport=$(free_port)
  openssl rand -hex 16 > "$work/refresh"
  python3 tests/e2e/token-server.py --listen "127.0.0.1:$tport" --cert "$work/tls.crt" --key "$work/tls.key" \
    --sign-cert "$work/signer.crt" --sign-key "$work/signer.key" --service kf-push-test --issuer kf-push-test-issuer \
    --user kfpush --password-file "$work/password" --refresh-token-file "$work/refresh" > "$work/token.log" 2>&1 &
  pids+=($!)
  start_registry bearer <<EOF
  tls:
    certificate: $work/tls.crt
    key: $work/tls.key
auth:
  token:
    realm: https://127.0.0.1:$tport/token
    service: kf-push-test
    issuer: kf-push-test-issuer
    rootcertbundle: $work/signer.crt
EOF
  for _ in $(seq 1 50); do grep -q "token server on" "$work/token.log" && break; sleep 0.2; done
  www=$(curl -s --cacert "$work/ca.crt" -D - -o /dev/null "https://$host/v2/" | tr -d '\r' | grep -i '^www-authenticate:' || true)
  assert_contains "$www" "Bearer realm=\"https://127.0.0.1:$tport/token\"" "the registry's challenge"
  mkdir -p "$cfgdir"
  # anonymous: the token server gives a token without access, the registry refuses it
  printf '{"auths":{}}' > "$cfgdir/config.json"
  refused "anonymous" "HTTP 401 from $host: UNAUTHORIZED: authentication required ($cfgdir/config.json has no credentials for $host" hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" --docker-config "$cfgdir" "$host/kf/bearer:test"
  # username/password
  printf '{"auths":{"%s":{"username":"kfpush","password":"%s"}}}' "$host" "$password" > "$cfgdir/config.json"
  out=$(hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" --docker-config "$cfgdir" "$host/kf/bearer:test" 2>"$work/err") ||
    { cat "$work/err" "$work/token.log" >&2; fail "bearer push"; }
  [ "$out" = "$host/kf/bearer:test@$top" ] || fail "bearer push printed \"$out\""
  grep -q 'GET grant=basic user=kfpush scope=repository:kf/bearer:pull,push access=\[{"type": "repository", "name": "kf/bearer", "actions": \["pull", "push"\]}\] status=200' "$work/token.log" ||
    { cat "$work/token.log" >&2; fail "no token granted with Basic credentials"; }
  tok=$(curl -sf --cacert "$work/ca.crt" -u "kfpush:$password" "https://127.0.0.1:$tport/token?service=kf-push-test&scope=repository:kf/bearer:pull" | jq -r .token)
  printf 'Authorization: Bearer %s\n' "$tok" > "$work/bearer-hdr"
  check_index "https://$host/v2/kf/bearer" "$work/bearer-hdr" oci
  # an identity token (docker login with a token service that hands out refresh tokens)
  printf '{"auths":{"%s":{"auth":"","identitytoken":"%s"}}}' "$host" "$(cat "$work/refresh")" > "$cfgdir/config.json"
  hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" --docker-config "$cfgdir" "$host/kf/bearer-refresh:test" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; fail "push with an identity token"; }
  grep -q 'POST grant=refresh_token user=kfpush scope=repository:kf/bearer-refresh:pull,push .*status=200' "$work/token.log" ||
    { cat "$work/token.log" >&2; fail "no token granted for the refresh token"; }
  # a credential helper
  mkdir -p "$work/bin"
  printf '#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r server\n[ "$server" = "%s" ] || { echo "credentials not found" >&2; exit 1; }\nprintf '"'"'{"ServerURL":"%%s","Username":"kfpush","Secret":"%%s"}'"'"' "$server" "$(cat %s)"\n' \
    "$host" "$work/password" > "$work/bin/docker-credential-kftest"
  chmod +x "$work/bin/docker-credential-kftest"
  printf '{"auths":{"%s":{}},"credHelpers":{"%s":"kftest"}}' "$host" "$host" > "$cfgdir/config.json"
  PATH=$work/bin:$PATH hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" --docker-config "$cfgdir" "$host/kf/bearer-helper:test" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; fail "push with a credential helper"; }
  grep -q 'GET grant=basic user=kfpush scope=repository:kf/bearer-helper:pull,push .*status=200' "$work/token.log" ||
    { cat "$work/token.log" >&2; fail "no token granted for the helper's credentials"; }
  # a wrong password: the token endpoint says so
  printf '{"auths":{"%s":{"username":"kfpush","password":"wrong"}}}' "$host" > "$cfgdir/config.json"
  refused "wrong password" "getting a token for kf/bearer: HTTP 401 from the token endpoint https://127.0.0.1:$tport/token: UNAUTHORIZED: bad credentials (sent the credentials for $host from $cfgdir/config.json)" hack/push-image.sh --oci-dir "$oci" --ca-file "$work/ca.crt" --docker-config "$cfgdir" "$host/kf/bearer:test"
  say "bearer: index pushed to https://$host with tokens from https://127.0.0.1:$tport (password, identity token, credential helper) and checked"
}

t0=$SECONDS
for c in "${cases[@]}"; do
  case $c in
    plain|basic|bearer) "case_$c";;
    *) fail "unknown case $c (plain, basic, bearer)";;
  esac
done
say "all passed in $((SECONDS - t0)) s: ${cases[*]}"
