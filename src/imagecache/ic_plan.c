/* ic_plan.c - task planning for ImageCache operations; see ic_plan.h.
 *
 * Every image of the spec and of the applied spec is parsed once into the task set's image table; images
 * equal after normalisation share a class number, so what a node wants and what it had are two byte
 * arrays indexed by class, filled per node from the lists that select it. */
#include "ic_plan.h"

#include <string.h>

#include "ic_jobs.h"
#include "util/imageref.h"
#include "util/map.h"
#include "util/util.h"

const char *ic_node_hostname(json_t *node)
{
	const char *h = kf_jstr(node, "metadata", "labels", "kubernetes.io/hostname", NULL);
	return h ? h : kf_jstr(node, "metadata", "name", NULL);
}

/* An image list with its images' indexes in the task set. */
struct plist {
	const struct ic_list *l;
	uint32_t *img;
};

struct planner {
	const struct ic_plan_input *in;
	struct ic_taskset *ts;
	struct plist *want, *had; /* the spec's lists, the applied spec's */
	size_t n_want, n_had;
	uint32_t *cls;            /* image index -> class */
	size_t n_cls;
	uint8_t *wants, *has;     /* per class, for the node being planned */
};

static void lists_index(struct planner *p, const struct ic_spec *s, struct plist **out, size_t *n)
{
	*n = s ? s->n_lists : 0;
	*out = *n ? xcalloc(*n, sizeof **out) : NULL;
	for (size_t i = 0; i < *n; i++) {
		(*out)[i].l = &s->lists[i];
		(*out)[i].img = s->lists[i].n_images ? xcalloc(s->lists[i].n_images, sizeof(uint32_t)) : NULL;
		for (size_t j = 0; j < s->lists[i].n_images; j++)
			(*out)[i].img[j] = ic_tasks_add_image(p->ts, s->lists[i].images[j]);
	}
}

static void lists_free(struct plist *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].img);
	free(l);
}

/* What a runtime name or a wanted image is, for presence checks: "domain/path@digest" or "domain/path:tag"
 * (":latest" when untagged). A name with both a tag and a digest gives both keys. */
static void match_keys(const struct imageref *r, struct strbuf *tag_key, struct strbuf *digest_key)
{
	sb_reset(tag_key);
	sb_reset(digest_key);
	if (r->tag[0] || !r->digest[0])
		sb_addf(tag_key, "%s/%s:%s", r->domain, r->path, r->tag[0] ? r->tag : "latest");
	if (r->digest[0])
		sb_addf(digest_key, "%s/%s@%s", r->domain, r->path, r->digest);
}

/* The images a node reports (status.images[].names) as a set of match keys. */
static void node_present(json_t *node, struct map *set)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, err = STRBUF_INIT;
	size_t i, j;
	json_t *img, *name;
	json_array_foreach(kf_jget(node, "status", "images", NULL), i, img) {
		json_array_foreach(json_object_get(img, "names"), j, name) {
			struct imageref r;
			sb_reset(&err);
			if (!json_is_string(name) || imageref_parse(json_string_value(name), &r, &err) < 0)
				continue;
			match_keys(&r, &a, &b);
			if (a.len)
				map_put(set, a.buf, NULL);
			if (b.len)
				map_put(set, b.buf, NULL);
		}
	}
	sb_release(&a);
	sb_release(&b);
	sb_release(&err);
}

/* 1 when the node reports the image: its digest if it names one, else its tag. */
static int reported(const struct map *present, const char *image)
{
	struct imageref r;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, err = STRBUF_INIT;
	int found = 0;
	if (imageref_parse(image, &r, &err) == 0) {
		match_keys(&r, &a, &b);
		found = r.digest[0] ? map_has(present, b.buf) : map_has(present, a.buf);
	}
	sb_release(&a);
	sb_release(&b);
	sb_release(&err);
	return found;
}

static int node_selected(const struct ic_plan_input *in, const char *name)
{
	if (!in->only_nodes)
		return 1;
	for (size_t i = 0; i < in->n_only; i++)
		if (!strcmp(in->only_nodes[i], name))
			return 1;
	return 0;
}

static void add_pull(struct planner *p, json_t *node, uint32_t ni, uint32_t img, const struct map *present)
{
	const struct ic_plan_input *in = p->in;
	const struct ic_task_image *im = &p->ts->images[img];
	if (im->invalid) {
		struct strbuf m = STRBUF_INIT, why = STRBUF_INIT;
		struct imageref r;
		imageref_parse(im->image, &r, &why);
		sb_addf(&m, "Failed to apply default image tag \"%s\": couldn't parse image reference \"%s\": %s",
			im->image, im->image, why.buf);
		ic_task_set_result(ic_tasks_add(p->ts, ni, img, IC_ACTION_PULL, IC_TASK_PENDING), IC_TASK_FAILED,
				   IC_REASON_INVALID_IMAGE, m.buf);
		sb_release(&m);
		sb_release(&why);
		return;
	}
	int state = IC_TASK_PENDING;
	if (!in->agent_mode && !strcmp(in->pull_policy, "IfNotPresent") && !im->floating) {
		int needed = !reported(present, im->image);
		if (in->recent) {
			int known = in->recent(in->recent_ud, p->ts->nodes[ni].name, im->canonical);
			if (known == 0 || (known == 1 && !in->explicit_request))
				needed = !known;
		}
		if (!needed)
			state = IC_TASK_PRESENT;
	}
	(void)node;
	ic_tasks_add(p->ts, ni, img, IC_ACTION_PULL, state);
}

