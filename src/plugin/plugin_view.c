/* plugin_view.c - nodes, caches and image columns as `kubectl fledged` reads them (see plugin_view.h). */
#include "plugin_view.h"

#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_status.h"
#include "util/imageref.h"
#include "util/util.h"

int plugin_canonical(const char *image, struct strbuf *out, int *floating)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int ok = image && imageref_parse(image, &r, &err) == 0;
	sb_release(&err);
	sb_reset(out);
	if (floating)
		*floating = ok && imageref_is_floating(&r);
	if (ok)
		imageref_canonical(&r, out);
	else
		sb_adds(out, image ? image : "");
	return ok;
}

/* What a name or a wanted image is, for presence: "domain/path@digest", else "domain/path:tag" (":latest"
 * when untagged), as the controller's planner matches them. A name with both gives both keys. */
static void match_keys(const struct imageref *r, struct strbuf *tag_key, struct strbuf *digest_key)
{
	sb_reset(tag_key);
	sb_reset(digest_key);
	if (r->tag[0] || !r->digest[0])
		sb_addf(tag_key, "%s/%s:%s", r->domain, r->path, r->tag[0] ? r->tag : "latest");
	if (r->digest[0])
		sb_addf(digest_key, "%s/%s@%s", r->domain, r->path, r->digest);
}

static int node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct plugin_node *)a)->name, ((const struct plugin_node *)b)->name);
}

static void index_entries(json_t *arr, struct map *m)
{
	struct strbuf canon = STRBUF_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *image = kf_jstr(e, "image", NULL);
		if (!image)
			continue;
		plugin_canonical(image, &canon, NULL);
		if (!map_has(m, canon.buf))
			map_put(m, canon.buf, e);
	}
	sb_release(&canon);
}

void plugin_nodes_build(json_t *nodes, json_t *nics, enum plugin_mode mode, struct plugin_nodes *out)
{
	memset(out, 0, sizeof *out);
	out->mode = mode;
	out->v = xcalloc(json_array_size(nodes) + 1, sizeof *out->v);
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, err = STRBUF_INIT;
	size_t i, j, k;
	json_t *node, *img, *name;
	json_array_foreach(nodes, i, node) {
		const char *nm = kf_jstr(node, "metadata", "name", NULL);
		if (!nm)
			continue;
		struct plugin_node *n = &out->v[out->n++];
		n->name = nm;
		n->labels = kf_jget(node, "metadata", "labels", NULL);
		n->hostname = kf_jstr(n->labels, "kubernetes.io/hostname", NULL);
		if (!n->hostname)
			n->hostname = nm;
		n->os = kf_jstr(n->labels, "kubernetes.io/os", NULL);
		if (!n->os)
			n->os = kf_jstr(node, "status", "nodeInfo", "operatingSystem", NULL);
		n->arch = kf_jstr(n->labels, "kubernetes.io/arch", NULL);
		if (!n->arch)
			n->arch = kf_jstr(node, "status", "nodeInfo", "architecture", NULL);
		n->reported = (struct map)MAP_INIT;
		n->nic_spec = n->nic_status = (struct map)MAP_INIT;
		json_t *images = kf_jget(node, "status", "images", NULL);
		n->n_reported = json_array_size(images);
		json_array_foreach(images, j, img) {
			json_array_foreach(json_object_get(img, "names"), k, name) {
				struct imageref r;
				sb_reset(&err);
				if (!json_is_string(name) || imageref_parse(json_string_value(name), &r, &err) < 0)
					continue;
				match_keys(&r, &a, &b);
				if (a.len)
					map_put(&n->reported, a.buf, NULL);
				if (b.len)
					map_put(&n->reported, b.buf, NULL);
			}
		}
	}
	qsort(out->v, out->n, sizeof *out->v, node_cmp);
	json_t *nic;
	json_array_foreach(nics, i, nic) {
		const char *nm = kf_jstr(nic, "metadata", "name", NULL);
		struct plugin_node key = { .name = nm };
		struct plugin_node *n = nm ? bsearch(&key, out->v, out->n, sizeof *out->v, node_cmp) : NULL;
		if (!n || n->nic)
			continue;
		n->nic = json_incref(nic);
		index_entries(kf_jget(nic, "spec", "images", NULL), &n->nic_spec);
		index_entries(kf_jget(nic, "status", "images", NULL), &n->nic_status);
	}
	sb_release(&a);
	sb_release(&b);
	sb_release(&err);
}

