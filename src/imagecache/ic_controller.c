/* ic_controller.c - wiring of the ImageCache controller: informers and their event handlers, the work
 * queue and its workers, the periodic refresh ticker, and the per-cache state table. The decisions are in
 * ic_sync.c.
 *
 * Event handlers only enqueue keys (and keep two small indexes: the newest Pod of each Job, and each
 * Node's labels, to notice nodes that join or start matching a list). Workers call ic_sync(); an error
 * requeues the key with per-key exponential backoff (5 ms doubling to 5 min), success forgets it. */
#include "ic_controller.h"

#include <stdlib.h>
#include <string.h>

#include "ic_compat.h"
#include "ic_controller_int.h"
#include "ic_metrics.h"
#include "util/imageref.h"
#include "ic_jobs.h"
#include "util/log.h"
#include "util/util.h"

/* ---- helpers ---- */

static void enqueue_obj(struct ic_controller *ctl, json_t *obj)
{
	char key[512];
	kube_object_key(obj, key, sizeof key);
	if (*key)
		kube_wq_add(ctl->q, key);
}

/* ---- ImageCache handlers ---- */

static void note_seen(struct ic_controller *ctl, json_t *obj)
{
	char key[512];
	kube_object_key(obj, key, sizeof key);
	const char *rv = kf_jstr(obj, "metadata", "resourceVersion", NULL);
	pthread_mutex_lock(&ctl->mu);
	struct ic_cache_state *st = ic_state_get(ctl, key, 0);
	if (st && st->written_rv && rv && !strcmp(st->written_rv, rv))
		st->written_seen = 1;
	pthread_mutex_unlock(&ctl->mu);
}

/* Agent mode: the node syncs must look again when what the caches want changed (a spec, a purge, a
 * deletion), not on every status write. */
static void caches_changed(struct ic_controller *ctl)
{
	if (ctl->o.mode != IC_MODE_AGENT)
		return;
	pthread_mutex_lock(&ctl->mu);
	ctl->caches_version++;
	pthread_mutex_unlock(&ctl->mu);
	ic_nodesync_enqueue_all(ctl);
}

static int wants_differ(json_t *a, json_t *b)
{
	return ic_cache_wants_images(a) != ic_cache_wants_images(b) ||
	       !json_equal(json_object_get(a, "spec"), json_object_get(b, "spec"));
}

static void cache_add(void *ud, json_t *obj)
{
	enqueue_obj(ud, obj);
	caches_changed(ud);
	ic_nssync_enqueue(ud, ic_meta(obj, "namespace"));
}

static void cache_update(void *ud, json_t *old_obj, json_t *new_obj)
{
	note_seen(ud, new_obj);
	enqueue_obj(ud, new_obj);
	if (old_obj != new_obj && wants_differ(old_obj, new_obj)) {
		caches_changed(ud);
		ic_nssync_enqueue(ud, ic_meta(new_obj, "namespace"));
	}
}

static void cache_delete(void *ud, json_t *obj)
{
	enqueue_obj(ud, obj);
	caches_changed(ud);
	ic_nssync_enqueue(ud, ic_meta(obj, "namespace"));
}

/* ---- NodeImageCache handlers (agent mode): wake the caches whose operations wait for nodes ---- */

static void wake_running(struct ic_controller *ctl)
{
	struct strbuf keys = STRBUF_INIT;
	pthread_mutex_lock(&ctl->mu);
	size_t it = 0;
	const char *k;
	void *v;
	while (map_next(&ctl->states, &it, &k, &v))
		if (((struct ic_cache_state *)v)->op_running)
			sb_add(&keys, k, strlen(k) + 1);
	pthread_mutex_unlock(&ctl->mu);
	for (size_t off = 0; off < keys.len; off += strlen(keys.buf + off) + 1)
		kube_wq_add(ctl->q, keys.buf + off);
	sb_release(&keys);
}

static void nic_add(void *ud, json_t *obj)
{
	(void)obj;
	wake_running(ud);
}

