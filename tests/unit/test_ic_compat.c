/* test_ic_compat.c - the controller on upstream's CRD (ic_compat.h): the spec digest that stands for the
 * generation, the status fields that CRD prunes carried in an annotation and read back, and the switch back
 * to our CRD (observedGeneration translated, the annotation a leftover once the status is whole). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_compat.h"
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

static void spec_digest_is_the_generation_in_compat_mode(void **state)
{
	(void)state;
	json_t *a = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {\"x\": \"1\", \"y\": \"2\"}}]}", 3);
	json_t *b = cache("{\"cacheSpec\": [{\"nodeSelector\": {\"y\": \"2\", \"x\": \"1\"}, \"images\": [\"a:1\"]}]}", 9);
	json_t *c = cache("{\"cacheSpec\": [{\"images\": [\"a:2\"], \"nodeSelector\": {\"x\": \"1\", \"y\": \"2\"}}]}", 3);
	json_t *d = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}], \"imagePullSecrets\": [{\"name\": \"s\"}]}", 3);
	json_t *e = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 3);
	/* same spec, any key order, any metadata.generation: same digest; any spec change: another */
	assert_true(ic_spec_generation(a) == ic_spec_generation(b));
	assert_true(ic_spec_generation(a) != ic_spec_generation(c));
	assert_true(ic_spec_generation(d) != ic_spec_generation(e));
	assert_true(ic_spec_generation(a) > 0 && ic_spec_generation(a) <= (1LL << 48));
	assert_true(ic_generation(1, a) == ic_spec_generation(a));
	assert_int_equal(ic_generation(0, a), 3);
	assert_int_equal(ic_generation(0, b), 9);
	json_decref(a), json_decref(b), json_decref(c), json_decref(d), json_decref(e);
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

/* What upstream's CRD keeps of a status: its own six fields. */
static void prune(json_t *status)
{
	const char *keep[] = { "status", "reason", "message", "failures", "startTime", "completionTime" };
	const char *k;
	void *tmp;
	json_t *v;
	json_object_foreach_safe(status, tmp, k, v) {
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
			ok |= !strcmp(k, keep[i]);
		if (!ok)
			json_object_del(status, k);
	}
}

/* What a write leaves on upstream's CRD: st's extras in the annotation (ic_compat_stash), the rest of st
 * pruned to upstream's fields, as obj's status (st is consumed). */
static void store_on_upstream_crd(json_t *obj, json_t *st)
{
	char *stash = ic_compat_stash(st, "ns/c1");
	assert_null(json_object_get(st, "conditions"));
	assert_null(json_object_get(st, "appliedSpec"));
	assert_null(json_object_get(st, "progress"));
	prune(st);
	json_object_set_new(obj, "status", st);
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
			    json_pack("{s:s}", IC_ANNOTATION_STATUS, stash));
	free(stash);
}

static void pruned_fields_round_trip_through_the_annotation(void **state)
{
	(void)state;
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 7);
	long long g = ic_generation(1, obj);
	/* written and stored: the extras in the annotation, and the generation went up (no status subresource) */
	store_on_upstream_crd(obj, decorated_status(g));
	assert_non_null(strstr(kf_jstr(obj, "metadata", "annotations", IC_ANNOTATION_STATUS, NULL),
			       "\"appliedSpec\":{\"cacheSpec\":[{\"images\":[\"a:1\"]}]}"));
	json_object_set_new(json_object_get(obj, "metadata"), "generation", json_integer(8));
	/* read back: the sync sees its conditions again, and they speak for the current spec */
	json_t *keep = json_incref(obj);
	json_t *view = ic_compat_view(1, obj);
	assert_ptr_not_equal(view, keep);
	json_t *vs = json_object_get(view, "status");
	assert_int_equal(ic_status_observed_generation(vs), g);
	assert_true(ic_status_observed_generation(vs) == ic_generation(1, view));
	assert_non_null(json_object_get(vs, "appliedSpec"));
	assert_int_equal(json_integer_value(kf_jget(vs, "progress", "done", NULL)), 2);
	assert_null(json_object_get(json_object_get(keep, "status"), "conditions")); /* the informer's copy untouched */
	json_decref(view);
	/* an edit of the spec: another generation, so the sync runs an update */
	json_t *edited = json_deep_copy(keep);
	json_array_append_new(kf_jget(edited, "spec", "cacheSpec", NULL), json_pack("{s:[s]}", "images", "b:1"));
	view = ic_compat_view(1, edited);
	assert_true(ic_status_observed_generation(json_object_get(view, "status")) != ic_generation(1, view));
	json_decref(view);
	json_decref(keep);
}

