/* test_kube_informer.c - the informer's store: relist reconciliation and watch-event application on
 * ConfigMap lists and a watch stream recorded from kube-apiserver v1.20.2 (list1 + the watch events
 * between them must give list2), keys, the default transform, handler dispatch, and an informer that
 * cannot reach its server (never synced, stops promptly). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_informer.h"
#include "kube/kube_internal.h"
#include "util/util.h"

static json_t *load(const char *name)
{
	char p[512];
	json_error_t je;
	snprintf(p, sizeof p, "%s/kube/%s", TEST_DATA_DIR, name);
	json_t *j = json_load_file(p, 0, &je);
	if (!j)
		fail_msg("%s: %s", p, je.text);
	return j;
}

/* The items of a recorded list, each passed through the default transform (as the informer stores them). */
static json_t *items_of(const char *name)
{
	json_t *list = load(name), *items = json_array(), *it;
	size_t i;
	json_array_foreach(json_object_get(list, "items"), i, it)
		json_array_append_new(items, kube_drop_managed_fields(json_deep_copy(it)));
	json_decref(list);
	return items;
}

static void deltas_text(const struct kube_deltas *d, struct strbuf *out)
{
	static const char *names[] = { "add", "update", "delete" };
	char k[256];
	for (size_t i = 0; i < d->n; i++) {
		json_t *o = d->v[i].new_obj ? d->v[i].new_obj : d->v[i].old_obj;
		sb_addf(out, "%s %s %s", names[d->v[i].type], kube_object_key(o, k, sizeof k),
			kf_jstr(o, "metadata", "resourceVersion", NULL));
		if (d->v[i].type == KUBE_DELTA_UPDATE)
			sb_addf(out, " (was %s)", kf_jstr(d->v[i].old_obj, "metadata", "resourceVersion", NULL));
		sb_addc(out, '\n');
	}
}

