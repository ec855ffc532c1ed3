/* ic_sync.c - the sync of one ImageCache: decide which operation is due and hand it to ic_op.c. Called by a
 * worker with a key; never blocks on a node: it returns and is called again when something changes or when
 * it asks to be requeued. Level-triggered: what is due follows from the object, the Nodes and what this
 * controller remembers, never from which event woke it.
 *
 * Order of precedence when no operation runs (one operation at a time per cache):
 *   - a status left Processing with no operation in memory (a restart or a leader change, the first time we
 *     see the cache: marked Aborted first, upstream's word; or a Processing write whose reply was lost):
 *     the same operation runs again, adopting the Jobs still running;
 *   - on the first sync after a start, finished Jobs left behind are deleted (no orphans);
 *   - owed annotation removals;
 *   - purge annotation -> purge (a refresh annotation set with it is consumed too: purge wins);
 *   - no status -> create; the spec edited since the status was written -> update;
 *   - a status written by upstream kube-fledged (none of our fields) -> adopted as applied, no operation;
 *   - refresh annotation -> refresh; periodic tick -> refresh (a purged cache instead retries the deletes
 *     that failed, if any); nodes that joined or started matching -> a refresh of those nodes only.
 * A spec whose images do not all parse is still processed: the valid images are cached, the others are
 * reported in failures (InvalidImageName), and purge works. Only a spec whose JSON shape is wrong (it
 * cannot be read at all) gets Failed/CacheSpecValidationFailed. */
#include <string.h>
#include <time.h>

#include "ic_controller_int.h"
#include "util/log.h"

#define WRITE_CATCHUP_MS 10000 /* longest wait for the informer to show our own last write */

static int has_annotation(json_t *obj, const char *key)
{
	return kf_jget(obj, "metadata", "annotations", key, NULL) != NULL;
}

static int report_invalid(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const char *msg)
{
	json_t *view = ic_status_view(obj);
	const char *reason = kf_jstr(view, "reason", NULL), *m = kf_jstr(view, "message", NULL);
	long long gen = json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
	int rc = 0;
	if (!(reason && !strcmp(reason, IC_REASON_SPEC_INVALID) && m && !strcmp(m, msg) &&
	      ic_edit_pending(obj, view) == 0)) {
		LOG_WARN("ImageCache %s/%s cannot be processed: %s", ic_meta(obj, "namespace"), ic_meta(obj, "name"),
			 msg);
		json_t *st_json = ic_status_invalid(msg, time(NULL));
		ic_status_decorate(st_json, view, gen, NULL, time(NULL));
		char *hash = ic_spec_hash(json_object_get(obj, "spec"));
		rc = ic_write_status(ctl, st, obj, st_json, hash);
		free(hash);
		if (rc == 0)
			kube_event(ctl->rec, obj, "Warning", IC_REASON_SPEC_INVALID, "%s", msg);
		json_decref(st_json);
	}
	json_decref(view);
	return rc;
}

/* The cache's state, made anew when the object was deleted and created again under the same name.
 * Returns NULL for a deleted cache (its state dropped). */
static struct ic_cache_state *state_for(struct ic_controller *ctl, const char *key, json_t *obj, int gone)
{
	pthread_mutex_lock(&ctl->mu);
	struct ic_cache_state *st = ic_state_get(ctl, key, !gone);
	const char *uid = obj ? ic_meta(obj, "uid") : NULL;
	if (st && obj && (!st->uid || strcmp(st->uid, uid ? uid : ""))) {
		if (st->uid) {
			pthread_mutex_unlock(&ctl->mu);
			ic_op_free(ctl, st->op);
			pthread_mutex_lock(&ctl->mu);
			ic_state_del(ctl, key);
			st = ic_state_get(ctl, key, 1);
		}
		st->uid = xstrdup(uid ? uid : "");
	}
	pthread_mutex_unlock(&ctl->mu);
	return st;
}

/* 1 while the informer has not shown our last write yet (deciding now would act on old annotations). */
static int stale(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj)
{
	int s = 0;
	pthread_mutex_lock(&ctl->mu);
	if (st->written_rv && !st->written_seen) {
		const char *rv = ic_meta(obj, "resourceVersion");
		if (rv && !strcmp(rv, st->written_rv))
			st->written_seen = 1;
		else if (kf_now_ms() - st->written_ms < WRITE_CATCHUP_MS)
			s = 1;
	}
	pthread_mutex_unlock(&ctl->mu);
	return s;
}

