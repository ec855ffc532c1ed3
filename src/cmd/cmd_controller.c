/* cmd_controller.c - `kubefledged controller`: the ImageCache controller, a drop-in replacement for upstream's
 * kubefledged-controller (same flags, defaults and environment), plus leader election, client-side rate
 * limits well above client-go's 5 QPS, parallel workers and a Job concurrency cap.
 *
 * Runs in cluster with its service account, or anywhere with --kubeconfig. SIGTERM or SIGINT stop it
 * gracefully (workers finish their sync, the lease is released); a second signal exits at once. A lost
 * lease fences the API client at once (no write goes out after it) and the process exits 1 within
 * a few seconds.
 *
 * Started as upstream's /opt/bin/kubefledged-controller (cmd_upstream_controller), --leader-elect defaults
 * to false, as upstream ran without leader election and its ClusterRole grants no Lease rights.
 *
 * --metrics-bind-address serves /metrics, /healthz and /readyz (docs/metrics.md) from the start, while
 * waiting for the lease too: a follower answers /healthz, and /readyz says it waits for the lease. */
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd_run.h"
#include "cmds.h"
#include "imagecache/ic_controller.h"
#include "imagecache/ic_metrics.h"
#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "kube/kube_leader.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/metrics_http.h"
#include "util/util.h"
#include "util/version.h"

static volatile int stop_flag;

/* /healthz, /readyz (the metrics server's thread): ready once leading and the informers have listed. */
static atomic_int leading;
static int healthy(void *ud, struct strbuf *why)
{
	(void)ud;
	(void)why;
	return 1;
}

static int ready(void *ud, struct strbuf *why)
{
	if (!atomic_load(&leading)) {
		sb_adds(why, "waiting to become the leader (Lease)");
		return 0;
	}
	return ic_controller_ready(ud, why);
}

