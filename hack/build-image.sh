#!/usr/bin/env bash
# build-image.sh - builds the kubefledged helper/controller OCI image WITHOUT Docker: a distroless-style root
# filesystem holding only
#   /usr/bin/kubefledged            the CMake build's binary (stripped copy); the image's entry point
#   /opt/bin/kubefledged-controller, /opt/bin/kubefledged-webhook-server
#                                   symlinks to it: upstream's entry points, so that upstream's manifests run
#                                   this image unchanged (the binary dispatches on the name it was started as)
#   /bin/echo, /bin/cp              the static multi-call helper (pull Jobs: `cp /bin/echo /tmp/bin`)
#   /usr/lib/<triplet>/*.so*        exactly the shared libraries `ldd kubefledged` names, plus the dynamic
#                                   loader, taken from the Debian packages that own them (dpkg -S ->
#                                   apt-get download -> dpkg-deb -x), with their copyright files
#   /etc/ssl/certs/ca-certificates.crt   from the ca-certificates package (for TLS to the API server)
#   /etc/passwd, /etc/group         root, nonroot (65532) and nobody; /tmp (1777)
# One deterministic layer (tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner, gzip -n): the
# same inputs give the same digest. Then either pushed to a plain-HTTP registry with curl (registry v2 API:
# blob upload POST + monolithic PUT, then the manifest), or written as an OCI layout directory, or both.
#
#   hack/build-image.sh --registry 127.0.0.1:5000 --repo kubefledged/kubefledged --tag dev
#   hack/build-image.sh --oci-dir /tmp/kf-oci --tag dev
# Options: --build-dir DIR (default build), --binary PATH, --helper PATH, --no-strip, --no-verify,
#          --cache DIR (default ~/.cache/kube-fledged-c/debs).
# Prints the image reference with its digest, and its sizes. amd64 only for now (see docs in the report:
# arm64 would need Debian's cross toolchain and arm64 library packages via dpkg --add-architecture).
set -euo pipefail

build_dir=build binary= helper= registry= repo=kubefledged/kubefledged tag=dev oci_dir= strip=1 verify=1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c/debs
die() { echo "build-image: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build_dir=$2; shift 2;;
    --binary) binary=$2; shift 2;;
    --helper) helper=$2; shift 2;;
    --registry) registry=$2; shift 2;;
    --repo) repo=$2; shift 2;;
    --tag) tag=$2; shift 2;;
    --oci-dir) oci_dir=$2; shift 2;;
    --cache) cache=$2; shift 2;;
    --no-strip) strip=0; shift;;
    --no-verify) verify=0; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option $1 (see --help)";;
  esac
done
binary=${binary:-$build_dir/src/kubefledged}
helper=${helper:-$build_dir/src/kf-static-helper}
[ -n "$registry" ] || [ -n "$oci_dir" ] || die "nothing to do: give --registry HOST:PORT and/or --oci-dir DIR"
[ -x "$binary" ] || die "$binary not found: build first (make build, or cmake --build $build_dir --target kubefledged)"
[ -x "$helper" ] || die "$helper not found: build first (cmake --build $build_dir --target kf-static-helper)"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag \"$tag\""
[[ $repo =~ ^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$ ]] || die "invalid repository \"$repo\""
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || die "only amd64 is supported (this machine is $arch)"
triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
if ldd "$helper" >/dev/null 2>&1; then die "$helper is not statically linked"; fi

work=$(mktemp -d /tmp/kf-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc/ssl/certs,opt/bin,tmp,usr/bin,usr/lib/$triplet,usr/lib64,usr/share/doc} "$cache"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

