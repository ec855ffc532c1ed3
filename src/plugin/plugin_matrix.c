/* plugin_matrix.c - the node x image matrix of `kubectl fledged status` (see plugin_matrix.h). */
#include "plugin_matrix.h"

#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_status.h"
#include "util/util.h"

#define REASON_INVALID_IMAGE "InvalidImageName"

struct cell {
	const char *state, *reason, *message; /* borrowed from the objects, or static */
};

/* Job mode reads presence from the node's status, where the kubelet lists at most 50 images. When that
 * list is full and does not show an image, the cache's own record decides: an image the last operation
 * applied to this node (appliedSpec) without a failure for it was pulled there. */
static struct cell jobs_cell(const struct plugin_node *n, const struct plugin_image *im, int wanted, int applied,
			     const char *status, json_t *failures)
{
	int processing = status && !strcmp(status, IC_STATUS_PROCESSING);
	int settled = status && (!strcmp(status, IC_STATUS_SUCCEEDED) || !strcmp(status, IC_STATUS_FAILED));
	struct cell c = { 0 };
	int more = 0;
	json_t *f = plugin_failure_for(json_object_get(failures, im->canonical), n->hostname, &more);
	int reported = im->valid && plugin_node_reports(n, im->canonical);
	int full = n->n_reported >= PLUGIN_KUBELET_MAX_IMAGES;
	if (wanted) {
		if (!im->valid)
			c = (struct cell){ "Failed", REASON_INVALID_IMAGE, "not a valid image reference" };
		else if (reported)
			c.state = "Present";
		else if (f)
			c = (struct cell){ "Failed", kf_jstr(f, "reason", NULL), kf_jstr(f, "message", NULL) };
		else if (processing)
			c.state = "Pulling";
		else if (more)
			c = (struct cell){ "Failed", IC_REASON_MORE_FAILURES,
					   "one of the nodes status.failures does not name (at most 10 per image): see the "
					   "ImageCache's Events" };
		else if (full && applied && settled)
			c = (struct cell){ "Present", NULL,
					   "pulled by the last operation (the node's status lists 50 images, not this one)" };
		else
			c.state = full ? "Unknown" : "Missing";
		return c;
	}
	if (f && (reported || (full && settled)))
		return (struct cell){ "Failed", kf_jstr(f, "reason", NULL), kf_jstr(f, "message", NULL) };
	if (reported)
		c.state = processing ? "Deleting" : "Leftover";
	else if (full && settled && !more)
		c = (struct cell){ "Removed", NULL,
				   "removed by the last operation (the node's status lists 50 images, not this one)" };
	else
		c.state = full ? "Unknown" : "Removed";
	return c;
}

static int is_kept_reason(const char *r)
{
	return r && (!strcmp(r, "ImageInUse") || !strcmp(r, "ImagePinned"));
}

static struct cell agent_cell(const struct plugin_node *n, const struct plugin_image *im, int wanted)
{
	struct cell c = { 0 };
	json_t *st = plugin_nic_status(n, im->canonical), *sp = plugin_nic_spec(n, im->canonical);
	const char *state = kf_jstr(st, "state", NULL);
	const char *action = kf_jstr(sp, "action", NULL);
	int spec_pull = sp && (!action || !strcmp(action, "Pull"));
	c.reason = kf_jstr(st, "reason", NULL);
	c.message = kf_jstr(st, "message", NULL);
	if (wanted && !im->valid)
		return (struct cell){ "Failed", REASON_INVALID_IMAGE, "not a valid image reference" };
	if (!state || !strcmp(state, "Absent")) {
		c.reason = c.message = NULL;
		if (wanted && spec_pull)
			c = (struct cell){ "Pulling", NULL, "queued: the node's agent has not reported it yet" };
		else if (wanted)
			c = (struct cell){ "Missing", NULL,
					   n->nic ? NULL : "no NodeImageCache for this node (is the controller in agent mode?)" };
		else
			c.state = sp && !spec_pull ? "Deleting" : "Removed";
		return c;
	}
	if (!strcmp(state, "Pulling") || !strcmp(state, "Failed") || !strcmp(state, "Deleting")) {
		c.state = state;
		return c;
	}
	/* Present */
	if (wanted) {
		c.state = "Present";
		c.reason = c.message = NULL;
	} else if (is_kept_reason(c.reason)) {
		c.state = "Kept";
	} else if (spec_pull) {
		c = (struct cell){ "Kept", "ImageWantedByOtherImageCache", "another ImageCache lists this image for this node" };
	} else if (sp) {
		c = (struct cell){ "Deleting", NULL, NULL };
	} else {
		c = (struct cell){ "Leftover", NULL, NULL };
	}
	return c;
}