/* "key rv" lines, sorted, for comparing stores */
static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *store_text(struct map *store)
{
	char **lines = xcalloc(store->len + 1, sizeof *lines);
	size_t n = 0;
	const char *k;
	void *v;
	for (size_t it = 0; map_next(store, &it, &k, &v);) {
		json_t *o = v;
		lines[n++] = xasprintf("%s %s %s", k, kf_jstr(o, "metadata", "resourceVersion", NULL),
				       kf_jstr(o, "data", "k", NULL));
	}
	qsort(lines, n, sizeof *lines, cmpstr);
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		sb_addf(&sb, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	return sb_detach(&sb);
}

static void first_list_adds_everything_in_order(void **state)
{
	(void)state;
	struct map store = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	struct strbuf t = STRBUF_INIT;
	json_t *items = items_of("configmaps-list1.json");
	kube_store_replace(&store, items, &d);
	deltas_text(&d, &t);
	assert_string_equal(t.buf, "add rec/cm-a 191\nadd rec/cm-b 192\nadd rec/cm-c 193\n");
	assert_int_equal(store.len, 3);
	/* stored objects are the list's objects (no copies), minus managedFields */
	json_t *a = map_get(&store, "rec/cm-a");
	assert_ptr_equal(a, json_array_get(items, 0));
	assert_null(kf_jget(a, "metadata", "managedFields", NULL));
	kube_deltas_release(&d);
	json_decref(items);
	kube_store_clear(&store);
	sb_release(&t);
}

static void relist_of_the_same_snapshot_changes_nothing(void **state)
{
	(void)state;
	struct map store = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	json_t *items = items_of("configmaps-list1.json");
	kube_store_replace(&store, items, &d);
	kube_deltas_release(&d);
	/* the same snapshot read in two pages (limit=2 and a continue token) */
	json_t *p1 = items_of("configmaps-list1-page1.json"), *p2 = items_of("configmaps-list1-page2.json");
	assert_int_equal(json_array_size(p1), 2);
	assert_int_equal(json_array_size(p2), 1);
	json_array_extend(p1, p2);
	kube_store_replace(&store, p1, &d);
	assert_int_equal(d.n, 0);
	/* unchanged objects keep their stored instance */
	assert_ptr_equal(map_get(&store, "rec/cm-a"), json_array_get(items, 0));
	kube_deltas_release(&d);
	json_decref(items);
	json_decref(p1);
	json_decref(p2);
	kube_store_clear(&store);
}

static void relist_after_a_gap_fires_the_differences(void **state)
{
	(void)state;
	struct map store = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	struct strbuf t = STRBUF_INIT;
	json_t *l1 = items_of("configmaps-list1.json"), *l2 = items_of("configmaps-list2.json");
	kube_store_replace(&store, l1, &d);
	kube_deltas_release(&d);
	/* between the two lists: cm-b patched, cm-c deleted, cm-d created, cm-a labelled */
	kube_store_replace(&store, l2, &d);
	deltas_text(&d, &t);
	assert_string_equal(t.buf, "delete rec/cm-c 193\n"
				   "update rec/cm-a 197 (was 191)\n"
				   "update rec/cm-b 194 (was 192)\n"
				   "add rec/cm-d 196\n");
	char *s = store_text(&store);
	assert_string_equal(s, "rec/cm-a 197 v-a\nrec/cm-b 194 v-b2\nrec/cm-d 196 v-d\n");
	free(s);
	kube_deltas_release(&d);
	/* and back: an empty list deletes everything */
	json_t *none = json_array();
	kube_store_replace(&store, none, &d);
	assert_int_equal(d.n, 3);
	assert_int_equal(store.len, 0);
	for (size_t i = 0; i < d.n; i++)
		assert_int_equal(d.v[i].type, KUBE_DELTA_DELETE);
	kube_deltas_release(&d);
	json_decref(none);
	json_decref(l1);
	json_decref(l2);
	kube_store_clear(&store);
	sb_release(&t);
}

static void list1_plus_watch_events_equals_list2(void **state)
{
	(void)state;
	struct map store = MAP_INIT, want = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	struct strbuf t = STRBUF_INIT;
	json_t *l1 = items_of("configmaps-list1.json"), *l2 = items_of("configmaps-list2.json");
	kube_store_replace(&store, l1, &d);
	kube_deltas_release(&d);
	char p[512];
	snprintf(p, sizeof p, "%s/kube/configmaps-watch.ndjson", TEST_DATA_DIR);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char line[8192];
	while (fgets(line, sizeof line, f)) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *type = kf_jstr(ev, "type", NULL);
		if (strcmp(type, "BOOKMARK")) {
			json_t *o = kube_drop_managed_fields(json_incref(json_object_get(ev, "object")));
			kube_store_apply(&store, type, o, &d);
			json_decref(o);
		}
		json_decref(ev);
	}
	fclose(f);
	deltas_text(&d, &t);
	assert_string_equal(t.buf, "update rec/cm-b 194 (was 192)\n"
				   "delete rec/cm-c 195\n" /* the DELETED event's final state */
				   "add rec/cm-d 196\n"
				   "update rec/cm-a 197 (was 191)\n");
	kube_store_replace(&want, l2, &d);
	char *a = store_text(&store), *b = store_text(&want);
	assert_string_equal(a, b);
	free(a);
	free(b);
	/* a relist right after the watch finds nothing to do */
	kube_deltas_release(&d);
	kube_store_replace(&store, l2, &d);
	assert_int_equal(d.n, 0);
	kube_deltas_release(&d);
	json_decref(l1);
	json_decref(l2);
	kube_store_clear(&store);
	kube_store_clear(&want);
	sb_release(&t);
}

