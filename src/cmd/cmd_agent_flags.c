/* cmd_agent_flags.c - the shared flags of `agent` and `agent-sim` (see cmd_agent_flags.h). */
#include "cmd_agent_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

struct flag *agent_flags_table(struct agent_flags *f, const struct flag *own, int sim)
{
	const struct flag shared[] = {
		{ "kubeconfig", FLAG_STRING, &f->kubeconfig, "",
		  "kubeconfig file (default: in-cluster config, $KUBECONFIG, ~/.kube/config)" },
		{ "master", FLAG_STRING, &f->master, "", "API server URL, overriding the kubeconfig's" },
		{ "context", FLAG_STRING, &f->context, "", "kubeconfig context (default: current-context)" },
		{ "host-root", FLAG_STRING, &f->host_root, "",
		  "where the host's filesystem is mounted: every host path (sockets, the image filesystem) is looked "
		  "up under it (\"\" out of cluster; the DaemonSet mounts under /host)" },
		{ "max-parallel-pulls", FLAG_INT, &f->max_parallel, "4", "most pulls running at once on a node" },
		{ "max-parallel-pulls-per-registry", FLAG_INT, &f->max_per_registry, "4",
		  "most pulls from one registry running at once on a node" },
		{ "image-pull-deadline-duration", FLAG_DURATION, &f->deadline_ms, "5m",
		  "how long transient pull errors (connection refused, 5xx, 429, timeouts) are retried, with "
		  "exponential backoff and jitter, before the image is reported Failed" },
		{ "poll-interval", FLAG_DURATION, &f->poll_ms, sim ? "10s" : "5s",
		  "how often the runtime's image list is read: an image removed behind the agent's back (kubelet "
		  "image GC, crictl rmi) is pulled again within about this long plus the pull" },
		{ "status-interval", FLAG_DURATION, &f->status_ms, "5s",
		  "while pulls run, at most one status write per interval (progress); a failure or the node "
		  "settling is written at once after it; nothing is written when nothing changed" },
		{ "image-fs-threshold", FLAG_INT, &f->fs_threshold, "85",
		  "refuse a pull (ImageFsThresholdExceeded) when the image filesystem's usage plus the image's size "
		  "hint would pass this percentage (the kubelet's image GC high threshold); 0 disables the check" },
		{ "metrics-bind-address", FLAG_STRING, &f->metrics_bind, sim ? "0" : ":8080",
		  "host:port of the HTTP server for /metrics, /healthz and /readyz (port 0: any free port); \"0\" "
		  "turns it off" },
		{ "kube-api-qps", FLAG_DOUBLE, &f->qps, sim ? "500" : "5",
		  "sustained requests per second to the API server (watches excluded)" },
		{ "kube-api-burst", FLAG_INT, &f->burst, sim ? "1000" : "10", "burst of requests to the API server" },
	};
	size_t n_own = 0;
	while (own && own[n_own].name)
		n_own++;
	size_t n = ARRAY_SIZE(shared) + n_own;
	struct flag *tab = xcalloc(n + 1, sizeof *tab);
	memcpy(tab, shared, sizeof shared);
	if (n_own)
		memcpy(tab + ARRAY_SIZE(shared), own, n_own * sizeof *own);
	return tab;
}

int agent_flags_check(const struct agent_flags *f, const char *cmd, struct strbuf *err)
{
	(void)cmd;
	if (f->max_parallel < 1)
		sb_addf(err, "invalid value %d for flag --max-parallel-pulls: must be 1 or more", f->max_parallel);
	else if (f->max_per_registry < 1)
		sb_addf(err, "invalid value %d for flag --max-parallel-pulls-per-registry: must be 1 or more",
			f->max_per_registry);
	else if (f->fs_threshold < 0 || f->fs_threshold > 100)
		sb_addf(err, "invalid value %d for flag --image-fs-threshold: want a percentage, 0 (off) to 100",
			f->fs_threshold);
	else if (f->deadline_ms <= 0)
		sb_adds(err, "invalid value 0s for flag --image-pull-deadline-duration: must be more than 0s");
	else if (f->poll_ms < 100)
		sb_addf(err, "invalid value %lldms for flag --poll-interval: must be at least 100ms", (long long)f->poll_ms);
	else if (f->qps < 0)
		sb_addf(err, "invalid value %g for flag --kube-api-qps: must be 0 (no limit) or more", f->qps);
	else if (f->burst < 1)
		sb_addf(err, "invalid value %d for flag --kube-api-burst: must be 1 or more", f->burst);
	return err->len ? -1 : 0;
}

void agent_flags_opts(const struct agent_flags *f, struct agent_opts *o)
{
	o->node.pull_deadline_ms = f->deadline_ms;
	o->node.poll_ms = f->poll_ms;
	o->node.status_interval_ms = f->status_ms;
	o->node.fs_threshold_percent = f->fs_threshold;
	o->node.backoff_base_ms = 1000;
	o->node.backoff_max_ms = 60000;
	o->max_parallel_pulls = f->max_parallel;
	o->max_parallel_pulls_per_registry = f->max_per_registry;
	o->host_root = f->host_root;
}

void agent_flags_report(struct agent *a, struct agent_kube *k, struct kube_client *c, const char *cmd)
{
	struct agent_stats s;
	struct agent_kube_counts kc = { 0 };
	struct kube_client_stats cs;
	agent_stats(a, &s);
	if (k)
		agent_kube_counts(k, &kc);
	kube_client_stats(c, &cs);
	uint64_t mine = kc.get_nic + kc.patch_status + kc.get_secret;
	uint64_t lists = cs.requests > mine + cs.watches ? cs.requests - mine - cs.watches : 0;
	LOG_INFO("%s: %llu syncs, %llu pulls (%llu failed attempts, %llu self-heal), %llu disk refusals, %llu deletes, "
		 "%llu status writes (%llu failed)", cmd, (unsigned long long)s.syncs, (unsigned long long)s.pulls,
		 (unsigned long long)s.pull_failures, (unsigned long long)s.self_heals,
		 (unsigned long long)s.disk_refusals, (unsigned long long)s.deletes,
		 (unsigned long long)s.status_writes, (unsigned long long)s.status_write_errors);
	LOG_INFO("%s: API requests: %llu in all: GET nodeimagecache %llu, PATCH nodeimagecache/status %llu, GET secret "
		 "%llu, LIST %llu, WATCH %llu", cmd, (unsigned long long)cs.requests, (unsigned long long)kc.get_nic,
		 (unsigned long long)kc.patch_status, (unsigned long long)kc.get_secret, (unsigned long long)lists,
		 (unsigned long long)cs.watches);
}