json_t *plugin_matrix(json_t *cache, const struct plugin_nodes *nodes)
{
	struct plugin_cache pc;
	struct strbuf err = STRBUF_INIT;
	json_t *out = json_pack("{s:s?, s:s?}", "namespace", kf_jstr(cache, "metadata", "namespace", NULL), "name",
				kf_jstr(cache, "metadata", "name", NULL));
	if (plugin_cache_load(cache, &pc, &err) < 0) {
		json_object_set_new(out, "error", json_sprintf("the spec cannot be read: %s", err.buf));
		plugin_cache_free(&pc);
		sb_release(&err);
		return out;
	}
	sb_release(&err);
	json_t *st = pc.status;
	const char *status = kf_jstr(st, "status", NULL);
	int agent = nodes->mode == PLUGIN_MODE_AGENT;
	int purged = !plugin_cache_wants(cache);
	json_object_set_new(out, "mode", json_string(agent ? "agent" : "jobs"));
	json_object_set_new(out, "wantsImages", json_boolean(!purged));
	json_object_set_new(out, "status", json_string(status ? status : ""));
	json_object_set_new(out, "reason", json_string(kf_jstr(st, "reason", NULL) ? kf_jstr(st, "reason", NULL) : ""));
	json_object_set_new(out, "message", json_string(kf_jstr(st, "message", NULL) ? kf_jstr(st, "message", NULL) : ""));
	json_t *progress = json_object_get(st, "progress");
	json_object_set(out, "progress", json_is_object(progress) ? progress : json_null());

	struct plugin_images im;
	plugin_images_init(&im);
	plugin_images_add(&im, &pc.spec, 1);
	plugin_images_add(&im, pc.has_applied ? &pc.applied : NULL, 0);
	json_t *images = json_array();
	for (size_t i = 0; i < im.n; i++)
		json_array_append_new(images, json_pack("{s:s, s:b}", "image", im.v[i].image, "inSpec", im.v[i].in_spec));
	json_object_set_new(out, "images", images);

	json_t *failures = plugin_failures_by_image(st);
	json_t *rows = json_array(), *counts = json_object();
	uint8_t *wants = xcalloc(im.n + 1, 1), *has = xcalloc(im.n + 1, 1);
	size_t others = 0;
	for (size_t ni = 0; ni < nodes->n; ni++) {
		const struct plugin_node *n = &nodes->v[ni];
		memset(wants, 0, im.n + 1);
		memset(has, 0, im.n + 1);
		/* a purged cache (or one being purged or deleted) wants nothing: its images are removals */
		plugin_images_mark(&im, &pc.spec, n->labels, purged ? has : wants);
		if (pc.has_applied)
			plugin_images_mark(&im, &pc.applied, n->labels, has);
		json_t *cells = json_object();
		for (size_t i = 0; i < im.n; i++) {
			if (!wants[i] && !has[i])
				continue;
			struct cell c = agent ? agent_cell(n, &im.v[i], wants[i])
					      : jobs_cell(n, &im.v[i], wants[i], has[i], status, failures);
			json_t *cj = json_pack("{s:s}", "state", c.state);
			if (c.reason)
				json_object_set_new(cj, "reason", json_string(c.reason));
			if (c.message)
				json_object_set_new(cj, "message", json_string(c.message));
			json_object_set_new(cells, im.v[i].image, cj);
			json_object_set_new(counts, c.state,
					    json_integer(json_integer_value(json_object_get(counts, c.state)) + 1));
		}
		if (json_object_size(cells))
			json_array_append_new(rows, json_pack("{s:s, s:o}", "name", n->name, "images", cells));
		else {
			json_decref(cells);
			others++;
		}
	}
	json_object_set_new(out, "nodes", rows);
	json_object_set_new(out, "otherNodes", json_integer((json_int_t)others));
	json_object_set_new(out, "counts", counts);
	free(wants);
	free(has);
	json_decref(failures);
	plugin_images_free(&im);
	plugin_cache_free(&pc);
	return out;
}

