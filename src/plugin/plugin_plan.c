/* plugin_plan.c - the dry run of `kubectl fledged plan` (see plugin_plan.h). */
#include "plugin_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_status.h"
#include "imagecache/ic_validate.h"
#include "util/map.h"
#include "util/util.h"

/* "sha256:<64 hex>" or 64 bare hex digits: an image ID, which names the whole image with all its tags */
static int looks_like_image_id(const char *s)
{
	if (!strncmp(s, "sha256:", 7))
		s += 7;
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return 0;
	return n == 64;
}

/* The other caches that want images, parsed once (the delete guard). */
struct guard {
	struct plugin_cache *c;
	size_t n;
};

static void guard_build(struct guard *g, json_t *others, json_t *self)
{
	const char *sns = kf_jstr(self, "metadata", "namespace", NULL), *sname = kf_jstr(self, "metadata", "name", NULL);
	g->c = xcalloc(json_array_size(others) + 1, sizeof *g->c);
	g->n = 0;
	size_t i;
	json_t *o;
	json_array_foreach(others, i, o) {
		const char *ns = kf_jstr(o, "metadata", "namespace", NULL), *name = kf_jstr(o, "metadata", "name", NULL);
		if (!ns || !name || (sns && sname && !strcmp(ns, sns) && !strcmp(name, sname)) || !plugin_cache_wants(o))
			continue;
		struct strbuf err = STRBUF_INIT;
		if (plugin_cache_load(o, &g->c[g->n], &err) == 0)
			g->n++;
		else
			plugin_cache_free(&g->c[g->n]);
		sb_release(&err);
	}
}

static void guard_free(struct guard *g)
{
	for (size_t i = 0; i < g->n; i++)
		plugin_cache_free(&g->c[i]);
	free(g->c);
}

/* The first other cache whose list selecting these labels names canonical, or NULL. */
static json_t *wanted_by(const struct guard *g, json_t *labels, const char *canonical)
{
	struct strbuf canon = STRBUF_INIT;
	json_t *found = NULL;
	for (size_t i = 0; i < g->n && !found; i++) {
		const struct ic_spec *s = &g->c[i].spec;
		for (size_t l = 0; l < s->n_lists && !found; l++) {
			if (!ic_list_matches_node(&s->lists[l], labels))
				continue;
			for (size_t k = 0; k < s->lists[l].n_images && !found; k++) {
				plugin_canonical(s->lists[l].images[k], &canon, NULL);
				if (!strcmp(canon.buf, canonical))
					found = g->c[i].obj;
			}
		}
	}
	sb_release(&canon);
	return found;
}

static void count(json_t *obj, const char *key)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + 1));
}

static const char *platform_of(const struct plugin_node *n, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", n->os ? n->os : "linux", n->arch ? n->arch : "amd64");
	return buf;
}

/* Job mode, a node whose status lists the kubelet's 50 images and not this one: the cache's record (its
 * last operation applied the image there, settled, with no failure for the node) says it was pulled, as
 * `kubectl fledged status` shows; the controller remembers its own recent pulls the same way. */
static int pulled_per_record(json_t *failures, int settled, const struct plugin_node *n, const struct plugin_image *m)
{
	int more = 0;
	return settled && !plugin_failure_for(json_object_get(failures, m->canonical), n->hostname, &more) && !more;
}

