/* test_plugin.c - `kubectl fledged` without a cluster, over objects recorded from the test bed
 * (tests/unit/data/plugin: a 2-node cluster, rk8s-node2 labelled tier=backend, ImageCache kfp-demo/demo in
 * job mode and in agent mode, another cache kfp-other/other wanting app-001 on tier=backend):
 *   - the node x image matrix: every state in both modes (recorded ones, and edits of the recordings for
 *     Pulling, Unknown, MoreFailures, Leftover, Deleting, Kept, Removed), a purged cache, the text form;
 *   - the plan: create, update (pulls, presence, deletes, the delete guard), no change, floating images,
 *     --image-pull-policy=Always, agent mode's retry of failed images, the webhook's denial;
 *   - download sizes: layers counted once per node, layers of images the node holds not counted, unknown
 *     sizes;
 *   - the registry client: index resolution per platform, manifest sizes, the Bearer token flow and the
 *     Basic flow against a scripted registry, results remembered, an unreachable registry asked once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_script.h"
#include "kube/kube_yaml.h"
#include "plugin/plugin_matrix.h"
#include "plugin/plugin_plan.h"
#include "plugin/plugin_registry.h"
#include "plugin/plugin_view.h"
#include "util/util.h"

#define REG "10.240.4.1:5000"
#define BUSYBOX REG "/busybox:1"
#define APP1 REG "/kfp/app-001:1"
#define APP2 REG "/kfp/app-002:1"
#define APP3 REG "/kfp/app-003:1"
#define NOPE REG "/kfp/nonexistent:1"

static json_t *load(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/plugin/%s", TEST_DATA_DIR, name);
	struct strbuf err = STRBUF_INIT;
	size_t len;
	char *text = kf_read_file(path, &len, &err);
	if (!text)
		fail_msg("%s", err.buf);
	json_t *j = kube_yaml_load(text, len, &err);
	if (!j)
		fail_msg("%s: %s", path, err.buf);
	free(text);
	sb_release(&err);
	return j;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

/* the state of (node, image) in a matrix, or NULL */
static const char *cell(json_t *m, const char *node, const char *image, const char *field)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(m, "nodes"), i, r)
		if (!strcmp(kf_jstr(r, "name", NULL), node))
			return kf_jstr(r, "images", image, field, NULL);
	return NULL;
}

static void expect_cell(json_t *m, const char *node, const char *image, const char *state)
{
	const char *got = cell(m, node, image, "state");
	if (!state && !got)
		return;
	if (!state || !got || strcmp(state, got))
		fail_msg("%s on %s: want %s, got %s", image, node, state ? state : "(none)", got ? got : "(none)");
}

static json_t *matrix_of(json_t *cache, json_t *nodes, json_t *nics, enum plugin_mode mode)
{
	struct plugin_nodes pn;
	plugin_nodes_build(nodes, nics, mode, &pn);
	json_t *m = plugin_matrix(cache, &pn);
	plugin_nodes_free(&pn);
	return m;
}

/* ---- matrix ---- */