/* ---- text ---- */

static const struct {
	const char *state, *mark, *meaning;
} marks[] = {
	{ "Present", "ok", "present" },
	{ "Pulling", "pull", "pulling or queued" },
	{ "Failed", "FAIL", "failed" },
	{ "Missing", "miss", "missing, nothing under way" },
	{ "Unknown", "?", "not reported (the kubelet lists 50 images)" },
	{ "Deleting", "del", "being removed" },
	{ "Kept", "kept", "removal kept on purpose" },
	{ "Leftover", "left", "unwanted, still there" },
	{ "Removed", "gone", "removed" },
};

static const char *mark_of(const char *state)
{
	for (size_t i = 0; i < ARRAY_SIZE(marks); i++)
		if (state && !strcmp(state, marks[i].state))
			return marks[i].mark;
	return "?";
}

static void pad(struct strbuf *out, const char *s, size_t width)
{
	sb_adds(out, s);
	for (size_t n = strlen(s); n < width; n++)
		sb_addc(out, ' ');
}

/* a message on one line, shortened in the middle past max bytes */
static void add_short(struct strbuf *out, const char *s, size_t max)
{
	size_t n = strlen(s);
	size_t from = out->len;
	if (n <= max) {
		sb_adds(out, s);
	} else {
		sb_add(out, s, max / 2 - 2);
		sb_adds(out, " ... ");
		sb_adds(out, s + n - (max / 2 - 3));
	}
	for (size_t i = from; i < out->len; i++)
		if (out->buf[i] == '\n' || out->buf[i] == '\r' || out->buf[i] == '\t')
			out->buf[i] = ' ';
}