static void nic_update(void *ud, json_t *old_obj, json_t *new_obj)
{
	struct ic_controller *ctl = ud;
	if (old_obj == new_obj)
		return; /* resync */
	/* someone else changed the spec: put ours back */
	json_t *og = kf_jget(old_obj, "metadata", "generation", NULL), *ng = kf_jget(new_obj, "metadata", "generation", NULL);
	if (!json_equal(og, ng))
		ic_nodesync_enqueue(ctl, ic_meta(new_obj, "name"));
	wake_running(ctl);
}

static void nic_delete(void *ud, json_t *obj)
{
	struct ic_controller *ctl = ud;
	const char *name = ic_meta(obj, "name");
	if (!name)
		return;
	ic_nic_forget(ctl->nicx, name);
	ic_nodesync_enqueue(ctl, name); /* deleted by hand while its node lives on: made again if needed */
	wake_running(ctl);
}

/* ---- Job and Pod handlers: wake the owning cache ---- */

static void job_event(void *ud, json_t *job)
{
	struct ic_controller *ctl = ud;
	char key[512];
	if (ic_job_owner_key(job, key, sizeof key))
		kube_wq_add(ctl->q, key);
}

static void job_add(void *ud, json_t *obj) { job_event(ud, obj); }
static void job_update(void *ud, json_t *o, json_t *n)
{
	(void)o;
	job_event(ud, n);
}
static void job_delete(void *ud, json_t *obj) { job_event(ud, obj); }

static void pod_index(struct ic_controller *ctl, json_t *pod, int deleted)
{
	const char *ns = kf_jstr(pod, "metadata", "namespace", NULL);
	const char *job = kf_jstr(pod, "metadata", "labels", "job-name", NULL);
	if (!ns || !job)
		return;
	char key[512];
	snprintf(key, sizeof key, "%s/%s", ns, job);
	pthread_mutex_lock(&ctl->mu);
	json_t *cur = map_get(&ctl->pod_by_job, key);
	const char *cur_name = kf_jstr(cur, "metadata", "name", NULL);
	const char *name = kf_jstr(pod, "metadata", "name", NULL);
	if (deleted) {
		if (cur && cur_name && name && !strcmp(cur_name, name))
			json_decref(map_del(&ctl->pod_by_job, key));
	} else {
		/* keep the newest pod of the Job (a Job may get a replacement pod) */
		const char *ct = kf_jstr(pod, "metadata", "creationTimestamp", NULL);
		const char *cct = kf_jstr(cur, "metadata", "creationTimestamp", NULL);
		int same = cur_name && name && !strcmp(cur_name, name);
		if (!cur || same || !cct || (ct && strcmp(ct, cct) >= 0))
			json_decref(map_put(&ctl->pod_by_job, key, json_incref(pod)));
	}
	pthread_mutex_unlock(&ctl->mu);
	json_t *j = kube_informer_get(ctl->jobs, key);
	if (j) {
		job_event(ctl, j);
		json_decref(j);
	} else {
		/* the Job is not in our cache yet: its label names the cache (all names up to 63 characters) */
		const char *cache = kf_jstr(pod, "metadata", "labels", IC_LABEL_CACHE, NULL);
		if (cache) {
			snprintf(key, sizeof key, "%s/%s", ns, cache);
			kube_wq_add(ctl->q, key);
		}
	}
}

static void pod_add(void *ud, json_t *obj) { pod_index(ud, obj, 0); }
static void pod_update(void *ud, json_t *o, json_t *n)
{
	(void)o;
	pod_index(ud, n, 0);
}
static void pod_delete(void *ud, json_t *obj) { pod_index(ud, obj, 1); }

/* ---- Node handlers: caching on nodes that join, or whose labels start matching a list ---- */

static void node_changed(struct ic_controller *ctl, json_t *node, json_t *old_labels)
{
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	json_t *labels = kf_jget(node, "metadata", "labels", NULL);
	json_t *caches = kube_informer_list(ctl->caches);
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c) {
		struct ic_spec spec;
		struct strbuf err = STRBUF_INIT;
		int parsed = ic_spec_parse(c, &spec, &err) == 0;
		sb_release(&err);
		if (!parsed)
			continue;
		int newly = 0;
		for (size_t l = 0; l < spec.n_lists && !newly; l++)
			newly = ic_list_matches_node(&spec.lists[l], labels) &&
				(!old_labels || !ic_list_matches_node(&spec.lists[l], old_labels));
		ic_spec_free(&spec);
		if (!newly)
			continue;
		char key[512];
		kube_object_key(c, key, sizeof key);
		pthread_mutex_lock(&ctl->mu);
		struct ic_cache_state *st = ic_state_get(ctl, key, 1);
		map_put(&st->new_nodes, name, NULL);
		pthread_mutex_unlock(&ctl->mu);
		LOG_INFO("node %s %s ImageCache %s: caching its images now", name,
			 old_labels ? "now matches" : "joined, matching", key);
		kube_wq_add(ctl->q, key);
	}
	json_decref(caches);
}

