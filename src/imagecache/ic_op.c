/* ic_op.c - the life of an ImageCache operation, the same in both modes: start (plan the tasks, write
 * Processing), continue (the mode carries tasks out; progress is written at most every progress interval;
 * tasks of nodes that left are cancelled), finish (final status with upstream's words, appliedSpec as the
 * outcome, an Event, owed annotation removals). ic_sync.c decides which operation runs; ic_op_jobs.c (and
 * the agent mode) carry tasks out. */
#include <string.h>

#include "ic_controller_int.h"
#include "ic_jobs.h"
#include "ic_metrics.h"
#include "ic_nodeplan.h"
#include "ic_plan.h"
#include "util/log.h"

void ic_op_free(struct ic_controller *ctl, struct ic_op *op)
{
	if (!op)
		return;
	if (op->seen_versions) /* agent mode, started: its requests go */
		ic_agent_release(ctl, op);
	ic_metrics_op_freed(ctl, op);
	free(op->seen_versions);
	json_decref(op->stale_digests);
	free(op->name);
	for (size_t i = 0; i < op->ts.n; i++)
		if (op->ts.v[i].state == IC_TASK_RUNNING && op->ts.v[i].job_name)
			atomic_fetch_sub(&ctl->active_jobs, 1);
	ic_tasks_release(&op->ts);
	ic_spec_free(&op->spec);
	json_decref(op->applied_before);
	json_decref(op->merge_from);
	free(op->spec_hash);
	free(op->ns);
	free(op);
}

void ic_op_attach(struct ic_controller *ctl, struct ic_cache_state *st, struct ic_op *op)
{
	pthread_mutex_lock(&ctl->mu);
	st->op = op;
	st->op_running = op != NULL;
	pthread_mutex_unlock(&ctl->mu);
}

/* A node joined, or a Node was deleted: 1 when gone_nodes names it. */
static int any_gone(struct ic_controller *ctl, struct ic_cache_state *st)
{
	pthread_mutex_lock(&ctl->mu);
	int n = st->gone_nodes.len != 0;
	pthread_mutex_unlock(&ctl->mu);
	return n;
}

/* Cancels the unfinished tasks of nodes that left the cluster (their Jobs could never run). */
static void cancel_gone(struct ic_controller *ctl, struct ic_cache_state *st, struct ic_op *op)
{
	pthread_mutex_lock(&ctl->mu);
	struct map gone = st->gone_nodes;
	st->gone_nodes = (struct map)MAP_INIT;
	pthread_mutex_unlock(&ctl->mu);
	size_t it = 0;
	const char *name;
	while (map_next(&gone, &it, &name, NULL)) {
		long ni = ic_tasks_node_index(&op->ts, name);
		if (ni < 0)
			continue;
		size_t from, to, n = 0;
		ic_tasks_node_range(&op->ts, (uint32_t)ni, &from, &to);
		for (size_t i = from; i < to; i++) {
			struct ic_task *t = &op->ts.v[i];
			if (ic_task_done(t->state))
				continue;
			if (t->job_name && ctl->o.mode == IC_MODE_JOBS)
				ic_jobs_cancel(ctl, op, t);
			ic_task_set_result(t, IC_TASK_CANCELLED, "NodeDeleted", "the node was deleted");
			n++;
		}
		if (n)
			LOG_INFO("node %s was deleted: %zu unfinished tasks cancelled", name, n);
	}
	map_free(&gone, NULL);
}

