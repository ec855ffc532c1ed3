/* ic_sync.c - the sync of one ImageCache: decide which operation is due, plan it, create and watch its
 * Jobs, enforce per-Job deadlines, and write the status. Called by a worker with a key; never blocks on a
 * Job: it returns and is called again when a Job, Pod, Node or the cache changes, or when asked to requeue.
 *
 * Order of precedence when idle (one operation at a time):
 *   leftovers of a previous controller (first sync after start or failover): a cache found Processing is
 *     marked Aborted (upstream's word) and the same operation resumes at once, adopting its running Jobs;
 *     finished Jobs left behind are deleted (no orphans);
 *   an owed annotation removal;
 *   purge annotation -> purge; no status -> create; spec generation != applied generation -> update;
 *   refresh annotation -> refresh; periodic tick -> refresh; nodes that joined or started matching -> refresh
 *   of those nodes only. A purged cache is not refreshed by the tick or by joining nodes (upstream). */
#include <string.h>
#include <time.h>

#include "ic_compat.h"
#include "ic_controller_int.h"
#include "util/imageref.h"
#include "ic_jobs.h"
#include "ic_plan.h"
#include "ic_tracker.h"
#include "ic_validate.h"
#include "util/log.h"
#include "util/util.h"

#define JOB_VISIBLE_GRACE_MS 60000 /* a created Job the informer has not shown after this is gone */
#define WRITE_CATCHUP_MS 10000     /* longest wait for the informer to show our own last write */

void ic_op_free(struct ic_controller *ctl, struct ic_op *op)
{
	if (!op)
		return;
	for (size_t i = 0; i < op->n; i++)
		if (op->tasks[i].state == IC_TASK_RUNNING)
			atomic_fetch_sub(&ctl->active_jobs, 1);
	ic_tasks_free(op->tasks, op->n);
	ic_spec_free(&op->spec);
	json_decref(op->applied);
	free(op);
}

static const char *meta(json_t *obj, const char *field)
{
	return kf_jstr(obj, "metadata", field, NULL);
}

static int has_annotation(json_t *obj, const char *key)
{
	return kf_jget(obj, "metadata", "annotations", key, NULL) != NULL;
}

static int delete_job(struct ic_controller *ctl, const char *ns, const char *name)
{
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &KUBE_JOBS, ns, name, NULL);
	struct kube_err err;
	int rc = kube_delete(ctl->c, path.buf, "Background", &err);
	sb_release(&path);
	if (rc == 0 || kube_err_is_not_found(&err)) {
		atomic_fetch_add(&ctl->n_jobs_deleted, 1);
		return 0;
	}
	LOG_WARN("deleting Job %s/%s failed (HTTP %ld): %s; will retry", ns, name, err.code, err.msg);
	return -1;
}

static int job_owned_by(json_t *job, const char *uid)
{
	size_t i;
	json_t *r;
	json_array_foreach(kf_jget(job, "metadata", "ownerReferences", NULL), i, r) {
		const char *u = json_string_value(json_object_get(r, "uid"));
		if (u && uid && !strcmp(u, uid))
			return 1;
	}
	return 0;
}

/* The Jobs of this cache currently in the informer (new array of references). */
static json_t *cache_jobs(struct ic_controller *ctl, json_t *obj)
{
	json_t *all = kube_informer_list(ctl->jobs), *mine = json_array();
	const char *ns = meta(obj, "namespace"), *uid = meta(obj, "uid");
	size_t i;
	json_t *j;
	json_array_foreach(all, i, j) {
		const char *jns = meta(j, "namespace");
		if (jns && ns && !strcmp(jns, ns) && job_owned_by(j, uid))
			json_array_append(mine, j);
	}
	json_decref(all);
	return mine;
}

static int same_image(const char *a, const char *b)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int m = imageref_parse(a, &r, &err) == 0 ? imageref_matches(&r, b) : !strcmp(a, b);
	sb_release(&err);
	return m;
}

/* Attaches the cache's surviving Jobs to the matching pending tasks of op (a restarted controller picks up
 * where the previous one stopped) and deletes every other Job of the cache. With op = NULL every Job of
 * the cache is a leftover. */