static void node_add(void *ud, json_t *node)
{
	struct ic_controller *ctl = ud;
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	json_t *labels = kf_jget(node, "metadata", "labels", NULL);
	pthread_mutex_lock(&ctl->mu);
	int synced = ctl->nodes_synced, known = map_has(&ctl->node_labels, name);
	json_decref(map_put(&ctl->node_labels, name, json_incref(labels ? labels : json_null())));
	pthread_mutex_unlock(&ctl->mu);
	if (synced && !known)
		node_changed(ctl, node, NULL);
	if (ctl->o.mode == IC_MODE_AGENT && name)
		ic_nodesync_enqueue(ctl, name);
}

static void node_update(void *ud, json_t *old_node, json_t *node)
{
	struct ic_controller *ctl = ud;
	(void)old_node;
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	json_t *labels = kf_jget(node, "metadata", "labels", NULL);
	pthread_mutex_lock(&ctl->mu);
	json_t *prev = json_incref(map_get(&ctl->node_labels, name));
	int changed = !prev || !json_equal(prev, labels ? labels : json_null());
	if (changed)
		json_decref(map_put(&ctl->node_labels, name, json_incref(labels ? labels : json_null())));
	int synced = ctl->nodes_synced;
	pthread_mutex_unlock(&ctl->mu);
	if (synced && changed)
		node_changed(ctl, node, prev && json_is_object(prev) ? prev : NULL);
	if (changed && ctl->o.mode == IC_MODE_AGENT && name)
		ic_nodesync_enqueue(ctl, name);
	json_decref(prev);
}

static void node_delete(void *ud, json_t *node)
{
	struct ic_controller *ctl = ud;
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	struct strbuf keys = STRBUF_INIT;
	pthread_mutex_lock(&ctl->mu);
	json_decref(map_del(&ctl->node_labels, name));
	size_t it = 0;
	const char *k;
	void *v;
	while (map_next(&ctl->states, &it, &k, &v)) {
		struct ic_cache_state *st = v;
		map_del(&st->new_nodes, name);
		if (st->op_running) {
			/* its tasks on this node can never finish: the sync cancels them */
			map_put(&st->gone_nodes, name, NULL);
			sb_add(&keys, k, strlen(k) + 1);
		}
	}
	pthread_mutex_unlock(&ctl->mu);
	for (size_t off = 0; off < keys.len; off += strlen(keys.buf + off) + 1)
		kube_wq_add(ctl->q, keys.buf + off);
	sb_release(&keys);
}

/* Nodes are most of a controller's memory (status.images alone is tens of KB): keep only what is used. */
static json_t *trim_node(void *ud, json_t *node)
{
	struct ic_controller *ctl = ud;
	json_t *m = json_object_get(node, "metadata"), *s = json_object_get(node, "status");
	json_t *out = json_pack("{s:{s:O*, s:O*, s:O*, s:O*, s:O*}, s:{s:O*, s:{s:O*}}}", "metadata", "name",
				json_object_get(m, "name"), "uid", json_object_get(m, "uid"), "resourceVersion",
				json_object_get(m, "resourceVersion"), "labels", json_object_get(m, "labels"),
				"annotations", json_object_get(m, "annotations"), "status", "images",
				json_object_get(s, "images"), "nodeInfo", "containerRuntimeVersion",
				kf_jget(s, "nodeInfo", "containerRuntimeVersion", NULL));
	/* keep only the names of images, not their sizes; none in agent mode (the agents know better) */
	if (ctl->o.mode == IC_MODE_AGENT)
		json_object_del(json_object_get(out, "status"), "images");
	json_t *images = kf_jget(out, "status", "images", NULL);
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) json_object_del(img, "sizeBytes");
	json_decref(node);
	return out;
}