static void matrix_job_mode_from_node_status_and_failures(void **state)
{
	(void)state;
	json_t *nodes = load("jobs-nodes.json"), *cache = load("jobs-cache-failed.json");
	json_t *m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	assert_string_equal(kf_jstr(m, "mode", NULL), "jobs");
	assert_string_equal(kf_jstr(m, "status", NULL), "Failed");
	assert_int_equal(json_integer_value(kf_jget(m, "progress", "total", NULL)), 7);
	assert_int_equal(json_array_size(json_object_get(m, "images")), 4);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Present");
	expect_cell(m, "rk8s-node1", APP1, "Present");
	expect_cell(m, "rk8s-node1", NOPE, "Failed");
	assert_string_equal(cell(m, "rk8s-node1", NOPE, "reason"), "ImagePullBackOff");
	assert_non_null(strstr(cell(m, "rk8s-node2", NOPE, "message"), "not found"));
	expect_cell(m, "rk8s-node1", APP2, NULL); /* its list selects tier=backend only */
	expect_cell(m, "rk8s-node2", APP2, "Present");
	assert_int_equal(json_integer_value(kf_jget(m, "counts", "Present", NULL)), 5);
	assert_int_equal(json_integer_value(kf_jget(m, "counts", "Failed", NULL)), 2);

	struct strbuf text = STRBUF_INIT;
	plugin_matrix_text(m, &text);
	assert_non_null(strstr(text.buf, "ImageCache kfp-demo/demo (jobs mode)\n"));
	assert_non_null(strstr(text.buf, "  progress: 7/7 node-image pairs done, 2 failed\n"));
	assert_non_null(strstr(text.buf, "  [3] " NOPE "\n"));
	assert_non_null(strstr(text.buf, "  NODE        [1]  [2]  [3]  [4]\n"));
	assert_non_null(strstr(text.buf, "  rk8s-node1  ok   ok   FAIL -\n"));
	assert_non_null(strstr(text.buf, "  rk8s-node2  ok   ok   FAIL ok\n"));
	assert_non_null(strstr(text.buf, "\n  FAILED\n  [3] rk8s-node1: ImagePullBackOff: Back-off pulling image"));
	assert_non_null(strstr(text.buf, "  ok present, FAIL failed, - not for this node\n"));
	sb_release(&text);
	json_decref(m);

	/* while Processing, what a node does not report is being pulled; a list the kubelet filled (50 images)
	 * cannot tell; a "+N more nodes" entry stands for the nodes it does not name */
	json_t *st = json_object_get(cache, "status");
	json_object_set_new(st, "status", json_string("Processing"));
	json_t *nope = json_object_get(json_object_get(st, "failures"), NOPE);
	json_array_remove(nope, 0); /* rk8s-node1 no longer named */
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", NOPE, "Pulling");
	expect_cell(m, "rk8s-node2", NOPE, "Failed");
	json_decref(m);
	json_object_set_new(st, "status", json_string("Failed"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", NOPE, "Missing");
	json_decref(m);
	json_array_append_new(nope, parse("{\"node\": \"+1 more nodes\", \"reason\": \"MoreFailures\", \"message\": \"m\"}"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", NOPE, "Failed");
	assert_string_equal(cell(m, "rk8s-node1", NOPE, "reason"), "MoreFailures");
	json_decref(m);
	json_t *images = kf_jget(json_array_get(nodes, 0), "status", "images", NULL);
	json_array_clear(images);
	for (int i = 0; i < PLUGIN_KUBELET_MAX_IMAGES; i++) {
		char n[64];
		snprintf(n, sizeof n, "r.example/filler-%d:1", i);
		json_array_append_new(images, json_pack("{s:[s]}", "names", n));
	}
	json_array_clear(nope);
	/* the node's list is full: what the last operation applied there without a failure was pulled */
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Present");
	assert_non_null(strstr(cell(m, "rk8s-node1", BUSYBOX, "message"), "pulled by the last operation"));
	expect_cell(m, "rk8s-node2", BUSYBOX, "Present");
	assert_null(cell(m, "rk8s-node2", BUSYBOX, "message")); /* reported by the kubelet */
	json_decref(m);
	json_object_set_new(st, "status", json_string("Processing"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Pulling");
	json_decref(m);
	/* no record of an operation that applied it: the full list cannot tell */
	json_object_set_new(st, "status", json_string("Failed"));
	json_t *applied = json_incref(json_object_get(st, "appliedSpec"));
	json_object_del(st, "appliedSpec");
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Unknown");
	json_decref(m);
	json_object_set_new(st, "appliedSpec", applied);
	/* purged: removed where the purge settled without a failure, unknown while it runs */
	json_object_set_new(st, "reason", json_string("ImageCachePurge"));
	json_object_set_new(st, "status", json_string("Succeeded"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Removed");
	assert_non_null(strstr(cell(m, "rk8s-node1", BUSYBOX, "message"), "removed by the last operation"));
	json_decref(m);
	json_object_set_new(st, "status", json_string("Processing"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", BUSYBOX, "Unknown");
	json_decref(m);
	json_object_set_new(st, "status", json_string("Failed"));
	json_object_set_new(st, "reason", json_string("ImageCacheCreate"));

	/* an image the applied spec still names (a removal not done): Leftover while there, Deleting while
	 * Processing, Removed once gone */
	json_decref(nodes);
	nodes = load("jobs-nodes.json");
	json_t *lists = kf_jget(cache, "status", "appliedSpec", "cacheSpec", NULL);
	json_array_append_new(lists, json_pack("{s:[s]}", "images", REG "/kubefledged/kubefledged:dev"));
	json_array_append_new(lists, json_pack("{s:[s]}", "images", REG "/kfp/gone:1"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", REG "/kubefledged/kubefledged:dev", "Leftover");
	expect_cell(m, "rk8s-node1", REG "/kfp/gone:1", "Removed");
	assert_false(json_is_true(kf_jget(json_array_get(json_object_get(m, "images"), 4), "inSpec", NULL)));
	text = (struct strbuf)STRBUF_INIT;
	plugin_matrix_text(m, &text);
	assert_non_null(strstr(text.buf, "  [5] " REG "/kubefledged/kubefledged:dev   (no longer listed)\n"));
	assert_non_null(strstr(text.buf, "  rk8s-node1  ok   ok   miss -    left gone\n"));
	sb_release(&text);
	json_decref(m);
	json_object_set_new(st, "status", json_string("Processing"));
	m = matrix_of(cache, nodes, NULL, PLUGIN_MODE_JOBS);
	expect_cell(m, "rk8s-node1", REG "/kubefledged/kubefledged:dev", "Deleting");
	json_decref(m);
	json_decref(cache);
	json_decref(nodes);
}

static void matrix_agent_mode_from_node_image_caches(void **state)
{
	(void)state;
	json_t *nodes = load("jobs-nodes.json"), *nics = load("agent-nics.json"), *cache = load("agent-cache-failed.json");
	json_t *m = matrix_of(cache, nodes, nics, PLUGIN_MODE_AGENT);
	assert_string_equal(kf_jstr(m, "mode", NULL), "agent");
	assert_string_equal(kf_jstr(m, "reason", NULL), "ImageCacheRefresh");
	expect_cell(m, "rk8s-node1", BUSYBOX, "Present");
	expect_cell(m, "rk8s-node2", APP2, "Present");
	expect_cell(m, "rk8s-node1", NOPE, "Failed");
	assert_string_equal(cell(m, "rk8s-node1", NOPE, "reason"), "ErrImagePull");
	assert_non_null(strstr(cell(m, "rk8s-node1", NOPE, "message"), "rpc error: code = NotFound"));
	assert_null(cell(m, "rk8s-node1", BUSYBOX, "reason"));
	json_decref(m);

	/* the agent's other states, by editing its reports */
	json_t *n1 = NULL, *n2 = NULL;
	size_t i;
	json_t *x;
	json_array_foreach(nics, i, x) {
		if (!strcmp(kf_jstr(x, "metadata", "name", NULL), "rk8s-node1"))
			n1 = x;
		else
			n2 = x;
	}
	json_t *imgs = kf_jget(n1, "status", "images", NULL);
	json_array_foreach(imgs, i, x) {
		if (!strcmp(kf_jstr(x, "image", NULL), NOPE)) {
			json_object_set_new(x, "state", json_string("Pulling"));
			json_object_set_new(x, "reason", json_string("ErrImagePull"));
			json_object_set_new(x, "message", json_string("dial tcp: i/o timeout"));
		} else if (!strcmp(kf_jstr(x, "image", NULL), APP1)) {
			json_object_set_new(x, "state", json_string("Absent"));
		}
	}
	/* app-001 not in node1's spec (the controller has not written it): Missing; in node2's spec but not
	 * reported yet: Pulling (queued) */
	json_t *spec1 = kf_jget(n1, "spec", "images", NULL);
	json_array_foreach(spec1, i, x)
		if (!strcmp(kf_jstr(x, "image", NULL), APP1)) {
			json_array_remove(spec1, i);
			break;
		}
	json_t *imgs2 = kf_jget(n2, "status", "images", NULL);
	json_array_foreach(imgs2, i, x)
		if (!strcmp(kf_jstr(x, "image", NULL), APP1)) {
			json_array_remove(imgs2, i);
			break;
		}
	m = matrix_of(cache, nodes, nics, PLUGIN_MODE_AGENT);
	expect_cell(m, "rk8s-node1", NOPE, "Pulling");
	assert_string_equal(cell(m, "rk8s-node1", NOPE, "message"), "dial tcp: i/o timeout");
	expect_cell(m, "rk8s-node1", APP1, "Missing");
	expect_cell(m, "rk8s-node2", APP1, "Pulling");
	assert_non_null(strstr(cell(m, "rk8s-node2", APP1, "message"), "queued"));
	json_decref(m);

	/* removals: an image the applied spec names and the spec no longer does */
	json_t *lists = kf_jget(cache, "status", "appliedSpec", "cacheSpec", NULL);
	json_array_append_new(lists, json_pack("{s:[s,s,s]}", "images", REG "/old/a:1", REG "/old/b:1", REG "/old/c:1"));
	json_array_append_new(imgs, parse("{\"image\": \"" REG "/old/a:1\", \"state\": \"Present\", \"reason\": \"ImageInUse\","
					  " \"message\": \"kept: used by container c of pod ns/p (running)\"}"));
	json_array_append_new(imgs, parse("{\"image\": \"" REG "/old/b:1\", \"state\": \"Deleting\"}"));
	json_array_append_new(imgs, parse("{\"image\": \"" REG "/old/c:1\", \"state\": \"Present\"}"));
	json_array_append_new(spec1, parse("{\"image\": \"" REG "/old/c:1\", \"action\": \"Delete\"}"));
	m = matrix_of(cache, nodes, nics, PLUGIN_MODE_AGENT);
	expect_cell(m, "rk8s-node1", REG "/old/a:1", "Kept");
	assert_string_equal(cell(m, "rk8s-node1", REG "/old/a:1", "reason"), "ImageInUse");
	expect_cell(m, "rk8s-node1", REG "/old/b:1", "Deleting");
	expect_cell(m, "rk8s-node1", REG "/old/c:1", "Deleting");
	expect_cell(m, "rk8s-node2", REG "/old/c:1", "Removed");
	struct strbuf text = STRBUF_INIT;
	plugin_matrix_text(m, &text);
	assert_non_null(strstr(text.buf, "\n  NOTES\n"));
	assert_non_null(strstr(text.buf, "rk8s-node1: Kept ImageInUse: kept: used by container c"));
	assert_non_null(strstr(text.buf, "kept removal kept on purpose"));
	sb_release(&text);
	json_decref(m);
	json_decref(cache);

	/* a purged cache wants nothing: its images are removals */
	cache = load("agent-cache-purged.json");
	json_decref(nics);
	nics = parse("[]");
	m = matrix_of(cache, nodes, nics, PLUGIN_MODE_AGENT);
	assert_true(json_is_false(json_object_get(m, "wantsImages")));
	expect_cell(m, "rk8s-node1", BUSYBOX, "Removed");
	expect_cell(m, "rk8s-node2", APP2, "Removed");
	json_decref(m);
	json_decref(cache);
	json_decref(nics);
	json_decref(nodes);
}

static void mode_from_node_image_cache_owners(void **state)
{
	(void)state;
	json_t *nics = load("agent-nics.json"), *caches = load("agent-caches-all.json");
	assert_int_equal(plugin_mode_guess(NULL, caches, 1), PLUGIN_MODE_JOBS);  /* no NodeImageCache CRD */
	json_t *none = parse("[]");
	assert_int_equal(plugin_mode_guess(none, caches, 1), PLUGIN_MODE_JOBS);
	assert_int_equal(plugin_mode_guess(nics, caches, 1), PLUGIN_MODE_AGENT); /* kfp-demo/demo owns images */
	/* no cache at all: the owners are leftovers of an earlier controller; unless only a namespace was seen */
	assert_int_equal(plugin_mode_guess(nics, none, 1), PLUGIN_MODE_JOBS);
	assert_int_equal(plugin_mode_guess(nics, none, 0), PLUGIN_MODE_AGENT);
	/* NodeImageCaches without owners and nothing processed: a fresh agent-mode install */
	json_t *bare = json_deep_copy(nics);
	size_t i;
	json_t *c;
	json_array_foreach(bare, i, c)
		json_object_set_new(json_object_get(c, "spec"), "images", json_array());
	assert_int_equal(plugin_mode_guess(bare, none, 1), PLUGIN_MODE_AGENT);
	assert_int_equal(plugin_mode_guess(bare, caches, 1), PLUGIN_MODE_JOBS); /* caches processed without them */
	/* ... unless those caches are purged: they want nothing, so an agent-mode controller names them nowhere */
	json_t *purged = json_deep_copy(caches);
	json_array_foreach(purged, i, c)
		json_object_set_new(json_object_get(c, "status"), "reason", json_string("ImageCachePurge"));
	assert_int_equal(plugin_mode_guess(bare, purged, 1), PLUGIN_MODE_AGENT);
	json_decref(purged);
	json_decref(bare);
	/* the owners are gone, the caches there were processed without them: job mode (left-over objects) */
	json_array_foreach(caches, i, c)
		json_object_set_new(json_object_get(c, "metadata"), "namespace", json_string("elsewhere"));
	assert_int_equal(plugin_mode_guess(nics, caches, 0), PLUGIN_MODE_JOBS);
	/* an owner being deleted does not count */
	json_array_foreach(caches, i, c) {
		json_object_set_new(json_object_get(c, "metadata"), "namespace", json_string("kfp-demo"));
		json_object_set_new(json_object_get(c, "metadata"), "deletionTimestamp", json_string("2026-12-03T12:00:00Z"));
	}
	assert_int_equal(plugin_mode_guess(nics, caches, 1), PLUGIN_MODE_JOBS);
	json_decref(none);
	json_decref(nics);
	json_decref(caches);
}

/* ---- plan ---- */

/* the entry of node's list (pull, present, delete, keep) for image, or NULL */
static json_t *plan_entry(json_t *plan, const char *node, const char *list, const char *image)
{
	size_t i, j;
	json_t *n, *e;
	json_array_foreach(json_object_get(plan, "nodes"), i, n) {
		if (strcmp(kf_jstr(n, "name", NULL), node))
			continue;
		json_array_foreach(json_object_get(n, list), j, e) {
			const char *im = json_is_string(e) ? json_string_value(e) : kf_jstr(e, "image", NULL);
			if (!strcmp(im, image))
				return e;
		}
	}
	return NULL;
}

static json_t *plan_of(json_t *cache, json_t *live, json_t *others, json_t *nodes, json_t *nics, enum plugin_mode mode,
		       const char *policy)
{
	struct plugin_nodes pn;
	plugin_nodes_build(nodes, nics, mode, &pn);
	struct plugin_plan_input in = { cache, live, others, &pn, policy };
	struct strbuf err = STRBUF_INIT;
	json_t *p = plugin_plan(&in, &err);
	if (!p)
		fail_msg("plan: %s", err.buf);
	sb_release(&err);
	plugin_nodes_free(&pn);
	return p;
}

static void plan_update_in_agent_mode(void **state)
{
	(void)state;
	json_t *nodes = load("jobs-nodes.json"), *nics = load("agent-nics.json"), *live = load("agent-cache-failed.json");
	json_t *others = load("agent-caches-all.json"), *edit = load("demo-edit.yaml");
	json_t *p = plan_of(edit, live, others, nodes, nics, PLUGIN_MODE_AGENT, NULL);
	assert_string_equal(kf_jstr(p, "operation", NULL), "update");
	assert_null(json_object_get(p, "denied"));
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", APP3), "why", NULL), "absent");
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", NOPE), "why", NULL), "failed");
	assert_non_null(plan_entry(p, "rk8s-node1", "present", BUSYBOX));
	assert_null(plan_entry(p, "rk8s-node1", "pull", BUSYBOX));
	assert_true(json_is_true(json_object_get(plan_entry(p, "rk8s-node1", "delete", APP1), "onNode")));
	/* kfp-other/other lists app-001 for tier=backend: kept on rk8s-node2 */
	assert_null(plan_entry(p, "rk8s-node2", "delete", APP1));
	json_t *k = plan_entry(p, "rk8s-node2", "keep", APP1);
	assert_string_equal(kf_jstr(k, "reason", NULL), "ImageWantedByOtherImageCache");
	assert_string_equal(kf_jstr(k, "message", NULL), "listed by ImageCache kfp-other/other");
	assert_non_null(plan_entry(p, "rk8s-node2", "present", APP2));
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "pulls", NULL)), 4);
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "present", NULL)), 3);
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "deletes", NULL)), 1);
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "keeps", NULL)), 1);
	struct strbuf text = STRBUF_INIT;
	plugin_plan_text(p, &text);
	assert_non_null(strstr(text.buf, "Plan for ImageCache kfp-demo/demo (agent mode): update of the live object"));
	assert_non_null(strstr(text.buf, "  rk8s-node1  2     1        1       0\n"));
	assert_non_null(strstr(text.buf, "      rk8s-node1: failed before: tried again\n"));
	assert_non_null(strstr(text.buf, "  total: 4 pulls, 3 already present, 1 delete, 1 kept\n"));
	sb_release(&text);
	json_decref(p);

	/* the same spec as the live one: nothing now; the next refresh retries the failed pulls */
	p = plan_of(live, live, others, nodes, nics, PLUGIN_MODE_AGENT, NULL);
	assert_string_equal(kf_jstr(p, "operation", NULL), "none");
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node2", "pull", NOPE), "why", NULL), "failed");
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "deletes", NULL)), 0);
	json_decref(p);
	json_decref(nodes);
	json_decref(nics);
	json_decref(live);
	json_decref(others);
	json_decref(edit);
}

