/* ic_nodeplan.c - per-node planning across ImageCaches; see ic_nodeplan.h. */
#include "ic_nodeplan.h"

#include <string.h>

#include "ic_status.h"
#include "ic_task.h"
#include "util/map.h"
#include "util/util.h"

struct want_ref {
	size_t cache;              /* index into specs */
	const struct ic_list *list;
};

struct want_refs {
	struct want_ref *v;
	size_t n, cap;
};

struct ic_wantindex {
	struct ic_spec *specs;
	size_t n_specs;
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

struct ic_wantindex *ic_wantindex_new(json_t *caches, const char *skip_uid)
{
	struct ic_wantindex *w = xcalloc(1, sizeof *w);
	w->specs = xcalloc(json_array_size(caches) + 1, sizeof *w->specs);
	struct strbuf canon = STRBUF_INIT, err = STRBUF_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c) {
		const char *uid = kf_jstr(c, "metadata", "uid", NULL);
		if ((skip_uid && uid && !strcmp(uid, skip_uid)) || !ic_cache_wants_images(c))
			continue;
		sb_reset(&err);
		struct ic_spec *spec = &w->specs[w->n_specs];
		if (ic_spec_parse(c, spec, &err) < 0)
			continue;
		size_t ci = w->n_specs++;
		for (size_t l = 0; l < spec->n_lists; l++) {
			for (size_t j = 0; j < spec->lists[l].n_images; j++) {
				sb_reset(&canon);
				ic_image_canonical(spec->lists[l].images[j], &canon, NULL);
				struct want_refs *r = map_get(&w->by_image, canon.buf);
				if (!r) {
					r = xcalloc(1, sizeof *r);
					map_put(&w->by_image, canon.buf, r);
				}
				if (r->n == r->cap) {
					r->cap = r->cap ? r->cap * 2 : 4;
					r->v = xrealloc(r->v, r->cap * sizeof *r->v);
				}
				r->v[r->n++] = (struct want_ref){ ci, &spec->lists[l] };
			}
		}
	}
	sb_release(&canon);
	sb_release(&err);
	return w;
}

void ic_wantindex_free(struct ic_wantindex *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_specs; i++)
		ic_spec_free(&w->specs[i]);
	free(w->specs);
	map_free(&w->by_image, refs_free);
	free(w);
}

size_t ic_wantindex_owners(const struct ic_wantindex *w, json_t *node_labels, const char *canonical_image)
{
	const struct want_refs *r = w ? map_get(&w->by_image, canonical_image) : NULL;
	size_t owners = 0, last = (size_t)-1;
	for (size_t i = 0; r && i < r->n; i++) {
		/* refs of one cache are adjacent (added cache by cache): count each cache once */
		if (r->v[i].cache == last || !ic_list_matches_node(r->v[i].list, node_labels))
			continue;
		last = r->v[i].cache;
		owners++;
	}
	return owners;
}

int ic_wantindex_wants(const struct ic_wantindex *w, json_t *node_labels, const char *canonical_image)
{
	return ic_wantindex_owners(w, node_labels, canonical_image) > 0;
}