static int finish(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	struct ic_op *op = st->op;
	time_t now = time(NULL);
	json_t *view = ic_status_view(obj);
	json_t *final = ic_status_final(op->type, &op->ts, op->node_join ? op->merge_from : NULL, op->start, now);
	json_t *applied = op->node_join ? NULL
					: ic_applied_outcome(op->type, json_object_get(op->spec.json, "cacheSpec"),
							     op->applied_before, &op->ts);
	ic_status_decorate(final, view, op->generation, applied, now);
	ic_status_set_progress(final, &op->ts);
	if (op->stale_digests)
		json_object_set(final, "staleDigests", op->stale_digests);
	int rc = ic_write_status(ctl, st, obj, final, op->spec_hash);
	json_decref(applied);
	json_decref(view);
	if (rc < 0) {
		json_decref(final);
		return -1;
	}
	const char *s = kf_jstr(final, "status", NULL), *r = kf_jstr(final, "reason", NULL),
		   *m = kf_jstr(final, "message", NULL);
	LOG_INFO("ImageCache %s/%s: %s finished: %s (%s)", ic_meta(obj, "namespace"), ic_meta(obj, "name"),
		 ic_op_name(op->type), s, m);
	ic_metrics_op_finished(ctl, op, s);
	kube_event(ctl->rec, obj, strcmp(s, IC_STATUS_FAILED) ? "Normal" : "Warning", r, "%s", m);
	/* the failures cut from the status, in full, one Event per image */
	json_t *cut = ic_status_cut_failures(&op->ts);
	size_t i;
	json_t *c;
	json_array_foreach(cut, i, c) {
		kube_event(ctl->rec, obj, "Warning", "ImagePullFailures", "%s failed on %lld nodes: %s",
			   kf_jstr(c, "image", NULL), (long long)json_integer_value(json_object_get(c, "count")),
			   kf_jstr(c, "nodes", NULL));
	}
	json_decref(cut);
	size_t kept = 0;
	for (size_t k = 0; k < op->ts.n; k++)
		kept += op->ts.v[k].state == IC_TASK_KEPT;
	if (kept)
		kube_event(ctl->rec, obj, "Normal", "ImagesKept",
			   "%zu node-image removals skipped: the image is wanted by another ImageCache, used by a "
			   "container, or pinned by the runtime", kept);
	json_decref(final);
	pthread_mutex_lock(&ctl->mu);
	st->owed[0] = op->annotations[0];
	st->owed[1] = op->annotations[1];
	pthread_mutex_unlock(&ctl->mu);
	ic_op_attach(ctl, st, NULL);
	ic_op_free(ctl, op);
	*requeue_ms = 1; /* the next trigger (an annotation to remove, an edit made meanwhile) is due now */
	return 0;
}

int ic_op_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	struct ic_op *op = st->op;
	if (any_gone(ctl, st))
		cancel_gone(ctl, st, op);
	int rc = ctl->o.mode == IC_MODE_AGENT ? ic_agent_continue(ctl, st, obj, requeue_ms)
					     : ic_jobs_continue(ctl, st, obj, requeue_ms);
	struct ic_task_counts c;
	ic_tasks_count(&op->ts, &c);
	if (c.done == c.total && ctl->o.mode == IC_MODE_AGENT && ic_agent_check_digests(ctl, op)) {
		ic_tasks_count(&op->ts, &c);
		*requeue_ms = 1000;
	}
	ic_metrics_op_progress(ctl, op);
	if (c.done == c.total)
		return finish(ctl, st, obj, requeue_ms);
	/* progress, at most every progress interval */
	int64_t now = kf_now_ms();
	if (c.done != op->last_progress_done && now - op->last_progress_ms >= ctl->o.progress_interval_ms) {
		json_t *p = json_pack("{s:I, s:I, s:I}", "total", (json_int_t)c.total, "done", (json_int_t)c.done,
				      "failed", (json_int_t)c.failed);
		if (ic_write_progress(ctl, st, obj, p) == 0) {
			op->last_progress_ms = now;
			op->last_progress_done = c.done;
		}
		json_decref(p);
	}
	if (c.done != op->last_progress_done && (*requeue_ms == 0 || *requeue_ms > ctl->o.progress_interval_ms))
		*requeue_ms = ctl->o.progress_interval_ms;
	return rc;
}

/* The delete guard: another ImageCache still wants the image on that node. */
struct guard {
	struct ic_controller *ctl;
	struct ic_cacheset *cs;
	const char *self_uid;
};

static int wanted_elsewhere(void *ud, const char *node, const char *canonical)
{
	struct guard *g = ud;
	pthread_mutex_lock(&g->ctl->mu);
	json_t *labels = json_incref(map_get(&g->ctl->node_labels, node));
	pthread_mutex_unlock(&g->ctl->mu);
	int wants = ic_cacheset_owners(g->cs, json_is_object(labels) ? labels : NULL, canonical, g->self_uid) > 0;
	json_decref(labels);
	return wants;
}