static json_t *trim_pod(void *ud, json_t *pod)
{
	(void)ud;
	json_t *m = json_object_get(pod, "metadata");
	json_t *out = json_pack("{s:{s:O*, s:O*, s:O*, s:O*, s:O*}, s:O*}", "metadata", "name",
				json_object_get(m, "name"), "namespace", json_object_get(m, "namespace"),
				"resourceVersion", json_object_get(m, "resourceVersion"), "creationTimestamp",
				json_object_get(m, "creationTimestamp"), "labels", json_object_get(m, "labels"),
				"status", json_object_get(pod, "status"));
	json_t *st = json_object_get(out, "status");
	json_object_del(st, "conditions");
	json_decref(pod);
	return out;
}

static json_t *trim_job(void *ud, json_t *job)
{
	(void)ud;
	json_t *m = json_object_get(job, "metadata");
	json_t *out = json_pack("{s:{s:O*, s:O*, s:O*, s:O*, s:O*, s:O*, s:O*}, s:O*}", "metadata", "name",
				json_object_get(m, "name"), "namespace", json_object_get(m, "namespace"),
				"resourceVersion", json_object_get(m, "resourceVersion"), "creationTimestamp",
				json_object_get(m, "creationTimestamp"), "labels", json_object_get(m, "labels"),
				"annotations", json_object_get(m, "annotations"), "ownerReferences",
				json_object_get(m, "ownerReferences"), "status", json_object_get(job, "status"));
	json_decref(job);
	return out;
}

static json_t *trim_cache(void *ud, json_t *obj)
{
	(void)ud;
	json_t *m = json_object_get(obj, "metadata");
	json_object_del(m, "managedFields");
	json_t *ann = json_object_get(m, "annotations");
	json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
	return obj;
}

/* ---- controller ---- */

struct ic_controller *ic_controller_new(struct kube_client *c, const struct ic_controller_opts *o)
{
	static const volatile int never;
	struct ic_controller *ctl = xcalloc(1, sizeof *ctl);
	ctl->c = c;
	ctl->stop = &never;
	ctl->o = *o;
	if (ctl->o.workers <= 0)
		ctl->o.workers = 4;
	if (ctl->o.progress_interval_ms <= 0)
		ctl->o.progress_interval_ms = 5000;
	pthread_mutex_init(&ctl->mu, NULL);
	ctl->q = kube_wq_new("ImageCaches", 5, 300000);
	ctl->rec = kube_recorder_new(c, "kubefledged-controller", NULL);

	struct kube_informer_opts io = { .res = &IC_RESOURCE, .transform = trim_cache };
	struct kube_informer_handlers h = { cache_add, cache_update, cache_delete, ctl };
	ctl->caches = kube_informer_new(c, &io, &h);

	/* a Node lists up to 50 images in its status (about 10 KB): pages of 100, not 500, keep the parse of a
	 * 1,000-node list from raising the controller's peak memory by tens of MB */
	struct kube_informer_opts no = { .res = &KUBE_NODES, .transform = trim_node, .transform_ud = ctl,
					 .page_limit = 100 };
	struct kube_informer_handlers nh = { node_add, node_update, node_delete, ctl };
	ctl->nodes = kube_informer_new(c, &no, &nh);

	if (ctl->o.mode == IC_MODE_AGENT) {
		ctl->nicx = ic_nic_index_new();
		/* a NodeImageCache lists every image of its node (about 550 bytes each: 55 KB for 100 images), so
		 * pages of 500 would parse tens of MB at once; 25 keep a relist of 1,000 nodes at about 1.4 MB */
		struct kube_informer_opts xo = { .res = &NIC_RESOURCE, .transform = ic_nic_transform,
						 .transform_ud = ctl->nicx, .page_limit = 25 };
		struct kube_informer_handlers xh = { nic_add, nic_update, nic_delete, ctl };
		ctl->nics = kube_informer_new(c, &xo, &xh);
	} else {
		struct kube_informer_opts jo = { .res = &KUBE_JOBS, .label_selector = IC_JOB_SELECTOR,
						 .transform = trim_job };
		struct kube_informer_handlers jh = { job_add, job_update, job_delete, ctl };
		ctl->jobs = kube_informer_new(c, &jo, &jh);

		struct kube_informer_opts po = { .res = &KUBE_PODS, .label_selector = IC_JOB_SELECTOR,
						 .transform = trim_pod };
		struct kube_informer_handlers ph = { pod_add, pod_update, pod_delete, ctl };
		ctl->pods = kube_informer_new(c, &po, &ph);
	}
	return ctl;
}

