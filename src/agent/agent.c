/* agent.c - the engine: nodes, the sync loop, the pull pool's callbacks, metrics (see agent.h). */
#include "agent.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_workqueue.h"
#include "util/log.h"
#include "util/map.h"
#include "util/util.h"

struct agent_metrics {
	struct metric *pulls, *pull_seconds, *pulled_bytes, *images, *self_heals, *disk_refusals, *deletes,
		*status_writes;
};

struct agent {
	struct agent_opts o;
	struct agent_pull_env env;
	struct map nodes;          /* name -> struct agent_node * */
	struct agent_node **list;  /* the same, in order of addition */
	size_t n_nodes;
	struct kube_workqueue *q;
	struct agent_sched *sched;
	pthread_t *sync_threads;
	int n_sync;
	int started;
	volatile int stopping;     /* keys still queued are dropped, not synced */
	struct agent_metrics m;
	_Atomic uint64_t syncs, pulls, pull_failures, self_heals, disk_refusals, deletes, status_writes,
		status_write_errors;
};

static const double pull_buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

static void collect(void *ud)
{
	struct agent *a = ud;
	size_t d = 0, p = 0, pu = 0, f = 0;
	for (size_t i = 0; i < a->n_nodes; i++) {
		size_t nd, np, npu, nf;
		agent_node_counts(a->list[i], &nd, &np, &npu, &nf);
		d += nd;
		p += np;
		pu += npu;
		f += nf;
	}
	metric_set(a->m.images, (double)d, "desired");
	metric_set(a->m.images, (double)p, "present");
	metric_set(a->m.images, (double)pu, "pulling");
	metric_set(a->m.images, (double)f, "failed");
}

static void register_metrics(struct agent *a)
{
	struct metrics *r = a->o.metrics;
	a->m.pulls = metrics_counter(r, "kubefledged_agent_pulls_total",
				     "Image pull attempts by result (success, failed: for good, retried: a transient "
				     "error, tried again) and cause (\"\" on success).", "result,cause");
	a->m.pull_seconds = metrics_histogram(r, "kubefledged_agent_pull_duration_seconds",
					      "Duration of pull attempts, by result.", "result", pull_buckets,
					      ARRAY_SIZE(pull_buckets));
	a->m.pulled_bytes = metrics_counter(r, "kubefledged_agent_pulled_bytes_total",
					    "Size of the images pulled (as the runtime reports it).", NULL);
	a->m.images = metrics_gauge(r, "kubefledged_agent_images",
				    "Images of the NodeImageCache specs by state: desired (Pull entries), present, "
				    "pulling, failed.", "state");
	a->m.self_heals = metrics_counter(r, "kubefledged_agent_self_heal_pulls_total",
					  "Pulls of images that were present and vanished behind the agent's back "
					  "(kubelet image GC, crictl rmi).", NULL);
	a->m.disk_refusals = metrics_counter(r, "kubefledged_agent_disk_refusals_total",
					     "Pulls refused because the image filesystem would pass "
					     "--image-fs-threshold.", NULL);
	a->m.deletes = metrics_counter(r, "kubefledged_agent_deletes_total",
				       "Delete entries handled, by result: removed, kept (in use or pinned), failed.",
				       "result");
	a->m.status_writes = metrics_counter(r, "kubefledged_agent_status_writes_total",
					     "NodeImageCache status writes, by result (ok, error).", "result");
	metrics_on_collect(r, collect, a);
}

struct agent *agent_new(const struct agent_opts *o)
{
	struct agent *a = xcalloc(1, sizeof *a);
	a->o = *o;
	if (a->o.node.poll_ms <= 0)
		a->o.node.poll_ms = 5000;
	if (a->o.node.pull_deadline_ms <= 0)
		a->o.node.pull_deadline_ms = 5 * 60 * 1000;
	if (a->o.max_parallel_pulls < 1)
		a->o.max_parallel_pulls = 1;
	if (a->o.max_parallel_pulls_per_registry < 1)
		a->o.max_parallel_pulls_per_registry = 1;
	if (a->o.pull_workers < 1)
		a->o.pull_workers = a->o.max_parallel_pulls;
	if (a->o.sync_workers < 1)
		a->o.sync_workers = 1;
	a->env.cfg = &a->o.node;
	a->env.host_root = a->o.host_root ? a->o.host_root : "";
	a->env.get_secret = a->o.api.get_secret;
	a->env.ud = a->o.api.ud;
	if (!a->o.metrics) {
		LOG_ERROR("agent: no metrics registry");
		abort();
	}
	register_metrics(a);
	a->q = kube_wq_new("nodes", 200, 30000);
	return a;
}

void agent_add_node(struct agent *a, const char *name, struct agent_runtime *rt)
{
	struct agent_node *n = agent_node_new(name, rt);
	map_put(&a->nodes, name, n);
	a->list = xrealloc(a->list, (a->n_nodes + 1) * sizeof *a->list);
	a->list[a->n_nodes++] = n;
}

struct agent_node *agent_find_node(struct agent *a, const char *name)
{
	return map_get(&a->nodes, name);
}

