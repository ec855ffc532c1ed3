/* ic_nodesync.c - agent mode: the sync of one node's NodeImageCache spec (work queue keys "node:<name>").
 *
 * The desired spec is worked out from scratch every time, level-triggered:
 *   - Pull entries from every ImageCache that wants images on this node (ic_nodeplan.h), owners counted and
 *     pull secrets merged;
 *   - what running operations ask (the request table below): a fresh pull (pullGeneration raised) and
 *     removals (action Delete), a removal only when no cache wants the image here any more;
 *   - pullGeneration never goes down (the current spec's value is the floor), and a size hint from any node
 *     that reported the image's size.
 * It is written only when its hash differs from the object's (the reply updates the index at once, so a
 * second sync before the watch event does not write again). An object is created, owned by the Node (the
 * garbage collector deletes it with the node), only when the node has something to hold.
 *
 * The request table lives under ctl->mu: operations add their requests when they start and drop them when
 * they end; the node syncs read it. */
#include <string.h>

#include "ic_controller_int.h"
#include "util/intern.h"
#include "util/log.h"

/* A purge of 100 images on 1,000 nodes holds 100,000 of these: 24 bytes each, the strings shared
 * (util/intern.h). */
struct ic_req {
	const char *image; /* canonical */
	int64_t pull_gen;  /* > 0: the node must pull at least this generation; 0: a removal asked by cache */
	const char *cache; /* "ns/name" of the operation's cache */
};

struct ic_reqs {
	struct ic_req *v;
	size_t n, cap;
};

static void req_clear(struct ic_req *r)
{
	kf_intern_put(r->image);
	kf_intern_put(r->cache);
}

static void reqs_free(void *p)
{
	struct ic_reqs *rs = p;
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		req_clear(&rs->v[i]);
	free(rs->v);
	free(rs);
}

void ic_reqs_add(struct ic_controller *ctl, const char *node, const char *canonical, int64_t pull_gen,
		 const char *cache_key)
{
	pthread_mutex_lock(&ctl->mu);
	struct ic_reqs *rs = map_get(&ctl->node_reqs, node);
	if (!rs) {
		rs = xcalloc(1, sizeof *rs);
		map_put(&ctl->node_reqs, node, rs);
	}
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 8;
		rs->v = xrealloc(rs->v, rs->cap * sizeof *rs->v);
	}
	rs->v[rs->n++] = (struct ic_req){ kf_intern_get(canonical), pull_gen > 0 ? pull_gen : 0,
					  kf_intern_get(cache_key) };
	pthread_mutex_unlock(&ctl->mu);
}

void ic_reqs_drop_cache(struct ic_controller *ctl, const char *cache_key, struct map *touched)
{
	pthread_mutex_lock(&ctl->mu);
	size_t it = 0;
	const char *node;
	void *v;
	while (map_next(&ctl->node_reqs, &it, &node, &v)) {
		struct ic_reqs *rs = v;
		size_t w = 0;
		for (size_t i = 0; i < rs->n; i++) {
			if (!strcmp(rs->v[i].cache, cache_key)) {
				req_clear(&rs->v[i]);
				if (touched)
					map_put(touched, node, NULL);
				continue;
			}
			rs->v[w++] = rs->v[i];
		}
		rs->n = w;
	}
	pthread_mutex_unlock(&ctl->mu);
}

void ic_reqs_free_all(struct ic_controller *ctl)
{
	map_free(&ctl->node_reqs, reqs_free);
}

void ic_nodesync_enqueue(struct ic_controller *ctl, const char *node)
{
	char key[300];
	snprintf(key, sizeof key, IC_NODE_KEY_PREFIX "%s", node);
	kube_wq_add(ctl->q, key);
}

void ic_nodesync_enqueue_all(struct ic_controller *ctl)
{
	json_t *nodes = kube_informer_list(ctl->nodes);
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n) {
		const char *name = ic_meta(n, "name");
		if (name)
			ic_nodesync_enqueue(ctl, name);
	}
	json_decref(nodes);
}

/* The cache set, rebuilt (outside the lock) when the caches changed since it was built; a new reference. */
static struct ic_cacheset *cacheset_current(struct ic_controller *ctl)
{
	pthread_mutex_lock(&ctl->mu);
	if (ctl->cacheset && ctl->cacheset_version == ctl->caches_version) {
		struct ic_cacheset *cs = ic_cacheset_ref(ctl->cacheset);
		pthread_mutex_unlock(&ctl->mu);
		return cs;
	}
	uint64_t v = ctl->caches_version;
	pthread_mutex_unlock(&ctl->mu);
	json_t *caches = kube_informer_list(ctl->caches);
	struct ic_cacheset *cs = ic_cacheset_new(caches);
	json_decref(caches);
	pthread_mutex_lock(&ctl->mu);
	if (!ctl->cacheset || v > ctl->cacheset_version) {
		ic_cacheset_free(ctl->cacheset);
		ctl->cacheset = ic_cacheset_ref(cs);
		ctl->cacheset_version = v;
	}
	pthread_mutex_unlock(&ctl->mu);
	return cs;
}