static void plan_create_floating_always_and_denied_in_job_mode(void **state)
{
	(void)state;
	json_t *nodes = load("jobs-nodes.json"), *c = load("demo.yaml");
	json_object_set_new(json_object_get(c, "metadata"), "name", json_string("fresh"));
	json_t *p = plan_of(c, NULL, NULL, nodes, NULL, PLUGIN_MODE_JOBS, "IfNotPresent");
	assert_string_equal(kf_jstr(p, "operation", NULL), "create");
	assert_non_null(plan_entry(p, "rk8s-node1", "present", BUSYBOX)); /* reported by the node */
	assert_non_null(plan_entry(p, "rk8s-node1", "present", APP1));
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", NOPE), "why", NULL), "absent");
	assert_null(plan_entry(p, "rk8s-node1", "pull", APP2));
	assert_non_null(plan_entry(p, "rk8s-node2", "present", APP2));
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "deletes", NULL)), 0);
	json_decref(p);

	/* Always: every image is pulled */
	p = plan_of(c, NULL, NULL, nodes, NULL, PLUGIN_MODE_JOBS, "Always");
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", BUSYBOX), "why", NULL), "always");
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "present", NULL)), 0);
	json_decref(p);

	/* an untagged image is pulled by a create even where present; an update leaves it where applied */
	json_t *list0 = json_array_get(kf_jget(c, "spec", "cacheSpec", NULL), 0);
	json_array_set_new(json_object_get(list0, "images"), 0, json_string(REG "/busybox"));
	p = plan_of(c, NULL, NULL, nodes, NULL, PLUGIN_MODE_JOBS, NULL);
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", REG "/busybox"), "why", NULL), "floating");
	json_decref(p);
	json_t *live = load("jobs-cache-failed.json");
	json_array_append_new(kf_jget(live, "status", "appliedSpec", "cacheSpec", NULL),
			      json_pack("{s:[s]}", "images", REG "/busybox:latest"));
	json_object_set_new(json_object_get(c, "metadata"), "name", json_string("demo"));
	p = plan_of(c, live, NULL, nodes, NULL, PLUGIN_MODE_JOBS, NULL);
	assert_string_equal(kf_jstr(p, "operation", NULL), "update");
	assert_null(plan_entry(p, "rk8s-node1", "pull", REG "/busybox"));
	assert_null(plan_entry(p, "rk8s-node1", "present", REG "/busybox"));
	/* busybox:1 is no longer listed: deleted where the applied spec put it */
	assert_true(json_is_true(json_object_get(plan_entry(p, "rk8s-node1", "delete", BUSYBOX), "onNode")));
	json_decref(p);

	/* node1's status lists the kubelet's 50 images, none of these: the cache's record decides whether a
	 * delete finds the image there (no failure: pulled; a failure: never pulled; Processing: cannot tell) */
	json_t *full = json_deep_copy(nodes);
	json_t *fimgs = kf_jget(json_array_get(full, 0), "status", "images", NULL);
	json_array_clear(fimgs);
	for (int k = 0; k < PLUGIN_KUBELET_MAX_IMAGES; k++) {
		char fn[64];
		snprintf(fn, sizeof fn, "r.example/filler-%d:1", k);
		json_array_append_new(fimgs, json_pack("{s:[s]}", "names", fn));
	}
	json_t *no_nope = json_deep_copy(c);
	size_t li, ii;
	json_t *l, *img;
	json_array_foreach(kf_jget(no_nope, "spec", "cacheSpec", NULL), li, l) {
		json_t *keep = json_array();
		json_array_foreach(json_object_get(l, "images"), ii, img)
			if (strcmp(json_string_value(img), NOPE))
				json_array_append(keep, img);
		json_object_set_new(l, "images", keep);
	}
	p = plan_of(no_nope, live, NULL, full, NULL, PLUGIN_MODE_JOBS, NULL);
	assert_true(json_is_true(json_object_get(plan_entry(p, "rk8s-node1", "delete", BUSYBOX), "onNode")));
	assert_true(json_is_false(json_object_get(plan_entry(p, "rk8s-node1", "delete", NOPE), "onNode")));
	assert_non_null(plan_entry(p, "rk8s-node1", "present", APP1)); /* applied, no failure: pulled */
	json_decref(p);
	json_object_set_new(json_object_get(live, "status"), "status", json_string("Processing"));
	p = plan_of(no_nope, live, NULL, full, NULL, PLUGIN_MODE_JOBS, NULL);
	assert_true(json_is_null(json_object_get(plan_entry(p, "rk8s-node1", "delete", BUSYBOX), "onNode")));
	assert_string_equal(kf_jstr(plan_entry(p, "rk8s-node1", "pull", APP1), "why", NULL), "unreported");
	json_decref(p);
	json_object_set_new(json_object_get(live, "status"), "status", json_string("Failed"));
	json_decref(no_nope);
	json_decref(full);

	/* what the webhook would deny is said, with its words */
	json_array_set_new(json_object_get(list0, "images"), 1, json_string(REG "/busybox"));
	p = plan_of(c, live, NULL, nodes, NULL, PLUGIN_MODE_JOBS, NULL);
	assert_string_equal(kf_jstr(p, "denied", NULL), "Duplicate image names within image list: " REG "/busybox");
	struct strbuf text = STRBUF_INIT;
	plugin_plan_text(p, &text);
	assert_non_null(strstr(text.buf, "DENIED: the admission webhook would reject this object: Duplicate image names"));
	sb_release(&text);
	json_decref(p);

	/* a spec that cannot be read names the field */
	json_object_set_new(list0, "images", json_string("not a list"));
	struct plugin_nodes pn;
	plugin_nodes_build(nodes, NULL, PLUGIN_MODE_JOBS, &pn);
	struct plugin_plan_input in = { c, NULL, NULL, &pn, NULL };
	struct strbuf err = STRBUF_INIT;
	assert_null(plugin_plan(&in, &err));
	assert_non_null(strstr(err.buf, "spec.cacheSpec[0].images"));
	sb_release(&err);
	plugin_nodes_free(&pn);
	json_decref(live);
	json_decref(c);
	json_decref(nodes);
}

