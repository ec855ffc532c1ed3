#!/usr/bin/env bash
# build-image.sh - builds the kubefledged OCI image WITHOUT Docker, for one or several architectures
# (linux/amd64, linux/arm64, linux/arm/v7), each a distroless-style root filesystem holding only
#   /usr/bin/kubefledged            the CMake build's binary for that architecture (stripped copy); the entry point
#   /opt/bin/kubefledged-controller, /opt/bin/kubefledged-webhook-server
#                                   symlinks to it: upstream's entry points, so that upstream's manifests run
#                                   this image unchanged (the binary dispatches on the name it was started as)
#   /bin/echo, /bin/cp              the static multi-call helper (pull Jobs: `cp /bin/echo /tmp/bin`)
#   /usr/lib/<triplet>/*.so*        exactly the shared libraries the binary needs (its ELF NEEDED entries,
#                                   recursively) plus the dynamic loader, taken from that architecture's
#                                   Debian packages (dpkg -S -> apt-get download -> dpkg-deb -x), with their
#                                   copyright files
#   /etc/ssl/certs/ca-certificates.crt   from the ca-certificates package (for TLS to the API server)
#   /etc/passwd, /etc/group         root, nonroot (65532) and nobody; /tmp (1777)
# One deterministic layer per architecture (tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner,
# gzip -n): the same inputs give the same digests. With several architectures the tag names an image index
# (OCI, or a Docker manifest list with --format docker) of one manifest per platform; with one, the manifest.
# The result is written as an OCI layout directory and/or pushed with hack/push-image.sh (any registry:
# HTTPS with docker config credentials, or plain HTTP).
#
#   hack/build-image.sh --arch "amd64 arm64 armhf" --push registry.example.com/kubefledged/kubefledged:v0.1.0
#   hack/build-image.sh --arch all --oci-dir /tmp/kf-oci --tag dev
#   hack/build-image.sh --registry 127.0.0.1:5000 --repo kubefledged/kubefledged --tag dev   # plain HTTP, amd64
# Options:
#   --arch LIST        Debian architectures (amd64, arm64, armhf = linux/arm/v7; "all" = the three), space or
#                      comma separated; default this machine's. The binaries must be built: build/ for this
#                      machine's architecture, build-<arch>/ for the others (hack/build-arch.sh).
#   --build-dir DIR    the build directory (one architecture only); --binary PATH, --helper PATH likewise
#   --push REF         push to REF (host[:port]/repo:tag); the options below are passed to hack/push-image.sh
#   --plain-http, --ca-file FILE, --docker-config DIR     (see hack/push-image.sh --help)
#   --registry H:P --repo R --tag T   the old form: --push H:P/R:T --plain-http
#   --oci-dir DIR      also write an OCI image layout there (ref name = the tag)
#   --format oci|docker   media types: OCI (default) or Docker schema 2 / manifest list
#   --index            an index even for one architecture
#   --no-strip, --no-verify, --cache DIR (default ~/.cache/kube-fledged-c/debs)
# Prints the reference with its digest, and the sizes per architecture.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
archs= build_dir= binary= helper= registry= repo=kubefledged/kubefledged tag= oci_dir= strip=1 verify=1
push_ref= format=oci force_index=0 push_args=()
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kube-fledged-c/debs
die() { echo "build-image: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --arch) archs=$2; shift 2;;
    --build-dir) build_dir=$2; shift 2;;
    --binary) binary=$2; shift 2;;
    --helper) helper=$2; shift 2;;
    --registry) registry=$2; shift 2;;
    --repo) repo=$2; shift 2;;
    --tag) tag=$2; shift 2;;
    --push) push_ref=$2; shift 2;;
    --plain-http) push_args+=(--plain-http); shift;;
    --ca-file|--docker-config) push_args+=("$1" "$2"); shift 2;;
    --oci-dir) oci_dir=$2; shift 2;;
    --format) format=$2; shift 2;;
    --index) force_index=1; shift;;
    --cache) cache=$2; shift 2;;
    --no-strip) strip=0; shift;;
    --no-verify) verify=0; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option $1 (see --help)";;
  esac
