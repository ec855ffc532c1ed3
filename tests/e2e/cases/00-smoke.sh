# Smoke tests of the test bed itself: if these fail, no other e2e result means anything.
# Helpers: tests/e2e/lib.sh. Test bed: docs/testbed.md.
# shellcheck shell=bash disable=SC2317  # small predicates are called through wait_until

# A pull Job pinned to node 2 puts its (freshly generated, so surely absent) image into node 2's
# containerd store and nowhere else: each node really has its own image store.
test_job_pulls_image_onto_selected_node_only() {
  [ "${KF_NODE_COUNT:-1}" -ge 2 ] || skip "needs 2 nodes"
  local img
  img=$(gen_images "$(unique e2e/smoke)" 1)
  log "image $img"
  defer node_rmi "$NODE2_NAME" "$img"
  kapply <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: pull}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 120
  template:
    spec:
      restartPolicy: Never
      dnsPolicy: Default
      nodeSelector: {kubernetes.io/hostname: $NODE2_NAME}
      containers:
      - {name: pull, image: "$img", imagePullPolicy: IfNotPresent, command: [echo, pulled]}
EOF
  wait_until 120 job_complete pull || fail "Job did not complete"
  assert_eq pulled "$(kns logs job/pull)"
  node_has_image "$NODE2_NAME" "$img" || fail "$img is not on $NODE2_NAME: $(node_images "$NODE2_NAME")"
  if node_has_image "$NODE1_NAME" "$img"; then fail "$img is on $NODE1_NAME too"; fi
}

# An image that does not exist shows up as ErrImagePull / ImagePullBackOff in the pod status.
test_missing_image_reports_pull_error() {
  kapply <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: missing}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 120
  template:
    metadata: {labels: {app: missing}}
    spec:
      restartPolicy: Never
      dnsPolicy: Default
      containers:
      - {name: c, image: "$REGISTRY/e2e/does-not-exist:$RANDOM", command: [echo]}
EOF
  pull_error() { local r; r=$(pod_waiting_reasons app=missing); grep -qE '^(ErrImagePull|ImagePullBackOff)$' <<< "$r"; }
  wait_until 60 pull_error || fail "no pull error, reasons: $(pod_waiting_reasons app=missing | xargs)"
}

# A pod reaches the API server through the `kubernetes` Service (10.96.0.1:443, via kube-proxy) with
# its service account token, and the server certificate verifies against the mounted CA.
test_pod_reaches_apiserver_via_kubernetes_service() {
  kapply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: api-client}
spec:
  restartPolicy: Never
  dnsPolicy: Default
  containers:
  - name: c
    image: "$KF_TOOLS_IMAGE"
    command:
    - sh
    - -c
    - |
      sa=/var/run/secrets/kubernetes.io/serviceaccount
      echo "target \$KUBERNETES_SERVICE_HOST:\$KUBERNETES_SERVICE_PORT"
      curl -sS -o /dev/null -w 'code=%{http_code}\n' --max-time 10 --cacert \$sa/ca.crt \
        -H "Authorization: Bearer \$(cat \$sa/token)" \
        "https://\$KUBERNETES_SERVICE_HOST:\$KUBERNETES_SERVICE_PORT/api/v1/namespaces/$E2E_NS/pods"
EOF
  done_() { local p; p=$(kns get pod api-client -o jsonpath='{.status.phase}'); [ "$p" = Succeeded ] || [ "$p" = Failed ]; }
  wait_until 90 done_ || fail "pod did not finish"
  local out
  out=$(kns logs api-client)
  log "$out"
  assert_contains "$out" "target $KUBE_SVC_IP_EXPECTED:443" "the pod was not pointed at the kubernetes Service"
  # 403: authenticated as system:serviceaccount:$E2E_NS:default, which may not list pods. 200 would do too.
  case "$out" in *code=200*|*code=403*) ;; *) fail "no authenticated answer from the API server: $out" ;; esac
}
KUBE_SVC_IP_EXPECTED=10.96.0.1

# The API server reaches an HTTPS server in a pod through a Service (the service proxy picks the pod).
test_apiserver_reaches_https_pod_via_service() {
  kapply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: tls, labels: {app: tls}}
