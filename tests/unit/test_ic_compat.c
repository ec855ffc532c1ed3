/* test_ic_compat.c - the controller on upstream's CRD (ic_write.c): the status fields that CRD prunes carried
 * in the kubefledged.io/status annotation and read back, edits found by the hash of the spec (the generation
 * moves with every status write there), and the switch back to our CRD (the status itself wins again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_controller_int.h"
#include "imagecache/ic_status.h"
#include "util/util.h"

static json_t *cache(const char *spec_json, long long generation)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:I}}", "apiVersion", "kubefledged.io/v1alpha2", "kind",
			      "ImageCache", "metadata", "name", "c1", "namespace", "ns", "generation",
			      (json_int_t)generation);
	json_object_set_new(o, "spec", json_loads(spec_json, 0, NULL));
	return o;
}

static json_t *decorated_status(long long gen)
{
	json_t *st = json_pack("{s:s, s:s, s:s, s:s}", "status", "Succeeded", "reason", "ImageCacheCreate", "message",
			       "All requested images pulled succesfully to respective nodes", "startTime",
			       "2026-12-01T00:00:00Z");
	json_t *applied = json_loads("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 0, NULL);
	ic_status_decorate(st, NULL, gen, applied, 1800000000);
	json_object_set_new(st, "progress", json_pack("{s:i, s:i, s:i}", "total", 2, "done", 2, "failed", 0));
	json_decref(applied);
	return st;
}

/* The object as upstream's CRD stores it after our write: its own six status fields, ours in the annotation. */
static void store_on_upstream_crd(json_t *obj, json_t *st)
{
	char *hash = ic_spec_hash(json_object_get(obj, "spec"));
	char *ext = ic_status_ext(st, hash);
	json_t *kept = json_object();
	const char *keep[] = { "status", "reason", "message", "failures", "startTime", "completionTime" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if (json_object_get(st, keep[i]))
			json_object_set(kept, keep[i], json_object_get(st, keep[i]));
	json_object_set_new(obj, "status", kept);
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
			    json_pack("{s:s}", IC_ANNOTATION_STATUS, ext));
	free(ext);
	free(hash);
}

static void pruned_fields_round_trip_through_the_annotation(void **state)
{
	(void)state;
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 1);
	json_t *st = decorated_status(1);
	store_on_upstream_crd(obj, st);
	/* every status write bumps the generation on upstream's CRD: it proves nothing */
	json_object_set_new(json_object_get(obj, "metadata"), "generation", json_integer(5));
	json_t *view = ic_status_view(obj);
	assert_true(json_equal(json_object_get(view, "appliedSpec"), json_object_get(st, "appliedSpec")));
	assert_true(json_equal(json_object_get(view, "progress"), json_object_get(st, "progress")));
	assert_int_equal(ic_status_observed_generation(view), 1);
	assert_int_equal(ic_edit_pending(obj, view), 0); /* the spec hash says: no edit */
	json_decref(view);
	/* an edit: another spec, whatever the generation */
	json_object_set_new(obj, "spec", json_loads("{\"cacheSpec\": [{\"images\": [\"a:2\"]}]}", 0, NULL));
	view = ic_status_view(obj);
	assert_int_equal(ic_edit_pending(obj, view), 1);
	json_decref(view);
	json_decref(st);
	json_decref(obj);
}

static void back_on_our_crd_the_status_wins(void **state)
{
	(void)state;
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 7);
	json_t *st = decorated_status(1);
	store_on_upstream_crd(obj, st);
	/* our CRD installed, our next write kept its fields: the annotation is a leftover */
	json_t *whole = decorated_status(7);
	json_object_set(obj, "status", whole);
	json_t *view = ic_status_view(obj);
	assert_int_equal(ic_status_observed_generation(view), 7);
	assert_int_equal(ic_edit_pending(obj, view), 0);
	json_object_set_new(json_object_get(obj, "metadata"), "generation", json_integer(8));
	assert_int_equal(ic_edit_pending(obj, view), 1);
	json_decref(view);
	json_decref(whole);
	json_decref(st);
	json_decref(obj);
}

static void without_or_with_a_bad_annotation_nothing_is_known(void **state)
{
	(void)state;
	/* a status written by upstream kube-fledged: no conditions, no annotation -> cannot tell */
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 3);
	json_object_set_new(obj, "status", json_pack("{s:s, s:s}", "status", "Succeeded", "reason", "ImageCacheCreate"));
	json_t *view = ic_status_view(obj);
	assert_int_equal(ic_edit_pending(obj, view), -1);
	json_decref(view);
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
			    json_pack("{s:s}", IC_ANNOTATION_STATUS, "not json ["));
	view = ic_status_view(obj);
	assert_null(json_object_get(view, "appliedSpec"));
	assert_int_equal(ic_edit_pending(obj, view), -1);
	json_decref(view);
	json_decref(obj);
}

static void a_huge_applied_spec_stays_out_of_the_annotation(void **state)
{
	(void)state;
	json_t *st = decorated_status(1);
	json_t *imgs = json_array();
	for (int i = 0; i < 5000; i++)
		json_array_append_new(imgs, json_sprintf("registry.example.com/team-%04d/app-with-a-long-name:1.2.3", i));
	json_object_set_new(st, "appliedSpec", json_pack("{s:[{s:o}]}", "cacheSpec", "images", imgs));
	char *ext = ic_status_ext(st, "abc");
	assert_true(strlen(ext) <= IC_STATUS_EXT_MAX);
	json_t *back = json_loads(ext, 0, NULL);
	assert_null(json_object_get(back, "appliedSpec"));
	assert_non_null(json_object_get(back, "conditions"));
	assert_string_equal(kf_jstr(back, "specHash", NULL), "abc");
	json_decref(back);
	free(ext);
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pruned_fields_round_trip_through_the_annotation),
		cmocka_unit_test(back_on_our_crd_the_status_wins),
		cmocka_unit_test(without_or_with_a_bad_annotation_nothing_is_known),
		cmocka_unit_test(a_huge_applied_spec_stays_out_of_the_annotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