static void adopt_or_delete_jobs(struct ic_controller *ctl, json_t *obj, struct ic_op *op)
{
	json_t *jobs = cache_jobs(ctl, obj);
	size_t i;
	json_t *j;
	time_t now = time(NULL);
	json_array_foreach(jobs, i, j) {
		const char *jname = meta(j, "name"), *ns = meta(j, "namespace");
		const char *node = kf_jstr(j, "metadata", "annotations", IC_ANN_NODE, NULL);
		const char *image = kf_jstr(j, "metadata", "annotations", IC_ANN_IMAGE, NULL);
		const char *action = kf_jstr(j, "metadata", "annotations", IC_ANN_ACTION, NULL);
		struct ic_task *match = NULL;
		for (size_t k = 0; op && node && image && action && k < op->n && !match; k++) {
			struct ic_task *t = &op->tasks[k];
			if (t->state == IC_TASK_PENDING && !strcmp(t->node, node) &&
			    (t->action == IC_ACTION_PULL) == !strcmp(action, "pull") && same_image(t->image, image))
				match = t;
		}
		if (match) {
			time_t created = now;
			const char *ts = meta(j, "creationTimestamp");
			if (ts)
				kf_parse_rfc3339(ts, &created);
			match->state = IC_TASK_RUNNING;
			match->job_name = xstrdup(jname);
			match->deadline_ms = kf_now_ms() + ctl->o.pull_deadline_ms - (int64_t)(now - created) * 1000;
			atomic_fetch_add(&ctl->active_jobs, 1);
			LOG_INFO("adopted Job %s/%s (%s %s on %s)", ns, jname, action, image, node);
		} else if (!ctl->o.retain_jobs || op) {
			LOG_INFO("deleting leftover Job %s/%s", ns, jname);
			delete_job(ctl, ns, jname);
		}
	}
	json_decref(jobs);
}

static json_t *applied_spec_of(const struct ic_spec *spec)
{
	json_t *cs = json_deep_copy(json_object_get(spec->json, "cacheSpec"));
	return json_pack("{s:o}", "cacheSpec", cs ? cs : json_array());
}

static int start_op(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, struct ic_spec *spec,
		    enum ic_op_type type, const char *annotation, int adopt, int only_new_nodes, int64_t *requeue_ms);
static int continue_op(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms);

static int report_invalid(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const char *msg)
{
	json_t *status = json_object_get(obj, "status");
	const char *reason = kf_jstr(status, "reason", NULL), *m = kf_jstr(status, "message", NULL);
	long long gen = ic_generation(atomic_load(&ctl->no_status_subresource), obj);
	if (reason && !strcmp(reason, IC_REASON_SPEC_INVALID) && m && !strcmp(m, msg) &&
	    ic_status_observed_generation(status) == gen)
		return 0; /* already reported */
	LOG_WARN("ImageCache %s/%s cannot be processed: %s", meta(obj, "namespace"), meta(obj, "name"), msg);
	json_t *st_json = ic_status_invalid(msg, time(NULL));
	ic_status_decorate(st_json, status, gen, NULL, time(NULL));
	int rc = ic_write_status(ctl, st, obj, st_json);
	if (rc == 0)
		kube_event(ctl->rec, obj, "Warning", IC_REASON_SPEC_INVALID, "%s", msg);
	json_decref(st_json);
	return rc;
}

