# PKI and kubeconfigs for the test bed, with openssl only. Sourced by up.sh after lib.sh.
# Idempotent: a file is made only when missing, except the API server certificate and the
# kubeconfigs, which are remade when the API server address changes (the SANs and URLs name it).
#
#   ca.crt/key                 the one CA for serving and client certificates (ECDSA P-256, 10 years)
#   apiserver.crt              SANs: kubernetes.default.svc..., localhost, 127.0.0.1, 10.96.0.1, the advertise IP
#   admin.crt                  CN=admin, O=system:masters
#   controller-manager, scheduler, kube-proxy: CN=system:kube-controller-manager / -scheduler / -proxy
#   apiserver-kubelet-client   O=system:masters (API server -> kubelet: logs, exec, proxy)
#   node-rk8s-nodeN            CN=system:node:rk8s-nodeN, O=system:nodes (what the Node authorizer wants)
#   front-proxy-ca, front-proxy-client: requestheader auth (silences the extension-apiserver CA warnings)
#   sa.key/sa.pub              service account token signing pair (RSA)
# shellcheck shell=bash

pki_ca() { # NAME CN
  [ -s "$PKI/$1.crt" ] && return 0
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$PKI/$1.key" \
    -out "$PKI/$1.crt" -days 3650 -subj "/CN=$2" 2>/dev/null
}

pki_leaf() { # NAME CA SUBJECT EKU [SAN]
  local name=$1 ca=$2 subj=$3 eku=$4 san=${5:-}
  [ -s "$PKI/$name.crt" ] && return 0
  local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku"
  [ -z "$san" ] || ext+=$'\n'"subjectAltName=$san"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$PKI/$name.key" \
    -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  # A serial file per certificate (openssl starts it at a random number): certificates can be made in
  # parallel (testbed/hollow.sh makes hundreds) without two of them racing on one serial file.
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAserial "$PKI/$name.srl" -CAcreateserial -days 3650 -out "$PKI/$name.crt" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.srl"
}

# write_kubeconfig FILE USER CERTNAME SERVER: YAML by hand with embedded base64 data, no kubectl needed.
write_kubeconfig() {
  local file=$1 user=$2 cert=$3 server=$4
  cat > "$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-fledged-testbed
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: $user@kube-fledged-testbed
  context: {cluster: kube-fledged-testbed, user: $user}
current-context: $user@kube-fledged-testbed
EOF
  chmod 600 "$file.tmp"; mv "$file.tmp" "$file"
}

# pki_ensure APISERVER_IP APISERVER_PORT NODE_COUNT
pki_ensure() {
  local ip=$1 port=$2 count=$3 n stamp
  mkdir -p "$PKI" "$KCFG"; chmod 700 "$PKI"
  stamp="$ip:$port"
  if [ "$(cat "$PKI/apiserver.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$PKI/apiserver.crt" "$KCFG"/*.conf
  fi
  pki_ca ca kube-fledged-testbed-ca
  pki_ca front-proxy-ca kube-fledged-testbed-front-proxy-ca
  pki_leaf apiserver ca /CN=kube-apiserver serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$KUBE_SVC_IP,IP:$ip"
  echo "$stamp" > "$PKI/apiserver.stamp"
  pki_leaf admin ca "/O=system:masters/CN=admin" clientAuth
  pki_leaf controller-manager ca /CN=system:kube-controller-manager clientAuth
  pki_leaf scheduler ca /CN=system:kube-scheduler clientAuth
  pki_leaf kube-proxy ca /CN=system:kube-proxy clientAuth
  pki_leaf apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  pki_leaf front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
  if [ ! -s "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  local server=https://$ip:$port
  [ -s "$KCFG/admin.conf" ] || write_kubeconfig "$KCFG/admin.conf" admin admin "$server"
  [ -s "$KCFG/controller-manager.conf" ] || write_kubeconfig "$KCFG/controller-manager.conf" system:kube-controller-manager controller-manager "$server"
  [ -s "$KCFG/scheduler.conf" ] || write_kubeconfig "$KCFG/scheduler.conf" system:kube-scheduler scheduler "$server"
  [ -s "$KCFG/kube-proxy.conf" ] || write_kubeconfig "$KCFG/kube-proxy.conf" system:kube-proxy kube-proxy "$server"
  for n in $(seq "$count"); do
    pki_leaf "node-rk8s-node$n" ca "/O=system:nodes/CN=system:node:rk8s-node$n" clientAuth
    [ -s "$KCFG/rk8s-node$n.conf" ] || write_kubeconfig "$KCFG/rk8s-node$n.conf" "system:node:rk8s-node$n" "node-rk8s-node$n" "$server"
  done
}
