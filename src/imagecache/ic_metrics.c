/* ic_metrics.c - the controller's Prometheus metrics (see ic_metrics.h; each one is described in
 * docs/metrics.md).
 *
 * Two kinds: events counted when they happen (syncs, operations, tasks: the hooks below, called by the
 * controller's workers), and state read at scrape time by the collect hook (the work queue, the API
 * client's counters, caches by status from the informer, Jobs and pulls in flight). Running operations
 * are kept in a small table (operation -> start, type, running pull tasks) under this file's own mutex,
 * never the controller's. */
#include "ic_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ic_controller_int.h"
#include "util/version.h"

struct ic_metrics {
	struct metric *info;
	struct metric *wq_depth, *wq_delayed, *wq_adds, *wq_retries, *wq_queue_seconds, *wq_unfinished,
		*wq_longest;
	struct metric *sync_seconds;
	struct metric *api_requests, *api_responses, *api_retries, *api_fenced;
	struct metric *ops, *op_seconds, *ops_running, *tasks;
	struct metric *caches;
	struct metric *in_flight; /* jobs mode: Jobs; agent mode: pull tasks */
	struct metric *jobs_created, *jobs_deleted, *status_writes;
	pthread_mutex_t mu;
	struct map running; /* "%p" of the operation -> struct running_op * */
};

struct running_op {
	enum ic_op_type type;
	int64_t start_ms;
	size_t pulls; /* pull tasks running (agent mode) */
	int finished;
};

static const double sync_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
static const double queue_buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300 };
static const double op_buckets[] = { 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200 };

static const char *const op_types[] = { "create", "update", "refresh", "purge" };
static const char *const statuses[] = { IC_STATUS_PROCESSING, IC_STATUS_SUCCEEDED, IC_STATUS_FAILED,
					IC_STATUS_ABORTED, IC_STATUS_NOIMAGES, "Pending", "Other" };

static const char *key_kind(const char *key)
{
	if (!strncmp(key, IC_NODE_KEY_PREFIX, strlen(IC_NODE_KEY_PREFIX)))
		return "node";
	if (!strncmp(key, IC_NS_KEY_PREFIX, strlen(IC_NS_KEY_PREFIX)))
		return "namespace";
	return "imagecache";
}

static const char *task_result(int state)
{
	switch (state) {
	case IC_TASK_SUCCEEDED: return "succeeded";
	case IC_TASK_PRESENT: return "present";
	case IC_TASK_KEPT: return "kept";
	case IC_TASK_FAILED: return "failed";
	case IC_TASK_UNKNOWN: return "unknown";
	case IC_TASK_CANCELLED: return "cancelled";
	default: return "unfinished";
	}
}

const char *ic_metrics_cache_status(json_t *cache)
{
	json_t *view = ic_status_view(cache);
	const char *s = kf_jstr(view, "status", NULL), *out = "Other";
	if (!s || !*s)
		out = "Pending";
	else
		for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
			if (!strcmp(s, statuses[i]))
				out = statuses[i];
	json_decref(view);
	return out;
}

static void collect(void *ud)
{
	struct ic_controller *ctl = ud;
	struct ic_metrics *m = ctl->metrics;

	struct kube_wq_stats ws;
	kube_wq_stats(ctl->q, &ws);
	metric_set(m->wq_depth, (double)ws.depth);
	metric_set(m->wq_delayed, (double)ws.delayed);
	metric_set(m->wq_adds, (double)ws.adds);
	metric_set(m->wq_retries, (double)ws.retries);
	metric_set(m->wq_unfinished, (double)ws.unfinished_ms / 1000.0);
	metric_set(m->wq_longest, (double)ws.longest_processing_ms / 1000.0);

	struct kube_client_stats cs;
	kube_client_stats(ctl->c, &cs);
	for (int v = 0; v < KUBE_VERB_N; v++)
		if (cs.by_verb[v] || v <= KUBE_VERB_DELETE)
			metric_set(m->api_requests, (double)cs.by_verb[v], kube_verb_name((enum kube_verb)v));
	for (int c = 0; c < KUBE_STATS_CODES; c++) {
		if (!cs.by_code[c])
			continue;
		char code[16];
		snprintf(code, sizeof code, "%d", c);
		metric_set(m->api_responses, (double)cs.by_code[c], c ? code : "<error>");
	}
	metric_set(m->api_retries, (double)cs.retries);
	metric_set(m->api_fenced, (double)cs.fenced);

	metric_set(m->status_writes, (double)atomic_load(&ctl->n_status_writes));
	if (ctl->o.mode == IC_MODE_JOBS) {
		metric_set(m->jobs_created, (double)atomic_load(&ctl->n_jobs_created));
		metric_set(m->jobs_deleted, (double)atomic_load(&ctl->n_jobs_deleted));
		metric_set(m->in_flight, (double)atomic_load(&ctl->active_jobs));
	}

	size_t counts[ARRAY_SIZE(statuses)] = { 0 };
	json_t *caches = kube_informer_list(ctl->caches);
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c) {
		const char *s = ic_metrics_cache_status(c);
		for (size_t k = 0; k < ARRAY_SIZE(statuses); k++)
			if (s == statuses[k])
				counts[k]++;
	}
	json_decref(caches);
	for (size_t k = 0; k < ARRAY_SIZE(statuses); k++)
		metric_set(m->caches, (double)counts[k], statuses[k]);

	size_t running[ARRAY_SIZE(op_types)] = { 0 }, pulls = 0;
	pthread_mutex_lock(&m->mu);
	size_t it = 0;
	void *v;
	while (map_next(&m->running, &it, NULL, &v)) {
		struct running_op *r = v;
		if (r->finished)
			continue;
		if (r->type >= IC_OP_CREATE && r->type <= IC_OP_PURGE)
			running[r->type - IC_OP_CREATE]++;
		pulls += r->pulls;
	}
	pthread_mutex_unlock(&m->mu);
	for (size_t k = 0; k < ARRAY_SIZE(op_types); k++)
		metric_set(m->ops_running, (double)running[k], op_types[k]);
	if (ctl->o.mode == IC_MODE_AGENT)
		metric_set(m->in_flight, (double)pulls);
}