int ic_sync(struct ic_controller *ctl, const char *key, int64_t *requeue_ms)
{
	*requeue_ms = 0;
	atomic_fetch_add(&ctl->n_syncs, 1);
	json_t *obj = kube_informer_get(ctl->caches, key);
	if (obj)
		obj = ic_compat_view(atomic_load(&ctl->no_status_subresource), obj);
	int gone = !obj || kf_jget(obj, "metadata", "deletionTimestamp", NULL);
	pthread_mutex_lock(&ctl->mu);
	struct ic_cache_state *st = ic_state_get(ctl, key, !gone);
	if (st && obj && (!st->uid || strcmp(st->uid, meta(obj, "uid") ? meta(obj, "uid") : ""))) {
		if (st->uid) {
			/* deleted and re-created under the same name: start over */
			ic_op_free(ctl, st->op);
			ic_state_del(ctl, key);
			st = ic_state_get(ctl, key, 1);
		}
		st->uid = xstrdup(meta(obj, "uid") ? meta(obj, "uid") : "");
	}
	int stale = 0;
	if (st && st->written_rv && !st->written_seen) {
		const char *rv = obj ? meta(obj, "resourceVersion") : NULL;
		if (rv && !strcmp(rv, st->written_rv))
			st->written_seen = 1;
		else if (kf_now_ms() - st->written_ms < WRITE_CATCHUP_MS)
			stale = 1;
	}
	pthread_mutex_unlock(&ctl->mu);

	int rc = 0;
	if (gone) {
		if (st) {
			/* the Jobs go with their owner (garbage collector); nothing is removed from nodes, as upstream */
			ic_op_free(ctl, st->op);
			st->op = NULL;
			pthread_mutex_lock(&ctl->mu);
			ic_state_del(ctl, key);
			pthread_mutex_unlock(&ctl->mu);
		}
		goto out;
	}
	if (st->op) {
		rc = continue_op(ctl, st, obj, requeue_ms);
		goto out;
	}
	if (stale) {
		/* the informer has not shown our last write yet: deciding now would act on old annotations */
		*requeue_ms = 100;
		goto out;
	}

	struct ic_spec spec;
	struct strbuf msg = STRBUF_INIT;
	if (ic_spec_parse(obj, &spec, &msg) < 0) {
		rc = report_invalid(ctl, st, obj, msg.buf);
		sb_release(&msg);
		goto out;
	}
	if (ic_validate(&spec, NULL, &msg) < 0) {
		rc = report_invalid(ctl, st, obj, msg.buf);
		sb_release(&msg);
		ic_spec_free(&spec);
		goto out;
	}
	sb_release(&msg);

	json_t *status = json_object_get(obj, "status");
	const char *sstatus = kf_jstr(status, "status", NULL);
	const char *reason = kf_jstr(status, "reason", NULL);
	long long gen = ic_generation(atomic_load(&ctl->no_status_subresource), obj);
	long long observed = ic_status_observed_generation(status);
	int processing = sstatus && !strcmp(sstatus, IC_STATUS_PROCESSING);
	int purged = reason && !strcmp(reason, IC_REASON_PURGE);
	int invalid = reason && !strcmp(reason, IC_REASON_SPEC_INVALID);

	if (!st->first_sync_done) {
		st->first_sync_done = 1;
		if (processing) {
			/* interrupted by a restart or a leader change: say so (upstream's Aborted), then resume */
			enum ic_op_type t = ic_op_from_reason(reason);
			st->resume = t != IC_OP_NONE ? t : IC_OP_REFRESH;
			LOG_INFO("ImageCache %s was Processing (%s) when the previous controller stopped; resuming", key,
				 reason ? reason : "?");
			json_t *ab = ic_status_aborted(status, time(NULL));
			ic_status_decorate(ab, status, observed >= 0 ? observed : gen, NULL, time(NULL));
			rc = ic_write_status(ctl, st, obj, ab);
			json_decref(ab);
			*requeue_ms = 1;
			goto out_spec;
		}
		adopt_or_delete_jobs(ctl, obj, NULL);
	}

	enum ic_op_type type = IC_OP_NONE;
	const char *ann = NULL;
	int adopt = 0;
	pthread_mutex_lock(&ctl->mu);
	const char *owed = st->remove_annotation;
	int refresh_due = st->refresh_due;
	size_t new_nodes = st->new_nodes.len;
	pthread_mutex_unlock(&ctl->mu);

	if (st->resume) {
		type = st->resume;
		st->resume = IC_OP_NONE;
		adopt = 1;
		if (type == IC_OP_PURGE && has_annotation(obj, IC_ANNOTATION_PURGE))
			ann = IC_ANNOTATION_PURGE;
		if (type == IC_OP_REFRESH && has_annotation(obj, IC_ANNOTATION_REFRESH))
			ann = IC_ANNOTATION_REFRESH;
	} else if (owed) {
		if (!has_annotation(obj, owed) || (rc = ic_remove_annotation(ctl, st, obj, owed)) == 0) {
			pthread_mutex_lock(&ctl->mu);
			st->remove_annotation = NULL;
			pthread_mutex_unlock(&ctl->mu);
			*requeue_ms = 1;
		}
		goto out_spec;
	} else if (processing) {
		/* not ours and not interrupted: another writer; look again later */
		*requeue_ms = 5000;
		goto out_spec;
	} else if (!atomic_load(&ctl->no_status_subresource) && ic_compat_has_stash(obj) && status) {
		/* back on our CRD after upstream's: the status the annotation completed goes whole to the status
		 * subresource, and write_status drops the annotation */
		json_t *whole = json_deep_copy(status);
		rc = ic_write_status(ctl, st, obj, whole);
		json_decref(whole);
		*requeue_ms = rc == 0 ? 1 : 0;
		goto out_spec;
	} else if (has_annotation(obj, IC_ANNOTATION_PURGE)) {
		type = IC_OP_PURGE;
		ann = IC_ANNOTATION_PURGE;
	} else if (!sstatus || !*sstatus) {
		type = IC_OP_CREATE;
	} else if (observed >= 0 && observed != gen) {
		type = IC_OP_UPDATE;
	} else if (observed < 0) {
		/* last written by upstream kube-fledged: take its status as the applied state, no operation */
		json_t *adopted = json_deep_copy(status);
		json_t *applied = applied_spec_of(&spec);
		ic_status_decorate(adopted, status, gen, applied, time(NULL));
		rc = ic_write_status(ctl, st, obj, adopted);
		json_decref(adopted);
		json_decref(applied);
		*requeue_ms = rc == 0 ? 1 : 0;
		goto out_spec;
	} else if (has_annotation(obj, IC_ANNOTATION_REFRESH)) {
		type = IC_OP_REFRESH;
		ann = IC_ANNOTATION_REFRESH;
	} else if (refresh_due) {
		pthread_mutex_lock(&ctl->mu);
		st->refresh_due = 0;
		pthread_mutex_unlock(&ctl->mu);
		if (!purged && !invalid)
			type = IC_OP_REFRESH;
	} else if (new_nodes && !purged && !invalid) {
		rc = start_op(ctl, st, obj, &spec, IC_OP_REFRESH, NULL, 0, 1, requeue_ms);
		goto out_spec;
	} else if (new_nodes) {
		pthread_mutex_lock(&ctl->mu);
		map_free(&st->new_nodes, NULL);
		pthread_mutex_unlock(&ctl->mu);
	}
	if (type != IC_OP_NONE)
		rc = start_op(ctl, st, obj, &spec, type, ann, adopt, 0, requeue_ms);
out_spec:
	ic_spec_free(&spec);
out:
	json_decref(obj);
	return rc;
}