json_t *plugin_plan(const struct plugin_plan_input *in, struct strbuf *err)
{
	struct plugin_cache want, live = { 0 };
	if (plugin_cache_load(in->cache, &want, err) < 0) {
		plugin_cache_free(&want);
		return NULL;
	}
	int have_live = 0;
	if (in->live) {
		struct strbuf e = STRBUF_INIT;
		have_live = plugin_cache_load(in->live, &live, &e) == 0;
		if (!have_live)
			plugin_cache_free(&live);
		sb_release(&e);
	}
	const char *live_status = have_live ? kf_jstr(live.status, "status", NULL) : NULL;
	const char *op = "create";
	if (have_live && live_status && *live_status)
		op = json_equal(kf_jget(in->cache, "spec", NULL), kf_jget(in->live, "spec", NULL)) ? "none" : "update";
	int update = !strcmp(op, "update"), deletes = strcmp(op, "create") && have_live && live.has_applied;
	int agent = in->nodes->mode == PLUGIN_MODE_AGENT;
	int always = in->pull_policy && !strcmp(in->pull_policy, "Always");
	const struct ic_spec *applied = deletes ? &live.applied : NULL;
	int settled = live_status && (!strcmp(live_status, IC_STATUS_SUCCEEDED) || !strcmp(live_status, IC_STATUS_FAILED));
	json_t *failures = plugin_failures_by_image(have_live ? live.status : NULL);

	json_t *plan = json_pack("{s:s?, s:s?, s:s, s:s}", "namespace", kf_jstr(in->cache, "metadata", "namespace", NULL),
				 "name", kf_jstr(in->cache, "metadata", "name", NULL), "mode", agent ? "agent" : "jobs",
				 "operation", op);
	/* what the admission webhook would say */
	struct strbuf deny = STRBUF_INIT;
	if (ic_validate(&want.spec, have_live ? &live.spec : NULL, &deny) < 0)
		json_object_set_new(plan, "denied", json_string(deny.buf));
	sb_release(&deny);

	struct plugin_images im;
	plugin_images_init(&im);
	plugin_images_add(&im, &want.spec, 1);
	plugin_images_add(&im, applied, 0);
	struct guard g = { 0 };
	if (deletes)
		guard_build(&g, in->others, in->cache);
	json_t *nodes = json_array(), *totals = json_object();
	json_t *per_image = json_array();
	for (size_t i = 0; i < im.n; i++)
		json_array_append_new(per_image, json_pack("{s:s, s:i, s:i, s:i}", "image", im.v[i].image, "pullNodes", 0,
							   "deleteNodes", 0, "keepNodes", 0));
	uint8_t *wants = xcalloc(im.n + 1, 1), *has = xcalloc(im.n + 1, 1);
	for (size_t ni = 0; ni < in->nodes->n; ni++) {
		const struct plugin_node *n = &in->nodes->v[ni];
		memset(wants, 0, im.n + 1);
		memset(has, 0, im.n + 1);
		plugin_images_mark(&im, &want.spec, n->labels, wants);
		if (applied)
			plugin_images_mark(&im, applied, n->labels, has);
		json_t *pull = json_array(), *present = json_array(), *del = json_array(), *keep = json_array();
		for (size_t i = 0; i < im.n; i++) {
			const struct plugin_image *m = &im.v[i];
			json_t *pi = json_array_get(per_image, i);
			if (wants[i]) {
				if (!m->valid || (update && m->floating && has[i]))
					continue; /* an invalid reference fails; a floating one already applied stays */
				const char *why = NULL;
				json_t *st = agent ? plugin_nic_status(n, m->canonical) : NULL;
				const char *state = kf_jstr(st, "state", NULL);
				if (always)
					why = "always";
				else if (m->floating)
					why = "floating";
				else if (agent && state && !strcmp(state, "Failed"))
					why = "failed";
				else if (agent ? (state && !strcmp(state, "Present")) : plugin_node_reports(n, m->canonical))
					why = NULL;
				else if (!agent && n->n_reported >= PLUGIN_KUBELET_MAX_IMAGES)
					why = has[i] && pulled_per_record(failures, settled, n, m) ? NULL : "unreported";
				else
					why = "absent";
				if (why) {
					json_array_append_new(pull, json_pack("{s:s, s:s}", "image", m->image, "why", why));
					count(pi, "pullNodes");
					count(totals, "pulls");
				} else {
					json_array_append_new(present, json_string(m->image));
					count(totals, "present");
				}
				continue;
			}
			if (!has[i] || !m->valid || looks_like_image_id(m->image))
				continue;
			json_t *other = wanted_by(&g, n->labels, m->canonical);
			if (other) {
				json_array_append_new(keep, json_pack("{s:s, s:s, s:s+++}", "image", m->image, "reason",
								      "ImageWantedByOtherImageCache", "message",
								      "listed by ImageCache ", kf_jstr(other, "metadata", "namespace", NULL),
								      "/", kf_jstr(other, "metadata", "name", NULL)));
				count(pi, "keepNodes");
				count(totals, "keeps");
				continue;
			}
			json_t *on;
			if (agent) {
				const char *state = kf_jstr(plugin_nic_status(n, m->canonical), "state", NULL);
				on = state && (!strcmp(state, "Present") || !strcmp(state, "Deleting")) ? json_true()
				     : state && !strcmp(state, "Pulling")				      ? json_null()
													      : json_false();
			} else if (plugin_node_reports(n, m->canonical)) {
				on = json_true();
			} else if (n->n_reported < PLUGIN_KUBELET_MAX_IMAGES) {
				on = json_false();
			} else {
				/* the kubelet's list is full: the cache's record of the last operation decides */
				int more = 0;
				json_t *f = plugin_failure_for(json_object_get(failures, m->canonical), n->hostname, &more);
				on = f ? json_false() : pulled_per_record(failures, settled, n, m) ? json_true() : json_null();
			}
			json_array_append_new(del, json_pack("{s:s, s:o}", "image", m->image, "onNode", on));
			count(pi, "deleteNodes");
			count(totals, "deletes");
		}
		if (json_array_size(pull) + json_array_size(present) + json_array_size(del) + json_array_size(keep)) {
			char platform[96];
			json_array_append_new(nodes, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", n->name, "platform",
							       platform_of(n, platform, sizeof platform), "pull", pull,
							       "present", present, "delete", del, "keep", keep));
		} else {
			json_decref(pull);
			json_decref(present);
			json_decref(del);
			json_decref(keep);
		}
	}
	static const char *const keys[] = { "pulls", "present", "deletes", "keeps" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		if (!json_object_get(totals, keys[k]))
			json_object_set_new(totals, keys[k], json_integer(0));
	json_object_set_new(plan, "nodes", nodes);
	json_object_set_new(plan, "images", per_image);
	json_object_set_new(plan, "totals", totals);
	free(wants);
	free(has);
	json_decref(failures);
	guard_free(&g);
	plugin_images_free(&im);
	plugin_cache_free(&want);
	if (have_live)
		plugin_cache_free(&live);
	return plan;
}