spec:
  dnsPolicy: Default
  containers:
  - name: c
    image: "$KF_TOOLS_IMAGE"
    command: [sh, -c, 'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /tmp/k.pem -out /tmp/c.pem -days 1 -subj /CN=tls 2>/dev/null && exec openssl s_server -www -accept 8443 -cert /tmp/c.pem -key /tmp/k.pem']
    readinessProbe: {tcpSocket: {port: 8443}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: tls}
spec:
  selector: {app: tls}
  ports: [{name: https, port: 443, targetPort: 8443}]
EOF
  local url=/api/v1/namespaces/$E2E_NS/services/https:tls:443/proxy/ out
  wait_until 90 kubectl get --raw "$url" || fail "the API server could not reach the pod through the Service"
  out=$(kubectl get --raw "$url")
  assert_contains "$out" "s_server" "unexpected answer from the pod"
}

# The API server calls an admission webhook served by a pod behind a Service, verifying the server's
# certificate (SAN <svc>.<ns>.svc) against caBundle: the path the operator's webhook will take. The
# probe server answers with a fixed AdmissionReview whose uid cannot match, so the API server's error
# proves it connected, verified TLS and read the reply.
test_apiserver_calls_webhook_behind_service() {
  local svc=probe name
  name=$(unique probe).e2e.kube-fledged.test
  kapply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: probe, labels: {app: probe}}
spec:
  dnsPolicy: Default
  containers:
  - name: c
    image: "$KF_TOOLS_IMAGE"
    readinessProbe: {exec: {command: [test, -s, /tmp/c.pem]}, periodSeconds: 1}
    command:
    - sh
    - -c
    - |
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /tmp/k.pem -out /tmp/c.pem.new \
        -days 1 -subj /CN=$svc.$E2E_NS.svc -addext subjectAltName=DNS:$svc.$E2E_NS.svc 2>/dev/null
      mv /tmp/c.pem.new /tmp/c.pem
      body='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":false}}'
      while true; do
        printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
          "\${#body}" "\$body" | openssl s_server -quiet -naccept 1 -accept 8443 -cert /tmp/c.pem -key /tmp/k.pem >/dev/null 2>&1
      done
---
apiVersion: v1
kind: Service
metadata: {name: $svc}
spec:
  selector: {app: probe}
  ports: [{port: 443, targetPort: 8443}]
EOF
  wait_until 90 kns wait --for=condition=Ready pod/probe --timeout=5s || fail "probe pod not Ready"
  local ca
  ca=$(kns exec probe -- cat /tmp/c.pem | base64 -w0)
  defer kubectl delete validatingwebhookconfiguration "$E2E_NS"
  kubectl apply -f - <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: $E2E_NS}
webhooks:
- name: $name
  clientConfig: {service: {namespace: $E2E_NS, name: $svc, path: /validate}, caBundle: $ca}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  objectSelector: {matchLabels: {e2e-probe: "$E2E_NS"}}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
EOF
  local out=""
  reply_seen() {
    out=$(kns create -f - 2>&1 <<EOT
apiVersion: v1
kind: ConfigMap
metadata: {name: $(unique cm), labels: {e2e-probe: "$E2E_NS"}}
EOT
    ) && return 1   # created: the webhook was not called (yet)
    case "$out" in *"expected response.uid"*) return 0 ;; esac
    echo "$out" >&2; return 1
  }
  wait_until 60 reply_seen || fail "the API server did not get the webhook's reply: $out"
  log "API server said: $out"
}

# Private registry: a pull needs the imagePullSecret; without it the pull is refused.
test_private_registry_needs_pull_secret() {
  kns create secret docker-registry regcred --docker-server="$REGISTRY_AUTH" \
    --docker-username="$REGISTRY_AUTH_USER" --docker-password="$REGISTRY_AUTH_PASSWORD" >/dev/null
  local n secrets
  for n in with without; do
    secrets=""; [ $n = without ] || secrets='imagePullSecrets: [{name: regcred}]'
    kapply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $n, labels: {app: $n}}
spec:
  restartPolicy: Never
  dnsPolicy: Default
  $secrets
  containers:
  - {name: c, image: "$KF_PRIVATE_IMAGE", imagePullPolicy: Always}