static int start_op(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, struct ic_spec *spec,
		    enum ic_op_type type, const char *annotation, int adopt, int only_new_nodes, int64_t *requeue_ms)
{
	json_t *status = json_object_get(obj, "status");
	long long gen = ic_generation(atomic_load(&ctl->no_status_subresource), obj);
	const char *key_ns = meta(obj, "namespace"), *key_name = meta(obj, "name");

	/* a node-join refresh covers only the new nodes; any other operation covers them all */
	const char **only = NULL;
	size_t n_only = 0;
	int node_join = only_new_nodes;
	pthread_mutex_lock(&ctl->mu);
	if (node_join && st->new_nodes.len) {
		only = xcalloc(st->new_nodes.len, sizeof *only);
		size_t it = 0;
		const char *k;
		while (map_next(&st->new_nodes, &it, &k, NULL))
			only[n_only++] = xstrdup(k);
	}
	map_free(&st->new_nodes, NULL);
	if (type == IC_OP_CREATE || type == IC_OP_REFRESH)
		st->refresh_due = 0;
	pthread_mutex_unlock(&ctl->mu);
	if (node_join && !n_only)
		return 0;

	struct ic_spec applied;
	int have_applied = 0;
	json_t *aj = json_object_get(status, "appliedSpec");
	if (aj) {
		json_t *wrap = json_pack("{s:O}", "spec", aj);
		struct strbuf err = STRBUF_INIT;
		have_applied = ic_spec_parse(wrap, &applied, &err) == 0;
		if (!have_applied)
			LOG_WARN("ImageCache %s/%s: ignoring unreadable status.appliedSpec: %s", key_ns, key_name, err.buf);
		sb_release(&err);
		json_decref(wrap);
	}

