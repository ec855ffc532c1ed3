#!/usr/bin/env python3
"""token-server.py - a minimal token endpoint of the registry v2 "token" authentication, for the e2e test of
hack/push-image.sh against a docker-registry configured with auth.token (tests/e2e/cases/50-image.sh).

The registry answers 401 with `WWW-Authenticate: Bearer realm="https://.../token",service="...",scope="..."`;
a client asks this server for a token (GET with Basic credentials, or POST grant_type=refresh_token as
docker does with an identity token) and retries with `Authorization: Bearer <token>`. Tokens are JWTs signed
RS256 with openssl (no Python packages needed) and carry the signing certificate in `x5c`; the registry
trusts it through `auth.token.rootcertbundle`.

    token-server.py --listen 127.0.0.1:PORT --cert tls.crt --key tls.key --sign-cert s.crt --sign-key s.key \
        --service SERVICE --issuer ISSUER --user USER --password-file FILE [--refresh-token-file FILE]

Grants pull,push on every repository to USER (or the refresh token's holder); anonymous requests get a
token without any access (as public registries do for repositories that are not public). Every request is
logged on stdout as one line: method, grant, user, requested scope, granted actions, status.
"""
import argparse
import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(args, sub, access):
    der = subprocess.run(["openssl", "x509", "-in", args.sign_cert, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    now = int(time.time())
    claims = {"iss": args.issuer, "sub": sub, "aud": args.service, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": str(uuid.uuid4()), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.sign_key], input=signing_input, check=True,
                         capture_output=True).stdout
    return signing_input.decode() + "." + b64url(sig)


def granted(scopes, allowed):
    """scope "repository:NAME:pull,push" -> access entries, limited to what the user may do"""
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) < 3 or parts[0] != "repository":
            continue
        name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
        ok = [a for a in actions if a in allowed]
        if ok:
            access.append({"type": "repository", "name": name, "actions": ok})
    return access


class Handler(BaseHTTPRequestHandler):
    args = None

    def log_message(self, fmt, *a):  # one line per request from reply(), nothing else
        pass

    def reply(self, status, body, grant, user, scopes, access):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        print(f"{self.command} grant={grant} user={user or '-'} scope={','.join(scopes) or '-'} "
              f"access={json.dumps(access)} status={status}", flush=True)

    def token(self, grant, user, scopes, service):
        if service and service != self.args.service:
            return self.reply(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]}, grant, user,
                              scopes, [])
        access = granted(scopes, {"pull", "push"}) if user else []
        tok = sign_jwt(self.args, user or "", access)
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300}, grant, user, scopes, access)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path != "/token":
            return self.reply(404, {}, "-", None, [], [])
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                u, p = "", ""
            if u != self.args.user or p != self.args.password:
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                  "basic", u, q.get("scope", []), [])
            user = u
        self.token("basic" if user else "anonymous", user, q.get("scope", []), (q.get("service") or [""])[0])

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        scopes = " ".join(form.get("scope", [])).split()
        if url.path != "/token" or form.get("grant_type") != ["refresh_token"]:
            return self.reply(400, {"error": "unsupported_grant_type"}, "post", None, scopes, [])
        if not self.args.refresh_token or form.get("refresh_token") != [self.args.refresh_token]:
            return self.reply(401, {"error": "invalid_grant"}, "refresh_token", None, scopes, [])
        self.token("refresh_token", self.args.user, scopes, (form.get("service") or [""])[0])


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--listen", "--cert", "--key", "--sign-cert", "--sign-key", "--service", "--issuer", "--user",
                "--password-file"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--refresh-token-file")
    args = ap.parse_args()
    with open(args.password_file) as f:
        args.password = f.read().strip()
    args.refresh_token = None
    if args.refresh_token_file:
        with open(args.refresh_token_file) as f:
            args.refresh_token = f.read().strip()
    host, port = args.listen.rsplit(":", 1)
    Handler.args = args
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"token server on https://{args.listen}/token", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
