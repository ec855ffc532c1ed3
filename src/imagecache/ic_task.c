/* ic_task.c - the compact task set of an operation; see ic_task.h. */
#include "ic_task.h"

#include <stdlib.h>
#include <string.h>

#include "util/imageref.h"
#include "util/util.h"

int ic_image_canonical(const char *image, struct strbuf *out, int *floating)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int ok = imageref_parse(image, &r, &err) == 0;
	sb_release(&err);
	if (ok)
		imageref_canonical(&r, out);
	else
		sb_adds(out, image);
	if (floating)
		*floating = ok && imageref_is_floating(&r);
	return ok;
}

void ic_tasks_init(struct ic_taskset *ts)
{
	memset(ts, 0, sizeof *ts);
}

void ic_task_clear(struct ic_task *t)
{
	free(t->job_name);
	free(t->reason);
	free(t->message);
	free(t->seen_rv);
	free(t->pull_error);
	t->job_name = t->reason = t->message = t->seen_rv = t->pull_error = NULL;
}

void ic_task_set_result(struct ic_task *t, enum ic_task_state s, const char *reason, const char *message)
{
	t->state = (uint8_t)s;
	free(t->reason);
	free(t->message);
	t->reason = reason ? xstrdup(reason) : NULL;
	t->message = message ? xstrdup(message) : NULL;
}

void ic_tasks_release(struct ic_taskset *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		ic_task_clear(&ts->v[i]);
	for (size_t i = 0; i < ts->n_nodes; i++) {
		free(ts->nodes[i].name);
		free(ts->nodes[i].hostname);
		free(ts->nodes[i].runtime);
		free(ts->nodes[i].socket);
	}
	for (size_t i = 0; i < ts->n_images; i++) {
		free(ts->images[i].image);
		free(ts->images[i].canonical);
	}
	free(ts->v);
	free(ts->nodes);
	free(ts->images);
	map_free(&ts->node_ix, NULL);
	map_free(&ts->image_ix, NULL);
	ic_tasks_init(ts);
}

uint32_t ic_tasks_add_node(struct ic_taskset *ts, const char *name, const char *hostname, const char *runtime,
			   const char *socket)
{
	uintptr_t ix = (uintptr_t)map_get(&ts->node_ix, name);
	if (ix)
		return (uint32_t)(ix - 1);
	if (ts->n_nodes == ts->cap_nodes) {
		ts->cap_nodes = ts->cap_nodes ? ts->cap_nodes * 2 : 16;
		ts->nodes = xrealloc(ts->nodes, ts->cap_nodes * sizeof *ts->nodes);
	}
	struct ic_task_node *n = &ts->nodes[ts->n_nodes];
	n->name = xstrdup(name);
	n->hostname = xstrdup(hostname ? hostname : name);
	n->runtime = runtime ? xstrdup(runtime) : NULL;
	n->socket = socket ? xstrdup(socket) : NULL;
	map_put(&ts->node_ix, name, (void *)(uintptr_t)(ts->n_nodes + 1));
	return (uint32_t)ts->n_nodes++;
}

uint32_t ic_tasks_add_image(struct ic_taskset *ts, const char *image)
{
	uintptr_t ix = (uintptr_t)map_get(&ts->image_ix, image);
	if (ix)
		return (uint32_t)(ix - 1);
	if (ts->n_images == ts->cap_images) {
		ts->cap_images = ts->cap_images ? ts->cap_images * 2 : 16;
		ts->images = xrealloc(ts->images, ts->cap_images * sizeof *ts->images);
	}
	struct ic_task_image *im = &ts->images[ts->n_images];
	struct strbuf c = STRBUF_INIT;
	int floating = 0;
	int ok = ic_image_canonical(image, &c, &floating);
	im->image = xstrdup(image);
	im->canonical = sb_detach(&c);
	im->floating = floating != 0;
	im->invalid = !ok;
	map_put(&ts->image_ix, image, (void *)(uintptr_t)(ts->n_images + 1));
	return (uint32_t)ts->n_images++;
}

struct ic_task *ic_tasks_add(struct ic_taskset *ts, uint32_t node, uint32_t image, enum ic_action a, int state)
{
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 64;
		ts->v = xrealloc(ts->v, ts->cap * sizeof *ts->v);
	}
	struct ic_task *t = &ts->v[ts->n++];
	memset(t, 0, sizeof *t);
	t->node = node;
	t->image = image;
	t->action = (uint8_t)a;
	t->state = (uint8_t)state;
	return t;
}

/* qsort has no context argument: the set being sorted is passed through this (sealing is not concurrent:
 * every set is built by one worker, under no lock, but two workers may seal at once, hence _Thread_local). */