void ic_controller_metrics(struct ic_controller *ctl, struct metrics *r)
{
	if (ctl->metrics)
		return;
	struct ic_metrics *m = xcalloc(1, sizeof *m);
	int agent = ctl->o.mode == IC_MODE_AGENT;
	pthread_mutex_init(&m->mu, NULL);
	m->running = (struct map)MAP_INIT;
	m->info = metrics_gauge(r, "kubefledged_controller_info", "The controller's version and mode (always 1).",
				"version,mode");
	metric_set(m->info, 1, kf_version(), agent ? "agent" : "jobs");

	m->wq_depth = metrics_gauge(r, "kubefledged_controller_workqueue_depth",
				    "Keys in the work queue, ready for a worker.", "");
	m->wq_delayed = metrics_gauge(r, "kubefledged_controller_workqueue_delayed",
				      "Keys waiting for a delay (a requeue or a backoff) before they are queued.", "");
	m->wq_adds = metrics_counter(r, "kubefledged_controller_workqueue_adds_total",
				     "Keys queued (an add of a key already queued does not count).", "");
	m->wq_retries = metrics_counter(r, "kubefledged_controller_workqueue_retries_total",
					"Keys queued again with backoff after a failed sync.", "");
	m->wq_queue_seconds = metrics_histogram(r, "kubefledged_controller_workqueue_queue_duration_seconds",
						"How long keys waited in the queue for a worker.", "kind",
						queue_buckets, ARRAY_SIZE(queue_buckets));
	m->wq_unfinished = metrics_gauge(r, "kubefledged_controller_workqueue_unfinished_work_seconds",
					 "Seconds spent so far by the syncs running now, summed.", "");
	m->wq_longest = metrics_gauge(r, "kubefledged_controller_workqueue_longest_running_processor_seconds",
				      "Seconds spent so far by the longest sync running now.", "");
	m->sync_seconds = metrics_histogram(r, "kubefledged_controller_sync_duration_seconds",
					    "Duration of syncs, by key kind and result.", "kind,result", sync_buckets,
					    ARRAY_SIZE(sync_buckets));

	m->api_requests = metrics_counter(r, "kubefledged_controller_api_requests_total",
					  "Requests sent to the API server, by verb (each retry counts).", "verb");
	m->api_responses = metrics_counter(r, "kubefledged_controller_api_responses_total",
					   "Responses of the API server by HTTP status code (<error>: no response).",
					   "code");
	m->api_retries = metrics_counter(r, "kubefledged_controller_api_retries_total",
					 "Requests retried after a 429 or a Retry-After.", "");
	m->api_fenced = metrics_counter(r, "kubefledged_controller_api_fenced_writes_total",
					"Writes refused without being sent, after leadership was lost.", "");

	m->ops = metrics_counter(r, "kubefledged_controller_operations_total",
				 "Operations finished, by type and result (status.status, or Cancelled).", "type,result");
	m->op_seconds = metrics_histogram(r, "kubefledged_controller_operation_duration_seconds",
					  "Duration of finished operations, by type.", "type", op_buckets,
					  ARRAY_SIZE(op_buckets));
	m->ops_running = metrics_gauge(r, "kubefledged_controller_operations_running", "Operations running, by type.",
				       "type");
	m->tasks = metrics_counter(r, "kubefledged_controller_tasks_total",
				   "Node x image tasks of finished operations, by action and result.", "action,result");
	m->caches = metrics_gauge(r, "kubefledged_controller_imagecaches", "ImageCaches by status.status.", "status");
	m->status_writes = metrics_counter(r, "kubefledged_controller_status_writes_total",
					   "ImageCache status writes.", "");
	if (agent) {
		m->in_flight = metrics_gauge(r, "kubefledged_controller_pulls_in_flight",
					     "Pull tasks the node agents were asked for and have not reported done.", "");
	} else {
		m->in_flight = metrics_gauge(r, "kubefledged_controller_jobs_in_flight",
					     "Pull and delete Jobs in flight (what --jobs-max-surge caps).", "");
		m->jobs_created = metrics_counter(r, "kubefledged_controller_jobs_created_total", "Jobs created.", "");
		m->jobs_deleted = metrics_counter(r, "kubefledged_controller_jobs_deleted_total", "Jobs deleted.", "");
	}
	/* every series that has a fixed set of label values exists from the start, at 0 */
	for (size_t k = 0; k < ARRAY_SIZE(op_types); k++)
		metric_set(m->ops_running, 0, op_types[k]);
	for (size_t k = 0; k < ARRAY_SIZE(statuses); k++)
		metric_set(m->caches, 0, statuses[k]);
	metric_set(m->in_flight, 0);
	ctl->metrics = m;
	metrics_on_collect(r, collect, ctl);
}