	struct ic_op *op = xcalloc(1, sizeof *op);
	op->type = type;
	op->generation = gen;
	op->start = time(NULL);
	op->annotation = annotation;
	json_t *nodes = kube_informer_list(ctl->nodes);
	struct ic_plan_input in = { type, spec, have_applied ? &applied : NULL, nodes, only, n_only,
				    ctl->o.job.image_pull_policy, ctl->o.cri_socket, ic_recent_lookup, ctl,
				    type == IC_OP_REFRESH && annotation != NULL };
	op->tasks = ic_plan(&in, &op->n);
	json_decref(nodes);
	if (have_applied)
		ic_spec_free(&applied);
	for (size_t i = 0; i < n_only; i++)
		free((char *)only[i]);
	free(only);
	/* the purge empties the nodes; anything else leaves the current lists applied */
	op->applied = type == IC_OP_PURGE ? json_pack("{s:[]}", "cacheSpec") : applied_spec_of(spec);
	/* keep a reference to the spec for Job rendering (imagePullSecrets) */
	op->spec = *spec;
	op->spec.json = json_incref(spec->json);
	op->spec.lists = NULL;
	op->spec.n_lists = 0;
	op->spec.pull_secrets = spec->n_pull_secrets ? xcalloc(spec->n_pull_secrets, sizeof(char *)) : NULL;
	for (size_t i = 0; i < spec->n_pull_secrets; i++)
		op->spec.pull_secrets[i] = spec->pull_secrets[i];

	json_t *proc = ic_status_processing(type, op->start);
	ic_status_decorate(proc, status, gen, NULL, op->start);
	ic_status_set_progress(proc, op->tasks, op->n);
	if (ic_write_status(ctl, st, obj, proc) < 0) {
		json_decref(proc);
		ic_op_free(ctl, op);
		return -1;
	}
	json_decref(proc);
	size_t jobs = 0, present = 0;
	for (size_t i = 0; i < op->n; i++)
		op->tasks[i].state == IC_TASK_PRESENT ? present++ : jobs++;
	LOG_INFO("ImageCache %s/%s: %s started (generation %lld): %zu node-image tasks, %zu already present%s",
		 key_ns, key_name, ic_op_name(type), gen, op->n, present, node_join && n_only ? " (new nodes)" : "");
	atomic_fetch_add(&ctl->n_ops, 1);
	st->op = op;
	if (adopt)
		adopt_or_delete_jobs(ctl, obj, op);
	return continue_op(ctl, st, obj, requeue_ms);
}

static json_t *pod_events(struct ic_controller *ctl, json_t *pod)
{
	const char *ns = meta(pod, "namespace"), *name = meta(pod, "name");
	struct strbuf path = STRBUF_INIT, sel = STRBUF_INIT;
	sb_addf(&sel, "involvedObject.kind=Pod,involvedObject.name=%s,involvedObject.namespace=%s,reason=Failed", name,
		ns);
	kube_path(&path, &KUBE_EVENTS, ns, NULL, NULL);
	sb_adds(&path, "?fieldSelector=");
	sb_add_urlencoded(&path, sel.buf);
	struct kube_err err;
	json_t *list = kube_get(ctl->c, path.buf, &err);
	sb_release(&path);
	sb_release(&sel);
	if (!list) {
		LOG_WARN("listing events of pod %s/%s: %s", ns, name, err.msg);
		return NULL;
	}
	json_t *items = json_incref(json_object_get(list, "items"));
	json_decref(list);
	return items;
}

static void finish_task(struct ic_controller *ctl, struct ic_task *t, const char *ns)
{
	atomic_fetch_sub(&ctl->active_jobs, 1);
	if (t->job_name && !ctl->o.retain_jobs)
		t->cleanup = delete_job(ctl, ns, t->job_name) < 0;
	const char *what = t->action == IC_ACTION_PULL ? "pull" : "delete";
	if (t->state == IC_TASK_SUCCEEDED)
		ic_recent_note(ctl, t->node, t->image, t->action == IC_ACTION_PULL);
	if (t->state == IC_TASK_SUCCEEDED)
		LOG_INFO("Job %s/%s succeeded (%s:- %s --> %s)", ns, t->job_name, what, t->image, t->hostname);
	else
		LOG_INFO("Job %s/%s failed (%s:- %s --> %s): %s: %s", ns, t->job_name ? t->job_name : "-", what,
			 t->image, t->hostname, t->reason ? t->reason : "", t->message ? t->message : "");
}