static void add_delete(struct planner *p, uint32_t ni, uint32_t img)
{
	const struct ic_plan_input *in = p->in;
	const struct ic_task_image *im = &p->ts->images[img];
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	/* never remove what is not a reference: status.appliedSpec is outside input */
	int ok = !im->invalid && imageref_parse(im->image, &r, &err) == 0; /* image IDs do not parse */
	sb_release(&err);
	if (!ok)
		return;
	if (in->wanted_elsewhere && in->wanted_elsewhere(in->wanted_ud, p->ts->nodes[ni].name, im->canonical)) {
		ic_task_set_result(ic_tasks_add(p->ts, ni, img, IC_ACTION_DELETE, IC_TASK_PENDING), IC_TASK_KEPT,
				   "ImageWantedByOtherImageCache",
				   "kept: another ImageCache lists this image for this node");
		return;
	}
	ic_tasks_add(p->ts, ni, img, IC_ACTION_DELETE, IC_TASK_PENDING);
}

/* Sets (on = 1) or clears flags[] of the classes of the lists that select the node. */
static void mark(struct planner *p, const struct plist *ls, size_t n, json_t *labels, uint8_t *flags, int on)
{
	for (size_t i = 0; i < n; i++) {
		if (!ic_list_matches_node(ls[i].l, labels))
			continue;
		for (size_t j = 0; j < ls[i].l->n_images; j++)
			flags[p->cls[ls[i].img[j]]] = (uint8_t)on;
	}
}

static void plan_node(struct planner *p, json_t *node)
{
	const struct ic_plan_input *in = p->in;
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	json_t *labels = kf_jget(node, "metadata", "labels", NULL);
	const char *rt = NULL;
	char *socket = NULL;
	int deletes = in->op == IC_OP_PURGE || ((in->op == IC_OP_UPDATE || in->op == IC_OP_REFRESH) && in->applied);
	if (deletes && !in->agent_mode)
		ic_runtime_detect(node, in->cri_socket, &rt, &socket);
	uint32_t ni = ic_tasks_add_node(p->ts, name, ic_node_hostname(node), rt, socket);
	free(socket);
	struct map present = MAP_INIT;
	if (!in->agent_mode && in->op != IC_OP_PURGE && !strcmp(in->pull_policy, "IfNotPresent"))
		node_present(node, &present);

	mark(p, p->want, p->n_want, labels, p->wants, 1);
	mark(p, p->had, p->n_had, labels, p->has, 1);
	if (in->op == IC_OP_PURGE) {
		if (!in->leftovers_only)
			for (size_t i = 0; i < p->n_want; i++)
				if (ic_list_matches_node(p->want[i].l, labels))
					for (size_t j = 0; j < p->want[i].l->n_images; j++)
						add_delete(p, ni, p->want[i].img[j]);
		for (size_t i = 0; i < p->n_had; i++)
			if (ic_list_matches_node(p->had[i].l, labels))
				for (size_t j = 0; j < p->had[i].l->n_images; j++)
					add_delete(p, ni, p->had[i].img[j]);
	} else {
		for (size_t i = 0; i < p->n_want; i++) {
			if (!ic_list_matches_node(p->want[i].l, labels))
				continue;
			for (size_t j = 0; j < p->want[i].l->n_images; j++) {
				uint32_t img = p->want[i].img[j];
				/* an update re-pulls a floating image only where it is new */
				if (in->op == IC_OP_UPDATE && p->ts->images[img].floating && p->has[p->cls[img]])
					continue;
				add_pull(p, node, ni, img, &present);
			}
		}
		if (deletes)
			for (size_t i = 0; i < p->n_had; i++)
				if (ic_list_matches_node(p->had[i].l, labels))
					for (size_t j = 0; j < p->had[i].l->n_images; j++)
						if (!p->wants[p->cls[p->had[i].img[j]]])
							add_delete(p, ni, p->had[i].img[j]);
	}
	mark(p, p->want, p->n_want, labels, p->wants, 0);
	mark(p, p->had, p->n_had, labels, p->has, 0);
	map_free(&present, NULL);
}

void ic_plan(const struct ic_plan_input *in, struct ic_taskset *ts)
{
	struct planner p = { .in = in, .ts = ts };
	lists_index(&p, in->spec, &p.want, &p.n_want);
	lists_index(&p, in->applied, &p.had, &p.n_had);
	/* classes of equal canonical references */
	struct map classes = MAP_INIT;
	p.cls = xcalloc(ts->n_images ? ts->n_images : 1, sizeof *p.cls);
	for (size_t i = 0; i < ts->n_images; i++) {
		uintptr_t c = (uintptr_t)map_get(&classes, ts->images[i].canonical);
		if (!c) {
			c = ++p.n_cls;
			map_put(&classes, ts->images[i].canonical, (void *)c);
		}
		p.cls[i] = (uint32_t)(c - 1);
	}
	map_free(&classes, NULL);
	p.wants = xcalloc(p.n_cls + 1, 1);
	p.has = xcalloc(p.n_cls + 1, 1);
	size_t i;
	json_t *node;
	json_array_foreach(in->nodes, i, node) {
		const char *name = kf_jstr(node, "metadata", "name", NULL);
		if (name && node_selected(in, name))
			plan_node(&p, node);
	}
	ic_tasks_seal(ts);
	free(p.wants);
	free(p.has);
	free(p.cls);
	lists_free(p.want, p.n_want);
	lists_free(p.had, p.n_had);
}
