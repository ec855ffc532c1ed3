#!/usr/bin/env python3
"""The smallest CRI client down.sh needs (crictl is not in Debian 12): stop and remove every pod sandbox
of one containerd, so that containers die, CNI DEL runs and rootfs mounts go before containerd stops.

  cri.py SOCKET stop-all     StopPodSandbox + RemovePodSandbox for each sandbox; prints how many
  cri.py SOCKET pods         lists sandbox ids

gRPC over HTTP/2 is done by curl (--http2-prior-knowledge on the unix socket); the few protobuf fields
needed are encoded by hand: ListPodSandboxResponse{repeated PodSandbox items = 1}, PodSandbox{id = 1},
Stop/RemovePodSandboxRequest{pod_sandbox_id = 1}.
"""
import subprocess
import sys

SVC = "runtime.v1alpha2.RuntimeService"  # what kubelet 1.20 speaks; containerd 1.6 serves it


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif wt == 1:
            v = b[i:i + 8]; i += 8
        elif wt == 5:
            v = b[i:i + 4]; i += 4
        else:
            raise ValueError("unsupported wire type")
        yield num, v


def string_field(num, s):
    d = s.encode()
    out, n = bytearray([num << 3 | 2]), len(d)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80); n >>= 7
    out.append(n)
    return bytes(out) + d


def call(sock, method, msg=b""):
    frame = b"\0" + len(msg).to_bytes(4, "big") + msg
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "--http2-prior-knowledge", "--unix-socket", sock,
                        "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "accept:",
                        "--data-binary", "@-", f"http://localhost/{SVC}/{method}"],
                       input=frame, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"cri.py: {method}: curl rc={r.returncode} {r.stderr.decode().strip()}")
    body = r.stdout
    if len(body) < 5:
        return b""
    return body[5:5 + int.from_bytes(body[1:5], "big")]


def pods(sock):
    out = []
    for num, item in fields(call(sock, "ListPodSandbox")):
        if num == 1:
            for n2, v in fields(item):
                if n2 == 1:
                    out.append(v.decode())
    return out


def main():
    sock, cmd = sys.argv[1], sys.argv[2]
    if cmd == "pods":
        print("\n".join(pods(sock)))
    elif cmd == "stop-all":
        ids = pods(sock)
        for pid in ids:
            call(sock, "StopPodSandbox", string_field(1, pid))
            call(sock, "RemovePodSandbox", string_field(1, pid))
        print(len(ids))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