static void drop_state(struct ic_controller *ctl, const char *key, struct ic_cache_state *st)
{
	/* pull Jobs go with their owner (garbage collector); delete Jobs in our namespace are deleted here;
	 * nothing is removed from nodes, as upstream */
	int jobs = ctl->o.mode == IC_MODE_JOBS;
	if (st->op && jobs)
		for (size_t i = 0; i < st->op->ts.n; i++)
			if (st->op->ts.v[i].job_name && !ic_task_done(st->op->ts.v[i].state))
				ic_jobs_cancel(ctl, st->op, &st->op->ts.v[i]);
	struct ic_op *op = st->op;
	ic_op_attach(ctl, st, NULL);
	ic_op_free(ctl, op);
	if (jobs)
		ic_jobs_forget_cache(ctl, st->uid);
	pthread_mutex_lock(&ctl->mu);
	ic_state_del(ctl, key);
	pthread_mutex_unlock(&ctl->mu);
}

/* The applied spec has images (a purge whose deletes failed left them). */
static int applied_has_images(json_t *view)
{
	size_t i;
	json_t *l;
	json_array_foreach(kf_jget(view, "appliedSpec", "cacheSpec", NULL), i, l)
		if (json_array_size(json_object_get(l, "images")))
			return 1;
	return 0;
}