/* sizes: app images = the busybox layer (1,000,000) + their own (100) + config (10); busybox = its layer +
 * config (5); the nonexistent image's size is unknown */
static int fake_size(void *ud, const char *image, const char *platform, int64_t *bytes, json_t **layers,
		     struct strbuf *why)
{
	(*(int *)ud)++;
	assert_string_equal(platform, "linux/amd64");
	if (strstr(image, "nonexistent")) {
		sb_adds(why, "not found in the registry (HTTP 404)");
		return -1;
	}
	if (!strcmp(image, BUSYBOX)) {
		*layers = parse("[{\"digest\": \"sha256:bbcfg\", \"size\": 5}, {\"digest\": \"sha256:busybox\", \"size\": 1000000}]");
		*bytes = 1000005;
		return 0;
	}
	*layers = json_pack("[{s:s+, s:i}, {s:s, s:i}, {s:s+, s:i}]", "digest", "sha256:cfg-", image, "size", 10, "digest",
			    "sha256:busybox", "size", 1000000, "digest", "sha256:own-", image, "size", 100);
	*bytes = 1000110;
	return 0;
}

static void plan_sizes_count_each_layer_once_per_node(void **state)
{
	(void)state;
	json_t *nodes = load("jobs-nodes.json"), *c = load("demo-edit.yaml");
	json_object_set_new(json_object_get(c, "metadata"), "name", json_string("fresh"));
	/* node2 lacks busybox:1, so its pulls download the shared layer once */
	json_t *imgs2 = kf_jget(json_array_get(nodes, 1), "status", "images", NULL);
	size_t i;
	json_t *x;
	json_array_foreach(imgs2, i, x) {
		const char *last = json_string_value(json_array_get(json_object_get(x, "names"), json_array_size(json_object_get(x, "names")) - 1));
		if (!strcmp(last, BUSYBOX) || !strcmp(last, APP2)) {
			json_array_remove(imgs2, i);
			i--;
		}
	}
	json_t *p = plan_of(c, NULL, NULL, nodes, NULL, PLUGIN_MODE_JOBS, NULL);
	int calls = 0;
	plugin_plan_sizes(p, fake_size, &calls);
	json_t *n1 = json_array_get(json_object_get(p, "nodes"), 0), *n2 = json_array_get(json_object_get(p, "nodes"), 1);
	/* node1 holds busybox:1: app-003 downloads its config and own layer only; nonexistent is unknown */
	assert_int_equal(json_integer_value(json_object_get(n1, "bytes")), 110);
	assert_int_equal(json_integer_value(json_object_get(n1, "unknown")), 1);
	/* node2 pulls busybox:1, app-003 and app-002: the busybox layer once */
	assert_int_equal(json_integer_value(json_object_get(n2, "bytes")), 1000005 + 110 + 110);
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "bytes", NULL)), 110 + 1000225);
	assert_int_equal(json_integer_value(kf_jget(p, "totals", "unknown", NULL)), 2);
	assert_int_equal(calls, 4); /* busybox, app-003, nonexistent, app-002: each asked once */
	size_t k;
	json_t *im;
	json_array_foreach(json_object_get(p, "images"), k, im) {
		if (!strcmp(kf_jstr(im, "image", NULL), APP3))
			assert_int_equal(json_integer_value(kf_jget(im, "sizes", "linux/amd64", NULL)), 1000110);
		if (!strcmp(kf_jstr(im, "image", NULL), NOPE)) {
			assert_true(json_is_null(kf_jget(im, "sizes", "linux/amd64", NULL)));
			assert_string_equal(kf_jstr(im, "sizeError", NULL), "not found in the registry (HTTP 404)");
		}
	}
	struct strbuf text = STRBUF_INIT;
	plugin_plan_text(p, &text);
	assert_non_null(strstr(text.buf, "NODE        PULL  PRESENT  DELETE  KEEP  DOWNLOAD\n"));
	assert_non_null(strstr(text.buf, "  rk8s-node1  2     1        0       0     110 B + unknown\n"));
	assert_non_null(strstr(text.buf, "  rk8s-node2  4     0        0       0     977 KiB + unknown\n"));
	assert_non_null(strstr(text.buf, "size unknown: not found in the registry (HTTP 404)"));
	assert_non_null(strstr(text.buf, "download 977 KiB + 2 pulls of unknown size\n"));
	sb_release(&text);
	json_decref(p);
	json_decref(c);
	json_decref(nodes);
	char b[32];
	plugin_human_bytes(87, b, sizeof b);
	assert_string_equal(b, "87 B");
	plugin_human_bytes(1572864, b, sizeof b);
	assert_string_equal(b, "1.5 MiB");
}

