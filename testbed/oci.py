#!/usr/bin/env python3
"""Builds OCI images from directories and pushes them to a Docker registry (v2 API), stdlib only.

One process, one keep-alive HTTP connection per registry: pushing a hundred small images takes well
under a few seconds. Layers are deterministic tars (sorted, uid/gid 0, mtime 0, gzip without a
timestamp), so the same input always gives the same digest and a re-push uploads nothing.

  oci.py push REGISTRY REPO TAG --layer DIR [--layer DIR ...] [--cmd JSON] [--entrypoint JSON]
              [--env K=V ...] [--user U --password P] [--if-missing]
  oci.py gen REGISTRY PREFIX COUNT TAG --base REPO:TAG [--salt S] [--user U --password P]
              pushes PREFIX-001:TAG ... (base image's layers + one tiny layer holding /kf-id)
  oci.py exists REGISTRY REPO TAG [--user U --password P]     exit 0 if the tag exists
  oci.py delete REGISTRY REPO TAG [--user U --password P]     deletes the manifest the tag points to

REGISTRY is host:port, spoken over plain HTTP (the test bed's registries are local).
"""
import argparse
import base64
import concurrent.futures
import gzip
import hashlib
import http.client
import io
import json
import os
import stat
import sys
import tarfile
import threading
import time
import urllib.parse

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join([MT_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, hostport, user=None, password=None):
        self.hostport = hostport
        self.headers = {}
        if user:
            tok = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = "Basic " + tok
        self.conn = None

    def req(self, method, path, body=None, headers=None, ok=(200, 201, 202, 204)):
        h = dict(self.headers)
        h.update(headers or {})
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.hostport, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)
        if ok is not None and r.status not in ok:
            raise SystemExit(f"oci.py: {method} {self.hostport}{path}: HTTP {r.status} {data[:300]!r}")
        return r, data

    def has_blob(self, repo, digest):
        r, _ = self.req("HEAD", f"/v2/{repo}/blobs/{digest}", ok=None)
        return r.status == 200

    def push_blob(self, repo, digest, data, mount_from=None):
        if self.has_blob(repo, digest):
            return
        q = ""
        if mount_from:
            q = "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        r, _ = self.req("POST", f"/v2/{repo}/blobs/uploads/{q}")
        if r.status == 201:  # mounted from another repository: nothing to upload
            return
        if data is None:  # the registry declined the mount: copy the bytes instead
            _, data = self.req("GET", f"/v2/{mount_from}/blobs/{digest}")
        loc = urllib.parse.urlsplit(r.getheader("Location"))
        path = loc.path + "?" + (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
        self.req("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"})

    def get_manifest(self, repo, tag):
        r, data = self.req("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, ok=None)
        if r.status != 200:
            return None, None
        return json.loads(data), r.getheader("Docker-Content-Digest")

    def put_manifest(self, repo, tag, manifest):
        body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        self.req("PUT", f"/v2/{repo}/manifests/{tag}", body=body, headers={"Content-Type": MT_MANIFEST})
        return sha(body)


def tar_dir(root):
    """A deterministic tar of ROOT (regular files, dirs, symlinks), gzipped; returns (gz, diff_id).
    The result is cached beside ROOT (ROOT.tgz, ROOT.diffid): the image builders never change a root
    fs once made, they delete and rebuild it (which must also delete the cache)."""
    root = root.rstrip("/")
    cache_gz, cache_id = root + ".tgz", root + ".diffid"
    if os.path.exists(cache_gz) and os.path.exists(cache_id) and os.path.getmtime(cache_gz) >= os.path.getmtime(root):
        with open(cache_gz, "rb") as f, open(cache_id) as g:
            return f.read(), g.read().strip()
    gz, diff = _tar_dir(root)
    with open(cache_gz + ".tmp", "wb") as f:
        f.write(gz)
    with open(cache_id, "w") as g:
        g.write(diff + "\n")
    os.replace(cache_gz + ".tmp", cache_gz)
    return gz, diff


def _tar_dir(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                paths.append(os.path.join(dirpath, n))
        for p in sorted(paths, key=lambda x: os.path.relpath(x, root)):
            ti = tf.gettarinfo(p, arcname=os.path.relpath(p, root))
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mtime = 0
            ti.pax_headers = {}
            if ti.isreg():
                with open(p, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0), sha(raw)  # speed over size: all local


def tar_files(files):
    """Deterministic gzipped tar of {path: bytes}; returns (gz, diff_id)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(files):
            data = files[name]
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), sha(raw)


def image_config(diff_ids, cmd=None, entrypoint=None, env=None):
    cfg = {"Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"]}
    if cmd is not None:
        cfg["Cmd"] = cmd
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    doc = {"architecture": "amd64", "os": "linux", "config": cfg,
           "created": "1970-01-01T00:00:00Z",
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def manifest(config_blob, layers):
    return {"schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": sha(config_blob), "size": len(config_blob)},
            "layers": [{"mediaType": MT_LAYER, "digest": d, "size": s} for d, s in layers]}


def cmd_push(a, reg):
    if a.if_missing and reg.get_manifest(a.repo, a.tag)[0] is not None:
        print(f"{a.registry}/{a.repo}:{a.tag} (present)")
        return
    layers, diff_ids = [], []
    for d in a.layer:
        gz, diff = tar_dir(d)
        reg.push_blob(a.repo, sha(gz), gz)
        layers.append((sha(gz), len(gz)))
        diff_ids.append(diff)
    env = a.env or None
    cfg = image_config(diff_ids, json.loads(a.cmd) if a.cmd else None,
                       json.loads(a.entrypoint) if a.entrypoint else None, env)
    reg.push_blob(a.repo, sha(cfg), cfg)
    dig = reg.put_manifest(a.repo, a.tag, manifest(cfg, layers))
    print(f"{a.registry}/{a.repo}:{a.tag}@{dig}")


def cmd_gen(a, reg):
    base_repo, base_tag = a.base.rsplit(":", 1)
    bm, _ = reg.get_manifest(base_repo, base_tag)
    if bm is None:
        raise SystemExit(f"oci.py: base image {a.registry}/{a.base} not found (is the cluster up?)")
    _, bcfg_raw = reg.req("GET", f"/v2/{base_repo}/blobs/{bm['config']['digest']}")
    bcfg = json.loads(bcfg_raw)
    width = max(3, len(str(a.count)))
    t0 = time.time()
    base_layers = [(l["digest"], l["size"]) for l in bm["layers"]]

    local = threading.local()

    def push_one(i):
        if not hasattr(local, "reg"):  # one keep-alive connection per worker thread
            local.reg = Registry(a.registry, a.user, a.password)
        reg = local.reg
        repo = f"{a.prefix}-{i:0{width}d}"
        ident = f"{repo}:{a.tag} {a.salt}\n".encode()
        gz, diff = tar_files({"kf-id": ident})
        for d, _ in base_layers:
            reg.push_blob(repo, d, None, mount_from=base_repo)
        reg.push_blob(repo, sha(gz), gz)
        cfg = image_config(bcfg["rootfs"]["diff_ids"] + [diff], bcfg["config"].get("Cmd"),
                           bcfg["config"].get("Entrypoint"), bcfg["config"].get("Env"))
        reg.push_blob(repo, sha(cfg), cfg)
        reg.put_manifest(repo, a.tag, manifest(cfg, base_layers + [(sha(gz), len(gz))]))
        return f"{a.registry}/{repo}:{a.tag}"

    # A few connections in parallel: the registry's per-request latency (fsync'd small files), not
    # this process, is what bounds the rate.
    workers = min(4, a.count)
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        futs = [ex.submit(push_one, i) for i in range(1, a.count + 1)]
        for f in futs:
            print(f.result())
    print(f"oci.py: pushed {a.count} images in {time.time() - t0:.2f}s", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)

    def common(sp):
        sp.add_argument("registry")
        sp.add_argument("--user")
        sp.add_argument("--password")

    sp = sub.add_parser("push"); common(sp)
    sp.add_argument("repo"); sp.add_argument("tag")
    sp.add_argument("--layer", action="append", default=[])
    sp.add_argument("--cmd"); sp.add_argument("--entrypoint")
    sp.add_argument("--env", action="append")
    sp.add_argument("--if-missing", action="store_true")
    sp = sub.add_parser("gen"); common(sp)
    sp.add_argument("prefix"); sp.add_argument("count", type=int); sp.add_argument("tag")
    sp.add_argument("--base", required=True); sp.add_argument("--salt", default="")
    for name in ("exists", "delete"):
        sp = sub.add_parser(name); common(sp)
        sp.add_argument("repo"); sp.add_argument("tag")
    a = p.parse_args()
    reg = Registry(a.registry, a.user, a.password)
    if a.action == "push":
        cmd_push(a, reg)
    elif a.action == "gen":
        cmd_gen(a, reg)
    elif a.action == "exists":
        sys.exit(0 if reg.get_manifest(a.repo, a.tag)[0] is not None else 1)
    elif a.action == "delete":
        m, dig = reg.get_manifest(a.repo, a.tag)
        if m is None:
            sys.exit(1)
        reg.req("DELETE", f"/v2/{a.repo}/manifests/{dig}")


if __name__ == "__main__":
    main()