static int decide(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const char *key,
		  const struct ic_spec *spec, int64_t *requeue_ms)
{
	json_t *view = ic_status_view(obj);
	const char *sstatus = kf_jstr(view, "status", NULL);
	const char *reason = kf_jstr(view, "reason", NULL);
	long long gen = json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
	int processing = sstatus && !strcmp(sstatus, IC_STATUS_PROCESSING);
	int purged = reason && !strcmp(reason, IC_REASON_PURGE);
	int invalid = reason && !strcmp(reason, IC_REASON_SPEC_INVALID);
	struct ic_op_request req = { 0 };
	int rc = 0;

	if (processing && !st->resume) {
		/* interrupted: say so the first time (upstream's Aborted), then run it again */
		enum ic_op_type t = ic_op_from_reason(reason);
		st->resume = t != IC_OP_NONE ? t : IC_OP_REFRESH;
		if (!st->first_sync_done) {
			st->first_sync_done = 1;
			LOG_INFO("ImageCache %s was Processing (%s) when the previous controller stopped; resuming", key,
				 reason ? reason : "?");
			json_t *ab = ic_status_aborted(view, time(NULL));
			long long observed = ic_status_observed_generation(view);
			ic_status_decorate(ab, view, observed >= 0 ? observed : gen, NULL, time(NULL));
			char *hash = ic_spec_hash(json_object_get(obj, "spec"));
			rc = ic_write_status(ctl, st, obj, ab, hash);
			free(hash);
			json_decref(ab);
			*requeue_ms = 1;
			goto out;
		}
		LOG_INFO("ImageCache %s is Processing (%s) with no operation running (a lost reply?): resuming", key,
			 reason ? reason : "?");
	}
	if (!st->first_sync_done) {
		st->first_sync_done = 1;
		if (ctl->o.mode == IC_MODE_JOBS)
			ic_jobs_adopt(ctl, obj, NULL);
	}

	pthread_mutex_lock(&ctl->mu);
	const char *owed[2] = { st->owed[0], st->owed[1] };
	int refresh_due = st->refresh_due;
	size_t new_nodes = st->new_nodes.len;
	pthread_mutex_unlock(&ctl->mu);
	int edit = ic_edit_pending(obj, view);

	if (st->resume) {
		req.type = st->resume;
		st->resume = IC_OP_NONE;
		req.adopt = 1;
		if (req.type == IC_OP_PURGE && has_annotation(obj, IC_ANNOTATION_PURGE))
			req.annotations[0] = IC_ANNOTATION_PURGE;
		if (req.type == IC_OP_REFRESH && has_annotation(obj, IC_ANNOTATION_REFRESH))
			req.annotations[0] = IC_ANNOTATION_REFRESH;
	} else if (owed[0] || owed[1]) {
		if ((rc = ic_remove_annotations(ctl, st, obj, owed)) == 0) {
			pthread_mutex_lock(&ctl->mu);
			st->owed[0] = st->owed[1] = NULL;
			pthread_mutex_unlock(&ctl->mu);
			*requeue_ms = 1;
		}
		goto out;
	} else if (has_annotation(obj, IC_ANNOTATION_PURGE)) {
		req.type = IC_OP_PURGE;
		req.annotations[0] = IC_ANNOTATION_PURGE;
		if (has_annotation(obj, IC_ANNOTATION_REFRESH))
			req.annotations[1] = IC_ANNOTATION_REFRESH; /* purge wins; the refresh is consumed */
	} else if (!sstatus || !*sstatus) {
		req.type = IC_OP_CREATE;
	} else if (edit > 0) {
		req.type = IC_OP_UPDATE;
	} else if (edit < 0) {
		/* last written by upstream kube-fledged: take its status as the applied state, no operation */
		json_t *adopted = json_deep_copy(view);
		json_t *applied = json_pack("{s:O}", "cacheSpec", kf_jget(obj, "spec", "cacheSpec", NULL));
		ic_status_decorate(adopted, view, gen, applied, time(NULL));
		char *hash = ic_spec_hash(json_object_get(obj, "spec"));
		rc = ic_write_status(ctl, st, obj, adopted, hash);
		free(hash);
		json_decref(adopted);
		json_decref(applied);
		*requeue_ms = rc == 0 ? 1 : 0;
		goto out;
	} else if (has_annotation(obj, IC_ANNOTATION_REFRESH)) {
		req.type = IC_OP_REFRESH;
		req.annotations[0] = IC_ANNOTATION_REFRESH;
	} else if (refresh_due) {
		pthread_mutex_lock(&ctl->mu);
		st->refresh_due = 0;
		pthread_mutex_unlock(&ctl->mu);
		if (purged && applied_has_images(view)) {
			req.type = IC_OP_PURGE; /* retry the deletes a purge could not do */
			req.leftovers_only = 1;
		} else if (!purged && !invalid) {
			req.type = IC_OP_REFRESH;
		}
	} else if (new_nodes && !purged && !invalid) {
		req.type = IC_OP_REFRESH;
		req.node_join = 1;
	} else if (new_nodes) {
		pthread_mutex_lock(&ctl->mu);
		map_free(&st->new_nodes, NULL);
		pthread_mutex_unlock(&ctl->mu);
	}
	if (req.type != IC_OP_NONE) {
		rc = ic_op_start(ctl, st, obj, spec, &req, requeue_ms);
	} else if (!edit && has_annotation(obj, IC_ANNOTATION_STATUS) && !atomic_load(&ctl->crd_prunes_status) &&
		   !atomic_load(&ctl->crd_no_status_subresource) && kf_jget(obj, "status", "conditions", NULL)) {
		/* the status is whole on our CRD: the annotation has served its turn. Its removal is a write of the
		 * main resource, which the validating webhook sees: one refused while the webhook restarts (as it
		 * does in the same upgrade) fails this sync and is retried with the queue's backoff. */
		const char *anns[2] = { IC_ANNOTATION_STATUS, NULL };
		rc = ic_remove_annotations(ctl, st, obj, anns);
	} else if (!edit && !st->status_folded && has_annotation(obj, IC_ANNOTATION_STATUS) &&
		   !atomic_load(&ctl->crd_prunes_status)) {
		/* our fields still ride in the annotation of upstream's CRD, which may have been replaced by ours
		 * since: write the status whole (the write removes the annotation once the CRD keeps them, or
		 * finds that it still prunes them) rather than wait for the next operation; once per cache, so a
		 * removal that keeps failing cannot turn into a loop of writes */
		st->status_folded = 1;
		json_t *whole = json_deep_copy(view);
		ic_status_decorate(whole, view, gen, NULL, time(NULL));
		char *hash = ic_spec_hash(json_object_get(obj, "spec"));
		rc = ic_write_status(ctl, st, obj, whole, hash);
		free(hash);
		json_decref(whole);
	}
out:
	json_decref(view);
	return rc;
}

int ic_sync(struct ic_controller *ctl, const char *key, int64_t *requeue_ms)
{
	*requeue_ms = 0;
	atomic_fetch_add(&ctl->n_syncs, 1);
	json_t *obj = kube_informer_get(ctl->caches, key);
	int gone = !obj || kf_jget(obj, "metadata", "deletionTimestamp", NULL);
	struct ic_cache_state *st = state_for(ctl, key, obj, gone);
	int rc = 0;
	if (gone) {
		if (st)
			drop_state(ctl, key, st);
		goto out;
	}
	if (st->op) {
		rc = ic_op_continue(ctl, st, obj, requeue_ms);
		goto out;
	}
	if (stale(ctl, st, obj)) {
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
	sb_release(&msg);
	rc = decide(ctl, st, obj, key, &spec, requeue_ms);
	ic_spec_free(&spec);
out:
	json_decref(obj);
	return rc;
}