static void keys_and_apply_edge_cases(void **state)
{
	(void)state;
	char k[64];
	json_t *nsd = json_pack("{s:{s:s, s:s}}", "metadata", "name", "n1", "namespace", "ns");
	json_t *cl = json_pack("{s:{s:s}}", "metadata", "name", "node-1");
	json_t *anon = json_pack("{s:{}}", "metadata");
	assert_string_equal(kube_object_key(nsd, k, sizeof k), "ns/n1");
	assert_string_equal(kube_object_key(cl, k, sizeof k), "node-1");
	assert_string_equal(kube_object_key(anon, k, sizeof k), "");
	struct map store = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	kube_store_apply(&store, "MODIFIED", cl, &d); /* unknown key: an add */
	kube_store_apply(&store, "ADDED", cl, &d);    /* known key: an update */
	kube_store_apply(&store, "DELETED", nsd, &d); /* unknown key: still a delete */
	kube_store_apply(&store, "ADDED", anon, &d);  /* no name: ignored */
	kube_store_apply(&store, "BOOKMARK", cl, &d); /* not a store event */
	assert_int_equal(d.n, 3);
	assert_int_equal(d.v[0].type, KUBE_DELTA_ADD);
	assert_int_equal(d.v[1].type, KUBE_DELTA_UPDATE);
	assert_int_equal(d.v[2].type, KUBE_DELTA_DELETE);
	assert_int_equal(store.len, 1);
	kube_deltas_release(&d);
	kube_store_clear(&store);
	json_decref(nsd);
	json_decref(cl);
	json_decref(anon);
}

struct counts {
	int add, update, del;
};
static void on_add(void *ud, json_t *o) { (void)o; ((struct counts *)ud)->add++; }
static void on_update(void *ud, json_t *a, json_t *b) { assert_non_null(a); assert_non_null(b); ((struct counts *)ud)->update++; }
static void on_delete(void *ud, json_t *o) { (void)o; ((struct counts *)ud)->del++; }

static void handlers_receive_the_deltas(void **state)
{
	(void)state;
	struct counts n = { 0, 0, 0 };
	struct kube_informer_handlers h = { on_add, on_update, on_delete, &n };
	struct kube_informer_handlers none = { NULL, NULL, NULL, NULL };
	struct map store = MAP_INIT;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	json_t *l1 = items_of("configmaps-list1.json"), *l2 = items_of("configmaps-list2.json");
	kube_store_replace(&store, l1, &d);
	kube_deltas_fire(&d, &h);
	kube_deltas_fire(&d, &none); /* missing handlers are skipped */
	kube_deltas_release(&d);
	kube_store_replace(&store, l2, &d);
	kube_deltas_fire(&d, &h);
	kube_deltas_release(&d);
	assert_int_equal(n.add, 4);
	assert_int_equal(n.update, 2);
	assert_int_equal(n.del, 1);
	json_decref(l1);
	json_decref(l2);
	kube_store_clear(&store);
}

static void unreachable_server_never_syncs_and_stops_promptly(void **state)
{
	(void)state;
	struct kube_config cfg = { .server = "http://127.0.0.1:1", .namespace = "default" };
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, NULL, &err);
	struct kube_informer_opts o = { .res = &KUBE_PODS, .ns = "x", .label_selector = "app=a" };
	struct kube_informer *inf = kube_informer_new(c, &o, NULL);
	assert_int_equal(kube_informer_start(inf), 0);
	assert_int_equal(kube_informer_wait_synced(inf, 300), -1);
	assert_false(kube_informer_has_synced(inf));
	assert_int_equal(kube_informer_len(inf), 0);
	assert_null(kube_informer_get(inf, "x/y"));
	json_t *all = kube_informer_list(inf);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	char rv[32];
	kube_informer_resource_version(inf, rv, sizeof rv);
	assert_string_equal(rv, "");
	int64_t t0 = kf_now_ms();
	kube_informer_stop(inf); /* it is sleeping in its backoff: the stop must cut that short */
	assert_true(kf_now_ms() - t0 < 1000);
	kube_informer_stop(inf);
	assert_int_equal(kube_informer_wait_synced(inf, 1000), -1);
	kube_informer_free(inf);
	/* never started */
	inf = kube_informer_new(c, &o, NULL);
	kube_informer_free(inf);
	kube_client_free(c);
	sb_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_list_adds_everything_in_order),
		cmocka_unit_test(relist_of_the_same_snapshot_changes_nothing),
		cmocka_unit_test(relist_after_a_gap_fires_the_differences),
		cmocka_unit_test(list1_plus_watch_events_equals_list2),
		cmocka_unit_test(keys_and_apply_edge_cases),
		cmocka_unit_test(handlers_receive_the_deltas),
		cmocka_unit_test(unreachable_server_never_syncs_and_stops_promptly),
	};
	return cmocka_run_group_tests_name("kube_informer", tests, NULL, NULL);
}
