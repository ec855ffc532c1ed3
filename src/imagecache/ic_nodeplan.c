/* ic_nodeplan.c - per-node planning across ImageCaches; see ic_nodeplan.h.
 *
 * The set keeps every wanting cache's lists with their images' canonical forms, and an inverted index
 * canonical -> (cache, list) for the owner counts of the delete guard. */
#include "ic_nodeplan.h"

#include <stdatomic.h>
#include <string.h>

#include "ic_status.h"
#include "ic_task.h"
#include "util/map.h"
#include "util/util.h"

struct cs_list {
	const struct ic_list *l;
	char **canon;     /* canonical form per image; NULL for one that does not parse */
};

struct cs_cache {
	struct ic_spec spec;
	char *ns, *name, *uid;
	struct cs_list *lists;
};

struct want_ref {
	size_t cache;
	const struct ic_list *list;
};

struct want_refs {
	struct want_ref *v;
	size_t n, cap;
};

struct ic_cacheset {
	atomic_int refs;
	struct cs_cache *c;
	size_t n;
	struct map by_image; /* canonical -> struct want_refs * */
};

int ic_cache_wants_images(json_t *cache)
{
	if (kf_jget(cache, "metadata", "deletionTimestamp", NULL))
		return 0;
	if (kf_jget(cache, "metadata", "annotations", IC_ANNOTATION_PURGE, NULL))
		return 0;
	const char *reason = kf_jstr(cache, "status", "reason", NULL);
	return !(reason && !strcmp(reason, IC_REASON_PURGE));
}

static void refs_free(void *p)
{
	struct want_refs *r = p;
	if (r)
		free(r->v);
	free(r);
}

static void add_ref(struct ic_cacheset *cs, const char *canon, size_t ci, const struct ic_list *l)
{
	struct want_refs *r = map_get(&cs->by_image, canon);
	if (!r) {
		r = xcalloc(1, sizeof *r);
		map_put(&cs->by_image, canon, r);
	}
	if (r->n && r->v[r->n - 1].cache == ci && r->v[r->n - 1].list == l)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 4;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = (struct want_ref){ ci, l };
}

struct ic_cacheset *ic_cacheset_new(json_t *caches)
{
	struct ic_cacheset *cs = xcalloc(1, sizeof *cs);
	atomic_init(&cs->refs, 1);
	cs->c = xcalloc(json_array_size(caches) + 1, sizeof *cs->c);
	struct strbuf canon = STRBUF_INIT, err = STRBUF_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c) {
		if (!ic_cache_wants_images(c))
			continue;
		struct cs_cache *cc = &cs->c[cs->n];
		sb_reset(&err);
		if (ic_spec_parse(c, &cc->spec, &err) < 0)
			continue;
		size_t ci = cs->n++;
		const char *ns = kf_jstr(c, "metadata", "namespace", NULL), *name = kf_jstr(c, "metadata", "name", NULL);
		const char *uid = kf_jstr(c, "metadata", "uid", NULL);
		cc->ns = xstrdup(ns ? ns : "");
		cc->name = xstrdup(name ? name : "");
		cc->uid = xstrdup(uid ? uid : "");
		cc->lists = xcalloc(cc->spec.n_lists + 1, sizeof *cc->lists);
		for (size_t l = 0; l < cc->spec.n_lists; l++) {
			const struct ic_list *il = &cc->spec.lists[l];
			cc->lists[l].l = il;
			cc->lists[l].canon = xcalloc(il->n_images + 1, sizeof(char *));
			for (size_t j = 0; j < il->n_images; j++) {
				sb_reset(&canon);
				if (!ic_image_canonical(il->images[j], &canon, NULL))
					continue;
				cc->lists[l].canon[j] = xstrdup(canon.buf);
				add_ref(cs, canon.buf, ci, il);
			}
		}
	}
	sb_release(&canon);
	sb_release(&err);
	return cs;
}

struct ic_cacheset *ic_cacheset_ref(struct ic_cacheset *cs)
{
	if (cs)
		atomic_fetch_add(&cs->refs, 1);
	return cs;
}

void ic_cacheset_free(struct ic_cacheset *cs)
{
	if (!cs || atomic_fetch_sub(&cs->refs, 1) > 1)
		return;
	for (size_t i = 0; i < cs->n; i++) {
		struct cs_cache *cc = &cs->c[i];
		for (size_t l = 0; l < cc->spec.n_lists; l++) {
			for (size_t j = 0; j < cc->spec.lists[l].n_images; j++)
				free(cc->lists[l].canon[j]);
			free(cc->lists[l].canon);
		}
		free(cc->lists);
		free(cc->ns);
		free(cc->name);
		free(cc->uid);
		ic_spec_free(&cc->spec);
	}
	free(cs->c);
	map_free(&cs->by_image, refs_free);
	free(cs);
}

size_t ic_cacheset_len(const struct ic_cacheset *cs)
{
	return cs ? cs->n : 0;
}