void plugin_nodes_free(struct plugin_nodes *ns)
{
	for (size_t i = 0; i < ns->n; i++) {
		map_free(&ns->v[i].reported, NULL);
		map_free(&ns->v[i].nic_spec, NULL);
		map_free(&ns->v[i].nic_status, NULL);
		json_decref(ns->v[i].nic);
	}
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

enum plugin_mode plugin_mode_guess(json_t *nics, json_t *caches, int complete)
{
	if (!json_array_size(nics))
		return PLUGIN_MODE_JOBS;
	struct map live = MAP_INIT;
	int processed = 0;
	size_t i, j, k;
	json_t *c, *e, *o;
	json_array_foreach(caches, i, c) {
		const char *ns = kf_jstr(c, "metadata", "namespace", NULL), *name = kf_jstr(c, "metadata", "name", NULL);
		const char *st = kf_jstr(c, "status", "status", NULL), *reason = kf_jstr(c, "status", "reason", NULL);
		/* a purged cache wants nothing, so in agent mode too no NodeImageCache names it */
		processed |= st && *st && !(reason && !strcmp(reason, IC_REASON_PURGE));
		if (!ns || !name || kf_jget(c, "metadata", "deletionTimestamp", NULL))
			continue;
		char *key = xasprintf("%s/%s", ns, name);
		map_put(&live, key, NULL);
		free(key);
	}
	int live_owner = 0, dead_owner = 0;
	json_array_foreach(nics, i, c) {
		json_array_foreach(kf_jget(c, "spec", "images", NULL), j, e) {
			json_array_foreach(json_object_get(e, "owners"), k, o) {
				char *key = xasprintf("%s/%s", kf_jstr(o, "namespace", NULL) ? kf_jstr(o, "namespace", NULL) : "",
						      kf_jstr(o, "name", NULL) ? kf_jstr(o, "name", NULL) : "");
				if (map_has(&live, key))
					live_owner = 1;
				else
					dead_owner = 1;
				free(key);
			}
		}
	}
	map_free(&live, NULL);
	if (live_owner)
		return PLUGIN_MODE_AGENT;
	return (complete && dead_owner) || processed ? PLUGIN_MODE_JOBS : PLUGIN_MODE_AGENT;
}

const struct plugin_node *plugin_node_by_hostname(const struct plugin_nodes *ns, const char *hostname)
{
	for (size_t i = 0; hostname && i < ns->n; i++)
		if (!strcmp(ns->v[i].hostname, hostname))
			return &ns->v[i];
	return NULL;
}

int plugin_node_reports(const struct plugin_node *n, const char *image)
{
	struct imageref r;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, err = STRBUF_INIT;
	int found = 0;
	if (imageref_parse(image, &r, &err) == 0) {
		match_keys(&r, &a, &b);
		found = r.digest[0] ? map_has(&n->reported, b.buf) : map_has(&n->reported, a.buf);
	}
	sb_release(&a);
	sb_release(&b);
	sb_release(&err);
	return found;
}

json_t *plugin_nic_spec(const struct plugin_node *n, const char *canonical)
{
	return map_get(&n->nic_spec, canonical);
}

json_t *plugin_nic_status(const struct plugin_node *n, const char *canonical)
{
	return map_get(&n->nic_status, canonical);
}

/* ---- caches ---- */

int plugin_cache_load(json_t *obj, struct plugin_cache *c, struct strbuf *err)
{
	memset(c, 0, sizeof *c);
	c->obj = json_incref(obj);
	json_t *st = json_object_get(obj, "status");
	c->status = json_is_object(st) ? json_deep_copy(st) : json_object();
	/* where upstream's CRD prunes our fields, the controller keeps them in an annotation */
	const char *ext = kf_jstr(obj, "metadata", "annotations", PLUGIN_ANNOTATION_STATUS, NULL);
	json_t *extj = ext ? json_loads(ext, 0, NULL) : NULL;
	const char *k;
	json_t *v;
	json_object_foreach(extj, k, v) {
		if (strcmp(k, "specHash") && !json_object_get(c->status, k))
			json_object_set(c->status, k, v);
	}
	json_decref(extj);
	json_t *aj = json_object_get(c->status, "appliedSpec");
	if (json_is_object(aj)) {
		json_t *wrap = json_pack("{s:O}", "spec", aj);
		struct strbuf e = STRBUF_INIT;
		c->has_applied = ic_spec_parse(wrap, &c->applied, &e) == 0;
		sb_release(&e);
		json_decref(wrap);
	}
	c->spec_ok = ic_spec_parse(obj, &c->spec, err) == 0;
	return c->spec_ok ? 0 : -1;
}

void plugin_cache_free(struct plugin_cache *c)
{
	if (c->spec_ok)
		ic_spec_free(&c->spec);
	if (c->has_applied)
		ic_spec_free(&c->applied);
	json_decref(c->status);
	json_decref(c->obj);
	memset(c, 0, sizeof *c);
}

int plugin_cache_wants(json_t *obj)
{
	if (kf_jget(obj, "metadata", "deletionTimestamp", NULL))
		return 0;
	if (kf_jget(obj, "metadata", "annotations", IC_ANNOTATION_PURGE, NULL))
		return 0;
	const char *reason = kf_jstr(obj, "status", "reason", NULL);
	return !(reason && !strcmp(reason, IC_REASON_PURGE));
}

/* ---- image columns ---- */

void plugin_images_init(struct plugin_images *im)
{
	memset(im, 0, sizeof *im);
	im->ix = (struct map)MAP_INIT;
}

void plugin_images_free(struct plugin_images *im)
{
	for (size_t i = 0; i < im->n; i++) {
		free(im->v[i].image);
		free(im->v[i].canonical);
	}
	free(im->v);
	map_free(&im->ix, NULL);
	memset(im, 0, sizeof *im);
}

void plugin_images_add(struct plugin_images *im, const struct ic_spec *s, int in_spec)
{
	struct strbuf canon = STRBUF_INIT;
	for (size_t l = 0; s && l < s->n_lists; l++) {
		for (size_t i = 0; i < s->lists[l].n_images; i++) {
			int floating;
			int valid = plugin_canonical(s->lists[l].images[i], &canon, &floating);
			uintptr_t at = (uintptr_t)map_get(&im->ix, canon.buf);
			if (at) {
				im->v[at - 1].in_spec |= in_spec;
				continue;
			}
			im->v = xrealloc(im->v, (im->n + 1) * sizeof *im->v);
			im->v[im->n] = (struct plugin_image){ xstrdup(s->lists[l].images[i]), xstrdup(canon.buf), valid,
							      floating, in_spec };
			map_put(&im->ix, canon.buf, (void *)(uintptr_t)++im->n);
		}
	}
	sb_release(&canon);
}

long plugin_images_find(const struct plugin_images *im, const char *canonical)
{
	return (long)(uintptr_t)map_get(&im->ix, canonical) - 1;
}

void plugin_images_mark(const struct plugin_images *im, const struct ic_spec *s, json_t *labels, uint8_t *flags)
{
	struct strbuf canon = STRBUF_INIT;
	for (size_t l = 0; s && l < s->n_lists; l++) {
		if (!ic_list_matches_node(&s->lists[l], labels))
			continue;
		for (size_t i = 0; i < s->lists[l].n_images; i++) {
			plugin_canonical(s->lists[l].images[i], &canon, NULL);
			long at = plugin_images_find(im, canon.buf);
			if (at >= 0)
				flags[at] = 1;
		}
	}
	sb_release(&canon);
}

/* status.failures by canonical image: {canonical: [entries]} (a new object of borrowed arrays) */
json_t *plugin_failures_by_image(json_t *status)
{
	json_t *out = json_object();
	struct strbuf canon = STRBUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(status, "failures"), k, v) {
		plugin_canonical(k, &canon, NULL);
		json_object_set(out, canon.buf, v);
	}
	sb_release(&canon);
	return out;
}

json_t *plugin_failure_for(json_t *entries, const char *hostname, int *more)
{
	size_t i;
	json_t *e;
	*more = 0;
	json_array_foreach(entries, i, e) {
		const char *node = kf_jstr(e, "node", NULL), *reason = kf_jstr(e, "reason", NULL);
		if (reason && !strcmp(reason, IC_REASON_MORE_FAILURES))
			*more = 1;
		else if (node && !strcmp(node, hostname))
			return e;
	}
	return NULL;
}