static void back_on_our_crd_the_generation_is_translated(void **state)
{
	(void)state;
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 12);
	store_on_upstream_crd(obj, decorated_status(ic_spec_generation(obj)));
	json_t *edited = json_deep_copy(obj);
	json_array_append_new(kf_jget(edited, "spec", "cacheSpec", NULL), json_pack("{s:[s]}", "images", "b:1"));
	/* applied spec = current spec: observedGeneration = metadata.generation, nothing to do */
	json_t *view = ic_compat_view(0, json_incref(obj));
	assert_int_equal(ic_status_observed_generation(json_object_get(view, "status")), 12);
	json_decref(view);
	/* edited while the old CRD was in place: not observed yet, an update is due (with the applied spec) */
	view = ic_compat_view(0, edited);
	assert_int_equal(ic_status_observed_generation(json_object_get(view, "status")), 11);
	assert_non_null(json_object_get(json_object_get(view, "status"), "appliedSpec"));
	json_decref(view);
	/* once the status subresource holds conditions, the annotation is a leftover and ignored */
	json_t *whole = json_deep_copy(obj);
	json_object_set_new(whole, "status", decorated_status(12));
	json_t *same = ic_compat_view(0, json_incref(whole));
	assert_ptr_equal(same, whole);
	assert_true(ic_compat_has_stash(same));
	json_decref(same);
	json_decref(whole);
	json_decref(obj);
}

static void without_or_with_a_bad_annotation_the_object_is_itself(void **state)
{
	(void)state;
	json_t *obj = cache("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", 2);
	json_object_set_new(obj, "status", json_pack("{s:s}", "status", "Succeeded"));
	json_t *same = ic_compat_view(1, json_incref(obj));
	assert_ptr_equal(same, obj);
	json_decref(same);
	assert_false(ic_compat_has_stash(obj));
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
			    json_pack("{s:s}", IC_ANNOTATION_STATUS, "[1, 2"));
	same = ic_compat_view(1, json_incref(obj));
	assert_ptr_equal(same, obj);
	json_decref(same);
	/* no status at all (a new cache): nothing to merge into */
	json_object_del(obj, "status");
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
			    json_pack("{s:s}", IC_ANNOTATION_STATUS, "{\"progress\": {}}"));
	same = ic_compat_view(1, json_incref(obj));
	assert_ptr_equal(same, obj);
	json_decref(same);
	json_decref(obj);
}

static void a_huge_applied_spec_stays_out_of_the_annotation(void **state)
{
	(void)state;
	json_t *st = decorated_status(5);
	json_t *imgs = json_array();
	for (int i = 0; i < 6000; i++) {
		char b[64];
		snprintf(b, sizeof b, "registry.example.com/team/image-%05d:1.0.0", i);
		json_array_append_new(imgs, json_string(b));
	}
	json_object_set_new(st, "appliedSpec", json_pack("{s:[{s:o}]}", "cacheSpec", "images", imgs));
	char *stash = ic_compat_stash(st, "ns/big");
	assert_true(strlen(stash) < IC_STASH_MAX_BYTES);
	assert_null(strstr(stash, "appliedSpec"));
	assert_non_null(strstr(stash, "conditions"));
	free(stash);
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spec_digest_is_the_generation_in_compat_mode),
		cmocka_unit_test(pruned_fields_round_trip_through_the_annotation),
		cmocka_unit_test(back_on_our_crd_the_generation_is_translated),
		cmocka_unit_test(without_or_with_a_bad_annotation_the_object_is_itself),
		cmocka_unit_test(a_huge_applied_spec_stays_out_of_the_annotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
