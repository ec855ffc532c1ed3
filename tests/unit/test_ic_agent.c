/* test_ic_agent.c - the controller's side of agent mode, without a cluster: the per-node desired set and its
 * owner counting (ic_nodeplan_spec), the NodeImageCache index (ic_nic), and the folding of node statuses into
 * task results in job mode's words (ic_agent_fold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_controller_int.h"
#include "imagecache/ic_nic.h"
#include "imagecache/ic_nodeplan.h"
#include "util/util.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static int64_t gen_floor(void *ud, const char *canonical)
{
	(void)ud;
	return !strcmp(canonical, "docker.io/library/app:1") ? 7 : 0;
}

static int64_t size_of(void *ud, const char *canonical)
{
	(void)ud;
	return !strcmp(canonical, "docker.io/library/app:1") ? 1234 : 0;
}

static void desired_set_unions_caches_and_counts_owners(void **state)
{
	(void)state;
	json_t *caches = parse(
		"[{\"metadata\":{\"namespace\":\"a\",\"name\":\"c1\",\"uid\":\"1\"},\"spec\":{\"cacheSpec\":["
		"  {\"images\":[\"app:1\",\"docker.io/library/app:1\",\"tool:latest\"]},"
		"  {\"images\":[\"gpu:1\"],\"nodeSelector\":{\"gpu\":\"yes\"}}],"
		"  \"imagePullSecrets\":[{\"name\":\"reg\"}]}},"
		" {\"metadata\":{\"namespace\":\"b\",\"name\":\"c2\",\"uid\":\"2\"},\"spec\":{\"cacheSpec\":["
		"  {\"images\":[\"app:1\",\"Not;Valid\"]}]}},"
		" {\"metadata\":{\"namespace\":\"b\",\"name\":\"gone\",\"uid\":\"3\"},\"spec\":{\"cacheSpec\":["
		"  {\"images\":[\"old:1\"]}]},\"status\":{\"reason\":\"ImageCachePurge\"}}]");
	struct ic_cacheset *cs = ic_cacheset_new(caches);
	json_t *labels = parse("{\"gpu\":\"no\"}");
	struct ic_node_request reqs[] = {
		{ "docker.io/library/tool:latest", 3, NULL, NULL },  /* a refresh asks for a fresh pull */
		{ "docker.io/library/old:1", 0, "b", "gone" },        /* a purge asks for a removal */
		{ "docker.io/library/app:1", 0, "b", "c2" },          /* ... but c1 still wants app:1: kept */
		{ "docker.io/library/app:1", 2, NULL, NULL },         /* below the current 7: no effect */
	};
	json_t *spec = ic_nodeplan_spec(cs, "n1", labels, reqs, 4, gen_floor, size_of, NULL);
	json_t *want = parse(
		"{\"nodeName\":\"n1\",\"images\":["
		" {\"image\":\"docker.io/library/app:1\",\"pullGeneration\":7,\"sizeHint\":1234,"
		"  \"owners\":[{\"namespace\":\"a\",\"name\":\"c1\"},{\"namespace\":\"b\",\"name\":\"c2\"}],"
		"  \"pullSecrets\":[{\"namespace\":\"a\",\"name\":\"reg\"}]},"
		" {\"image\":\"docker.io/library/old:1\",\"action\":\"Delete\",\"owners\":[{\"namespace\":\"b\",\"name\":\"gone\"}]},"
		" {\"image\":\"docker.io/library/tool:latest\",\"pullGeneration\":3,"
		"  \"owners\":[{\"namespace\":\"a\",\"name\":\"c1\"}],\"pullSecrets\":[{\"namespace\":\"a\",\"name\":\"reg\"}]}]}");
	if (!json_equal(spec, want))
		fail_msg("desired spec: %s", json_dumps(spec, JSON_SORT_KEYS));
	/* the gpu list selects nodes labelled gpu=yes only */
	json_decref(spec);
	json_decref(labels);
	labels = parse("{\"gpu\":\"yes\"}");
	spec = ic_nodeplan_spec(cs, "n2", labels, NULL, 0, NULL, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(spec, "images")), 3);
	assert_string_equal(kf_jstr(json_array_get(json_object_get(spec, "images"), 1), "image", NULL),
			    "docker.io/library/gpu:1");
	json_decref(spec);
	json_decref(labels);
	json_decref(want);
	ic_cacheset_free(cs);
	json_decref(caches);
}