static int create_job(struct ic_controller *ctl, json_t *obj, struct ic_op *op, struct ic_task *t)
{
	const char *ns = meta(obj, "namespace");
	json_t *job = ic_job_render(&ctl->o.job, obj, &op->spec, t);
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &KUBE_JOBS, ns, NULL, NULL);
	struct kube_err err;
	json_t *res = kube_create(ctl->c, path.buf, job, &err);
	json_decref(job);
	sb_release(&path);
	if (!res) {
		if (kube_err_retryable(&err)) {
			LOG_WARN("creating a Job for %s on %s: %s (HTTP %ld); will retry", t->image, t->hostname, err.msg,
				 err.code);
			return -1;
		}
		/* refused for good (quota, admission, invalid): report it instead of dropping it silently */
		char *m = xasprintf("Job creation failed (HTTP %ld%s%s): %s", err.code, err.reason[0] ? " " : "",
				    err.reason, err.msg);
		ic_task_set_result(t, IC_TASK_UNKNOWN, "JobCreationFailed", m);
		free(m);
		LOG_ERROR("creating a Job for %s on %s failed: %s", t->image, t->hostname, err.msg);
		return 0;
	}
	t->job_name = xstrdup(meta(res, "name"));
	t->state = IC_TASK_RUNNING;
	t->deadline_ms = kf_now_ms() + ctl->o.pull_deadline_ms;
	atomic_fetch_add(&ctl->active_jobs, 1);
	atomic_fetch_add(&ctl->n_jobs_created, 1);
	LOG_V(1, "Job %s/%s created (%s:- %s --> %s%s%s)", ns, t->job_name,
	      t->action == IC_ACTION_PULL ? "pull" : "delete", t->image, t->hostname, t->runtime ? ", runtime: " : "",
	      t->runtime ? t->runtime : "");
	json_decref(res);
	return 0;
}

static int finish_op(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	struct ic_op *op = st->op;
	time_t now = time(NULL);
	json_t *status = json_object_get(obj, "status");
	json_t *final = ic_status_final(op->type, op->tasks, op->n, op->start, now);
	ic_status_decorate(final, status, op->generation, op->applied, now);
	ic_status_set_progress(final, op->tasks, op->n);
	if (ic_write_status(ctl, st, obj, final) < 0) {
		json_decref(final);
		return -1;
	}
	const char *s = kf_jstr(final, "status", NULL), *r = kf_jstr(final, "reason", NULL),
		   *m = kf_jstr(final, "message", NULL);
	LOG_INFO("ImageCache %s/%s: %s finished: %s (%s)", meta(obj, "namespace"), meta(obj, "name"),
		 ic_op_name(op->type), s, m);
	kube_event(ctl->rec, obj, strcmp(s, IC_STATUS_FAILED) ? "Normal" : "Warning", r, "%s", m);
	json_decref(final);
	pthread_mutex_lock(&ctl->mu);
	st->remove_annotation = op->annotation;
	pthread_mutex_unlock(&ctl->mu);
	ic_op_free(ctl, op);
	st->op = NULL;
	*requeue_ms = 1; /* the next trigger (an annotation to remove, an edit made meanwhile) is due now */
	return 0;
}