# ---- Debian packages: owner of a file, download once into the cache, unpack once ----
# With usrmerge a library may be registered under /lib or /usr/lib, by its soname link or its real file:
# look all spellings up in one dpkg -S call (each call reads the whole dpkg database).
declare -A owners=()
spellings() { local r; r=$(readlink -f "$1"); printf '%s\n' "$1" "${1#/usr}" "/usr$1" "$r" "${r#/usr}" | grep '^/' | sort -u; }
find_owners() { # PATH...
  local line
  while IFS= read -r line; do
    owners[${line#*: }]=${line%%: *}
  done < <(for p in "$@"; do spellings "$p"; done | xargs dpkg -S 2>/dev/null | grep -v '^diversion' | grep ': /')
}
owner() { # PATH -> "pkg:arch"
  local c
  for c in $(spellings "$1"); do
    [ -n "${owners[$c]:-}" ] && { echo "${owners[$c]}" | cut -d, -f1; return 0; }
  done
  return 1
}
unpacked() { # pkg:arch -> dir with the package's files
  local pkg=$1 ver deb
  ver=$(dpkg-query -W -f='${Version}' "$pkg")
  # an earlier run may have found this version gone from the archive (see below)
  local mapped
  mapped=$(awk -v k="$pkg=$ver" '$1 == k {print $2}' "$cache/replaced-versions" 2>/dev/null | tail -1)
  [ -n "$mapped" ] && ver=$mapped
  deb=$(ls "$cache/${pkg%%:*}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    if ! (cd "$cache" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1); then
      # The installed version left the archive (a newer security update replaced it): take the archive's
      # current one, same soname and Debian release, so ABI compatible.
      local cand
      cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/{print $2}')
      if [ -z "$cand" ] || [ "$cand" = "(none)" ] || [ "$cand" = "$ver" ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/{print $2}')
      fi
      (cd "$cache" && apt-get download -q "$pkg=$cand" >/dev/null 2>&1) ||
        die "apt-get download $pkg failed (installed $ver, archive ${cand:-none}): is the Debian archive reachable?"
      echo "build-image: note: $pkg $ver is no longer in the archive, using $cand" >&2
      echo "$pkg=$ver $cand" >> "$cache/replaced-versions"
      ver=$cand
    fi
    deb=$(ls "$cache/${pkg%%:*}_${ver//:/%3a}_"*.deb | head -1)
  fi
  local x=$cache/x/$(basename "$deb" .deb)
  if [ ! -d "$x" ]; then
    rm -rf "$x.tmp"; mkdir -p "$x.tmp"
    dpkg-deb -x "$deb" "$x.tmp" || die "dpkg-deb -x $deb failed"
    mv "$x.tmp" "$x"
  fi
  echo "$x"
}
declare -A pkgs=()
add_copyright() { # pkg:arch dir
  local name=${1%%:*}
  [ -f "$2/usr/share/doc/$name/copyright" ] && install -D -m 0644 "$2/usr/share/doc/$name/copyright" \
    "$root/usr/share/doc/$name/copyright"
  return 0
}
from_package() { # host-path-of-a-library -> copies it (dereferenced) into /usr/lib/<triplet>/<name>
  local path=$1 pkg x f c
  pkg=$(owner "$path") || die "no Debian package owns $path (built from source? install it from Debian)"
  x=$(unpacked "$pkg")
  f=
  for c in "$x$path" "$x/usr${path#/usr}" "$x${path#/usr}" "$x/usr$path"; do
    [ -e "$c" ] && { f=$(readlink -f "$c"); break; }
  done
  [ -n "$f" ] && [ -f "$f" ] || die "$path is not in package $pkg ($x)"
  install -m 0755 "$f" "$root/usr/lib/$triplet/$(basename "$path")"
  pkgs[$pkg]=$x
}

# ---- the binary's shared libraries, as the dynamic loader resolves them here ----
interp=
mapfile -t ldd_paths < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
find_owners "${ldd_paths[@]}"
while read -r line; do
  case $line in
    *"=> not found"*) die "ldd: $line";;
    linux-vdso*) ;;
    *" => /"*) lib=$(echo "$line" | sed 's/.* => \([^ ]*\) .*/\1/'); from_package "$lib";;
    /*) interp=$(echo "$line" | awk '{print $1}'); from_package "$interp";;
  esac
done < <(ldd "$binary")
[ -n "$interp" ] || die "ldd found no dynamic loader for $binary"
# PT_INTERP is /lib64/ld-linux-x86-64.so.2: /lib64 -> usr/lib64, which links to the loader in the lib dir.
ln -s "../lib/$triplet/$(basename "$interp")" "$root/usr/lib64/$(basename "$interp")"

# ---- CA certificates: what update-ca-certificates would build, from the package's own files ----
cax=$(unpacked "$(dpkg-query -W -f='${Package}:${Architecture}' ca-certificates 2>/dev/null | sed 's/:all$//' || true)" 2>/dev/null) ||
  cax=$(unpacked ca-certificates)
find "$cax/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat > "$root/etc/ssl/certs/ca-certificates.crt"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || die "no CA certificates in the ca-certificates package"
pkgs[ca-certificates]=$cax
for p in "${!pkgs[@]}"; do add_copyright "$p" "${pkgs[$p]}"; done

# ---- our files ----
if [ $strip = 1 ]; then
  strip --strip-unneeded -o "$root/usr/bin/kubefledged" "$binary"
else
  cp "$binary" "$root/usr/bin/kubefledged"
fi
chmod 0755 "$root/usr/bin/kubefledged"
ln -s ../../usr/bin/kubefledged "$root/opt/bin/kubefledged-controller"
ln -s ../../usr/bin/kubefledged "$root/opt/bin/kubefledged-webhook-server"
install -m 0755 "$helper" "$root/bin/echo"
ln "$root/bin/echo" "$root/bin/cp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
find "$root" -type d -exec chmod 0755 {} + && chmod 1777 "$root/tmp"
find "$root/etc" "$root/usr/share" -type f -exec chmod 0644 {} +

if [ $verify = 1 ] && [ "$(id -u)" = 0 ]; then
  chroot "$root" /usr/bin/kubefledged version >/dev/null || die "the image's kubefledged does not start (missing library?)"
  [ "$(chroot "$root" /bin/echo ok)" = ok ] || die "the image's /bin/echo does not run"
  chroot "$root" /opt/bin/kubefledged-controller --help > "$work/help.txt" 2>&1 &&
    grep -q -- '--leader-elect' "$work/help.txt" ||
    die "the image's /opt/bin/kubefledged-controller does not start the controller"
fi

# ---- layer, config, manifest ----
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$root" -cf "$work/layer.tar" .
diff_id=sha256:$(sha256sum < "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" > "$work/layer.tgz"
ldig=sha256:$(sha256sum < "$work/layer.tgz" | cut -d' ' -f1); lsz=$(stat -c %s "$work/layer.tgz")
version=$("$binary" version 2>/dev/null | head -1 | awk '{print $2}' || echo unknown)
printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Entrypoint":["/usr/bin/kubefledged"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"kubefledged","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"hack/build-image.sh"}]}' \
  "$arch" "$version" "$diff_id" > "$work/config.json"
cdig=sha256:$(sha256sum < "$work/config.json" | cut -d' ' -f1); csz=$(stat -c %s "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$cdig" "$csz" "$ldig" "$lsz" > "$work/manifest.json"
mdig=sha256:$(sha256sum < "$work/manifest.json" | cut -d' ' -f1); msz=$(stat -c %s "$work/manifest.json")

if [ -n "$oci_dir" ]; then
  mkdir -p "$oci_dir/blobs/sha256"
  cp "$work/layer.tgz" "$oci_dir/blobs/sha256/${ldig#sha256:}"
  cp "$work/config.json" "$oci_dir/blobs/sha256/${cdig#sha256:}"
  cp "$work/manifest.json" "$oci_dir/blobs/sha256/${mdig#sha256:}"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$oci_dir/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mdig" "$msz" "$tag" > "$oci_dir/index.json"
  echo "oci layout: $oci_dir (ref name $tag)"
fi

if [ -n "$registry" ]; then
  push_blob() { # file digest
    if curl -sf -o /dev/null -I "http://$registry/v2/$repo/blobs/$2"; then return 0; fi
    local loc sep
    loc=$(curl -sf -X POST -D - -o /dev/null "http://$registry/v2/$repo/blobs/uploads/" | tr -d '\r' |
          awk -F': ' 'tolower($1)=="location"{print $2}') || die "cannot start a blob upload at $registry/$repo"
    [ -n "$loc" ] || die "registry $registry gave no upload location"
    case $loc in http*) ;; *) loc=http://$registry$loc;; esac
    case $loc in *\?*) sep='&';; *) sep='?';; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc${sep}digest=$2" -o /dev/null ||
      die "blob upload of $2 to $registry/$repo failed"
  }
  push_blob "$work/layer.tgz" "$ldig"
  push_blob "$work/config.json" "$cdig"
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$work/manifest.json" \
    "http://$registry/v2/$repo/manifests/$tag" -o /dev/null || die "manifest upload to $registry/$repo:$tag failed"
  echo "$registry/$repo:$tag@$mdig"
else
  echo "$repo:$tag@$mdig"
fi
usz=$(stat -c %s "$work/layer.tar")
echo "size: $lsz bytes compressed, $usz bytes unpacked; $(ls "$root/usr/lib/$triplet" | wc -l) shared libraries from ${#pkgs[@]} Debian packages"