static int64_t spec_gen_of(void *ud, const char *canonical)
{
	struct ic_controller *ctl = ((void **)ud)[0];
	const char *node = ((void **)ud)[1];
	struct ic_nic_info info;
	ic_nic_lookup(ctl->nicx, node, canonical, &info);
	int64_t g = info.spec_gen;
	ic_nic_info_clear(&info);
	return g;
}

static int64_t size_hint_of(void *ud, const char *canonical)
{
	struct ic_controller *ctl = ((void **)ud)[0];
	return ic_nic_size_hint(ctl->nicx, canonical);
}

static json_t *desired_spec(struct ic_controller *ctl, const char *node, json_t *labels, struct ic_cacheset *cs)
{
	/* the node's requests, copied under the lock */
	pthread_mutex_lock(&ctl->mu);
	struct ic_reqs *rs = map_get(&ctl->node_reqs, node);
	size_t n = rs ? rs->n : 0;
	struct ic_node_request *reqs = xcalloc(n + 1, sizeof *reqs);
	for (size_t i = 0; i < n; i++) {
		reqs[i] = (struct ic_node_request){ xstrdup(rs->v[i].image), rs->v[i].pull_gen, NULL, NULL };
		const char *slash = rs->v[i].pull_gen ? NULL : strchr(rs->v[i].cache, '/');
		if (slash) { /* a removal: its owner is the cache */
			reqs[i].del_ns = xstrndup(rs->v[i].cache, (size_t)(slash - rs->v[i].cache));
			reqs[i].del_name = xstrdup(slash + 1);
		}
	}
	pthread_mutex_unlock(&ctl->mu);
	void *ud[2] = { ctl, (void *)node };
	json_t *spec = ic_nodeplan_spec(cs, node, labels, reqs, n, spec_gen_of, size_hint_of, ud);
	for (size_t i = 0; i < n; i++) {
		free((char *)reqs[i].image);
		free((char *)reqs[i].del_ns);
		free((char *)reqs[i].del_name);
	}
	free(reqs);
	return spec;
}

static int write_spec(struct ic_controller *ctl, json_t *node_obj, const char *node, json_t *spec, int exists)
{
	struct strbuf path = STRBUF_INIT;
	struct kube_err err;
	json_t *res = NULL;
	if (!exists) {
		kube_path(&path, &NIC_RESOURCE, NULL, NULL, NULL);
		json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}, s:[{s:s, s:s, s:s, s:s}]}, s:O}", "apiVersion",
					NIC_API_VERSION, "kind", NIC_KIND, "metadata", "name", node, "labels", "app",
					"kubefledged", "kubefledged", "nodeimagecache", "ownerReferences", "apiVersion", "v1",
					"kind", "Node", "name", node, "uid", ic_meta(node_obj, "uid") ? ic_meta(node_obj, "uid") : "",
					"spec", spec);
		res = kube_create(ctl->c, path.buf, obj, &err);
		json_decref(obj);
		if (!res && err.code == 409)
			exists = 1;
	}
	if (exists) {
		sb_reset(&path);
		kube_path(&path, &NIC_RESOURCE, NULL, node, NULL);
		json_t *patch = json_pack("{s:O}", "spec", spec);
		res = kube_patch(ctl->c, path.buf, patch, "application/merge-patch+json", &err);
		json_decref(patch);
	}
	sb_release(&path);
	if (!res) {
		LOG_WARN("NodeImageCache %s: writing the spec failed (HTTP %ld): %s", node, err.code, err.msg);
		return -1;
	}
	/* the index follows our own write at once (the watch brings the same object later) */
	json_decref(ic_nic_transform(ctl->nicx, res));
	LOG_V(2, "NodeImageCache %s: spec written (%zu images)", node, json_array_size(json_object_get(spec, "images")));
	return 0;
}

int ic_nodesync(struct ic_controller *ctl, const char *node, int64_t *requeue_ms)
{
	*requeue_ms = 0;
	json_t *node_obj = kube_informer_get(ctl->nodes, node);
	if (!node_obj)
		return 0; /* gone: its object goes with it (garbage collector) */
	json_t *labels = kf_jget(node_obj, "metadata", "labels", NULL);
	struct ic_cacheset *cs = cacheset_current(ctl);
	json_t *spec = desired_spec(ctl, node, labels, cs);
	ic_cacheset_free(cs);
	char want[33], have[64];
	ic_nic_spec_hash(spec, want);
	ic_nic_spec_hash_of(ctl->nicx, node, have, sizeof have);
	int rc = 0;
	int exists = *have != '\0';
	if (strcmp(want, have) && (exists || json_array_size(json_object_get(spec, "images"))))
		rc = write_spec(ctl, node_obj, node, spec, exists);
	json_decref(spec);
	json_decref(node_obj);
	return rc;
}