static int run_controller(int argc, char **argv, int upstream)
{
	const char *cmd = upstream ? "kubefledged-controller" : "kubefledged controller";
	int64_t deadline_ms, refresh_ms, lease_ms, renew_ms, retry_ms;
	char *pull_policy, *sa, *priority, *retention, *cri_socket, *kubeconfig, *master, *context, *lease_name,
		*lease_ns, *tolerations_text, *resources_text, *mode, *agent_sa, *metrics_bind;
	int host_network, max_surge, workers, burst, leader_elect, help;
	double qps;
	struct flag tab[] = {
		{ "mode", FLAG_STRING, &mode, "jobs",
		  "jobs: a Job per node x image (upstream's design); agent: through the node agents' NodeImageCache "
		  "objects (deploy/ and the Helm chart use agent; docs/agent.md)" },
		{ "agent-service-account", FLAG_STRING, &agent_sa, "",
		  "agent mode: the agents' service account (default: kubefledged-agent in $KUBEFLEDGED_NAMESPACE), "
		  "bound in each namespace where an ImageCache names imagePullSecrets so that agents may read "
		  "those Secrets; \"-\" = no bindings" },
		{ "image-pull-deadline-duration", FLAG_DURATION, &deadline_ms, "5m",
		  "how long one Job may take to pull or delete an image before it is reported failed (per Job; "
		  "upstream: per batch)" },
		{ "image-cache-refresh-frequency", FLAG_DURATION, &refresh_ms, "15m",
		  "period of the refresh of every cache (first run at start); 0s disables it" },
		{ "image-pull-policy", FLAG_STRING, &pull_policy, "IfNotPresent",
		  "IfNotPresent: pull images a node does not report (plus :latest and untagged ones); Always: pull "
		  "every image every time" },
		{ "service-account-name", FLAG_STRING, &sa, "", "service account of the Job pods (default: the "
		  "namespace's default)" },
		{ "image-delete-job-host-network", FLAG_BOOL, &host_network, "false", "run delete Job pods with "
		  "hostNetwork" },
		{ "job-priority-class-name", FLAG_STRING, &priority, "", "priorityClassName of the Job pods" },
		{ "job-retention-policy", FLAG_STRING, &retention, "delete",
		  "delete: delete Jobs when they finish; retain: keep them for debugging" },
		{ "cri-socket-path", FLAG_STRING, &cri_socket, "",
		  "host path of the container runtime socket for delete Jobs on every node (default: the node's "
		  "kubeadm.alpha.kubernetes.io/cri-socket annotation, else the runtime's usual socket)" },
		{ "jobs-max-surge", FLAG_INT, &max_surge, "0", "most Jobs in flight at once; 0 = derived from the "
		  "node count: 20 per node, at least 200, at most 5000" },
		{ "job-tolerations", FLAG_STRING, &tolerations_text, "[{\"operator\":\"Exists\"}]",
		  "tolerations of the Job pods, as a JSON array (default: every taint, as upstream, so that an image "
		  "is cached on every node its list selects, tainted or not)" },
		{ "job-resources", FLAG_STRING, &resources_text,
		  "{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"},\"limits\":{\"cpu\":\"500m\",\"memory\":\"64Mi\"}}",
		  "resources of every container of the Job pods, as a JSON object ({} = none)" },
		{ "workers", FLAG_INT, &workers, "4", "image caches synced in parallel" },
		{ "kube-api-qps", FLAG_DOUBLE, &qps, "50", "sustained requests per second to the API server "
		  "(client-go's default, which upstream used, is 5)" },
		{ "kube-api-burst", FLAG_INT, &burst, "100", "burst of requests to the API server" },
		{ "kubeconfig", FLAG_STRING, &kubeconfig, "", "kubeconfig file (default: in-cluster config, "
		  "$KUBECONFIG, ~/.kube/config)" },
		{ "master", FLAG_STRING, &master, "", "API server URL, overriding the kubeconfig's" },
		{ "context", FLAG_STRING, &context, "", "kubeconfig context (default: current-context)" },
		{ "leader-elect", FLAG_BOOL, &leader_elect, upstream ? "false" : "true",
		  upstream ? "elect a leader with a Lease, so that several replicas are safe (needs Lease rights, "
			     "which upstream's ClusterRole lacks)"
			   : "elect a leader with a Lease, so that several replicas are safe" },
		{ "leader-elect-lease-duration", FLAG_DURATION, &lease_ms, "15s", "lease duration" },
		{ "leader-elect-renew-deadline", FLAG_DURATION, &renew_ms, "10s", "leader gives up after failing "
		  "to renew for this long" },
		{ "leader-elect-retry-period", FLAG_DURATION, &retry_ms, "2s", "retry/renew period" },
		{ "leader-elect-resource-name", FLAG_STRING, &lease_name, "kubefledged-controller", "Lease name" },
		{ "leader-elect-resource-namespace", FLAG_STRING, &lease_ns, "",
		  "Lease namespace (default: $KUBEFLEDGED_NAMESPACE, else kube-fledged)" },
		{ "metrics-bind-address", FLAG_STRING, &metrics_bind, ":8080",
		  "address of the HTTP server for /metrics, /healthz and /readyz (host:port, :port; port 0 = any "
		  "free port, logged); 0 = no server" },
		{ "help", FLAG_BOOL, &help, "false", "show this help" },
		{ NULL },
	};
	struct strbuf err = STRBUF_INIT;
	struct kube_config *cfg = NULL;
	struct kube_client *client = NULL;
	struct kube_leader *leader = NULL;
	struct ic_controller *ctl = NULL;
	struct metrics *reg = NULL;
	struct metrics_http *http = NULL;
	char *default_helper = NULL, *agent_sa_full = NULL;
	json_t *tolerations = NULL, *resources = NULL;
	int rc = 1;
	int npos = flags_parse(tab, argc, argv, &err);
	if (npos < 0) {
		fprintf(stderr, "%s: %s (see --help)\n", cmd, err.buf);
		rc = 2;
		goto out;
	}
	if (help) {
		flags_usage(stdout, "controller",
			    "Runs the ImageCache controller: caches the images listed in ImageCaches on the nodes.\n"
			    "Environment: KUBEFLEDGED_NAMESPACE (kube-fledged), KUBEFLEDGED_CRI_CLIENT_IMAGE (image of "
			    "delete Jobs),\nBUSYBOX_IMAGE (init container of pull Jobs; needs a static cp and echo).",
			    tab);
		rc = 0;
		goto out;
	}
	if (npos > 0) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", cmd, argv[0]);
		rc = 2;
		goto out;
	}
	if (strcmp(pull_policy, "IfNotPresent") && strcmp(pull_policy, "Always"))
		LOG_WARN("--image-pull-policy=%s is neither IfNotPresent nor Always: every image will get a Job, with "
			 "container pull policy IfNotPresent (upstream behaviour)", pull_policy);
	char *ret = xstrdup(retention);
	/* upstream: case-insensitive and trimmed, anything else falls back to delete */
	char *r = ret;
	while (*r == ' ' || *r == '\t')
		r++;
	size_t rl = strlen(r);
	while (rl && (r[rl - 1] == ' ' || r[rl - 1] == '\t'))
		r[--rl] = '\0';
	int retain = !strcasecmp(r, "retain");
	if (!retain && strcasecmp(r, "delete"))
		LOG_WARN("Failed to set '%s' Job Retention Policy -- invalid input: falling back to 'delete' Job "
			 "Retention Policy", retention);
	free(ret);
	char bad[160] = "";
	if (max_surge < 0)
		snprintf(bad, sizeof bad, "--jobs-max-surge=%d: must be 0 (no limit) or more", max_surge);
	else if (workers < 1)
		snprintf(bad, sizeof bad, "--workers=%d: must be 1 or more", workers);
	else if (qps < 0)
		snprintf(bad, sizeof bad, "--kube-api-qps=%g: must be 0 (no limit) or more", qps);
	else if (burst < 1)
		snprintf(bad, sizeof bad, "--kube-api-burst=%d: must be 1 or more", burst);
	else if (deadline_ms <= 0)
		snprintf(bad, sizeof bad, "--image-pull-deadline-duration=%lldms: must be more than 0s",
			 (long long)deadline_ms);
	if (*bad) {
		fprintf(stderr, "%s: invalid value %s\n", cmd, bad);
		rc = 2;
		goto out;
	}
	if (strcmp(mode, "jobs") && strcmp(mode, "agent")) {
		fprintf(stderr, "kubefledged controller: invalid value --mode=%s: must be jobs or agent\n", mode);
		rc = 2;
		goto out;
	}
	json_error_t je;
	tolerations = json_loads(tolerations_text, 0, &je);
	if (!json_is_array(tolerations)) {
		fprintf(stderr, "kubefledged controller: invalid value --job-tolerations=%s: %s\n", tolerations_text,
			tolerations ? "must be a JSON array of tolerations" : je.text);
		rc = 2;
		goto out;
	}
	resources = json_loads(resources_text, 0, &je);
	if (!json_is_object(resources)) {
		fprintf(stderr, "kubefledged controller: invalid value --job-resources=%s: %s\n", resources_text,
			resources ? "must be a JSON object like {\"requests\": {\"cpu\": \"10m\"}}" : je.text);
		rc = 2;
		goto out;
	}