static void index_folds_objects_compactly(void **state)
{
	(void)state;
	struct ic_nic_index *x = ic_nic_index_new();
	json_t *o = parse("{\"metadata\":{\"name\":\"n1\",\"generation\":4},\"spec\":{\"nodeName\":\"n1\",\"images\":["
			  " {\"image\":\"r/a:1\",\"pullGeneration\":2},{\"image\":\"r/b:1\",\"action\":\"Delete\"}]},"
			  "\"status\":{\"observedGeneration\":3,\"images\":["
			  " {\"image\":\"r/a:1\",\"state\":\"Failed\",\"observedPullGeneration\":2,\"reason\":\"ErrImagePull\","
			  "  \"message\":\"not found\",\"digest\":\"sha256:1\"},"
			  " {\"image\":\"r/b:1\",\"state\":\"Present\",\"sizeBytes\":99}]}}");
	json_t *stub = ic_nic_transform(x, o);
	assert_null(kf_jget(stub, "spec", NULL));
	assert_int_equal(ic_nic_version(x, "n1"), 1);
	struct ic_nic_info i;
	ic_nic_lookup(x, "n1", "r/a:1", &i);
	assert_true(i.in_spec && !i.spec_delete);
	assert_int_equal(i.spec_gen, 2);
	assert_int_equal(i.state, NIC_FAILED);
	assert_string_equal(i.message, "not found");
	assert_int_equal(i.observed_generation, 3);
	ic_nic_info_clear(&i);
	ic_nic_lookup(x, "n1", "r/b:1", &i);
	assert_true(i.spec_delete);
	assert_int_equal(i.delete_since, 4);
	ic_nic_info_clear(&i);
	assert_int_equal(ic_nic_size_hint(x, "r/b:1"), 99);
	/* a later version keeps when the Delete first appeared */
	json_decref(stub);
	o = parse("{\"metadata\":{\"name\":\"n1\",\"generation\":5},\"spec\":{\"nodeName\":\"n1\",\"images\":["
		  " {\"image\":\"r/b:1\",\"action\":\"Delete\"}]}}");
	stub = ic_nic_transform(x, o);
	ic_nic_lookup(x, "n1", "r/b:1", &i);
	assert_int_equal(i.delete_since, 4);
	assert_false(i.has_status);
	ic_nic_info_clear(&i);
	assert_int_equal(ic_nic_version(x, "n1"), 2);
	ic_nic_lookup(x, "nowhere", "r/b:1", &i);
	assert_false(i.exists);
	ic_nic_info_clear(&i);
	json_decref(stub);
	ic_nic_forget(x, "n1");
	assert_int_equal(ic_nic_version(x, "n1"), 0);
	ic_nic_index_free(x);
}

static enum ic_task_state fold(enum ic_action a, int64_t pull_gen, struct ic_nic_info info, char **reason)
{
	struct ic_task t = { 0 };
	t.action = (uint8_t)a;
	t.pull_gen = pull_gen;
	t.state = IC_TASK_RUNNING;
	enum ic_task_state s = ic_agent_fold(&t, &info, "ns/me");
	*reason = t.reason ? xstrdup(t.reason) : NULL;
	ic_task_clear(&t);
	return s;
}

#define INFO(...) ((struct ic_nic_info){ .exists = 1, .has_status = 1, __VA_ARGS__ })

