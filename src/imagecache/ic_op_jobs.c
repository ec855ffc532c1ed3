/* ic_op_jobs.c - job mode: an operation's tasks carried out by Kubernetes Jobs (upstream's design), one Job
 * per node x image; a pull Job in the cache's namespace, a delete Job in the controller's own namespace.
 *
 * Each sync looks at the running tasks whose Job or Pod changed since the last look (ic_tracker.h says what
 * a Job and its Pod mean), enforces per-Job deadlines, then creates Jobs for pending tasks: at most
 * IC_JOB_BATCH per sync, and never more in flight than the surge limit, so that results, deadlines and
 * other caches are handled between batches and a graceful stop never waits for a long loop of POSTs.
 *
 * A finished Job is deleted (unless --job-retention-policy=retain). A deletion that fails does not hold the
 * operation up: the Job goes to a list the ticker retries (ic_jobs_retry_orphans). */
#include <string.h>
#include <time.h>

#include "ic_controller_int.h"
#include "ic_jobs.h"
#include "ic_tracker.h"
#include "util/log.h"

#define IC_JOB_BATCH 100           /* Jobs created per sync at most */
#define JOB_VISIBLE_GRACE_MS 60000 /* a created Job the informer has not shown after this is gone */

char *ic_job_owner_key(json_t *job, char *buf, size_t n)
{
	const char *ns = ic_meta(job, "namespace");
	size_t i;
	json_t *r;
	json_array_foreach(kf_jget(job, "metadata", "ownerReferences", NULL), i, r) {
		const char *kind = json_string_value(json_object_get(r, "kind"));
		const char *name = json_string_value(json_object_get(r, "name"));
		if (kind && name && ns && !strcmp(kind, IC_KIND) && json_is_true(json_object_get(r, "controller"))) {
			snprintf(buf, n, "%s/%s", ns, name);
			return buf;
		}
	}
	const char *key = kf_jstr(job, "metadata", "annotations", IC_ANN_CACHE, NULL);
	if (key && strchr(key, '/')) {
		snprintf(buf, n, "%s", key);
		return buf;
	}
	return NULL;
}

