/* ic_plan.c - task planning for ImageCache operations; see ic_plan.h. */
#include "ic_plan.h"

#include <string.h>

#include "util/imageref.h"
#include "ic_jobs.h"
#include "util/map.h"
#include "util/util.h"

struct plan {
	struct ic_task *tasks;
	size_t n, cap;
	struct map seen; /* "node\0action\0canonical" keys */
};

const char *ic_node_hostname(json_t *node)
{
	const char *h = kf_jstr(node, "metadata", "labels", "kubernetes.io/hostname", NULL);
	return h ? h : kf_jstr(node, "metadata", "name", NULL);
}

/* Canonical form used for comparisons; falls back to the raw string for unparseable references (the
 * validation step reports those; here they simply compare as written). */
static void canonical(const char *image, struct strbuf *out)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	if (imageref_parse(image, &r, &err) == 0)
		imageref_canonical(&r, out);
	else
		sb_adds(out, image);
	sb_release(&err);
}

static int is_floating(const char *image)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int f = imageref_parse(image, &r, &err) == 0 && imageref_is_floating(&r);
	sb_release(&err);
	return f;
}

/* 1 when any list of spec that selects node has image (by canonical reference) */
static int node_wants(const struct ic_spec *spec, json_t *labels, const char *canon)
{
	if (!spec)
		return 0;
	int found = 0;
	struct strbuf c = STRBUF_INIT;
	for (size_t i = 0; i < spec->n_lists && !found; i++) {
		if (!ic_list_matches_node(&spec->lists[i], labels))
			continue;
		for (size_t j = 0; j < spec->lists[i].n_images && !found; j++) {
			sb_reset(&c);
			canonical(spec->lists[i].images[j], &c);
			found = !strcmp(c.buf, canon);
		}
	}
	sb_release(&c);
	return found;
}

static void add_task(struct plan *p, const struct ic_plan_input *in, json_t *node, const char *image,
		     enum ic_action action)
{
	const char *name = kf_jstr(node, "metadata", "name", NULL);
	struct strbuf key = STRBUF_INIT;
	sb_adds(&key, name);
	sb_addc(&key, '\n');
	sb_addc(&key, action == IC_ACTION_PULL ? 'p' : 'd');
	sb_addc(&key, '\n');
	canonical(image, &key);
	if (map_has(&p->seen, key.buf)) {
		sb_release(&key);
		return;
	}
	map_put(&p->seen, key.buf, NULL);
	sb_release(&key);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->tasks = xrealloc(p->tasks, p->cap * sizeof *p->tasks);
	}
	struct ic_task *t = &p->tasks[p->n++];
	memset(t, 0, sizeof *t);
	t->node = xstrdup(name);
	t->hostname = xstrdup(ic_node_hostname(node));
	t->image = xstrdup(image);
	t->action = action;
	t->state = IC_TASK_PENDING;
	if (action == IC_ACTION_PULL) {
		int needed = ic_pull_needed(in->pull_policy, image, node);
		if (in->recent && !strcmp(in->pull_policy, "IfNotPresent") && !is_floating(image)) {
			struct strbuf c = STRBUF_INIT;
			canonical(image, &c);
			int known = in->recent(in->recent_ud, name, c.buf);
			sb_release(&c);
			if (known == 0 || (known == 1 && !in->explicit_request))
				needed = !known;
		}
		if (!needed)
			t->state = IC_TASK_PRESENT;
	} else {
		const char *rt;
		ic_runtime_detect(node, in->cri_socket, &rt, &t->socket);
		t->runtime = xstrdup(rt);
	}
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

struct ic_task *ic_plan(const struct ic_plan_input *in, size_t *n)
{
	struct plan p = { NULL, 0, 0, MAP_INIT };
	size_t ni;
	json_t *node;
	struct strbuf c = STRBUF_INIT;
	json_array_foreach(in->nodes, ni, node) {
		const char *name = kf_jstr(node, "metadata", "name", NULL);
		if (!name || !node_selected(in, name))
			continue;
		json_t *labels = kf_jget(node, "metadata", "labels", NULL);
		/* what this node should have */
		for (size_t i = 0; i < in->spec->n_lists; i++) {
			const struct ic_list *l = &in->spec->lists[i];
			if (!ic_list_matches_node(l, labels))
				continue;
			for (size_t j = 0; j < l->n_images; j++) {
				const char *img = l->images[j];
				if (in->op == IC_OP_PURGE) {
					add_task(&p, in, node, img, IC_ACTION_DELETE);
					continue;
				}
				if (in->op == IC_OP_UPDATE && is_floating(img)) {
					sb_reset(&c);
					canonical(img, &c);
					if (node_wants(in->applied, labels, c.buf))
						continue;
				}
				add_task(&p, in, node, img, IC_ACTION_PULL);
			}
		}
		/* what it had and should not have any more */
		if (in->op != IC_OP_UPDATE || !in->applied)
			continue;
		for (size_t i = 0; i < in->applied->n_lists; i++) {
			const struct ic_list *l = &in->applied->lists[i];
			if (!ic_list_matches_node(l, labels))
				continue;
			for (size_t j = 0; j < l->n_images; j++) {
				sb_reset(&c);
				canonical(l->images[j], &c);
				if (!node_wants(in->spec, labels, c.buf))
					add_task(&p, in, node, l->images[j], IC_ACTION_DELETE);
			}
		}
	}
	sb_release(&c);
	map_free(&p.seen, NULL);
	*n = p.n;
	return p.tasks;
}

void ic_tasks_free(struct ic_task *tasks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ic_task_clear(&tasks[i]);
	free(tasks);
}