void plugin_matrix_text(json_t *m, struct strbuf *out)
{
	const char *ns = kf_jstr(m, "namespace", NULL), *name = kf_jstr(m, "name", NULL);
	if (json_object_get(m, "error")) {
		sb_addf(out, "ImageCache %s/%s: %s\n", ns ? ns : "", name ? name : "", kf_jstr(m, "error", NULL));
		return;
	}
	const char *status = kf_jstr(m, "status", NULL), *reason = kf_jstr(m, "reason", NULL),
		   *message = kf_jstr(m, "message", NULL);
	sb_addf(out, "ImageCache %s/%s (%s mode)%s\n", ns, name, kf_jstr(m, "mode", NULL),
		json_is_false(json_object_get(m, "wantsImages")) ? ": purged (or being purged or deleted): its images are removals" : "");
	sb_addf(out, "  status:   %s", status && *status ? status : "(none yet: the controller has not processed it)");
	if (reason && *reason)
		sb_addf(out, " (%s)", reason);
	if (message && *message)
		sb_addf(out, ": %s", message);
	sb_addc(out, '\n');
	json_t *p = json_object_get(m, "progress");
	if (json_is_object(p))
		sb_addf(out, "  progress: %lld/%lld node-image pairs done, %lld failed\n",
			(long long)json_integer_value(json_object_get(p, "done")),
			(long long)json_integer_value(json_object_get(p, "total")),
			(long long)json_integer_value(json_object_get(p, "failed")));

	json_t *images = json_object_get(m, "images"), *rows = json_object_get(m, "nodes");
	size_t ni = json_array_size(images);
	if (!ni) {
		sb_adds(out, "  no images\n");
		return;
	}
	sb_adds(out, "\n");
	size_t i;
	json_t *im;
	json_array_foreach(images, i, im) {
		sb_addf(out, "  [%zu] %s%s\n", i + 1, kf_jstr(im, "image", NULL),
			json_is_true(json_object_get(im, "inSpec")) ? "" : "   (no longer listed)");
	}
	sb_addc(out, '\n');
	size_t wname = 4, r;
	json_t *row;
	json_array_foreach(rows, r, row) {
		size_t l = strlen(kf_jstr(row, "name", NULL));
		if (l > wname)
			wname = l;
	}
	char col[32];
	size_t wcol = 5;
	snprintf(col, sizeof col, "[%zu]", ni);
	if (strlen(col) + 1 > wcol)
		wcol = strlen(col) + 1;
	sb_adds(out, "  ");
	pad(out, "NODE", wname + 2);
	for (i = 0; i < ni; i++) {
		snprintf(col, sizeof col, "[%zu]", i + 1);
		pad(out, col, i + 1 < ni ? wcol : 0);
	}
	sb_addc(out, '\n');
	int used[ARRAY_SIZE(marks)] = { 0 };
	json_array_foreach(rows, r, row) {
		json_t *cells = json_object_get(row, "images");
		sb_adds(out, "  ");
		pad(out, kf_jstr(row, "name", NULL), wname + 2);
		json_array_foreach(images, i, im) {
			const char *state = kf_jstr(cells, kf_jstr(im, "image", NULL), "state", NULL);
			const char *mk = state ? mark_of(state) : "-";
			for (size_t k = 0; k < ARRAY_SIZE(marks); k++)
				if (state && !strcmp(state, marks[k].state))
					used[k] = 1;
			pad(out, mk, i + 1 < ni ? wcol : 0);
		}
		sb_addc(out, '\n');
	}
	long long others = json_integer_value(json_object_get(m, "otherNodes"));
	if (!json_array_size(rows))
		sb_adds(out, "  (no node is selected by the cache's lists)\n");
	if (others && json_array_size(rows))
		sb_addf(out, "  (%lld other node%s: no list selects them)\n", others, others == 1 ? "" : "s");

	/* the pairs with something to say, failures first */
	for (int pass = 0; pass < 2; pass++) {
		int header = 0;
		json_array_foreach(rows, r, row) {
			json_t *cells = json_object_get(row, "images");
			json_array_foreach(images, i, im) {
				json_t *c = json_object_get(cells, kf_jstr(im, "image", NULL));
				const char *state = kf_jstr(c, "state", NULL), *cr = kf_jstr(c, "reason", NULL),
					   *cm = kf_jstr(c, "message", NULL);
				if (!state || (!cr && !cm) || (!strcmp(state, "Failed")) != (pass == 0))
					continue;
				if (!header++)
					sb_adds(out, pass == 0 ? "\n  FAILED\n" : "\n  NOTES\n");
				if (pass == 0)
					sb_addf(out, "  [%zu] %s: %s", i + 1, kf_jstr(row, "name", NULL), cr ? cr : "Failed");
				else
					sb_addf(out, "  [%zu] %s: %s%s%s", i + 1, kf_jstr(row, "name", NULL), state,
						cr ? " " : "", cr ? cr : "");
				if (cm) {
					sb_adds(out, ": ");
					add_short(out, cm, 240);
				}
				sb_addc(out, '\n');
			}
		}
	}
	sb_adds(out, "\n  ");
	int first = 1;
	for (size_t k = 0; k < ARRAY_SIZE(marks); k++) {
		if (!used[k])
			continue;
		sb_addf(out, "%s%s %s", first ? "" : ", ", marks[k].mark, marks[k].meaning);
		first = 0;
	}
	sb_addf(out, "%s- not for this node\n", first ? "" : ", ");
}
