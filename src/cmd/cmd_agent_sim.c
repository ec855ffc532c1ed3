/* cmd_agent_sim.c - `kubefledged agent-sim`: the real agent code for N simulated nodes in one process,
 * against the real API server, for scale runs (issue 9; bench/scale.sh). Only the container runtime is
 * simulated (agent_simrt.h: an in-memory image store per node, a pull latency, failures by pattern);
 * the Node objects, their Ready status and Leases are real API objects (agent_simnodes.h), and the N
 * agents share one Kubernetes client and ONE informer over every NodeImageCache.
 *
 *   kubefledged agent-sim --kubeconfig=K --nodes=N [--node-prefix=kf-sim-] [--node-labels=k=v,...]
 *       [--pull-latency=0s] [--fail-images=SUBSTRING] [--lease-period=10s] [--delete-nodes-on-exit]
 *
 * Prints "agent-sim: N nodes ready" on stdout once the API server shows every Node Ready, runs until
 * SIGTERM/SIGINT, then (with --delete-nodes-on-exit) deletes its Nodes, and prints its API requests by
 * verb and its peak RSS on stdout. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_kube.h"
#include "agent/agent_simnodes.h"
#include "agent/agent_simrt.h"
#include "cmd_agent_flags.h"
#include "cmds.h"
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

static long rss_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

int cmd_agent_sim(int argc, char **argv)
{
	struct agent_flags f;
	char *prefix, *labels, *fail;
	int nodes, del, workers, sync_workers, help;
	int64_t latency_ms, lease_ms;
	struct flag own[] = {
		{ "nodes", FLAG_INT, &nodes, "0", "how many simulated nodes (required)" },
		{ "node-prefix", FLAG_STRING, &prefix, "kf-sim-", "node names are PREFIX0001 ... PREFIXnnnn" },
		{ "node-labels", FLAG_STRING, &labels, "",
		  "extra labels of every simulated node, key=value,key=value (they always carry "
		  "kubefledged.io/simulated=true and the taint kubefledged.io/simulated=true:NoSchedule)" },
		{ "pull-latency", FLAG_DURATION, &latency_ms, "0s", "how long every simulated pull takes" },
		{ "fail-images", FLAG_STRING, &fail, "",
		  "pulls of references containing this text fail with containerd's not-found error" },
		{ "lease-period", FLAG_DURATION, &lease_ms, "10s",
		  "how often each node's Lease is renewed (the node lifecycle controller marks a node NotReady "
		  "after 40 s without)" },
		{ "delete-nodes-on-exit", FLAG_BOOL, &del, "false", "delete the Node objects when stopping" },
		{ "pull-workers", FLAG_INT, &workers, "64", "threads running simulated pulls, shared by all nodes" },
		{ "sync-workers", FLAG_INT, &sync_workers, "4", "threads syncing nodes" },
		{ "help", FLAG_BOOL, &help, "false", "show this help" },
		{ NULL },
	};
	struct flag *tab = agent_flags_table(&f, own, 1);
	struct strbuf err = STRBUF_INIT;
	struct kube_config *cfg = NULL;
	struct kube_client *client = NULL, *node_client = NULL;
	struct agent_simnodes *sim = NULL;
	struct agent_kube *kube = NULL;
	struct agent *a = NULL;
	struct metrics *reg = NULL;
	struct metrics_http *http = NULL;
	int rc = 1;

	int npos = flags_parse(tab, argc, argv, &err);
	if (npos < 0) {
		fprintf(stderr, "kubefledged agent-sim: %s (see --help)\n", err.buf);
		rc = 2;
		goto out;
	}
	if (help) {
		flags_usage(stdout, "agent-sim",
			    "Runs the agents of N simulated nodes in one process against the real API server: real Node\n"
			    "objects, Leases and NodeImageCaches, an in-memory image store per node.",
			    tab);
		rc = 0;
		goto out;
	}
	if (npos > 0) {
		fprintf(stderr, "kubefledged agent-sim: unexpected argument \"%s\"\n", argv[0]);
		rc = 2;
		goto out;
	}
	if (agent_flags_check(&f, "agent-sim", &err) ||
	    (nodes < 1 && (sb_addf(&err, "invalid value %d for flag --nodes: give 1 or more", nodes), 1)) ||
	    (lease_ms < 1000 && (sb_adds(&err, "invalid value for flag --lease-period: must be at least 1s"), 1)) ||
	    (lease_ms >= 40000 &&
	     (sb_adds(&err, "invalid value for flag --lease-period: must be under 40s (the node lifecycle "
			    "controller's grace period)"), 1)) ||
	    (workers < 1 && (sb_addf(&err, "invalid value %d for flag --pull-workers: must be 1 or more", workers), 1)) ||
	    (sync_workers < 1 &&
	     (sb_addf(&err, "invalid value %d for flag --sync-workers: must be 1 or more", sync_workers), 1))) {
		fprintf(stderr, "kubefledged agent-sim: %s\n", err.buf);
		rc = 2;
		goto out;
	}
	struct agent_simnodes_opts so = { prefix, nodes, labels, lease_ms, nodes < 16 ? nodes : 16 };
	sim = agent_simnodes_new(NULL, &so, &err); /* the values first, before any connection */
	if (!sim) {
		fprintf(stderr, "kubefledged agent-sim: %s\n", err.buf);
		rc = 2;
		goto out;
	}
	agent_simnodes_free(sim);
	sim = NULL;
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
	cfg = kube_config_load(*f.kubeconfig ? f.kubeconfig : NULL, *f.context ? f.context : NULL,
			       *f.master ? f.master : NULL, &err);
	if (!cfg) {
		LOG_ERROR("%s", err.buf);
		goto out;
	}
	struct kube_client_opts copts = { f.qps, f.burst, 0, NULL };
	struct kube_client_opts nopts = { 0, 1, 0, NULL }; /* the simulated kubelets: no client-side limit */
	client = kube_client_new(cfg, &copts, &err);
	node_client = client ? kube_client_new(cfg, &nopts, &err) : NULL;
	if (!node_client) {
		LOG_ERROR("%s", err.buf);
		goto out;
	}
	sim = agent_simnodes_new(node_client, &so, &err);
	if (!sim) {
		fprintf(stderr, "kubefledged agent-sim: %s\n", err.buf);
		rc = 2;
		goto out;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	LOG_INFO("kubefledged agent-sim %s: %d nodes %s0001.., API server %s", kf_version(), nodes, prefix, cfg->server);

	int64_t t0 = kf_now_ms();
	if (agent_simnodes_setup(sim, &stop_flag, &err)) {
		LOG_ERROR("agent-sim: setting up the nodes failed: %s", err.buf);
		goto stop;
	}
	if (agent_simnodes_start(sim) < 0) {
		LOG_ERROR("agent-sim: cannot start the lease renewals");
		goto stop;
	}
	LOG_INFO("agent-sim: %d Node objects and Leases in %.1fs", nodes, (double)(kf_now_ms() - t0) / 1000);

	reg = metrics_new();
	if (strcmp(f.metrics_bind, "0")) {
		struct metrics_http_opts mo = { f.metrics_bind, reg, NULL, NULL, NULL };
		http = metrics_http_start(&mo, &err);
		if (!http) {
			LOG_ERROR("%s", err.buf);
			goto stop;
		}
	}
	kube = agent_kube_new(client, NULL, reg);
	struct agent_opts ao = { 0 };
	agent_flags_opts(&f, &ao);
	ao.metrics = reg;
	ao.pull_workers = workers;
	ao.sync_workers = sync_workers;
	agent_kube_api(kube, &ao.api);
	a = agent_new(&ao);
	struct agent_simrt_opts ro = { latency_ms, fail, 0, 0, 0 };
	for (int i = 0; i < nodes; i++)
		agent_add_node(a, agent_simnodes_name(sim, (size_t)i), agent_simrt_new(&ro));
	if (agent_kube_start(kube, a) < 0 || agent_start(a) < 0) {
		LOG_ERROR("agent-sim: cannot start the agents");
		goto stop;
	}
	/* Ready as the API server sees it. */
	int ready = 0;
	while (!stop_flag) {
		sb_reset(&err);
		ready = agent_simnodes_ready(sim, &err);
		if (ready == nodes)
			break;
		if (ready < 0)
			LOG_WARN("agent-sim: %s", err.buf);
		for (int i = 0; i < 20 && !stop_flag; i++)
			kf_sleep_ms(100);
	}
	if (ready == nodes) {
		printf("agent-sim: %d nodes ready\n", nodes);
		fflush(stdout);
		LOG_INFO("agent-sim: all %d nodes Ready after %.1fs; RSS %ld KiB", nodes,
			 (double)(kf_now_ms() - t0) / 1000, rss_kib("VmRSS"));
	}
	/* Keep them Ready: a node the lifecycle controller marked otherwise gets its status written again. */
	for (int64_t next = kf_now_ms() + 30000; !stop_flag; kf_sleep_ms(200)) {
		if (kf_now_ms() < next)
			continue;
		sb_reset(&err);
		if (agent_simnodes_ready(sim, &err) < 0)
			LOG_WARN("agent-sim: %s", err.buf);
		next = kf_now_ms() + 30000;
	}
	rc = 0;
stop:
	metrics_http_stop(http); /* its collect hooks read the agents and the informer */
	http = NULL;
	if (a)
		agent_stop(a, 2000);
	struct agent_kube_counts kc = { 0 };
	if (kube)
		agent_kube_counts(kube, &kc);
	agent_kube_free(kube); /* the informer first: its events reach the agents */
	kube = NULL;
	if (sim)
		agent_simnodes_stop(sim);
	if (sim && del) {
		int left = agent_simnodes_delete(sim);
		LOG_INFO("agent-sim: deleted %d nodes%s", nodes - left, left ? " (see the warnings)" : "");
	}
	if (a && sim) {
		struct agent_stats s;
		struct agent_simnodes_counts nc;
		struct kube_client_stats cs, ns;
		agent_stats(a, &s);
		agent_simnodes_counts(sim, &nc);
		kube_client_stats(client, &cs);
		kube_client_stats(node_client, &ns);
		uint64_t mine = kc.get_nic + kc.patch_status + kc.get_secret;
		uint64_t informer = cs.requests > mine ? cs.requests - mine : 0;
		long hwm = rss_kib("VmHWM");
		printf("agent-sim: agents: %llu pulls, %llu status writes, %llu self-heal pulls\n",
		       (unsigned long long)s.pulls, (unsigned long long)s.status_writes, (unsigned long long)s.self_heals);
		printf("agent-sim: API requests of the agents: %llu: PATCH nodeimagecaches/status %llu, GET nodeimagecaches "
		       "%llu, GET secrets %llu, LIST+WATCH nodeimagecaches %llu (%llu watches)\n",
		       (unsigned long long)cs.requests, (unsigned long long)kc.patch_status, (unsigned long long)kc.get_nic,
		       (unsigned long long)kc.get_secret, (unsigned long long)informer, (unsigned long long)cs.watches);
		printf("agent-sim: API requests of the simulated kubelets: %llu: GET nodes %llu, POST nodes+leases %llu, "
		       "PATCH nodes+leases %llu, PATCH nodes/status %llu, LIST nodes %llu, DELETE nodes %llu\n",
		       (unsigned long long)ns.requests, (unsigned long long)nc.get, (unsigned long long)nc.create,
		       (unsigned long long)nc.patch, (unsigned long long)nc.patch_status, (unsigned long long)nc.list,
		       (unsigned long long)nc.del);
		printf("agent-sim: peak RSS %ld KiB (%.1f KiB per node)\n", hwm, (double)hwm / nodes);
		fflush(stdout);
	}
out:
	metrics_http_stop(http);
	agent_kube_free(kube);
	agent_free(a);
	agent_simnodes_free(sim);
	metrics_free(reg);
	kube_client_free(client);
	kube_client_free(node_client);
	kube_config_free(cfg);
	flags_free(tab);
	free(tab);
	sb_release(&err);
	return rc;
}