void agent_notify(struct agent *a, const char *name)
{
	if (map_get(&a->nodes, name))
		kube_wq_add(a->q, name);
}

/* ---- pulls (pool threads) ---- */

static void run_pull(void *ud, struct agent_job *job)
{
	struct agent *a = ud;
	struct agent_pull_job *j = (struct agent_pull_job *)job;
	struct agent_pull_result r;
	struct agent_pull_error cls;
	int final = 1;
	agent_pull_run(&a->env, j, &r);
	agent_node_pull_done(j->node, &a->o.node, j, &r, kf_now_ms(), &cls, &final);
	double secs = (double)r.duration_ms / 1000.0;
	if (r.disk_refused) {
		a->disk_refusals++;
		metric_add(a->m.disk_refusals, 1);
		LOG_V(1, "node %s: %s: %s", j->node->name, j->image, r.message);
	} else if (r.ok) {
		a->pulls++;
		metric_add(a->m.pulls, 1, "success", "");
		metric_observe(a->m.pull_seconds, secs, "success");
		metric_add(a->m.pulled_bytes, (double)r.size);
		if (j->self_heal) {
			a->self_heals++;
			metric_add(a->m.self_heals, 1);
			LOG_INFO("node %s: pulled %s again (it had vanished) in %.1fs", j->node->name, j->image, secs);
		} else {
			LOG_V(1, "node %s: pulled %s in %.1fs", j->node->name, j->image, secs);
		}
	} else {
		a->pull_failures++;
		const char *result = final ? "failed" : "retried";
		metric_add(a->m.pulls, 1, result, cls.cause);
		metric_observe(a->m.pull_seconds, secs, result);
		if (final)
			LOG_WARN("node %s: pull %s failed (%s): %s", j->node->name, j->image, cls.cause, r.message);
		else
			LOG_V(1, "node %s: pull %s: %s (%s), will retry", j->node->name, j->image, r.message, cls.cause);
	}
	kube_wq_add(a->q, j->node->name);
	agent_pull_result_clear(&r);
	agent_pull_job_free(j);
}

static void drop_job(void *ud, struct agent_job *job)
{
	(void)ud;
	agent_pull_job_free((struct agent_pull_job *)job);
}

/* ---- sync ---- */

#define GATHER_MS 250

static void write_status(struct agent *a, struct agent_node *n, int64_t now, int64_t *wake)
{
	pthread_mutex_lock(&n->mu);
	int have_nic = n->have_nic;
	int fresh = n->seq != n->rendered_seq;
	int64_t due = n->write_after_ms;
	pthread_mutex_unlock(&n->mu);
	if (!have_nic || (!fresh && !due)) {
		pthread_mutex_lock(&n->mu);
		n->rendered_seq = n->seq; /* nothing to write to */
		pthread_mutex_unlock(&n->mu);
		return;
	}
	uint64_t hash, seq;
	int busy;
	json_t *st = agent_node_status(n, &a->o.node, time(NULL), &hash, &seq, &busy);
	pthread_mutex_lock(&n->mu);
	n->rendered_seq = seq;
	int same = n->have_written && hash == n->written_hash;
	int64_t last = n->last_write_ms;
	pthread_mutex_unlock(&n->mu);
	if (same) {
		pthread_mutex_lock(&n->mu);
		n->write_after_ms = 0;
		pthread_mutex_unlock(&n->mu);
		json_decref(st);
		return;
	}
	/* Coalescing: while pulls run, at most one write per status interval; once settled, at once. The first
	 * change of a busy spell waits a moment (GATHER_MS) too: pulls that finish within it (images already
	 * there, small ones, a simulated runtime) then cost one write, Pulling and Present together, not two. */
	int64_t at = 0;
	if (busy && last && now - last < a->o.node.status_interval_ms)
		at = last + a->o.node.status_interval_ms;
	else if (busy && !due)
		at = now + (a->o.node.status_interval_ms < GATHER_MS ? a->o.node.status_interval_ms : GATHER_MS);
	else if (busy && now < due)
		at = due;
	if (at > now) {
		pthread_mutex_lock(&n->mu);
		n->write_after_ms = at;
		pthread_mutex_unlock(&n->mu);
		if (!*wake || at < *wake)
			*wake = at;
		json_decref(st);
		return;
	}
	struct strbuf err = STRBUF_INIT;
	int rc = a->o.api.patch_status(a->o.api.ud, n->name, st, &err);
	json_decref(st);
	pthread_mutex_lock(&n->mu);
	if (rc == 0) {
		n->written_hash = hash;
		n->have_written = 1;
		n->last_write_ms = now;
		n->write_after_ms = 0;
		n->status_writes++;
	} else {
		n->rendered_seq = 0; /* render again next time */
		n->write_after_ms = now + 1000;
	}
	pthread_mutex_unlock(&n->mu);
	if (rc == 0) {
		a->status_writes++;
		metric_add(a->m.status_writes, 1, "ok");
	} else {
		a->status_write_errors++;
		metric_add(a->m.status_writes, 1, "error");
		LOG_WARN("node %s: status write failed: %s", n->name, err.buf);
		if (!*wake || now + 1000 < *wake)
			*wake = now + 1000;
	}
	sb_release(&err);
}