/* ---- registry ---- */

static const char index_json[] =
	"{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.index.v1+json\", \"manifests\": ["
	"{\"digest\": \"sha256:aaaa\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
	"{\"digest\": \"sha256:v6v6\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm\", \"variant\": \"v6\"}},"
	"{\"digest\": \"sha256:v7v7\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm\", \"variant\": \"v7\"}},"
	"{\"digest\": \"sha256:a64\", \"size\": 1, \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", \"variant\": \"v8\"}},"
	"{\"digest\": \"sha256:unknown\", \"size\": 1, \"platform\": {\"os\": \"unknown\", \"architecture\": \"unknown\"}}]}";

static void registry_manifests_index_and_sizes(void **state)
{
	(void)state;
	json_t *idx = parse(index_json);
	assert_string_equal(kf_jstr(plugin_index_pick(idx, "linux/amd64"), "digest", NULL), "sha256:aaaa");
	assert_string_equal(kf_jstr(plugin_index_pick(idx, "linux/arm"), "digest", NULL), "sha256:v7v7");
	assert_string_equal(kf_jstr(plugin_index_pick(idx, "linux/arm/v6"), "digest", NULL), "sha256:v6v6");
	assert_string_equal(kf_jstr(plugin_index_pick(idx, "linux/arm64"), "digest", NULL), "sha256:a64");
	assert_null(plugin_index_pick(idx, "linux/s390x"));
	json_decref(idx);

	json_t *m = load("manifest-app.json"), *layers = NULL;
	int64_t bytes = 0;
	struct strbuf why = STRBUF_INIT;
	assert_int_equal(plugin_manifest_size(m, &bytes, &layers, &why), 0);
	assert_int_equal(bytes, 302 + 1099078 + 111);
	assert_int_equal(json_array_size(layers), 3);
	assert_string_equal(kf_jstr(json_array_get(layers, 1), "digest", NULL),
			    "sha256:69af77ba3069f568f2f9cb01a03d0a3c813d2c7c2d83ae28749528abe34d9505");
	json_decref(layers);
	json_decref(m);
	m = parse("{\"schemaVersion\": 1, \"fsLayers\": [{\"blobSum\": \"sha256:x\"}]}");
	assert_int_equal(plugin_manifest_size(m, &bytes, &layers, &why), -1);
	assert_string_equal(why.buf, "a schema 1 manifest, which lists no sizes");
	json_decref(m);
	sb_release(&why);
}