int ic_op_start(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const struct ic_spec *spec,
		const struct ic_op_request *req, int64_t *requeue_ms)
{
	json_t *view = ic_status_view(obj);
	long long gen = json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
	const char *ns = ic_meta(obj, "namespace"), *name = ic_meta(obj, "name");

	/* a node-join refresh covers only the new nodes; any other operation covers them all */
	const char **only = NULL;
	size_t n_only = 0;
	pthread_mutex_lock(&ctl->mu);
	if (req->node_join && st->new_nodes.len) {
		only = xcalloc(st->new_nodes.len, sizeof *only);
		size_t it = 0;
		const char *k;
		while (map_next(&st->new_nodes, &it, &k, NULL))
			only[n_only++] = xstrdup(k);
	}
	map_free(&st->new_nodes, NULL);
	map_free(&st->gone_nodes, NULL);
	if (req->type == IC_OP_CREATE || req->type == IC_OP_REFRESH || req->type == IC_OP_UPDATE)
		st->refresh_due = 0;
	pthread_mutex_unlock(&ctl->mu);
	if (req->node_join && !n_only) {
		json_decref(view);
		return 0;
	}

	/* what the nodes hold, checked before anything is deleted from it */
	struct ic_spec applied;
	int have_applied = 0;
	json_t *aj = json_object_get(view, "appliedSpec");
	if (aj) {
		json_t *wrap = json_pack("{s:O}", "spec", aj);
		struct strbuf err = STRBUF_INIT;
		have_applied = ic_spec_parse(wrap, &applied, &err) == 0;
		if (!have_applied)
			LOG_WARN("ImageCache %s/%s: ignoring unreadable status.appliedSpec: %s", ns, name, err.buf);
		sb_release(&err);
		json_decref(wrap);
	}

	struct ic_op *op = xcalloc(1, sizeof *op);
	op->type = req->type;
	op->ns = xstrdup(ns ? ns : "");
	op->name = xstrdup(name ? name : "");
	op->generation = gen;
	op->spec_hash = ic_spec_hash(json_object_get(obj, "spec"));
	op->start = time(NULL);
	op->annotations[0] = req->annotations[0];
	op->annotations[1] = req->annotations[1];
	op->node_join = req->node_join;
	if (op->node_join)
		op->merge_from = json_incref(view);
	op->applied_before = have_applied ? json_incref(json_object_get(aj, "cacheSpec")) : NULL;
	ic_tasks_init(&op->ts);
	json_t *nodes = kube_informer_list(ctl->nodes);
	struct guard g = { ctl, NULL, ic_meta(obj, "uid") };
	if (req->type != IC_OP_CREATE) {
		json_t *caches = kube_informer_list(ctl->caches);
		g.cs = ic_cacheset_new(caches);
		json_decref(caches);
	}
	struct ic_plan_input in = {
		.op = req->type,
		.spec = spec,
		.applied = have_applied ? &applied : NULL,
		.nodes = nodes,
		.only_nodes = only,
		.n_only = n_only,
		.pull_policy = ctl->o.job.image_pull_policy,
		.cri_socket = ctl->o.cri_socket,
		.recent = ic_recent_lookup,
		.recent_ud = ctl,
		.explicit_request = req->type == IC_OP_REFRESH && req->annotations[0] != NULL,
		.leftovers_only = req->leftovers_only,
		.agent_mode = ctl->o.mode == IC_MODE_AGENT,
		.wanted_elsewhere = g.cs ? wanted_elsewhere : NULL,
		.wanted_ud = &g,
	};
	ic_plan(&in, &op->ts);
	ic_cacheset_free(g.cs);
	json_decref(nodes);
	if (have_applied)
		ic_spec_free(&applied);
	for (size_t i = 0; i < n_only; i++)
		free((char *)only[i]);
	free(only);
	/* keep a reference to the spec (its JSON, for pull secrets and the appliedSpec afterwards) */
	struct strbuf err = STRBUF_INIT;
	ic_spec_parse(obj, &op->spec, &err);
	sb_release(&err);

	json_t *proc = ic_status_processing(req->type, op->start);
	ic_status_decorate(proc, view, gen, NULL, op->start);
	ic_status_set_progress(proc, &op->ts);
	json_decref(view);
	if (ic_write_status(ctl, st, obj, proc, op->spec_hash) < 0) {
		json_decref(proc);
		ic_op_free(ctl, op);
		return -1;
	}
	json_decref(proc);
	size_t present = 0;
	for (size_t i = 0; i < op->ts.n; i++)
		present += op->ts.v[i].state == IC_TASK_PRESENT;
	LOG_INFO("ImageCache %s/%s: %s started (generation %lld): %zu node-image tasks, %zu already present%s", ns,
		 name, ic_op_name(req->type), gen, op->ts.n, present, req->node_join ? " (new nodes)" : "");
	atomic_fetch_add(&ctl->n_ops, 1);
	ic_op_attach(ctl, st, op);
	ic_metrics_op_started(ctl, op);
	if (ctl->o.mode == IC_MODE_AGENT)
		ic_agent_start(ctl, op);
	else if (req->adopt)
		ic_jobs_adopt(ctl, obj, op);
	return ic_op_continue(ctl, st, obj, requeue_ms);
}
