#!/usr/bin/env bash
# push-image.sh - pushes an image from an OCI layout directory to a registry, with curl and the registry v2
# API only (no Docker, no skopeo): every blob (HEAD; if missing POST + PATCH + PUT), each platform manifest
# by digest, then the tag (an image index / manifest list, or a single manifest). Used by build-image.sh.
#
#   hack/push-image.sh --oci-dir DIR [--ref-name NAME] [options] REF
#
#   REF                host[:port]/repository:tag. Without a host (kubefledged/kubefledged:v1) it is Docker Hub
#                      (API at registry-1.docker.io, "library/" prepended to one-component names).
#   --ref-name NAME    which entry of DIR/index.json (annotation org.opencontainers.image.ref.name); default:
#                      the only one
#   --plain-http       http:// instead of https:// (a registry without TLS, such as the test bed's)
#   --ca-file FILE     also trust this CA (PEM) for TLS, besides the system's; /etc/docker/certs.d/HOST[:PORT]/ca.crt
#                      is trusted too when present, and client.cert/client.key there are sent, as docker does
#   --docker-config DIR   where config.json is: default $DOCKER_CONFIG, else ~/.docker
#
# Credentials are docker's: config.json "credHelpers" (per host) or "credsStore" (docker-credential-NAME get),
# else "auths" (as `docker login` writes them: "auth" = base64 of user:password, or "username"/"password",
# or "identitytoken", an OAuth2 refresh token). Authentication is whatever the registry asks for in its
# 401 answer: Basic, or Bearer (a token from the WWW-Authenticate realm for service and the scope
# repository:<repo>:pull,push, fetched with the credentials, or anonymously when there are none). Secrets never
# appear on a command line: curl reads the Authorization header from a file in a private temporary directory.
# Prints REF@digest of what the tag now names.
set -euo pipefail

oci_dir= ref_name= plain=0 ca_file= dcfg=${DOCKER_CONFIG:-$HOME/.docker} ref=
die() { echo "push-image: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --oci-dir) oci_dir=$2; shift 2;;
    --ref-name) ref_name=$2; shift 2;;
    --plain-http) plain=1; shift;;
    --ca-file) ca_file=$2; shift 2;;
    --docker-config) dcfg=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    -*) die "unknown option $1 (see --help)";;
    *) [ -z "$ref" ] || die "one REF only (got \"$ref\" and \"$1\")"; ref=$1; shift;;
  esac
done
[ -n "$ref" ] || die "no REF given (host[:port]/repository:tag)"
[ -n "$oci_dir" ] && [ -f "$oci_dir/index.json" ] || die "--oci-dir: no OCI layout (index.json) in \"$oci_dir\""
command -v jq >/dev/null || die "jq not found (hack/deps.sh)"