done
host_arch=$(dpkg --print-architecture)
archs=${archs//,/ }
[ "$archs" = all ] && archs="amd64 arm64 armhf"
archs=${archs:-$host_arch}
read -ra archs <<< "$archs"
[ ${#archs[@]} -gt 0 ] || die "--arch: no architecture given"
if [ -n "$registry" ]; then
  [ -z "$push_ref" ] || die "give --push REF or --registry/--repo/--tag, not both"
  push_ref=$registry/$repo:${tag:-dev}; push_args+=(--plain-http)
fi
if [ -n "$push_ref" ] && [ -z "$tag" ]; then
  last=${push_ref##*/}; [[ $last == *:* ]] && tag=${last##*:}
fi
tag=${tag:-dev}
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag \"$tag\""
[[ $repo =~ ^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$ ]] || die "invalid repository \"$repo\""
[ -n "$push_ref" ] || [ -n "$oci_dir" ] || die "nothing to do: give --push REF (or --registry HOST:PORT) and/or --oci-dir DIR"
[ "$host_arch" = amd64 ] || die "the build host must be amd64 (this machine is $host_arch)"
case $format in oci|docker) ;; *) die "--format must be oci or docker, not \"$format\"";; esac
if [ ${#archs[@]} -gt 1 ] && { [ -n "$build_dir" ] || [ -n "$binary" ] || [ -n "$helper" ]; }; then
  die "--build-dir, --binary and --helper name one architecture's files: give one --arch with them"
fi
if [ "$format" = oci ]; then
  mt_index=application/vnd.oci.image.index.v1+json mt_manifest=application/vnd.oci.image.manifest.v1+json
  mt_config=application/vnd.oci.image.config.v1+json mt_layer=application/vnd.oci.image.layer.v1.tar+gzip
else
  mt_index=application/vnd.docker.distribution.manifest.list.v2+json
  mt_manifest=application/vnd.docker.distribution.manifest.v2+json
  mt_config=application/vnd.docker.container.image.v1+json mt_layer=application/vnd.docker.image.rootfs.diff.tar.gzip
fi

work=$(mktemp -d /tmp/kf-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
blobs=$work/oci/blobs/sha256
mkdir -p "$blobs" "$cache"
put_blob() { # FILE -> prints sha256:<hex>, stores the file as a blob
  local d; d=$(sha256sum < "$1" | cut -d' ' -f1)
  cp "$1" "$blobs/$d"; echo "sha256:$d"
}

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
owner() { # PATH -> "pkg:arch" (the first, when several Multi-Arch: same instances share a path)
  local c o
  for c in $(spellings "$1"); do
    o=${owners[$c]:-}
    [ -n "$o" ] && { echo "${o%%,*}"; return 0; }
  done
  return 1
}
unpacked() { # pkg[:arch] -> dir with the package's files
  local pkg=$1 ver deb darch
  ver=$(dpkg-query -W -f='${Version}' "$pkg") || die "package $pkg is not installed"
  darch=$(dpkg-query -W -f='${Architecture}' "$pkg")
  # an earlier run may have found this version gone from the archive (see below)
  local mapped
  mapped=$(awk -v k="$pkg=$ver" '$1 == k {print $2}' "$cache/replaced-versions" 2>/dev/null | tail -1)
  [ -n "$mapped" ] && ver=$mapped
  # the architecture is part of the name: libssl3_3.0.x_amd64.deb and libssl3_3.0.x_arm64.deb share a version
  local glob="${pkg%%:*}_${ver//:/%3a}_${darch}.deb"
  deb=$(ls "$cache"/$glob 2>/dev/null | head -1 || true)
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
      ver=$cand glob="${pkg%%:*}_${cand//:/%3a}_${darch}.deb"
    fi
    deb=$(ls "$cache"/$glob | head -1)
  fi
  local x=$cache/x/$(basename "$deb" .deb)
  if [ ! -d "$x" ]; then
    rm -rf "$x.tmp"; mkdir -p "$x.tmp"
    dpkg-deb -x "$deb" "$x.tmp" || die "dpkg-deb -x $deb failed"
    mv "$x.tmp" "$x"
  fi
  echo "$x"
}

# One apt-get download for every package not in the cache yet (apt reads its lists once per call, which on a
# busy machine with three architectures takes seconds); unpacked() copes with whatever this leaves out.
prefetch() { # pkg[:arch]...
  local pkg ver darch want=()
  for pkg in "$@"; do
    ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || continue
    darch=$(dpkg-query -W -f='${Architecture}' "$pkg")
    grep -qs "^$pkg=$ver " "$cache/replaced-versions" && continue
    ls "$cache/${pkg%%:*}_${ver//:/%3a}_${darch}.deb" >/dev/null 2>&1 || want+=("$pkg=$ver")
  done
  [ ${#want[@]} -gt 0 ] || return 0
  (cd "$cache" && apt-get download -q "${want[@]}" >/dev/null 2>&1) || true
}

# ---- an ELF file's needs, read from its headers (works for any architecture, unlike ldd) ----
elf_needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }
elf_interp() { readelf -l "$1" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p'; }
# The libraries BINARY loads, recursively, as the target's loader finds them in Debian's multiarch
# directories (/usr/lib/<triplet>, /lib/<triplet>): one host path per line.
resolve_libs() { # BINARY TRIPLET
  local -A seen=()
  local queue=("$1") f n p found
  while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}; queue=("${queue[@]:1}")
    for n in $(elf_needed "$f"); do
      [ -n "${seen[$n]:-}" ] && continue
      found=
      for p in "/usr/lib/$2/$n" "/lib/$2/$n"; do
        [ -e "$p" ] && { found=$p; break; }
      done
      [ -n "$found" ] || die "$(basename "$1") needs $n, not found in /usr/lib/$2: install the $2 -dev packages (hack/deps.sh --cross)"
      seen[$n]=1
      echo "$found"
      queue+=("$found")
    done
  done
}

from_package() { # host-path-of-a-library -> copies it (dereferenced) into $root/usr/lib/$triplet/<name>;
  # notes its package in pkgs (root, triplet and pkgs are build_one's locals)
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

# ---- one architecture: root filesystem -> layer, config, manifest (blobs); sets m_digest m_size ----
declare -A platform=([amd64]='"architecture":"amd64","os":"linux"' [arm64]='"architecture":"arm64","os":"linux","variant":"v8"'
                     [armhf]='"architecture":"arm","os":"linux","variant":"v7"')
declare -A plat_names=([amd64]=linux/amd64 [arm64]=linux/arm64 [armhf]=linux/arm/v7)
declare -A triplets=([amd64]=x86_64-linux-gnu [arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)
declare -A qemus=([arm64]=qemu-aarch64-static [armhf]=qemu-arm-static)
sizes=()
build_one() { # ARCH
  local arch=$1 triplet=${triplets[$1]:-} bdir bin hlp root interp lib pkg x p
  [ -n "$triplet" ] || die "unknown architecture \"$arch\" (amd64, arm64 or armhf)"
  bdir=${build_dir:-$([ "$arch" = "$host_arch" ] && echo build || echo "build-$arch")}
  bin=${binary:-$bdir/src/kubefledged} hlp=${helper:-$bdir/src/kf-static-helper}
  local how="make build"; [ "$arch" = "$host_arch" ] || how="hack/build-arch.sh $arch"
  [ -x "$bin" ] || die "$bin not found: build first ($how)"
  [ -x "$hlp" ] || die "$hlp not found: build first ($how)"
  local machine; machine=$(readelf -h "$bin" | awk -F': *' '/Machine:/{print $2}')
  case $arch:$machine in
    amd64:*X86-64*|arm64:*AArch64*|armhf:ARM) ;;
    *) die "$bin is a \"$machine\" binary, not $arch (stale build directory?)";;
  esac
  readelf -l "$hlp" | grep -q 'Requesting program interpreter' && die "$hlp is not statically linked"
  interp=$(elf_interp "$bin")
  [ -n "$interp" ] || die "$bin has no program interpreter (not dynamically linked?)"

  root=$work/rootfs-$arch
  mkdir -p "$root"/{bin,etc/ssl/certs,opt/bin,tmp,usr/bin,usr/lib/$triplet,usr/share/doc}
  ln -s usr/lib "$root/lib"
  local -A pkgs=()

  # the binary's shared libraries and the loader, from this architecture's packages
  local libs
  resolve_libs "$bin" "$triplet" > "$work/libs-$arch" || exit 1
  mapfile -t libs < "$work/libs-$arch"
  find_owners "${libs[@]}" "$interp"
  local want=(ca-certificates) l
  for l in "${libs[@]}" "$interp"; do want+=("$(owner "$l" || echo "?")"); done
  prefetch "${want[@]}"
  for lib in "${libs[@]}"; do from_package "$lib"; done
  from_package "$interp"
  # PT_INTERP (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1, /lib/ld-linux-armhf.so.3): /lib is
  # usr/lib; a link there (usr/lib64 made for amd64) points to the loader in the triplet directory.
  local idir; idir=$(dirname "$interp")
  if [ "$idir" = /lib64 ]; then mkdir -p "$root/usr/lib64"; ln -s usr/lib64 "$root/lib64"; fi
  [ "$idir" = "/lib/$triplet" ] || ln -sr "$root/usr/lib/$triplet/$(basename "$interp")" "$root/usr${idir#/usr}/$(basename "$interp")"

  # CA certificates: what update-ca-certificates would build, from the package's own files
  x=$(unpacked ca-certificates)
  find "$x/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat > "$root/etc/ssl/certs/ca-certificates.crt"
  [ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || die "no CA certificates in the ca-certificates package"
  pkgs[ca-certificates]=$x
  for pkg in "${!pkgs[@]}"; do
    p=${pkg%%:*}
    [ -f "${pkgs[$pkg]}/usr/share/doc/$p/copyright" ] &&
      install -D -m 0644 "${pkgs[$pkg]}/usr/share/doc/$p/copyright" "$root/usr/share/doc/$p/copyright"
  done

  # our files
  local strip_cmd=strip; [ "$arch" = "$host_arch" ] || strip_cmd=$triplet-strip
  if [ $strip = 1 ]; then
    "$strip_cmd" --strip-unneeded -o "$root/usr/bin/kubefledged" "$bin"
  else
    cp "$bin" "$root/usr/bin/kubefledged"
  fi
  chmod 0755 "$root/usr/bin/kubefledged"
  ln -s ../../usr/bin/kubefledged "$root/opt/bin/kubefledged-controller"
  ln -s ../../usr/bin/kubefledged "$root/opt/bin/kubefledged-webhook-server"
  install -m 0755 "$hlp" "$root/bin/echo"
  ln "$root/bin/echo" "$root/bin/cp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$root/etc/group"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  find "$root" -type d -exec chmod 0755 {} + && chmod 1777 "$root/tmp"
  find "$root/etc" "$root/usr/share" -type f -exec chmod 0644 {} +

  # Run it inside its own root: natively, or a foreign architecture under Debian's static qemu-user copied
  # in for the check (a chroot, so a library missing from the image cannot be taken from this host).
  # the image's version label: the CMake project version (the same whether or not the binary can run here)
  local version out
  version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$bdir/CMakeCache.txt" 2>/dev/null)
  version=${version:-unknown}
  if [ $verify = 1 ] && [ "$(id -u)" = 0 ]; then
    local run=()
    if [ "$arch" != "$host_arch" ]; then
      local q; q=$(command -v "${qemus[$arch]}") || die "${qemus[$arch]} not found (qemu-user-static: hack/deps.sh --cross); or --no-verify"
      cp "$q" "$root/.qemu"; run=(/.qemu)
    fi
    out=$(chroot "$root" "${run[@]}" /usr/bin/kubefledged version 2>&1) ||
      die "$arch: the image's kubefledged does not start (missing library?): $out"
    [ "$(chroot "$root" "${run[@]}" /bin/echo ok)" = ok ] || die "$arch: the image's /bin/echo does not run"
    chroot "$root" "${run[@]}" /opt/bin/kubefledged-controller --help 2>&1 | grep -q -- '--leader-elect' ||
      die "$arch: the image's /opt/bin/kubefledged-controller does not start the controller"
    rm -f "$root/.qemu"
    echo "build-image: $arch: $(echo "$out" | head -1)" >&2
  fi

  # layer, config, manifest
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$root" -cf "$work/layer-$arch.tar" .
  local diff_id ldig lsz cdig csz usz
  diff_id=sha256:$(sha256sum < "$work/layer-$arch.tar" | cut -d' ' -f1)
  usz=$(stat -c %s "$work/layer-$arch.tar")
  gzip -n -9 -c "$work/layer-$arch.tar" > "$work/layer-$arch.tgz"
  rm -f "$work/layer-$arch.tar"
  ldig=$(put_blob "$work/layer-$arch.tgz"); lsz=$(stat -c %s "$work/layer-$arch.tgz")
  printf '{%s,"created":"1970-01-01T00:00:00Z","config":{"Entrypoint":["/usr/bin/kubefledged"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"kubefledged","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"hack/build-image.sh"}]}' \
    "${platform[$arch]}" "$version" "$diff_id" > "$work/config-$arch.json"
  cdig=$(put_blob "$work/config-$arch.json"); csz=$(stat -c %s "$work/config-$arch.json")
  printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},"layers":[{"mediaType":"%s","digest":"%s","size":%d}]}' \
    "$mt_manifest" "$mt_config" "$cdig" "$csz" "$mt_layer" "$ldig" "$lsz" > "$work/manifest-$arch.json"
  m_digest=$(put_blob "$work/manifest-$arch.json"); m_size=$(stat -c %s "$work/manifest-$arch.json")
  sizes+=("$(printf '%-13s %s: %d bytes compressed, %d unpacked; %d shared libraries from %d Debian packages' \
    "${plat_names[$arch]}" "$m_digest" "$lsz" "$usz" "$(ls "$root/usr/lib/$triplet" | wc -l)" "${#pkgs[@]}")")
}

descs=()
for a in "${archs[@]}"; do
  build_one "$a"
  descs+=("$(printf '{"mediaType":"%s","digest":"%s","size":%d,"platform":{%s}}' "$mt_manifest" "$m_digest" "$m_size" "${platform[$a]}")")
done
if [ ${#archs[@]} -gt 1 ] || [ $force_index = 1 ]; then
  (IFS=,; printf '{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' "$mt_index" "${descs[*]}") > "$work/index-image.json"
  top_digest=$(put_blob "$work/index-image.json"); top_size=$(stat -c %s "$work/index-image.json"); top_mt=$mt_index
else
  top_digest=$m_digest top_size=$m_size top_mt=$mt_manifest
fi
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$top_mt" "$top_digest" "$top_size" "$tag" > "$work/oci/index.json"

if [ -n "$oci_dir" ]; then
  mkdir -p "$oci_dir/blobs/sha256"
  cp "$blobs"/* "$oci_dir/blobs/sha256/"
  cp "$work/oci/oci-layout" "$work/oci/index.json" "$oci_dir/"
  echo "oci layout: $oci_dir (ref name $tag)"
fi
if [ -n "$push_ref" ]; then
  "$here/push-image.sh" --oci-dir "$work/oci" "${push_args[@]}" "$push_ref"
else
  echo "$repo:$tag@$top_digest"
fi
printf 'size: %s\n' "${sizes[@]}"
