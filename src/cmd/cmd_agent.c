/* cmd_agent.c - `kubefledged agent`: the node agent, one per node (a DaemonSet in the kube-fledged
 * namespace, or out of cluster: `kubefledged agent --kubeconfig=K --node-name=N --cri-socket-path=S`).
 * It caches the images of its node's NodeImageCache through the node's runtime and reports per image in
 * the object's status (docs/agent.md). The flags shared with `agent-sim` are in cmd_agent_flags.h.
 *
 * SIGTERM or SIGINT stop it (a pull in flight is abandoned: the next start resumes from the
 * NodeImageCache); a second signal exits at once. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_kube.h"
#include "agent/agent_runtime.h"
#include "cmd_agent_flags.h"
#include "cmd_run.h"
#include "cmds.h"
#include "cri/cri_detect.h"
#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/metrics_http.h"
#include "util/util.h"
#include "util/version.h"

static volatile int stop_flag;
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
	(void)sig;
	if (signals_seen++)
		_exit(1);
	stop_flag = 1;
}

struct state {
	volatile int runtime_ok;
	struct agent_kube *kube;
};

static int healthy(void *ud, struct strbuf *why)
{
	(void)ud;
	(void)why;
	return 1;
}

static int ready(void *ud, struct strbuf *why)
{
	struct state *s = ud;
	if (!s->runtime_ok) {
		sb_adds(why, "the container runtime does not answer yet");
		return 0;
	}
	if (!s->kube || !agent_kube_synced(s->kube)) {
		sb_adds(why, "the NodeImageCache is not listed yet");
		return 0;
	}
	return 1;
}

/* Sleeps up to ms, waking early on a stop. */
static void nap(int64_t ms)
{
	for (int64_t t = 0; t < ms && !stop_flag; t += 100)
		kf_sleep_ms(100);
}