struct worker_arg {
	struct ic_controller *ctl;
};

static void *worker(void *arg)
{
	struct ic_controller *ctl = arg;
	char *key;
	int64_t queued_ms;
	while ((key = kube_wq_get_timed(ctl->q, &queued_ms))) {
		int64_t requeue = 0, t0 = kf_now_ms();
		int rc;
		if (!strncmp(key, IC_NODE_KEY_PREFIX, strlen(IC_NODE_KEY_PREFIX)))
			rc = ic_nodesync(ctl, key + strlen(IC_NODE_KEY_PREFIX), &requeue);
		else if (!strncmp(key, IC_NS_KEY_PREFIX, strlen(IC_NS_KEY_PREFIX)))
			rc = ic_nssync(ctl, key + strlen(IC_NS_KEY_PREFIX), &requeue);
		else
			rc = ic_sync(ctl, key, &requeue);
		ic_metrics_sync(ctl, key, queued_ms, kf_now_ms() - t0, rc);
		if (rc < 0) {
			kube_wq_add_rate_limited(ctl->q, key);
		} else {
			kube_wq_forget(ctl->q, key);
			if (requeue > 0)
				kube_wq_add_after(ctl->q, key, requeue);
		}
		kube_wq_done(ctl->q, key);
		free(key);
	}
	return NULL;
}

static void tick_refresh(struct ic_controller *ctl)
{
	json_t *caches = kube_informer_list(ctl->caches);
	size_t i, skipped = 0;
	json_t *c;
	json_array_foreach(caches, i, c) {
		char key[512];
		kube_object_key(c, key, sizeof key);
		pthread_mutex_lock(&ctl->mu);
		struct ic_cache_state *st = ic_state_get(ctl, key, 1);
		/* an operation running now re-checks every node already: a refresh right after it would be
		 * back to back, so this tick is skipped for that cache */
		int running = st->op_running;
		if (!running)
			st->refresh_due = 1;
		pthread_mutex_unlock(&ctl->mu);
		if (running)
			skipped++;
		else
			kube_wq_add(ctl->q, key);
	}
	LOG_V(1, "periodic refresh: %zu image caches (%zu busy, skipped)", json_array_size(caches), skipped);
	json_decref(caches);
}