int ic_jobs_surge_limit(struct ic_controller *ctl)
{
	if (ctl->o.jobs_max_surge > 0)
		return ctl->o.jobs_max_surge;
	/* derived: 20 per node, at least 200, at most 5,000 (docs: README, --jobs-max-surge) */
	long n = (long)kube_informer_len(ctl->nodes) * 20;
	return (int)(n < 200 ? 200 : n > 5000 ? 5000 : n);
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

/* A Job whose deletion failed: retried by the ticker, so that the operation need not wait for it. */
static void orphan(struct ic_controller *ctl, const char *ns, const char *name)
{
	char *key = xasprintf("%s/%s", ns, name);
	pthread_mutex_lock(&ctl->mu);
	map_put(&ctl->orphan_jobs, key, NULL);
	pthread_mutex_unlock(&ctl->mu);
	free(key);
}

void ic_jobs_retry_orphans(struct ic_controller *ctl)
{
	pthread_mutex_lock(&ctl->mu);
	size_t n = ctl->orphan_jobs.len, k = 0, it = 0;
	char **keys = n ? xcalloc(n, sizeof *keys) : NULL;
	const char *key;
	while (map_next(&ctl->orphan_jobs, &it, &key, NULL))
		keys[k++] = xstrdup(key);
	pthread_mutex_unlock(&ctl->mu);
	for (size_t i = 0; i < k; i++) {
		char *slash = strchr(keys[i], '/');
		*slash = '\0';
		int ok = delete_job(ctl, keys[i], slash + 1) == 0;
		*slash = '/';
		if (ok) {
			pthread_mutex_lock(&ctl->mu);
			map_del(&ctl->orphan_jobs, keys[i]);
			pthread_mutex_unlock(&ctl->mu);
		}
		free(keys[i]);
	}
	free(keys);
}

static const char *job_ns(struct ic_controller *ctl, json_t *obj, const struct ic_task *t)
{
	if (t->action == IC_ACTION_DELETE && ctl->o.job.delete_namespace && *ctl->o.job.delete_namespace)
		return ctl->o.job.delete_namespace;
	return ic_meta(obj, "namespace");
}

/* The Jobs working for this cache (its uid), in the informer (new array of references). */
static json_t *cache_jobs(struct ic_controller *ctl, json_t *obj)
{
	json_t *all = kube_informer_list(ctl->jobs), *mine = json_array();
	const char *uid = ic_meta(obj, "uid");
	size_t i;
	json_t *j;
	json_array_foreach(all, i, j) {
		const char *juid = kf_jstr(j, "metadata", "annotations", IC_ANN_CACHE_UID, NULL);
		int owned = juid && uid && !strcmp(juid, uid);
		size_t k;
		json_t *r;
		json_array_foreach(kf_jget(j, "metadata", "ownerReferences", NULL), k, r) {
			const char *u = json_string_value(json_object_get(r, "uid"));
			owned |= u && uid && !strcmp(u, uid);
		}
		if (owned)
			json_array_append(mine, j);
	}
	json_decref(all);
	return mine;
}

void ic_jobs_adopt(struct ic_controller *ctl, json_t *obj, struct ic_op *op)
{
	json_t *jobs = cache_jobs(ctl, obj);
	size_t i;
	json_t *j;
	time_t now = time(NULL);
	struct strbuf canon = STRBUF_INIT;
	json_array_foreach(jobs, i, j) {
		const char *jname = ic_meta(j, "name"), *ns = ic_meta(j, "namespace");
		const char *node = kf_jstr(j, "metadata", "annotations", IC_ANN_NODE, NULL);
		const char *image = kf_jstr(j, "metadata", "annotations", IC_ANN_IMAGE, NULL);
		const char *action = kf_jstr(j, "metadata", "annotations", IC_ANN_ACTION, NULL);
		struct ic_task *match = NULL;
		if (op && node && image && action) {
			long ni = ic_tasks_node_index(&op->ts, node);
			sb_reset(&canon);
			ic_image_canonical(image, &canon, NULL);
			if (ni >= 0)
				match = ic_tasks_find(&op->ts, (uint32_t)ni, canon.buf,
						      strcmp(action, "pull") ? IC_ACTION_DELETE : IC_ACTION_PULL);
			if (match && match->state != IC_TASK_PENDING)
				match = NULL;
		}
		if (match) {
			time_t created = now;
			const char *ts = ic_meta(j, "creationTimestamp");
			if (ts)
				kf_parse_rfc3339(ts, &created);
			match->state = IC_TASK_RUNNING;
			match->job_name = xstrdup(jname);
			match->deadline_ms = kf_now_ms() + ctl->o.pull_deadline_ms - (int64_t)(now - created) * 1000;
			atomic_fetch_add(&ctl->active_jobs, 1);
			LOG_INFO("adopted Job %s/%s (%s %s on %s)", ns, jname, action, image, node);
		} else if (!ctl->o.retain_jobs || op) {
			LOG_INFO("deleting leftover Job %s/%s", ns, jname);
			if (delete_job(ctl, ns, jname) < 0)
				orphan(ctl, ns, jname);
		}
	}
	sb_release(&canon);
	json_decref(jobs);
}

void ic_jobs_forget_cache(struct ic_controller *ctl, const char *uid)
{
	if (!uid || !*uid)
		return;
	json_t *all = kube_informer_list(ctl->jobs);
	size_t i;
	json_t *j;
	json_array_foreach(all, i, j) {
		const char *juid = kf_jstr(j, "metadata", "annotations", IC_ANN_CACHE_UID, NULL);
		if (!juid || strcmp(juid, uid) || kf_jget(j, "metadata", "ownerReferences", NULL))
			continue; /* owned Jobs go with their owner (garbage collector) */
		const char *ns = ic_meta(j, "namespace"), *name = ic_meta(j, "name");
		LOG_INFO("deleting Job %s/%s of a deleted ImageCache", ns, name);
		if (delete_job(ctl, ns, name) < 0)
			orphan(ctl, ns, name);
	}
	json_decref(all);
}

void ic_jobs_sweep(struct ic_controller *ctl)
{
	json_t *caches = kube_informer_list(ctl->caches), *jobs = kube_informer_list(ctl->jobs);
	struct map uids = MAP_INIT;
	size_t i;
	json_t *o;
	json_array_foreach(caches, i, o) {
		const char *uid = ic_meta(o, "uid");
		if (uid)
			map_put(&uids, uid, NULL);
	}
	json_array_foreach(jobs, i, o) {
		const char *juid = kf_jstr(o, "metadata", "annotations", IC_ANN_CACHE_UID, NULL);
		if (!juid || map_has(&uids, juid) || kf_jget(o, "metadata", "ownerReferences", NULL))
			continue;
		const char *ns = ic_meta(o, "namespace"), *name = ic_meta(o, "name");
		LOG_INFO("deleting Job %s/%s: its ImageCache was deleted while no controller ran", ns, name);
		if (delete_job(ctl, ns, name) < 0)
			orphan(ctl, ns, name);
	}
	map_free(&uids, NULL);
	json_decref(caches);
	json_decref(jobs);
}

void ic_jobs_cancel(struct ic_controller *ctl, struct ic_op *op, struct ic_task *t)
{
	if (t->state == IC_TASK_RUNNING)
		atomic_fetch_sub(&ctl->active_jobs, 1);
	const char *ns = op->ns;
	if (t->action == IC_ACTION_DELETE && ctl->o.job.delete_namespace && *ctl->o.job.delete_namespace)
		ns = ctl->o.job.delete_namespace;
	if (ns && t->job_name && delete_job(ctl, ns, t->job_name) < 0)
		orphan(ctl, ns, t->job_name);
	t->state = IC_TASK_UNKNOWN;
}

void ic_jobs_task_done(struct ic_controller *ctl, struct ic_op *op, struct ic_task *t, const char *ns)
{
	atomic_fetch_sub(&ctl->active_jobs, 1);
	if (t->job_name && !ctl->o.retain_jobs && delete_job(ctl, ns, t->job_name) < 0)
		orphan(ctl, ns, t->job_name);
	const char *what = t->action == IC_ACTION_PULL ? "pull" : "delete";
	const char *image = ic_task_image(&op->ts, t), *host = op->ts.nodes[t->node].hostname;
	if (t->state == IC_TASK_SUCCEEDED) {
		ic_recent_note(ctl, ic_task_node_name(&op->ts, t), op->ts.images[t->image].canonical,
			       t->action == IC_ACTION_PULL);
		LOG_INFO("Job %s/%s succeeded (%s:- %s --> %s)", ns, t->job_name, what, image, host);
	} else if (t->state == IC_TASK_KEPT) {
		LOG_INFO("Job %s/%s kept the image (%s:- %s --> %s): %s", ns, t->job_name, what, image, host,
			 t->message ? t->message : "");
	} else {
		LOG_INFO("Job %s/%s failed (%s:- %s --> %s): %s: %s", ns, t->job_name ? t->job_name : "-", what, image,
			 host, t->reason ? t->reason : "", t->message ? t->message : "");
	}
}

/* The kubelet's "Failed" Events of the pods in namespace ns, read once per sync and only when a task expired
 * (never one List per task). New reference, or NULL. */
static json_t *failed_pod_events(struct ic_controller *ctl, const char *ns)
{
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &KUBE_EVENTS, ns, NULL, NULL);
	sb_adds(&path, "?fieldSelector=");
	sb_add_urlencoded(&path, "involvedObject.kind=Pod,reason=Failed");
	struct kube_err err;
	json_t *list = kube_get(ctl->c, path.buf, &err);
	sb_release(&path);
	if (!list) {
		LOG_WARN("listing pod events in %s: %s", ns, err.msg);
		return NULL;
	}
	json_t *items = json_incref(json_object_get(list, "items"));
	json_decref(list);
	return items;
}