/* ---- sizes ---- */

struct size_entry {
	int known;
	int64_t bytes;
	json_t *layers; /* [{digest, size}] */
	char *why;
};

static void size_entry_free(void *p)
{
	struct size_entry *e = p;
	json_decref(e->layers);
	free(e->why);
	free(e);
}

/* The size of (image, platform), asked once; a pulled image's size is also recorded in images[]. */
static struct size_entry *size_lookup(struct map *cache, json_t *images, const char *image, const char *platform,
				      int pulled, plugin_size_fn fn, void *ud)
{
	char *key = xasprintf("%s\n%s", image, platform);
	struct size_entry *e = map_get(cache, key);
	if (!e) {
		struct strbuf why = STRBUF_INIT;
		e = xcalloc(1, sizeof *e);
		e->known = fn(ud, image, platform, &e->bytes, &e->layers, &why) == 0;
		if (!e->known)
			e->why = sb_detach(&why);
		sb_release(&why);
		map_put(cache, key, e);
	}
	free(key);
	size_t k;
	json_t *im;
	json_array_foreach(pulled ? images : NULL, k, im) {
		if (strcmp(kf_jstr(im, "image", NULL), image))
			continue;
		json_t *sizes = json_object_get(im, "sizes");
		if (!sizes) {
			sizes = json_object();
			json_object_set_new(im, "sizes", sizes);
		}
		json_object_set_new(sizes, platform, e->known ? json_integer(e->bytes) : json_null());
		if (!e->known && !json_object_get(im, "sizeError"))
			json_object_set_new(im, "sizeError", json_string(e->why));
	}
	return e;
}