static _Thread_local const struct ic_taskset *sort_ts;

static int key_cmp(const struct ic_task *x, const struct ic_task *y)
{
	int c = 0;
	if (x->node != y->node)
		c = strcmp(sort_ts->nodes[x->node].name, sort_ts->nodes[y->node].name);
	if (!c && x->image != y->image)
		c = strcmp(sort_ts->images[x->image].canonical, sort_ts->images[y->image].canonical);
	if (!c)
		c = (int)x->action - (int)y->action;
	return c;
}

/* Sorts task indexes. Tasks equal in key are sorted by image index, which follows the spec's order (the
 * first written wins), then by the order they were added. */
static int cmp_ix(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const struct ic_task *x = &sort_ts->v[i], *y = &sort_ts->v[j];
	int c = key_cmp(x, y);
	if (!c)
		c = (x->image > y->image) - (x->image < y->image);
	return c ? c : (i > j) - (i < j);
}

/* Sorts the tasks through an array of 4-byte indexes, then moves each task once along the cycles of that
 * permutation: qsort of the tasks themselves would allocate a second copy of them (glibc sorts by merging),
 * 7 MB at 100,000 tasks, the largest transient of a large purge. */
static void sort_tasks(struct ic_taskset *ts)
{
	uint32_t *perm = xmalloc(ts->n * sizeof *perm);
	for (size_t i = 0; i < ts->n; i++)
		perm[i] = (uint32_t)i;
	qsort(perm, ts->n, sizeof *perm, cmp_ix);
	/* position k receives the task at perm[k]; a position done is marked perm[k] == k */
	for (size_t k = 0; k < ts->n; k++) {
		if (perm[k] == k)
			continue;
		struct ic_task saved = ts->v[k];
		size_t j = k;
		for (;;) {
			size_t from = perm[j];
			perm[j] = (uint32_t)j;
			if (from == k) {
				ts->v[j] = saved;
				break;
			}
			ts->v[j] = ts->v[from];
			j = from;
		}
	}
	free(perm);
}

void ic_tasks_seal(struct ic_taskset *ts)
{
	sort_ts = ts;
	if (ts->n > 1)
		sort_tasks(ts);
	size_t w = 0;
	for (size_t r = 0; r < ts->n; r++) {
		if (w && !key_cmp(&ts->v[w - 1], &ts->v[r])) {
			ic_task_clear(&ts->v[r]);
			continue;
		}
		ts->v[w++] = ts->v[r];
	}
	ts->n = w;
	sort_ts = NULL;
	if (w && w < ts->cap) { /* the doubling's slack: 2 MB of a 100,000-task set */
		ts->v = xrealloc(ts->v, w * sizeof *ts->v);
		ts->cap = w;
	}
}

/* First task whose key is >= (node, canonical, action). */
static size_t lower_bound(const struct ic_taskset *ts, const char *node, const char *canonical, int action)
{
	size_t lo = 0, hi = ts->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ic_task *t = &ts->v[mid];
		int c = strcmp(ts->nodes[t->node].name, node);
		if (!c && canonical)
			c = strcmp(ts->images[t->image].canonical, canonical);
		if (!c && canonical)
			c = (int)t->action - action;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void ic_tasks_node_range(const struct ic_taskset *ts, uint32_t node, size_t *from, size_t *to)
{
	const char *name = ts->nodes[node].name;
	size_t a = lower_bound(ts, name, NULL, 0), b = a;
	while (b < ts->n && ts->v[b].node == node)
		b++;
	*from = a;
	*to = b;
}

long ic_tasks_node_index(const struct ic_taskset *ts, const char *name)
{
	uintptr_t ix = (uintptr_t)map_get(&ts->node_ix, name);
	return ix ? (long)ix - 1 : -1;
}

struct ic_task *ic_tasks_find(const struct ic_taskset *ts, uint32_t node, const char *canonical, enum ic_action a)
{
	size_t i = lower_bound(ts, ts->nodes[node].name, canonical, (int)a);
	if (i < ts->n && ts->v[i].node == node && ts->v[i].action == a &&
	    !strcmp(ts->images[ts->v[i].image].canonical, canonical))
		return &ts->v[i];
	return NULL;
}

void ic_tasks_count(const struct ic_taskset *ts, struct ic_task_counts *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < ts->n; i++) {
		int s = ts->v[i].state;
		if (s == IC_TASK_CANCELLED)
			continue;
		c->total++;
		if (ic_task_done(s))
			c->done++;
		if (ic_task_failed(s))
			c->failed++;
	}
}