static json_t *events_of(json_t *events, json_t *pod)
{
	json_t *mine = json_array();
	const char *name = ic_meta(pod, "name");
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e) {
		const char *n = kf_jstr(e, "involvedObject", "name", NULL);
		if (n && name && !strcmp(n, name))
			json_array_append(mine, e);
	}
	return mine;
}

static int create_job(struct ic_controller *ctl, json_t *obj, struct ic_op *op, struct ic_task *t)
{
	const char *ns = job_ns(ctl, obj, t);
	const char *image = ic_task_image(&op->ts, t), *host = op->ts.nodes[t->node].hostname;
	json_t *job = ic_job_render(&ctl->o.job, obj, &op->spec, &op->ts, t);
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &KUBE_JOBS, ns, NULL, NULL);
	struct kube_err err;
	json_t *res = kube_create(ctl->c, path.buf, job, &err);
	json_decref(job);
	sb_release(&path);
	if (!res) {
		if (kube_err_retryable(&err)) {
			LOG_WARN("creating a Job for %s on %s: %s (HTTP %ld); will retry", image, host, err.msg, err.code);
			return -1;
		}
		/* refused for good (quota, admission, invalid): report it instead of dropping it silently */
		char *m = xasprintf("Job creation failed (HTTP %ld%s%s): %s", err.code, err.reason[0] ? " " : "",
				    err.reason, err.msg);
		ic_task_set_result(t, IC_TASK_UNKNOWN, "JobCreationFailed", m);
		free(m);
		LOG_ERROR("creating a Job for %s on %s failed: %s", image, host, err.msg);
		return 0;
	}
	t->job_name = xstrdup(ic_meta(res, "name"));
	t->state = IC_TASK_RUNNING;
	t->deadline_ms = kf_now_ms() + ctl->o.pull_deadline_ms;
	atomic_fetch_add(&ctl->active_jobs, 1);
	atomic_fetch_add(&ctl->n_jobs_created, 1);
	LOG_V(1, "Job %s/%s created (%s:- %s --> %s%s%s)", ns, t->job_name,
	      t->action == IC_ACTION_PULL ? "pull" : "delete", image, host,
	      op->ts.nodes[t->node].runtime ? ", runtime: " : "",
	      op->ts.nodes[t->node].runtime ? op->ts.nodes[t->node].runtime : "");
	json_decref(res);
	return 0;
}

