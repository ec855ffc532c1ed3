#!/usr/bin/env bash
# local-apiserver.sh - a throwaway REAL etcd + kube-apiserver on free loopback ports, for developing and
# running tests/integration/kube_client_it without the shared test bed.
#
#   local-apiserver.sh up DIR [BINDIR]   # PKI, etcd, kube-apiserver; waits for /readyz; writes DIR/env
#   local-apiserver.sh down DIR          # stops the two processes by their pid files (and nothing else)
#
# KF_APISERVER_ARGS adds kube-apiserver flags, e.g. "--watch-cache=false": watches then go straight to
# etcd, so compacting etcd (ETCD_ENDPOINT in DIR/env, `etcdctl compact REV`) makes a resumed watch get
# 410 Gone; kube_client_it uses that for its informer relist check when KF_IT_ETCD_ENDPOINT is set.
#
# DIR/env exports KUBECONFIG (admin client cert, O=system:masters), KUBECONFIG_TOKEN (bearer token of a
# static token user in system:masters) and APISERVER. BINDIR defaults to the newest
# ~/.cache/kube-fledged-c/k8s/*/bin (testbed/build-k8s.sh). Flags as the test bed's API server (testbed/up.sh).
set -euo pipefail
cmd=${1:?usage: $0 up|down DIR [BINDIR]}
dir=${2:?usage: $0 up|down DIR [BINDIR]}

stop_pid() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

if [ "$cmd" = down ]; then
	stop_pid "$dir/apiserver.pid"
	stop_pid "$dir/etcd.pid"
	exit 0
fi
[ "$cmd" = up ] || { echo "unknown command $cmd" >&2; exit 2; }

bin=${3:-}
if [ -z "$bin" ]; then
	bin=$(ls -d "$HOME"/.cache/kube-fledged-c/k8s/*/bin 2>/dev/null | tail -1)
fi
[ -x "$bin/kube-apiserver" ] || { echo "no kube-apiserver in '$bin' (run testbed/build-k8s.sh)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd not installed (apt-get install etcd-server)" >&2; exit 1; }

mkdir -p "$dir/pki"
dir=$(cd "$dir" && pwd)
P=$dir/pki
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- PKI: one CA, serving cert for 127.0.0.1/localhost, admin client cert, SA signing key -------------
if [ ! -f "$P/admin.crt" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=kf-it-ca -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$P/apiserver.key" -out "$P/apiserver.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$P/apiserver.ext"
	openssl x509 -req -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 3650 \
		-extfile "$P/apiserver.ext" -out "$P/apiserver.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kf-it-admin" -keyout "$P/admin.key" -out "$P/admin.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$P/client.ext"
	openssl x509 -req -in "$P/admin.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 3650 \
		-extfile "$P/client.ext" -out "$P/admin.crt" 2>/dev/null
	openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
	openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
	token=$(openssl rand -hex 16)
	echo "$token,kf-it-token,kf-it-token-uid,system:masters" >"$P/tokens.csv"
	echo "$token" >"$P/token"
fi

etcd_port=$(freeport); peer_port=$(freeport); api_port=$(freeport)
mkdir -p "$dir/etcd"
setsid etcd --name kf-it --data-dir "$dir/etcd/data" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
	--initial-cluster "kf-it=http://127.0.0.1:$peer_port" --initial-cluster-state new \
	>"$dir/etcd.log" 2>&1 </dev/null &
echo $! >"$dir/etcd.pid"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null && break; sleep 0.1; done

setsid "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
	--bind-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 --advertise-address=127.0.0.1 \
	--endpoint-reconciler-type=none \
	--tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
	--token-auth-file="$P/tokens.csv" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
	--service-cluster-ip-range=10.96.0.0/16 --authorization-mode=RBAC \
	--event-ttl=1h --v=1 ${KF_APISERVER_ARGS:-} >"$dir/apiserver.log" 2>&1 </dev/null &
echo $! >"$dir/apiserver.pid"

b64() { base64 -w0 <"$1"; }
server=https://127.0.0.1:$api_port
cat >"$dir/admin.conf" <<EOC
apiVersion: v1
kind: Config
current-context: kf-it
clusters:
- name: kf-it
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$P/ca.crt")
users:
- name: kf-it-admin
  user:
    client-certificate-data: $(b64 "$P/admin.crt")
    client-key-data: $(b64 "$P/admin.key")
contexts:
- name: kf-it
  context: {cluster: kf-it, user: kf-it-admin, namespace: default}
EOC
# The same server with a bearer token read from a file, CA by relative path.
cat >"$dir/token.conf" <<EOC
apiVersion: v1
kind: Config
current-context: kf-it-token
clusters:
- name: kf-it
  cluster: {server: "$server", certificate-authority: pki/ca.crt}
users:
- name: kf-it-token
  user: {tokenFile: pki/token}
contexts:
- name: kf-it-token
  context: {cluster: kf-it, user: kf-it-token}
EOC
printf 'export KUBECONFIG=%s\nexport KUBECONFIG_TOKEN=%s\nexport APISERVER=%s\nexport ETCD_ENDPOINT=%s\n' \
	"$dir/admin.conf" "$dir/token.conf" "$server" "http://127.0.0.1:$etcd_port" >"$dir/env"

for i in $(seq 600); do
	if curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$server/readyz" >/dev/null; then
		echo "apiserver ready at $server after $((i / 10)).$((i % 10)) s; source $dir/env"
		exit 0
	fi
	kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || { tail -20 "$dir/apiserver.log" >&2; exit 1; }
	sleep 0.1
done
echo "apiserver not ready after 60 s; see $dir/apiserver.log" >&2
exit 1