int ic_controller_ready(struct ic_controller *ctl, struct strbuf *why)
{
	struct kube_informer *infs[] = { ctl->nodes, ctl->jobs, ctl->pods, ctl->nics, ctl->caches };
	const char *names[] = { "nodes", "jobs", "pods", "nodeimagecaches", "imagecaches" };
	for (size_t i = 0; i < ARRAY_SIZE(infs); i++)
		if (infs[i] && !kube_informer_has_synced(infs[i])) {
			sb_addf(why, "the %s informer has not listed yet", names[i]);
			return 0;
		}
	return 1;
}

void ic_metrics_sync(struct ic_controller *ctl, const char *key, int64_t queued_ms, int64_t took_ms, int rc)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m)
		return;
	const char *kind = key_kind(key);
	metric_observe(m->wq_queue_seconds, (double)queued_ms / 1000.0, kind);
	metric_observe(m->sync_seconds, (double)took_ms / 1000.0, kind, rc < 0 ? "error" : "success");
}

static void op_key(const struct ic_op *op, char *buf, size_t n)
{
	snprintf(buf, n, "%p", (const void *)op);
}

void ic_metrics_op_started(struct ic_controller *ctl, const struct ic_op *op)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m)
		return;
	char key[32];
	op_key(op, key, sizeof key);
	struct running_op *r = xcalloc(1, sizeof *r);
	r->type = op->type;
	r->start_ms = kf_now_ms();
	pthread_mutex_lock(&m->mu);
	free(map_put(&m->running, key, r));
	pthread_mutex_unlock(&m->mu);
}

void ic_metrics_op_progress(struct ic_controller *ctl, const struct ic_op *op)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m || ctl->o.mode != IC_MODE_AGENT)
		return;
	size_t pulls = 0;
	for (size_t i = 0; i < op->ts.n; i++)
		pulls += op->ts.v[i].state == IC_TASK_RUNNING && op->ts.v[i].action == IC_ACTION_PULL;
	char key[32];
	op_key(op, key, sizeof key);
	pthread_mutex_lock(&m->mu);
	struct running_op *r = map_get(&m->running, key);
	if (r)
		r->pulls = pulls;
	pthread_mutex_unlock(&m->mu);
}

void ic_metrics_op_finished(struct ic_controller *ctl, const struct ic_op *op, const char *status)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m)
		return;
	char key[32];
	op_key(op, key, sizeof key);
	int64_t start = -1;
	pthread_mutex_lock(&m->mu);
	struct running_op *r = map_get(&m->running, key);
	if (r && !r->finished) {
		r->finished = 1;
		r->pulls = 0;
		start = r->start_ms;
	}
	pthread_mutex_unlock(&m->mu);
	if (start < 0)
		return;
	const char *type = ic_op_name(op->type);
	metric_add(m->ops, 1, type, status);
	metric_observe(m->op_seconds, (double)(kf_now_ms() - start) / 1000.0, type);
	/* tasks by (action, state): counted in a small table first, one metric update per pair */
	uint64_t n[2][IC_TASK_CANCELLED + 1] = { { 0 } };
	for (size_t i = 0; i < op->ts.n; i++) {
		const struct ic_task *t = &op->ts.v[i];
		if (t->action <= IC_ACTION_DELETE && t->state <= IC_TASK_CANCELLED)
			n[t->action][t->state]++;
	}
	for (int a = 0; a < 2; a++)
		for (int s = IC_TASK_SUCCEEDED; s <= IC_TASK_CANCELLED; s++)
			if (n[a][s])
				metric_add(m->tasks, (double)n[a][s], a == IC_ACTION_PULL ? "pull" : "delete",
					   task_result(s));
}

void ic_metrics_op_freed(struct ic_controller *ctl, const struct ic_op *op)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m)
		return;
	char key[32];
	op_key(op, key, sizeof key);
	pthread_mutex_lock(&m->mu);
	struct running_op *r = map_del(&m->running, key);
	pthread_mutex_unlock(&m->mu);
	if (r && !r->finished)
		metric_add(m->ops, 1, ic_op_name(r->type), "Cancelled");
	free(r);
}

void ic_metrics_free(struct ic_controller *ctl)
{
	struct ic_metrics *m = ctl->metrics;
	if (!m)
		return;
	map_free(&m->running, free);
	pthread_mutex_destroy(&m->mu);
	free(m);
	ctl->metrics = NULL;
}