int ic_controller_run(struct ic_controller *ctl, const volatile int *stop)
{
	int rc = -1;
	ctl->stop = stop;
	pthread_t *workers = xcalloc((size_t)ctl->o.workers, sizeof *workers);
	int started = 0;
	int agent = ctl->o.mode == IC_MODE_AGENT;
	struct kube_informer *infs[] = { ctl->nodes, agent ? ctl->nics : ctl->jobs, agent ? NULL : ctl->pods,
					 ctl->caches };
	const char *names[] = { "nodes", agent ? "nodeimagecaches" : "jobs", "pods", "imagecaches" };
	/* what the installed CRD offers, from API discovery (the writes keep finding it out afterwards) */
	struct kube_err de;
	int has_status = ic_compat_has_status_subresource(ctl->c, &de);
	if (has_status == 0) {
		atomic_store(&ctl->crd_no_status_subresource, 1);
		atomic_store(&ctl->crd_probe_ms, kf_now_ms());
		LOG_WARN("the ImageCache CRD is upstream's (no status subresource): status goes through the main "
			 "resource, and what that CRD would prune into annotation %s; install the CRD from deploy/ "
			 "(make deploy-using-yaml) to fix this", IC_ANNOTATION_STATUS);
	} else if (has_status < 0) {
		LOG_WARN("API discovery of %s/%s: %s (HTTP %ld); assuming the CRD has its status subresource", IC_GROUP,
			 IC_VERSION, de.msg, de.code);
	}
	for (size_t i = 0; i < ARRAY_SIZE(infs); i++) {
		if (infs[i] && kube_informer_start(infs[i]) < 0) {
			LOG_ERROR("cannot start the %s informer", names[i]);
			goto out;
		}
	}
	/* caches last: their first syncs look at Jobs and Nodes */
	for (size_t i = 0; i < ARRAY_SIZE(infs); i++) {
		while (infs[i] && kube_informer_wait_synced(infs[i], 1000) < 0) {
			if (*stop)
				goto out;
			LOG_INFO("waiting for the %s cache to sync", names[i]);
		}
		if (infs[i] == ctl->nodes) {
			pthread_mutex_lock(&ctl->mu);
			ctl->nodes_synced = 1;
			pthread_mutex_unlock(&ctl->mu);
		}
	}
	LOG_INFO("caches synced (%s mode): %zu image caches, %zu nodes, %zu %s; starting %d workers",
		 agent ? "agent" : "jobs", kube_informer_len(ctl->caches), kube_informer_len(ctl->nodes),
		 kube_informer_len(agent ? ctl->nics : ctl->jobs), agent ? "node image caches" : "jobs",
		 ctl->o.workers);
	if (!agent)
		ic_jobs_sweep(ctl);
	for (; started < ctl->o.workers; started++)
		if (pthread_create(&workers[started], NULL, worker, ctl)) {
			LOG_ERROR("cannot start worker threads");
			goto out;
		}
	/* upstream refreshes at startup, then every period */
	int64_t next_refresh = ctl->o.refresh_ms > 0 ? kf_now_ms() : INT64_MAX;
	int64_t next_orphans = kf_now_ms() + 30000;
	while (!*stop) {
		if (kf_now_ms() >= next_refresh) {
			tick_refresh(ctl);
			next_refresh = kf_now_ms() + ctl->o.refresh_ms;
		}
		if (kf_now_ms() >= next_orphans) {
			ic_jobs_retry_orphans(ctl);
			next_orphans = kf_now_ms() + 30000;
		}
		kf_sleep_ms(200);
	}
	rc = 0;
out:
	LOG_INFO("shutting down");
	kube_wq_shutdown(ctl->q);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	for (size_t i = 0; i < ARRAY_SIZE(infs); i++)
		if (infs[i])
			kube_informer_stop(infs[i]);
	return rc;
}

static void decref_value(void *v) { json_decref(v); }

void ic_controller_free(struct ic_controller *ctl)
{
	if (!ctl)
		return;
	size_t it = 0;
	void *v;
	while (map_next(&ctl->states, &it, NULL, &v)) {
		ic_op_free(ctl, ((struct ic_cache_state *)v)->op);
		((struct ic_cache_state *)v)->op = NULL;
	}
	ic_jobs_retry_orphans(ctl);
	map_free(&ctl->states, ic_state_free);
	map_free(&ctl->orphan_jobs, NULL);
	map_free(&ctl->pod_by_job, decref_value);
	map_free(&ctl->node_labels, decref_value);
	map_free(&ctl->recent, free);
	kube_informer_free(ctl->caches);
	kube_informer_free(ctl->nodes);
	kube_informer_free(ctl->jobs);
	kube_informer_free(ctl->pods);
	kube_informer_free(ctl->nics);
	ic_nic_index_free(ctl->nicx);
	ic_cacheset_free(ctl->cacheset);
	ic_reqs_free_all(ctl);
	kube_wq_free(ctl->q);
	kube_recorder_free(ctl->rec);
	ic_metrics_free(ctl);
	pthread_mutex_destroy(&ctl->mu);
	free(ctl);
}

void ic_controller_stats(struct ic_controller *ctl, struct ic_controller_stats *out)
{
	out->syncs = atomic_load(&ctl->n_syncs);
	out->operations = atomic_load(&ctl->n_ops);
	out->jobs_created = atomic_load(&ctl->n_jobs_created);
	out->jobs_deleted = atomic_load(&ctl->n_jobs_deleted);
	out->status_writes = atomic_load(&ctl->n_status_writes);
}