size_t ic_cacheset_owners(const struct ic_cacheset *cs, json_t *node_labels, const char *canonical_image,
			  const char *skip_uid)
{
	const struct want_refs *r = cs ? map_get(&cs->by_image, canonical_image) : NULL;
	size_t owners = 0, last = (size_t)-1;
	for (size_t i = 0; r && i < r->n; i++) {
		/* refs of one cache are adjacent (added cache by cache): count each cache once */
		size_t ci = r->v[i].cache;
		if (ci == last || (skip_uid && !strcmp(cs->c[ci].uid, skip_uid)) ||
		    !ic_list_matches_node(r->v[i].list, node_labels))
			continue;
		last = ci;
		owners++;
	}
	return owners;
}

void ic_cacheset_node_wants(const struct ic_cacheset *cs, json_t *node_labels,
			    void (*cb)(void *ud, const struct ic_want *w), void *ud)
{
	for (size_t ci = 0; cs && ci < cs->n; ci++) {
		const struct cs_cache *cc = &cs->c[ci];
		for (size_t l = 0; l < cc->spec.n_lists; l++) {
			if (!ic_list_matches_node(cc->lists[l].l, node_labels))
				continue;
			for (size_t j = 0; j < cc->lists[l].l->n_images; j++) {
				if (!cc->lists[l].canon[j])
					continue;
				struct ic_want w = { cc->lists[l].canon[j], cc->ns, cc->name, cc->spec.pull_secrets,
						     cc->spec.n_pull_secrets };
				cb(ud, &w);
			}
		}
	}
}

/* ---- a node's desired NodeImageCache spec ---- */

struct entry {
	json_t *owners;    /* [{namespace, name}] */
	json_t *secrets;   /* [{namespace, name}] */
	json_t *del_owners;
	int64_t gen;
	int del;
};

static void entry_free(void *p)
{
	struct entry *e = p;
	if (!e)
		return;
	json_decref(e->owners);
	json_decref(e->secrets);
	json_decref(e->del_owners);
	free(e);
}

static struct entry *entry_get(struct map *m, const char *image)
{
	struct entry *e = map_get(m, image);
	if (!e) {
		e = xcalloc(1, sizeof *e);
		e->owners = json_array();
		e->secrets = json_array();
		e->del_owners = json_array();
		map_put(m, image, e);
	}
	return e;
}

/* Appends {namespace, name} unless the array holds it already. */
static void add_ref_unique(json_t *arr, const char *ns, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach(arr, i, r) {
		if (!strcmp(kf_jstr(r, "namespace", NULL), ns) && !strcmp(kf_jstr(r, "name", NULL), name))
			return;
	}
	json_array_append_new(arr, json_pack("{s:s, s:s}", "namespace", ns, "name", name));
}

static void on_want(void *ud, const struct ic_want *w)
{
	struct entry *e = entry_get(ud, w->canonical);
	add_ref_unique(e->owners, w->ns, w->name);
	for (size_t i = 0; i < w->n_pull_secrets; i++)
		if (w->pull_secrets[i] && *w->pull_secrets[i])
			add_ref_unique(e->secrets, w->ns, w->pull_secrets[i]);
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *ic_nodeplan_spec(const struct ic_cacheset *cs, const char *node, json_t *labels,
			 const struct ic_node_request *reqs, size_t n_reqs,
			 int64_t (*spec_gen)(void *ud, const char *canonical),
			 int64_t (*size_hint)(void *ud, const char *canonical), void *ud)
{
	struct map ents = MAP_INIT;
	ic_cacheset_node_wants(cs, labels, on_want, &ents);
	for (size_t i = 0; i < n_reqs; i++) {
		const struct ic_node_request *r = &reqs[i];
		struct entry *e = map_get(&ents, r->image);
		if (r->del_ns) {
			if (e && json_array_size(e->owners))
				continue; /* wanted by a cache: kept (the operation sees it so) */
			e = entry_get(&ents, r->image);
			e->del = 1;
			add_ref_unique(e->del_owners, r->del_ns, r->del_name);
		} else if (e && r->pull_gen > e->gen) {
			e->gen = r->pull_gen;
		}
	}
	size_t n = ents.len, k = 0, it = 0;
	const char **keys = xcalloc(n + 1, sizeof *keys);
	const char *key;
	while (map_next(&ents, &it, &key, NULL))
		keys[k++] = key;
	qsort(keys, n, sizeof *keys, cmp_str_ptr);
	json_t *images = json_array();
	for (k = 0; k < n; k++) {
		struct entry *e = map_get(&ents, keys[k]);
		json_t *item = json_pack("{s:s}", "image", keys[k]);
		if (e->del) {
			json_object_set_new(item, "action", json_string("Delete"));
			json_object_set(item, "owners", e->del_owners);
		} else {
			int64_t cur = spec_gen ? spec_gen(ud, keys[k]) : 0;
			int64_t gen = e->gen > cur ? e->gen : cur;
			if (gen > 0)
				json_object_set_new(item, "pullGeneration", json_integer(gen));
			json_object_set(item, "owners", e->owners);
			if (json_array_size(e->secrets))
				json_object_set(item, "pullSecrets", e->secrets);
			int64_t size = size_hint ? size_hint(ud, keys[k]) : 0;
			if (size > 0)
				json_object_set_new(item, "sizeHint", json_integer(size));
		}
		json_array_append_new(images, item);
	}
	free(keys);
	map_free(&ents, entry_free);
	return json_pack("{s:s, s:o}", "nodeName", node, "images", images);
}