EOF
  done
  succeeded() { [ "$(kns get pod with -o jsonpath='{.status.phase}')" = Succeeded ]; }
  wait_until 90 succeeded || fail "pod with the pull secret did not succeed"
  assert_eq "private app 1" "$(kns logs with)"
  refused() { local r; r=$(pod_waiting_reasons app=without); grep -qE '^(ErrImagePull|ImagePullBackOff)$' <<< "$r"; }
  wait_until 60 refused || fail "pod without the secret was not refused: $(pod_waiting_reasons app=without | xargs)"
}

# cluster-up's --labels reached the nodes (KF_NODE_LABELS is the spec the cluster was started with).
test_node_labels_applied() {
  [ -n "${KF_NODE_LABELS:-}" ] || skip "cluster started without --labels"
  local spec node kv pair got
  for spec in $KF_NODE_LABELS; do
    node=${spec%%:*} kv=${spec#*:}
    [[ $node =~ ^[0-9]+$ ]] && node=rk8s-node$node
    for pair in ${kv//,/ }; do
      got=$(kubectl get node "$node" -o json | jq -r --arg k "${pair%%=*}" '.metadata.labels[$k] // ""')
      assert_eq "${pair#*=}" "$got" "label ${pair%%=*} on $node"
    done
  done
  # and the node annotation the controller uses to find each node's CRI socket
  got=$(kubectl get node "$NODE1_NAME" -o json | jq -r '.metadata.annotations["kubeadm.alpha.kubernetes.io/cri-socket"] // ""')
  assert_eq "$NODE1_CRI_SOCKET" "$got" "cri-socket annotation"
}

# A Docker node (make cluster-up NODE_RUNTIMES='3:docker'): the kubelet runs on dockerd through dockershim,
# the Node says so and carries the docker socket in its cri-socket annotation, a pod (with the pull Jobs'
# restricted security context) pulls its image into that dockerd's store only and runs there with a
# working pod network, and node_rmi removes the image again, every reference of it. (No wget -T: busybox
# 1.35's wget segfaults with a timeout over TLS.)
test_docker_node_runs_pods_on_dockerd() {
  local n i v node="" img ver ann
  for (( i = 1; i <= KF_NODE_COUNT; i++ )); do
    v=NODE${i}_RUNTIME; [ "${!v:-containerd}" = docker ] && { n=$i; v=NODE${i}_NAME; node=${!v}; break; }
  done
  [ -n "$node" ] || skip "no Docker node (make cluster-up NODE_RUNTIMES='N:docker')"
  ver=$(kubectl get node "$node" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}')
  assert_contains "$ver" "docker://" "containerRuntimeVersion of $node"
  ann=$(kubectl get node "$node" -o json | jq -r '.metadata.annotations["kubeadm.alpha.kubernetes.io/cri-socket"] // ""')
  assert_eq "$(node_sock "$n")" "$ann" "cri-socket annotation of $node"
  [ -S "$ann" ] || fail "$ann is not a socket"
  img=$(gen_images "$(unique e2e/docker)" 1)
  defer node_rmi "$node" "$img"
  kapply <<EOF2
apiVersion: batch/v1
kind: Job
metadata: {name: pull}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 120
  template:
    spec:
      restartPolicy: Never
      dnsPolicy: Default
      nodeSelector: {kubernetes.io/hostname: $node}
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: pull
        image: "$img"
        command: [sh, -c, "echo healthz=\$(wget -q -O - --no-check-certificate https://$KUBE_SVC_IP_EXPECTED/healthz); echo pulled"]
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF2
  wait_until 120 job_complete pull || fail "Job did not complete on $node"
  assert_eq "healthz=ok pulled" "$(kns logs job/pull | xargs)" "the pod reached the API server through the kubernetes Service"
  assert_contains "$(kns get pods -l job-name=pull -o jsonpath='{.items[0].status.containerStatuses[0].containerID}')" "docker://"
  node_has_image "$node" "$img" || fail "$img is not in $node's dockerd: $(node_images "$node")"
  if node_has_image "$NODE1_NAME" "$img"; then fail "$img is on $NODE1_NAME too"; fi
  node_rmi "$node" "$img"
  assert_not_contains "$(node_images "$node")" "${img%:*}" "node_rmi left a reference"
}