static void registry_token_and_basic_flows(void **state)
{
	(void)state;
	struct strbuf manifest = STRBUF_INIT, warn = STRBUF_INIT, why = STRBUF_INIT;
	char *text = kf_read_file(TEST_DATA_DIR "/plugin/manifest-app.json", NULL, &why);
	assert_non_null(text);
	sb_adds(&manifest, text);
	free(text);
	static char challenge[256];
	struct hs_step steps[] = {
		{ 401, challenge, "{\"errors\": [{\"code\": \"UNAUTHORIZED\"}]}", 0, 0, 0, 0 },
		{ 200, NULL, "{\"token\": \"t0k3n\"}", 0, 0, 0, 0 },
		{ 200, NULL, index_json, 0, 0, 0, 0 },
		{ 200, NULL, manifest.buf, 0, 0, 0, 0 },
		/* a second registry host name of the same server, with Basic authentication */
		{ 401, "WWW-Authenticate: Basic realm=\"reg\"\r\n", "", 0, 0, 0, 0 },
		{ 200, NULL, manifest.buf, 0, 0, 0, 0 },
	};
	struct hs hs;
	assert_int_equal(hs_start(&hs, steps, ARRAY_SIZE(steps)), 0);
	snprintf(challenge, sizeof challenge,
		 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"test-registry\"\r\n", hs.port);
	char host[64], dcfg[128], image[128], image2[128], host2[64];
	snprintf(host, sizeof host, "127.0.0.1:%d", hs.port);
	snprintf(host2, sizeof host2, "localhost:%d", hs.port);
	snprintf(image, sizeof image, "%s/team/app:1", host);
	snprintf(image2, sizeof image2, "%s/team/app:1", host2);
	/* credentials for the second name only */
	snprintf(dcfg, sizeof dcfg, "/tmp/kf-test-plugin-dockercfg-%d.json", (int)getpid());
	FILE *f = fopen(dcfg, "w");
	assert_non_null(f);
	fprintf(f, "{\"auths\": {\"%s\": {\"auth\": \"dXNlcjpwYXNz\"}}}", host2); /* user:pass */
	fclose(f);
	char plain[160];
	snprintf(plain, sizeof plain, "%s,%s", host, host2);
	struct plugin_registry_opts o = { dcfg, plain, 5000 };
	struct plugin_registry *reg = plugin_registry_new(&o, &warn);
	assert_string_equal(warn.buf, "");
	int64_t bytes = 0;
	json_t *layers = NULL;
	assert_int_equal(plugin_registry_size(reg, image, "linux/arm64", &bytes, &layers, &why), 0);
	assert_int_equal(bytes, 302 + 1099078 + 111);
	json_decref(layers);
	assert_int_equal(hs_requests(&hs), 4);
	assert_string_equal(hs.log[0], "GET /v2/team/app/manifests/1");
	assert_string_equal(hs.log[1], "GET /token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull");
	assert_string_equal(hs.log[2], "GET /v2/team/app/manifests/1");
	assert_string_equal(hs.log[3], "GET /v2/team/app/manifests/sha256:a64");
	/* asked again: remembered, no request */
	assert_int_equal(plugin_registry_size(reg, image, "linux/arm64", &bytes, &layers, &why), 0);
	json_decref(layers);
	assert_int_equal(hs_requests(&hs), 4);
	/* Basic: the docker config's credentials for that host */
	assert_int_equal(plugin_registry_size(reg, image2, "linux/amd64", &bytes, &layers, &why), 0);
	json_decref(layers);
	assert_int_equal(hs_requests(&hs), 6);
	/* no credentials for a Basic registry: unknown, and why */
	plugin_registry_free(reg);
	o.docker_config = "/nonexistent/config.json";
	reg = plugin_registry_new(&o, &warn);
	assert_non_null(strstr(warn.buf, "/nonexistent/config.json"));
	/* (the script is exhausted: the server answers 500 from now on) */
	assert_int_equal(plugin_registry_size(reg, image2, "linux/amd64", &bytes, &layers, &why), -1);
	assert_string_equal(why.buf, "the registry answered HTTP 500");
	plugin_registry_free(reg);
	hs_stop(&hs);

	/* unreachable: said once per registry, the next image of it not asked */
	sb_reset(&warn);
	sb_reset(&why);
	o.docker_config = NULL;
	o.plain_http = "127.0.0.1:1";
	reg = plugin_registry_new(&o, &warn);
	assert_int_equal(plugin_registry_size(reg, "127.0.0.1:1/a:1", "linux/amd64", &bytes, &layers, &why), -1);
	assert_non_null(strstr(why.buf, "registry 127.0.0.1:1 unreachable: "));
	sb_reset(&why);
	int64_t t0 = kf_now_ms();
	assert_int_equal(plugin_registry_size(reg, "127.0.0.1:1/b:1", "linux/amd64", &bytes, &layers, &why), -1);
	assert_true(kf_now_ms() - t0 < 50);
	assert_non_null(strstr(why.buf, "registry 127.0.0.1:1 unreachable: "));
	plugin_registry_free(reg);
	unlink(dcfg);
	sb_release(&manifest);
	sb_release(&warn);
	sb_release(&why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matrix_job_mode_from_node_status_and_failures),
		cmocka_unit_test(matrix_agent_mode_from_node_image_caches),
		cmocka_unit_test(mode_from_node_image_cache_owners),
		cmocka_unit_test(plan_update_in_agent_mode),
		cmocka_unit_test(plan_create_floating_always_and_denied_in_job_mode),
		cmocka_unit_test(plan_sizes_count_each_layer_once_per_node),
		cmocka_unit_test(registry_manifests_index_and_sizes),
		cmocka_unit_test(registry_token_and_basic_flows),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests_name("plugin", tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