static int continue_op(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	struct ic_op *op = st->op;
	const char *ns = meta(obj, "namespace");
	int64_t now = kf_now_ms(), next = INT64_MAX;
	int rc = 0, blocked = 0, retry = 0;
	char key[512];

	for (size_t i = 0; i < op->n; i++) {
		struct ic_task *t = &op->tasks[i];
		if (t->cleanup)
			t->cleanup = delete_job(ctl, ns, t->job_name) < 0;
		if (t->state != IC_TASK_RUNNING)
			continue;
		snprintf(key, sizeof key, "%s/%s", ns, t->job_name);
		json_t *job = kube_informer_get(ctl->jobs, key);
		pthread_mutex_lock(&ctl->mu);
		json_t *pod = json_incref(map_get(&ctl->pod_by_job, key));
		pthread_mutex_unlock(&ctl->mu);
		if (!job) {
			if (now - (t->deadline_ms - ctl->o.pull_deadline_ms) > JOB_VISIBLE_GRACE_MS) {
				char *m = xasprintf("Job %s was deleted before it finished", t->job_name);
				ic_task_set_result(t, IC_TASK_UNKNOWN, "JobDeleted", m);
				free(m);
				atomic_fetch_sub(&ctl->active_jobs, 1);
			}
			json_decref(pod);
			continue;
		}
		/* Every Pod or Job event of the cache brings a sync: look again only at what changed, so a
		 * sync costs a lookup per running Job rather than a reading of each (O(Jobs) per event, not
		 * O(Jobs x fields)). The result is a function of the Job and the Pod alone. */
		char rv[160], *reason = NULL, *message = NULL;
		const char *job_rv = meta(job, "resourceVersion"), *pod_rv = pod ? meta(pod, "resourceVersion") : NULL;
		snprintf(rv, sizeof rv, "%s/%s", job_rv ? job_rv : "", pod_rv ? pod_rv : "-");
		enum ic_task_state s = IC_TASK_RUNNING;
		if (!t->seen_rv || strcmp(t->seen_rv, rv)) {
			s = ic_job_result(job, pod, &reason, &message);
			if (s == IC_TASK_RUNNING) {
				free(t->seen_rv);
				t->seen_rv = xstrdup(rv);
			}
			const char *pe = t->action == IC_ACTION_PULL ? ic_pull_error(pod) : NULL;
			if (pe) {
				free(t->pull_error);
				t->pull_error = xstrdup(pe);
			}
		}
		if (s != IC_TASK_RUNNING) {
			ic_task_set_result(t, s, reason, message);
			finish_task(ctl, t, ns);
		} else if (now >= t->deadline_ms) {
			json_t *events = pod && t->action == IC_ACTION_PULL ? pod_events(ctl, pod) : NULL;
			ic_task_expire(t, pod, events);
			json_decref(events);
			LOG_INFO("Job %s/%s expired after %lld s", ns, t->job_name,
				 (long long)(ctl->o.pull_deadline_ms / 1000));
			finish_task(ctl, t, ns);
		} else if (t->deadline_ms < next) {
			next = t->deadline_ms;
		}
		free(reason);
		free(message);
		json_decref(job);
		json_decref(pod);
	}
	for (size_t i = 0; i < op->n; i++) {
		struct ic_task *t = &op->tasks[i];
		if (t->state != IC_TASK_PENDING)
			continue;
		if (ctl->o.jobs_max_surge > 0 && atomic_load(&ctl->active_jobs) >= ctl->o.jobs_max_surge) {
			blocked = 1;
			break;
		}
		if (create_job(ctl, obj, op, t) < 0) {
			retry = 1;
			break;
		}
		if (t->state == IC_TASK_RUNNING && t->deadline_ms < next)
			next = t->deadline_ms;
	}
	int all_done = 1, cleanup = 0;
	size_t done = 0;
	for (size_t i = 0; i < op->n; i++) {
		if (!ic_task_done(op->tasks[i].state))
			all_done = 0;
		else
			done++;
		cleanup |= op->tasks[i].cleanup;
	}
	if (all_done && !cleanup)
		return finish_op(ctl, st, obj, requeue_ms);
	if (retry || cleanup)
		rc = -1; /* rate-limited requeue */
	/* progress, at most every progress_interval */
	if (done != op->last_progress_done && now - op->last_progress_ms >= ctl->o.progress_interval_ms) {
		json_t *proc = json_deep_copy(json_object_get(obj, "status"));
		if (proc && !strcmp(kf_jstr(proc, "status", NULL) ? kf_jstr(proc, "status", NULL) : "",
				    IC_STATUS_PROCESSING)) {
			ic_status_set_progress(proc, op->tasks, op->n);
			if (ic_write_status(ctl, st, obj, proc) == 0) {
				op->last_progress_ms = now;
				op->last_progress_done = done;
			}
		}
		json_decref(proc);
	}
	if (blocked)
		next = next < now + 1000 ? next : now + 1000;
	if (next != INT64_MAX)
		*requeue_ms = next - now > 1 ? next - now : 1;
	if (done != op->last_progress_done && (*requeue_ms == 0 || *requeue_ms > ctl->o.progress_interval_ms))
		*requeue_ms = ctl->o.progress_interval_ms;
	return rc;
}