void plugin_plan_sizes(json_t *plan, plugin_size_fn fn, void *ud)
{
	struct map cache = MAP_INIT; /* "image\nplatform" -> struct size_entry * */
	json_t *images = json_object_get(plan, "images"), *totals = json_object_get(plan, "totals");
	int64_t total = 0, unknown = 0;
	size_t i, j;
	json_t *node, *p;
	json_array_foreach(json_object_get(plan, "nodes"), i, node) {
		const char *platform = kf_jstr(node, "platform", NULL);
		struct map seen = MAP_INIT; /* layer digests counted for this node, or already on it */
		int64_t bytes = 0, unk = 0;
		if (!json_array_size(json_object_get(node, "pull")))
			goto done;
		/* the layers of the cache's images the node holds are not downloaded again */
		json_array_foreach(json_object_get(node, "present"), j, p) {
			struct size_entry *e = size_lookup(&cache, images, json_string_value(p), platform, 0, fn, ud);
			size_t k;
			json_t *l;
			json_array_foreach(e->known ? e->layers : NULL, k, l)
				if (kf_jstr(l, "digest", NULL))
					map_put(&seen, kf_jstr(l, "digest", NULL), NULL);
		}
		json_array_foreach(json_object_get(node, "pull"), j, p) {
			struct size_entry *e = size_lookup(&cache, images, kf_jstr(p, "image", NULL), platform, 1, fn, ud);
			if (!e->known) {
				unk++;
				continue;
			}
			size_t k;
			json_t *l;
			if (!json_array_size(e->layers))
				bytes += e->bytes;
			json_array_foreach(e->layers, k, l) {
				const char *d = kf_jstr(l, "digest", NULL);
				if (d && map_has(&seen, d))
					continue;
				if (d)
					map_put(&seen, d, NULL);
				bytes += json_integer_value(json_object_get(l, "size"));
			}
		}
	done:
		map_free(&seen, NULL);
		json_object_set_new(node, "bytes", json_integer(bytes));
		json_object_set_new(node, "unknown", json_integer(unk));
		total += bytes;
		unknown += unk;
	}
	map_free(&cache, size_entry_free);
	json_object_set_new(totals, "bytes", json_integer(total));
	json_object_set_new(totals, "unknown", json_integer(unknown));
}

/* ---- text ---- */