void agent_sync_node(struct agent *a, const char *name)
{
	struct agent_node *n = map_get(&a->nodes, name);
	if (!n)
		return;
	a->syncs++;
	int64_t now = kf_now_ms();
	pthread_mutex_lock(&n->mu);
	int fresh = !n->seeded;
	pthread_mutex_unlock(&n->mu);
	int ok = 1;
	json_t *nic = a->o.api.get_nic(a->o.api.ud, name, fresh, &ok);
	agent_node_set_spec(n, nic, fresh && ok);
	json_decref(nic);

	struct agent_observe_events ev = { 0 };
	struct strbuf err = STRBUF_INIT;
	if (agent_node_observe(n, &a->o.node, now, &ev, &err) < 0) {
		LOG_WARN("node %s: cannot list the runtime's images: %s", name, err.buf);
		pthread_mutex_lock(&n->mu);
		n->next_poll_ms = now + a->o.node.poll_ms;
		pthread_mutex_unlock(&n->mu);
	}
	sb_release(&err);
	if (ev.self_heals)
		LOG_INFO("node %s: %zu cached image(s) vanished from the runtime: pulling them again", name,
			 ev.self_heals);

	struct agent_plan plan;
	agent_node_plan(n, &a->o.node, now, &plan);
	for (size_t i = 0; i < plan.n_pulls; i++)
		agent_sched_submit(a->sched, &plan.pulls[i]->base);
	plan.n_pulls = 0; /* the scheduler owns them now */
	for (size_t i = 0; i < plan.n_deletes; i++) {
		const char *outcome = "failed";
		agent_node_delete(n, &a->o.node, plan.deletes[i], &outcome);
		if (strcmp(outcome, "skipped")) {
			a->deletes++;
			metric_add(a->m.deletes, 1, outcome);
		}
	}
	int64_t wake = plan.wake_ms;
	agent_plan_clear(&plan);
	write_status(a, n, kf_now_ms(), &wake);
	if (wake) {
		int64_t d = wake - kf_now_ms();
		kube_wq_add_after(a->q, name, d > 0 ? d : 0);
	}
}

static void *sync_worker(void *arg)
{
	struct agent *a = arg;
	char *key;
	while ((key = kube_wq_get(a->q))) {
		if (!a->stopping)
			agent_sync_node(a, key);
		kube_wq_done(a->q, key);
		free(key);
	}
	return NULL;
}

int agent_start(struct agent *a)
{
	struct agent_sched_opts so = { a->o.pull_workers, a->o.max_parallel_pulls, a->o.max_parallel_pulls_per_registry };
	a->sched = agent_sched_new(&so, run_pull, a);
	if (agent_sched_start(a->sched) < 0)
		return -1;
	a->sync_threads = xcalloc((size_t)a->o.sync_workers, sizeof *a->sync_threads);
	for (int i = 0; i < a->o.sync_workers; i++) {
		if (pthread_create(&a->sync_threads[i], NULL, sync_worker, a))
			return -1;
		a->n_sync++;
	}
	a->started = 1;
	for (size_t i = 0; i < a->n_nodes; i++)
		kube_wq_add(a->q, a->list[i]->name);
	return 0;
}

void agent_stop(struct agent *a, int64_t grace_ms)
{
	(void)grace_ms;
	if (!a->started)
		return;
	a->stopping = 1; /* a stop at scale must not sync a thousand queued nodes first */
	kube_wq_shutdown(a->q);
	for (int i = 0; i < a->n_sync; i++)
		pthread_join(a->sync_threads[i], NULL);
	a->n_sync = 0;
	agent_sched_stop(a->sched, drop_job);
	a->started = 0;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	agent_stop(a, 0);
	agent_sched_free(a->sched);
	kube_wq_free(a->q);
	free(a->sync_threads);
	for (size_t i = 0; i < a->n_nodes; i++)
		agent_node_free(a->list[i]);
	free(a->list);
	map_free(&a->nodes, NULL);
	free(a);
}

int agent_idle(struct agent *a)
{
	size_t waiting = 0, running = 0;
	if (a->sched)
		agent_sched_counts(a->sched, &waiting, &running);
	if (waiting || running)
		return 0;
	for (size_t i = 0; i < a->n_nodes; i++) {
		struct agent_node *n = a->list[i];
		int pending;
		pthread_mutex_lock(&n->mu);
		pending = n->write_after_ms != 0 || n->seq != n->rendered_seq;
		pthread_mutex_unlock(&n->mu);
		if (pending || agent_node_busy(n))
			return 0;
	}
	return 1;
}

void agent_stats(struct agent *a, struct agent_stats *out)
{
	memset(out, 0, sizeof *out);
	out->syncs = a->syncs;
	out->pulls = a->pulls;
	out->pull_failures = a->pull_failures;
	out->self_heals = a->self_heals;
	out->disk_refusals = a->disk_refusals;
	out->deletes = a->deletes;
	out->status_writes = a->status_writes;
	out->status_write_errors = a->status_write_errors;
}