#ifdef M_ARENA_MAX
	/* The controller's threads spend their lives waiting on the network: one malloc arena serves them
	 * all and keeps about 1 MiB of peak RSS that per-thread arenas hold (bench/controller.sh). */
	mallopt(M_ARENA_MAX, 1);
#endif
	const char *ns = cmd_env_or("KUBEFLEDGED_NAMESPACE", "kube-fledged");
	if (!(client = cmd_connect(kubeconfig, context, master, qps, burst, &cfg)))
		goto out;
	LOG_INFO("kubefledged controller %s (%s) starting: API server %s, context %s", kf_version(), kf_git_version(),
		 cfg->server, cfg->context ? cfg->context : "-");

	cmd_handle_signals(&stop_flag);

	default_helper = xasprintf("kubefledged/kubefledged:%s", kf_version());
	agent_sa_full = !strcmp(agent_sa, "-") ? xstrdup("")
			: *agent_sa ? (strchr(agent_sa, '/') ? xstrdup(agent_sa) : xasprintf("%s/%s", ns, agent_sa))
				    : xasprintf("%s/kubefledged-agent", ns);
	struct ic_controller_opts o = {
		.mode = strcmp(mode, "agent") ? IC_MODE_JOBS : IC_MODE_AGENT,
		.agent_grace_ms = 30000,
		.agent_service_account = agent_sa_full,
		.job = { .busybox_image = cmd_env_or("BUSYBOX_IMAGE", "senthilrch/busybox:1.35.0"),
			 .delete_namespace = ns,
			 .tolerations = tolerations,
			 .resources = resources,
			 .cri_client_image = cmd_env_or("KUBEFLEDGED_CRI_CLIENT_IMAGE", default_helper),
			 .image_pull_policy = pull_policy,
			 .service_account = sa,
			 .priority_class = priority,
			 .delete_job_host_network = host_network,
			 .active_deadline_s = 3600 },
		.cri_socket = cri_socket,
		.pull_deadline_ms = deadline_ms,
		.refresh_ms = refresh_ms,
		.retain_jobs = retain,
		.jobs_max_surge = max_surge,
		.workers = workers,
		.progress_interval_ms = 5000,
	};
	ctl = ic_controller_new(client, &o);
	reg = metrics_new();
	ic_controller_metrics(ctl, reg);
	struct metric *is_leader = metrics_gauge(reg, "kubefledged_controller_leader",
						 "1 while this replica holds the lease (or runs without leader election).", "");
	metric_set(is_leader, 0);
	if (strcmp(metrics_bind, "0")) {
		struct metrics_http_opts mo = { metrics_bind, reg, healthy, ready, ctl };
		http = metrics_http_start(&mo, &err);
		/* caching matters more than its metrics: without the server the controller still works */
		if (!http)
			LOG_ERROR("%s: serving no /metrics, /healthz, /readyz (--metrics-bind-address)", err.buf);
		else
			LOG_INFO("serving /metrics, /healthz and /readyz on %s (port %d)", metrics_bind,
				 metrics_http_port(http));
		sb_reset(&err);
	}

	if (leader_elect) {
		leader = cmd_become_leader(client, *lease_ns ? lease_ns : ns, lease_name, lease_ms, renew_ms, retry_ms,
					   &stop_flag);
		if (!leader) {
			rc = 0;
			goto out;
		}
	}
	metric_set(is_leader, 1);
	atomic_store(&leading, 1);

	rc = ic_controller_run(ctl, &stop_flag) < 0 ? 1 : 0;
	atomic_store(&leading, 0);
	metric_set(is_leader, 0);
	if (cmd_leadership_lost())
		rc = 1;
	struct ic_controller_stats s;
	struct kube_client_stats ks;
	ic_controller_stats(ctl, &s);
	kube_client_stats(client, &ks);
	struct strbuf verbs = STRBUF_INIT;
	for (int v = 0; v < KUBE_VERB_N; v++)
		if (ks.by_verb[v])
			sb_addf(&verbs, "%s%s %llu", verbs.len ? ", " : "", kube_verb_name((enum kube_verb)v),
				(unsigned long long)ks.by_verb[v]);
	LOG_INFO("stopped: %llu syncs, %llu operations, %llu Jobs created, %llu deleted, %llu status writes; "
		 "API: %llu requests (%s), %llu transport errors, %llu 4xx, %llu 5xx, %llu retries after 429/Retry-After, "
		 "%llu writes refused by the fence",
		 (unsigned long long)s.syncs, (unsigned long long)s.operations, (unsigned long long)s.jobs_created,
		 (unsigned long long)s.jobs_deleted, (unsigned long long)s.status_writes,
		 (unsigned long long)ks.requests, verbs.len ? verbs.buf : "none",
		 (unsigned long long)ks.errors_transport, (unsigned long long)ks.errors_4xx,
		 (unsigned long long)ks.errors_5xx, (unsigned long long)ks.retries, (unsigned long long)ks.fenced);
	sb_release(&verbs);
out:
	metrics_http_stop(http); /* scrapes read the controller: they end first */
	ic_controller_free(ctl);
	metrics_free(reg);
	free(default_helper);
	free(agent_sa_full);
	json_decref(tolerations);
	json_decref(resources);
	cmd_leader_done(leader);
	kube_client_free(client);
	kube_config_free(cfg);
	flags_free(tab);
	sb_release(&err);
	return rc;
}

int cmd_controller(int argc, char **argv)
{
	return run_controller(argc, argv, 0);
}

int cmd_upstream_controller(int argc, char **argv)
{
	return run_controller(argc, argv, 1);
}