# ---- the reference ----
name=$ref
[[ $name != *@* ]] || die "REF \"$ref\": push to a tag, not a digest"
last=${name##*/}
if [[ $last == *:* ]]; then tag=${last##*:}; name=${name%:*}; else tag=latest; fi
first=${name%%/*}
if [[ $name == */* ]] && { [[ $first == *.* ]] || [[ $first == *:* ]] || [ "$first" = localhost ]; }; then
  host=$first repo=${name#*/}
else
  host=docker.io repo=$name
fi
api_host=$host
case $host in
  docker.io|index.docker.io|registry-1.docker.io)
    host=docker.io api_host=registry-1.docker.io
    [[ $repo == */* ]] || repo=library/$repo;;
esac
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "REF \"$ref\": invalid tag \"$tag\""
[[ $repo =~ ^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$ ]] ||
  die "REF \"$ref\": invalid repository \"$repo\" (lowercase letters, digits, . _ - and /)"
[[ $api_host =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$|^\[[0-9a-fA-F:]+\](:[0-9]+)?$ ]] || die "REF \"$ref\": invalid registry host \"$host\""
scheme=https; [ $plain = 0 ] || scheme=http
base=$scheme://$api_host/v2

tmp=$(mktemp -d /tmp/kf-push.XXXXXX)
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT
auth_hdr=$tmp/auth
: > "$auth_hdr"

# ---- TLS trust: the system's CAs + --ca-file + docker's certs.d directory for this host ----
curl_opts=(-sS --connect-timeout 15 --max-time 900 --retry 3 --retry-delay 1)
certs_d=/etc/docker/certs.d/$api_host
[ "$host" != docker.io ] || certs_d=/etc/docker/certs.d/$host
extra_cas=()
[ -z "$ca_file" ] || { [ -r "$ca_file" ] || die "--ca-file $ca_file: not readable"; extra_cas+=("$ca_file"); }
[ ! -r "$certs_d/ca.crt" ] || extra_cas+=("$certs_d/ca.crt")
if [ ${#extra_cas[@]} -gt 0 ]; then
  sys=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  { [ ! -r "$sys" ] || cat "$sys"; cat "${extra_cas[@]}"; } > "$tmp/ca-bundle.pem"
  curl_opts+=(--cacert "$tmp/ca-bundle.pem")
fi
[ ! -r "$certs_d/client.cert" ] || [ ! -r "$certs_d/client.key" ] ||
  curl_opts+=(--cert "$certs_d/client.cert" --key "$certs_d/client.key")

# ---- credentials from the docker config (never printed) ----
cred_user= cred_pass= cred_refresh=
cfg=$dcfg/config.json
server_keys=("$api_host" "https://$api_host" "http://$api_host" "https://$api_host/v1/" "https://$api_host/v2/")
[ "$host" != docker.io ] || server_keys=("https://index.docker.io/v1/" "index.docker.io" "docker.io" "https://index.docker.io/v1" "registry-1.docker.io")
from_helper() { # HELPER-NAME -> 0 when it had credentials for the host
  local h=docker-credential-$1 out
  command -v "$h" >/dev/null || die "$cfg names the credential helper $1, but $h is not on PATH"
  out=$(printf '%s' "${server_keys[0]}" | "$h" get 2>/dev/null) || return 1
  cred_user=$(jq -r '.Username // empty' <<< "$out") cred_pass=$(jq -r '.Secret // empty' <<< "$out")
  if [ "$cred_user" = "<token>" ]; then cred_refresh=$cred_pass cred_user= cred_pass=; fi
  [ -n "$cred_pass$cred_refresh" ]
}
load_creds() {
  [ -f "$cfg" ] || return 0
  jq -e . "$cfg" >/dev/null 2>&1 || die "$cfg is not valid JSON"
  local helper k entry a
  helper=$(jq -r --arg h "${server_keys[0]}" --arg h2 "$host" '.credHelpers[$h] // .credHelpers[$h2] // empty' "$cfg")
  if [ -n "$helper" ]; then from_helper "$helper" && return 0; fi
  helper=$(jq -r '.credsStore // empty' "$cfg")
  if [ -n "$helper" ] && from_helper "$helper"; then return 0; fi
  for k in "${server_keys[@]}"; do
    entry=$(jq -c --arg k "$k" '.auths[$k] // empty' "$cfg")
    [ -n "$entry" ] && break
  done
  [ -n "$entry" ] || return 0
  a=$(jq -r '.auth // empty' <<< "$entry")
  if [ -n "$a" ]; then
    a=$(base64 -d <<< "$a" 2>/dev/null) || die "$cfg: the \"auth\" of $k is not base64"
    [[ $a == *:* ]] || die "$cfg: the \"auth\" of $k is not base64 of user:password"
    cred_user=${a%%:*} cred_pass=${a#*:}
  else
    cred_user=$(jq -r '.username // empty' <<< "$entry") cred_pass=$(jq -r '.password // empty' <<< "$entry")
  fi
  cred_refresh=$(jq -r '.identitytoken // empty' <<< "$entry")
}
load_creds

# ---- HTTP with authentication on demand ----
# req METHOD URL [curl args]: sets code; headers in $tmp/h, body in $tmp/b. On 401 authenticates as the
# WWW-Authenticate header says and tries once more.
code=
req() {
  local method=$1 url=$2 try m; shift 2
  if [ "$method" = HEAD ]; then m=(-I); else m=(-X "$method"); fi
  for try in 1 2; do
    code=$(curl "${curl_opts[@]}" "${m[@]}" -H @"$auth_hdr" -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$@" "$url" 2> "$tmp/err") ||
      die "$method $url: $(curl_error)"
    [ "$code" = 401 ] && [ $try = 1 ] || return 0
    authenticate "$url"
  done
}
curl_error() { # curl's first line, with a hint for the usual TLS trouble
  local e; e=$(grep -m1 . "$tmp/err")
  case $e in
    *"(60)"*|*"(77)"*) e="$e (a private CA? give --ca-file FILE, or put it in /etc/docker/certs.d/$api_host/ca.crt)";;
    *"(35)"*) e="$e (a plain-HTTP registry? give --plain-http)";;
  esac
  echo "$e"
}
header() { tr -d '\r' < "$tmp/h" | awk -v k="$(echo "$1" | tr 'A-Z' 'a-z')" 'tolower($1) == k":" {sub(/^[^:]*: */, ""); v=$0} END {print v}'; }
http_fail() { # WHAT [FROM]: dies with the HTTP status, the registry's error message and what was sent
  local msg hint=
  msg=$(jq -r '[.errors[]? | "\(.code): \(.message)"] | join("; ")' "$tmp/b" 2>/dev/null || true)
  [ -n "$msg" ] || msg=$(head -c 300 "$tmp/b" | tr '\n' ' ')
  case $code in
    401|403)
      if [ -n "$cred_user$cred_pass$cred_refresh" ]; then hint=" (sent the credentials for $host from $cfg)"
      else hint=" ($cfg has no credentials for $host: docker login $host, or see docs/deploy.md)"; fi;;
  esac
  die "$1: HTTP $code from ${2:-$api_host}${msg:+: $msg}$hint"
}
authenticate() { # URL (the one that got 401)
  local www params realm= service= scope=repository:$repo:pull,push k v tok
  www=$(header WWW-Authenticate)
  case $www in
    [Bb]asic*)
      [ -n "$cred_user$cred_pass" ] || die "$api_host asks for a user name and password (Basic) and $cfg has none for it: docker login $host, or see docs/deploy.md"
      printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$cred_user" "$cred_pass" | base64 -w0)" > "$auth_hdr";;
    [Bb]earer*)
      params=${www#* }
      while [[ $params =~ ^[[:space:],]*([A-Za-z_]+)=\"([^\"]*)\"(.*)$ ]]; do
        k=${BASH_REMATCH[1]} v=${BASH_REMATCH[2]} params=${BASH_REMATCH[3]}
        case $k in realm) realm=$v;; service) service=$v;; esac
      done
      [[ $realm =~ ^https?:// ]] || die "$api_host asks for a Bearer token with no usable realm: \"$www\""
      local args=(-G --data-urlencode "scope=$scope")
      [ -z "$service" ] || args+=(--data-urlencode "service=$service")
      : > "$tmp/tokauth"
      if [ -n "$cred_refresh" ]; then
        # OAuth2 refresh token (docker login with an identity token): POST the form
        args=(--data-urlencode grant_type=refresh_token --data-urlencode client_id=kube-fledged-c
              --data-urlencode "scope=$scope" --data-urlencode "refresh_token@$tmp/refresh")
        [ -z "$service" ] || args+=(--data-urlencode "service=$service")
        printf '%s' "$cred_refresh" > "$tmp/refresh"
      elif [ -n "$cred_user$cred_pass" ]; then
        printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$cred_user" "$cred_pass" | base64 -w0)" > "$tmp/tokauth"
      fi
      code=$(curl "${curl_opts[@]}" -H @"$tmp/tokauth" -o "$tmp/tok" -w '%{http_code}' "${args[@]}" "$realm" 2> "$tmp/err") ||
        die "token endpoint $realm: $(curl_error)"
      rm -f "$tmp/refresh"
      if [ "$code" != 200 ]; then
        cp "$tmp/tok" "$tmp/b"
        http_fail "getting a token for $repo" "the token endpoint $realm"
      fi
      tok=$(jq -r '.token // .access_token // empty' "$tmp/tok" 2>/dev/null)
      [ -n "$tok" ] || die "token endpoint $realm: no token in its answer"
      printf 'Authorization: Bearer %s\n' "$tok" > "$auth_hdr";;
    *) die "$1: HTTP 401 with no supported WWW-Authenticate challenge (\"$www\")";;
  esac
}

# ---- push ----
blob_file() { echo "$oci_dir/blobs/sha256/${1#sha256:}"; }
uploaded=0 present=0 bytes=0
push_blob() { # DIGEST
  local f loc sep
  f=$(blob_file "$1")
  [ -f "$f" ] || die "blob $1 is not in $oci_dir"
  req HEAD "$base/$repo/blobs/$1"
  # 200, or a redirect to the storage backend (S3, GCS behind some registries): the registry has it
  case $code in 200|30[1278]) present=$((present + 1)); return 0;; esac
  req POST "$base/$repo/blobs/uploads/" --data-binary ''
  [ "$code" = 202 ] || http_fail "starting an upload to $repo"
  loc=$(header Location); [ -n "$loc" ] || die "$api_host gave no upload location"
  case $loc in http*) ;; *) loc=$scheme://$api_host$loc;; esac
  req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary @"$f"
  [ "$code" = 202 ] || http_fail "uploading blob $1"
  loc=$(header Location); [ -n "$loc" ] || die "$api_host gave no upload location after the data"
  case $loc in http*) ;; *) loc=$scheme://$api_host$loc;; esac
  case $loc in *\?*) sep='&';; *) sep='?';; esac
  req PUT "$loc${sep}digest=${1/:/%3A}" -H 'Content-Type: application/octet-stream' --data-binary ''
  [ "$code" = 201 ] || http_fail "completing blob $1"
  uploaded=$((uploaded + 1)) bytes=$((bytes + $(stat -c %s "$f")))
}
push_manifest() { # DIGEST MEDIATYPE TAG-OR-DIGEST
  local f got
  f=$(blob_file "$1")
  [ -f "$f" ] || die "manifest $1 is not in $oci_dir"
  req PUT "$base/$repo/manifests/$3" -H "Content-Type: $2" --data-binary @"$f"
  [ "$code" = 201 ] || http_fail "putting manifest $3 ($2)"
  got=$(header Docker-Content-Digest)
  [ -z "$got" ] || [ "$got" = "$1" ] || die "$api_host stored manifest $3 as $got, not $1"
}
push_image_manifest() { # DIGEST MEDIATYPE TAG-OR-DIGEST: its config and layers, then itself
  local d
  for d in $(jq -r '.config.digest, .layers[].digest' "$(blob_file "$1")"); do push_blob "$d"; done
  push_manifest "$1" "$2" "$3"
}

top=$(jq -c --arg n "$ref_name" '[.manifests[] | select($n == "" or .annotations["org.opencontainers.image.ref.name"] == $n)]' "$oci_dir/index.json")
[ "$(jq length <<< "$top")" = 1 ] || die "$oci_dir/index.json: $(jq length <<< "$top") entries match ref name \"$ref_name\" (give --ref-name)"
top_digest=$(jq -r '.[0].digest' <<< "$top") top_mt=$(jq -r '.[0].mediaType' <<< "$top")
case $top_mt in
  *index*|*manifest.list*)
    n=0
    while read -r d mt; do
      push_image_manifest "$d" "$mt" "$d"; n=$((n + 1))
    done < <(jq -r '.manifests[] | "\(.digest) \(.mediaType)"' "$(blob_file "$top_digest")")
    push_manifest "$top_digest" "$top_mt" "$tag"
    what="index of $n manifests";;
  *) push_image_manifest "$top_digest" "$top_mt" "$tag"; what=manifest;;
esac
echo "push-image: $what: $uploaded blobs uploaded ($bytes bytes), $present already there" >&2
echo "$host/$repo:$tag@$top_digest"