void plugin_human_bytes(int64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRId64 " B", n);
	else
		snprintf(buf, len, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void pad(struct strbuf *out, const char *s, size_t width)
{
	sb_adds(out, s);
	for (size_t n = strlen(s); n < width; n++)
		sb_addc(out, ' ');
}

static const char *why_text(const char *why)
{
	if (!strcmp(why, "floating"))
		return ":latest or untagged: pulled again";
	if (!strcmp(why, "always"))
		return "--image-pull-policy=Always";
	if (!strcmp(why, "failed"))
		return "failed before: tried again";
	if (!strcmp(why, "unreported"))
		return "the node lists 50 images, not this one";
	return NULL;
}

void plugin_plan_text(json_t *plan, struct strbuf *out)
{
	const char *op = kf_jstr(plan, "operation", NULL);
	json_t *totals = json_object_get(plan, "totals"), *nodes = json_object_get(plan, "nodes");
	int sized = json_object_get(totals, "bytes") != NULL;
	sb_addf(out, "Plan for ImageCache %s/%s (%s mode): ", kf_jstr(plan, "namespace", NULL),
		kf_jstr(plan, "name", NULL), kf_jstr(plan, "mode", NULL));
	if (!strcmp(op, "create"))
		sb_adds(out, "create: a new ImageCache, or one the controller has not processed yet\n");
	else if (!strcmp(op, "update"))
		sb_adds(out, "update of the live object, against what its nodes hold (status.appliedSpec)\n");
	else
		sb_adds(out, "no change: the spec equals the live one; what the next refresh would do:\n");
	const char *denied = kf_jstr(plan, "denied", NULL);
	if (denied)
		sb_addf(out, "\n  DENIED: the admission webhook would reject this object: %s\n", denied);

	size_t wname = 4, i, j;
	json_t *n, *e;
	json_array_foreach(nodes, i, n) {
		size_t l = strlen(kf_jstr(n, "name", NULL));
		if (l > wname)
			wname = l;
	}
	if (!json_array_size(nodes)) {
		sb_adds(out, "\n  nothing: no list selects a node\n");
		return;
	}
	sb_adds(out, "\n  ");
	pad(out, "NODE", wname + 2);
	sb_addf(out, "PULL  PRESENT  DELETE  KEEP%s\n", sized ? "  DOWNLOAD" : "");
	json_array_foreach(nodes, i, n) {
		char num[32];
		sb_adds(out, "  ");
		pad(out, kf_jstr(n, "name", NULL), wname + 2);
		snprintf(num, sizeof num, "%zu", json_array_size(json_object_get(n, "pull")));
		pad(out, num, 6);
		snprintf(num, sizeof num, "%zu", json_array_size(json_object_get(n, "present")));
		pad(out, num, 9);
		snprintf(num, sizeof num, "%zu", json_array_size(json_object_get(n, "delete")));
		pad(out, num, 8);
		snprintf(num, sizeof num, "%zu", json_array_size(json_object_get(n, "keep")));
		pad(out, num, sized ? 6 : 0);
		if (sized) {
			char b[32];
			long long unk = json_integer_value(json_object_get(n, "unknown"));
			plugin_human_bytes(json_integer_value(json_object_get(n, "bytes")), b, sizeof b);
			if (unk && !json_integer_value(json_object_get(n, "bytes")))
				sb_adds(out, "unknown");
			else
				sb_addf(out, "%s%s", b, unk ? " + unknown" : "");
		}
		sb_addc(out, '\n');
	}

	json_t *images = json_object_get(plan, "images");
	size_t wimg = 5;
	json_array_foreach(images, i, e) {
		size_t l = strlen(kf_jstr(e, "image", NULL));
		if (l > wimg)
			wimg = l;
	}
	static const struct {
		const char *key, *title;
	} sections[] = { { "pullNodes", "PULL" }, { "deleteNodes", "DELETE" }, { "keepNodes", "KEEP" } };
	for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
		int header = 0;
		json_array_foreach(images, i, e) {
			long long k = json_integer_value(json_object_get(e, sections[s].key));
			if (!k)
				continue;
			if (!header++)
				sb_addf(out, "\n  %s\n", sections[s].title);
			sb_adds(out, "    ");
			pad(out, kf_jstr(e, "image", NULL), wimg + 2);
			char on[32];
			snprintf(on, sizeof on, "on %lld node%s", k, k == 1 ? "" : "s");
			pad(out, on, s == 0 && sized ? 14 : 0);
			if (s == 0 && sized) {
				const char *plat;
				json_t *v;
				int first = 1;
				json_object_foreach(json_object_get(e, "sizes"), plat, v) {
					char b[32];
					if (json_is_integer(v)) {
						plugin_human_bytes(json_integer_value(v), b, sizeof b);
						sb_addf(out, "%s%s (%s)", first ? "" : ", ", b, plat);
						first = 0;
					}
				}
				const char *why = kf_jstr(e, "sizeError", NULL);
				if (why)
					sb_addf(out, "%ssize unknown: %s", first ? "" : "; ", why);
			}
			sb_addc(out, '\n');
			/* why, where it is not simply absence */
			json_array_foreach(nodes, j, n) {
				size_t k2;
				json_t *x;
				const char *list = s == 0 ? "pull" : s == 1 ? "delete" : "keep";
				json_array_foreach(json_object_get(n, list), k2, x) {
					if (strcmp(kf_jstr(x, "image", NULL), kf_jstr(e, "image", NULL)))
						continue;
					const char *note = NULL;
					char buf[512];
					if (s == 0)
						note = why_text(kf_jstr(x, "why", NULL));
					else if (s == 1 && !json_is_true(json_object_get(x, "onNode")))
						note = json_is_null(json_object_get(x, "onNode"))
							       ? "the node may not hold it (a pull under way, or not among the 50 images the kubelet reports)"
							       : "the node does not hold it: nothing to remove";
					else if (s == 2) {
						snprintf(buf, sizeof buf, "%s: %s", kf_jstr(x, "reason", NULL),
							 kf_jstr(x, "message", NULL));
						note = buf;
					}
					if (note)
						sb_addf(out, "      %s: %s\n", kf_jstr(n, "name", NULL), note);
				}
			}
		}
	}
	sb_addf(out, "\n  total: %lld pull%s, %lld already present, %lld delete%s, %lld kept",
		(long long)json_integer_value(json_object_get(totals, "pulls")),
		json_integer_value(json_object_get(totals, "pulls")) == 1 ? "" : "s",
		(long long)json_integer_value(json_object_get(totals, "present")),
		(long long)json_integer_value(json_object_get(totals, "deletes")),
		json_integer_value(json_object_get(totals, "deletes")) == 1 ? "" : "s",
		(long long)json_integer_value(json_object_get(totals, "keeps")));
	if (sized) {
		char b[32];
		long long unk = json_integer_value(json_object_get(totals, "unknown"));
		plugin_human_bytes(json_integer_value(json_object_get(totals, "bytes")), b, sizeof b);
		sb_addf(out, "; download %s", b);
		if (unk)
			sb_addf(out, " + %lld pull%s of unknown size", unk, unk == 1 ? "" : "s");
	}
	sb_adds(out, "\n");
}