int cmd_agent(int argc, char **argv)
{
	struct agent_flags f;
	char *node_name, *cri_socket, *runtime_api;
	int pin, help;
	struct flag own[] = {
		{ "node-name", FLAG_STRING, &node_name, "", "the node this agent caches images on (default: $NODE_NAME)" },
		{ "cri-socket-path", FLAG_STRING, &cri_socket, "",
		  "host path of the runtime socket (default: the node's kubeadm.alpha.kubernetes.io/cri-socket "
		  "annotation, else the first that exists of /run/containerd/containerd.sock, "
		  "/var/run/containerd/containerd.sock, /run/crio/crio.sock, /var/run/crio/crio.sock, "
		  "/var/run/docker.sock, /run/docker.sock); a docker.sock is spoken to with the Docker Engine API, "
		  "the kubelet's dockershim.sock means Docker's" },
		{ "runtime-api", FLAG_STRING, &runtime_api, "auto",
		  "CRI API version: auto (runtime.v1, then runtime.v1alpha2), v1 or v1alpha2" },
		{ "pin-images", FLAG_BOOL, &pin, "true",
		  "pin cached images where the runtime honours it (containerd >= 1.7: label "
		  "io.cri-containerd.pinned=pinned), so the kubelet's image GC keeps them" },
		{ "help", FLAG_BOOL, &help, "false", "show this help" },
		{ NULL },
	};
	struct flag *tab = agent_flags_table(&f, own, 0);
	struct strbuf err = STRBUF_INIT;
	struct kube_config *cfg = NULL;
	struct kube_client *client = NULL;
	struct metrics *reg = NULL;
	struct metrics_http *http = NULL;
	struct agent *a = NULL;
	struct state st = { 0 };
	char *socket = NULL, *annotation = NULL;
	struct agent_runtime *rt = NULL;
	int rc = 1;

	int npos = flags_parse(tab, argc, argv, &err);
	if (npos < 0) {
		fprintf(stderr, "kubefledged agent: %s (see --help)\n", err.buf);
		rc = 2;
		goto out;
	}
	if (help) {
		flags_usage(stdout, "agent",
			    "Caches the images of this node's NodeImageCache through the node's container runtime and\n"
			    "reports them in its status. One per node (a DaemonSet), or out of cluster with --kubeconfig.",
			    tab);
		rc = 0;
		goto out;
	}
	if (npos > 0) {
		fprintf(stderr, "kubefledged agent: unexpected argument \"%s\"\n", argv[0]);
		rc = 2;
		goto out;
	}
	const char *node = *node_name ? node_name : getenv("NODE_NAME");
	if (!node || !*node) {
		fprintf(stderr, "kubefledged agent: no node name: give --node-name or set NODE_NAME (the DaemonSet "
				"sets it from spec.nodeName)\n");
		rc = 2;
		goto out;
	}
	if (agent_flags_check(&f, "agent", &err) ||
	    (strcmp(runtime_api, "auto") && strcmp(runtime_api, "v1") && strcmp(runtime_api, "v1alpha2") &&
	     (sb_addf(&err, "invalid value \"%s\" for flag --runtime-api: want auto, v1 or v1alpha2", runtime_api), 1))) {
		fprintf(stderr, "kubefledged agent: %s\n", err.buf);
		rc = 2;
		goto out;
	}
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
	if (!(client = cmd_connect(f.kubeconfig, f.context, f.master, f.qps, f.burst, &cfg)))
		goto out;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	LOG_INFO("kubefledged agent %s (%s) starting on node %s: API server %s", kf_version(), kf_git_version(), node,
		 cfg->server);

	reg = metrics_new();
	if (strcmp(f.metrics_bind, "0")) {
		struct metrics_http_opts mo = { f.metrics_bind, reg, healthy, ready, &st };
		http = metrics_http_start(&mo, &err);
		/* Caching matters more than its metrics: without the server the agent still works (in cluster its
		 * readiness probe then fails, which shows; out of cluster several agents may share a host). */
		if (!http)
			LOG_ERROR("%s: serving no /metrics, /healthz, /readyz (--metrics-bind-address)", err.buf);
		else
			LOG_INFO("serving /metrics, /healthz and /readyz on %s (port %d)", f.metrics_bind,
				 metrics_http_port(http));
	}

	/* The runtime: wait for its socket and its first answer (a node's runtime may start after us). */
	for (int attempt = 0; !stop_flag; attempt++) {
		sb_reset(&err);
		if (!*cri_socket && !annotation) {
			annotation = agent_kube_node_annotation(client, node, CRI_NODE_SOCKET_ANNOTATION, &err);
			if (err.len) {
				LOG_WARN("%s (the runtime's usual sockets are tried)", err.buf);
				sb_reset(&err);
			}
		}
		int docker = 0;
		free(socket);
		socket = NULL;
		if (cri_socket_find(f.host_root, cri_socket, annotation, &socket, &docker, &err) == 0 &&
		    (rt = agent_runtime_open(socket, docker, runtime_api, pin, &err)))
			break;
		if (attempt % 12 == 0)
			LOG_WARN("waiting for the container runtime: %s", err.buf);
		nap(5000);
	}
	if (!rt) {
		rc = 0;
		goto out;
	}
	st.runtime_ok = 1;
	{
		char *label = agent_runtime_label(rt);
		LOG_INFO("runtime %s on %s (API %s), pinning: %s", label, socket, rt->api, agent_pinning_name(rt->pinning));
		free(label);
	}

	st.kube = agent_kube_new(client, node, reg);
	struct agent_opts ao = { 0 };
	agent_flags_opts(&f, &ao);
	ao.metrics = reg;
	agent_kube_api(st.kube, &ao.api);
	a = agent_new(&ao);
	agent_add_node(a, node, rt);
	rt = NULL;
	if (agent_kube_start(st.kube, a) < 0 || agent_start(a) < 0) {
		LOG_ERROR("cannot start the agent's threads");
		goto out;
	}
	while (!stop_flag)
		kf_sleep_ms(200);
	LOG_INFO("stopping");
	agent_stop(a, 2000);
	agent_flags_report(a, st.kube, client, "agent");
	rc = 0;
out:
	metrics_http_stop(http);
	if (a)
		agent_stop(a, 0);
	agent_kube_free(st.kube); /* the informer first: its events reach the agent */
	agent_free(a);
	agent_runtime_free(rt);
	metrics_free(reg);
	kube_client_free(client);
	kube_config_free(cfg);
	free(socket);
	free(annotation);
	flags_free(tab);
	free(tab);
	sb_release(&err);
	return rc;
}