static void node_statuses_fold_into_task_results(void **state)
{
	(void)state;
	char *r;
	/* pulls: present at the generation asked, or failed at it; an older result does not count */
	assert_int_equal(fold(IC_ACTION_PULL, 0, INFO(.in_spec = 1, .state = NIC_PRESENT), &r), IC_TASK_SUCCEEDED);
	assert_int_equal(fold(IC_ACTION_PULL, 3, INFO(.in_spec = 1, .state = NIC_PRESENT, .observed_gen = 2), &r),
			 IC_TASK_RUNNING);
	assert_int_equal(fold(IC_ACTION_PULL, 3, INFO(.in_spec = 1, .state = NIC_FAILED, .observed_gen = 2), &r),
			 IC_TASK_RUNNING);
	assert_int_equal(fold(IC_ACTION_PULL, 3, INFO(.in_spec = 1, .state = NIC_FAILED, .observed_gen = 3,
						      .reason = "ErrImagePull", .message = "not found"), &r),
			 IC_TASK_FAILED);
	assert_string_equal(r, "ErrImagePull");
	free(r);
	assert_int_equal(fold(IC_ACTION_PULL, 0, INFO(.in_spec = 1, .state = NIC_PULLING), &r), IC_TASK_RUNNING);
	/* deletes: another cache's Pull entry keeps it; the agent must have acted on the asking spec */
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .state = NIC_PRESENT, .owners = "ns/me\nns/you\n"), &r),
			 IC_TASK_KEPT);
	assert_string_equal(r, "ImageWantedByOtherImageCache");
	free(r);
	/* our own Pull entry, not yet turned into a Delete by the node sync: wait */
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .state = NIC_PRESENT, .owners = "ns/me\n"), &r),
			 IC_TASK_RUNNING);
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .spec_delete = 1, .delete_since = 5,
							.observed_generation = 4, .state = NIC_ABSENT), &r),
			 IC_TASK_RUNNING);
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .spec_delete = 1, .delete_since = 5,
							.observed_generation = 5, .state = NIC_ABSENT), &r),
			 IC_TASK_SUCCEEDED);
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .spec_delete = 1, .delete_since = 5,
							.observed_generation = 6, .state = NIC_PRESENT,
							.reason = "ImageInUse", .message = "used by a container"), &r),
			 IC_TASK_KEPT);
	assert_string_equal(r, "ImageInUse");
	free(r);
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.in_spec = 1, .spec_delete = 1, .delete_since = 5,
							.observed_generation = 6, .state = NIC_FAILED, .reason = "Error",
							.message = "boom"), &r),
			 IC_TASK_FAILED);
	free(r);
	/* the Delete entry not written yet */
	assert_int_equal(fold(IC_ACTION_DELETE, 0, INFO(.state = NIC_PRESENT), &r), IC_TASK_RUNNING);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* A purge of 100 images on 1,000 nodes is 100,000 requests held while it runs (one removal per pair): they
 * share their strings (image, owner, cache key), so they cost tens of bytes each, not hundreds (the
 * 1,000-node purge peaked 26 MiB above the create with a copy of each string per request: 228 bytes). */
static void requests_of_a_large_purge_share_their_strings(void **state)
{
	(void)state;
	/* glibc's counters, unless a sanitizer or valgrind has its own allocator (then they do not move and only
	 * the bound is not checked) */
	size_t base = heap_in_use();
	char *volatile probe = xmalloc(1 << 16);
	memset(probe, 1, 1 << 16);
	int counted = heap_in_use() >= base + (1 << 16);
	free(probe);
	struct ic_controller *ctl = xcalloc(1, sizeof *ctl);
	pthread_mutex_init(&ctl->mu, NULL);
	char node[64], image[128];
	base = heap_in_use();
	for (int n = 0; n < 1000; n++) {
		snprintf(node, sizeof node, "hollow-node-%04d", n);
		for (int i = 0; i < 100; i++) {
			snprintf(image, sizeof image, "registry.example.com:5000/scale/image-%03d:v1", i);
			ic_reqs_add(ctl, node, image, 0, "tenant-namespace/a-large-image-cache");
		}
	}
	size_t used = heap_in_use() - base;
	if (counted) { /* (the requests are added, dropped and freed either way: leak checks) */
		print_message("100,000 requests: %zu bytes (%zu per request)\n", used, used / 100000);
		assert_true(used < 4u << 20);
	}
	struct map touched = MAP_INIT;
	ic_reqs_drop_cache(ctl, "tenant-namespace/a-large-image-cache", &touched);
	assert_int_equal(touched.len, 1000);
	map_free(&touched, NULL);
	ic_reqs_free_all(ctl);
	pthread_mutex_destroy(&ctl->mu);
	free(ctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(desired_set_unions_caches_and_counts_owners),
		cmocka_unit_test(index_folds_objects_compactly),
		cmocka_unit_test(node_statuses_fold_into_task_results),
		cmocka_unit_test(requests_of_a_large_purge_share_their_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