int ic_jobs_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	struct ic_op *op = st->op;
	int64_t now = kf_now_ms(), next = INT64_MAX;
	int rc = 0, blocked = 0, retry = 0;
	json_t *events = NULL;
	int events_read = 0;
	char key[512];

	for (size_t i = 0; i < op->ts.n; i++) {
		struct ic_task *t = &op->ts.v[i];
		if (t->state != IC_TASK_RUNNING)
			continue;
		const char *ns = job_ns(ctl, obj, t);
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
			} else if (now + 1000 < next) {
				next = now + 1000;
			}
			json_decref(pod);
			continue;
		}
		/* Every Pod or Job event of the cache brings a sync: look again only at what changed, so a
		 * sync costs a lookup per running Job rather than a reading of each. The result is a function of
		 * the Job and the Pod alone. */
		char rv[160], *reason = NULL, *message = NULL;
		const char *job_rv = ic_meta(job, "resourceVersion"), *pod_rv = pod ? ic_meta(pod, "resourceVersion") : NULL;
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
			ic_jobs_task_done(ctl, op, t, ns);
		} else if (now >= t->deadline_ms) {
			if (pod && t->action == IC_ACTION_PULL && !events_read) {
				events = failed_pod_events(ctl, ns);
				events_read = 1;
			}
			json_t *mine = pod && events ? events_of(events, pod) : NULL;
			ic_task_expire(t, pod, mine);
			json_decref(mine);
			LOG_INFO("Job %s/%s expired after %lld s", ns, t->job_name,
				 (long long)(ctl->o.pull_deadline_ms / 1000));
			ic_jobs_task_done(ctl, op, t, ns);
		} else if (t->deadline_ms < next) {
			next = t->deadline_ms;
		}
		free(reason);
		free(message);
		json_decref(job);
		json_decref(pod);
	}
	json_decref(events);

	/* create Jobs for pending tasks: a batch per sync, within the surge limit */
	int limit = ic_jobs_surge_limit(ctl);
	size_t created = 0;
	while (op->next_pending < op->ts.n && op->ts.v[op->next_pending].state != IC_TASK_PENDING)
		op->next_pending++;
	for (size_t i = op->next_pending; i < op->ts.n; i++) {
		struct ic_task *t = &op->ts.v[i];
		if (t->state != IC_TASK_PENDING)
			continue;
		if (atomic_load(&ctl->active_jobs) >= limit || created >= IC_JOB_BATCH || *ctl->stop) {
			blocked = 1;
			break;
		}
		if (create_job(ctl, obj, op, t) < 0) {
			retry = 1;
			break;
		}
		created++;
		if (t->state == IC_TASK_RUNNING && t->deadline_ms < next)
			next = t->deadline_ms;
	}
	if (retry)
		rc = -1; /* rate-limited requeue */
	if (blocked)
		next = created >= IC_JOB_BATCH ? now : (next < now + 1000 ? next : now + 1000);
	if (next != INT64_MAX)
		*requeue_ms = next - now > 1 ? next - now : 1;
	return rc;
}
