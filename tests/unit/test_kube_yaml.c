/* test_kube_yaml.c - YAML 1.1 typing as Kubernetes does it, anchors/aliases/merge keys, multi-document
 * streams, and error positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_yaml.h"
#include "util/util.h"

static json_t *load(const char *text)
{
	struct strbuf err = STRBUF_INIT;
	json_t *j = kube_yaml_load(text, strlen(text), &err);
	if (!j)
		fail_msg("unexpected YAML error: %s", err.buf);
	sb_release(&err);
	return j;
}

/* Loads text and compares with the expected JSON. */
static void expect(const char *yaml, const char *json)
{
	json_t *got = load(yaml);
	json_t *want = json_loads(json, JSON_DECODE_ANY, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		fail_msg("YAML %s\n  got  %s\n  want %s", yaml, g, json);
	}
	json_decref(got);
	json_decref(want);
}

static void plain_scalars_resolve_like_yaml_1_1(void **state)
{
	(void)state;
	expect("a: true\nb: False\nc: yes\nd: No\ne: on\nf: OFF\ng: y\nh: n",
	       "{\"a\":true,\"b\":false,\"c\":true,\"d\":false,\"e\":true,\"f\":false,\"g\":true,\"h\":false}");
	expect("a: null\nb: ~\nc:\nd: Null", "{\"a\":null,\"b\":null,\"c\":null,\"d\":null}");
	expect("a: 42\nb: -7\nc: 0x1f\nd: 0755\ne: 0b101\nf: 1_000\ng: +3",
	       "{\"a\":42,\"b\":-7,\"c\":31,\"d\":493,\"e\":5,\"f\":1000,\"g\":3}");
	expect("a: 1.5\nb: -0.25\nc: 1e3\nd: .5\ne: 08", "{\"a\":1.5,\"b\":-0.25,\"c\":1000.0,\"d\":0.5,\"e\":8.0}");
	expect("a: 99999999999999999999", "{\"a\":1e20}");
	expect("a: .inf\nb: .nan\nc: 2026-11-22T02:35:27Z\nd: 1.2.3\ne: 0x\nf: -x\ng: v1",
	       "{\"a\":\".inf\",\"b\":\".nan\",\"c\":\"2026-11-22T02:35:27Z\",\"d\":\"1.2.3\",\"e\":\"0x\",\"f\":\"-x\",\"g\":\"v1\"}");
}

static void quoted_block_and_tagged_scalars_are_strings(void **state)
{
	(void)state;
	expect("a: \"true\"\nb: '42'\nc: !!str 1.5\nd: |\n  line1\n  line2\ne: >\n  folded\n  text\nf: \"\"",
	       "{\"a\":\"true\",\"b\":\"42\",\"c\":\"1.5\",\"d\":\"line1\\nline2\\n\",\"e\":\"folded text\\n\",\"f\":\"\"}");
	expect("a: !!int \"7\"\nb: ! 12", "{\"a\":7,\"b\":\"12\"}"); /* an explicit tag types a quoted scalar */
}

static void keys_become_strings(void **state)
{
	(void)state;
	/* the YAML 1.1 trap, faithfully: a key "y" is the boolean true, printed "true" */
	expect("y: 1\nn: 2", "{\"true\":1,\"false\":2}");
	expect("1: a\ntrue: b\n0x10: c\n\"x\": d\nnull: e", "{\"1\":\"a\",\"true\":\"b\",\"16\":\"c\",\"x\":\"d\",\"null\":\"e\"}");
}

static void flow_style_and_json_are_yaml(void **state)
{
	(void)state;
	expect("{\"a\": [1, 2, {\"b\": \"c\"}], \"d\": null}", "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":null}");
	expect("- [a, b]\n- {x: 1}\n-\n  - nested", "[[\"a\",\"b\"],{\"x\":1},[\"nested\"]]");
}

static void anchors_aliases_and_merge_keys(void **state)
{
	(void)state;
	expect("base: &b {cpu: 1, mem: 2}\ncopy: *b\nlist: &l [1, 2]\nl2: *l\ns: &s hello\nt: *s",
	       "{\"base\":{\"cpu\":1,\"mem\":2},\"copy\":{\"cpu\":1,\"mem\":2},\"list\":[1,2],\"l2\":[1,2],"
	       "\"s\":\"hello\",\"t\":\"hello\"}");
	expect("base: &b {cpu: 1, mem: 2}\nx:\n  <<: *b\n  mem: 3\nz:\n  mem: 4\n  <<: *b",
	       "{\"base\":{\"cpu\":1,\"mem\":2},\"x\":{\"cpu\":1,\"mem\":3},\"z\":{\"cpu\":1,\"mem\":4}}");
	expect("a: &a {p: 1}\nb: &b {p: 2, q: 2}\nc:\n  <<: [*a, *b]", "{\"a\":{\"p\":1},\"b\":{\"p\":2,\"q\":2},\"c\":{\"p\":1,\"q\":2}}");
	/* an alias is a copy: changing one place does not change the other */
	json_t *j = load("a: &x {k: 1}\nb: *x");
	json_object_set_new(json_object_get(j, "b"), "k", json_integer(2));
	assert_int_equal(json_integer_value(kf_jget(j, "a", "k", NULL)), 1);
	json_decref(j);
}

static void multi_document_streams(void **state)
{
	(void)state;
	const char *y = "---\na: 1\n---\n---\nb: 2\n...\n---\n- x\n";
	struct strbuf err = STRBUF_INIT;
	json_t *all = kube_yaml_load_all(y, strlen(y), &err);
	assert_non_null(all);
	assert_int_equal(json_array_size(all), 3); /* the empty document is skipped */
	assert_int_equal(json_integer_value(kf_jget(json_array_get(all, 1), "b", NULL)), 2);
	json_decref(all);
	json_t *first = kube_yaml_load(y, strlen(y), &err);
	assert_int_equal(json_integer_value(kf_jget(first, "a", NULL)), 1);
	json_decref(first);
	json_t *empty = kube_yaml_load("", 0, &err);
	assert_true(json_is_null(empty));
	json_decref(empty);
	all = kube_yaml_load_all("# only a comment\n", 17, &err);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	sb_release(&err);
}

static void errors_give_line_and_column(void **state)
{
	(void)state;
	static const struct { const char *yaml, *want; } cases[] = {
		{ "a: 1\nb: [1, 2\nc: 3\n", "line 3 column 2: did not find expected ',' or ']' (while parsing a flow sequence at line 2 column 4)" },
		{ "a: 1\n  b: 2\n", "line 2 column 4" },
		{ "a: *nope\n", "line 1 column 4: unknown alias *nope" },
		{ "? [a, b]\n: c\n", "line 1 column 3: mapping keys must be scalars" },
		{ "a:\n\t- b\n", "line 2" },
		{ "x: \"unterminated\n", "line 2" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct strbuf err = STRBUF_INIT;
		json_t *j = kube_yaml_load(cases[i].yaml, strlen(cases[i].yaml), &err);
		if (j || !strstr(err.buf, cases[i].want))
			fail_msg("case %zu: want error containing \"%s\", got \"%s\"", i, cases[i].want, err.buf);
		sb_release(&err);
	}
	/* an error in a later document is reported by load_all, not by load */
	struct strbuf err = STRBUF_INIT;
	const char *y = "a: 1\n---\nb: [\n";
	json_t *j = kube_yaml_load(y, strlen(y), &err);
	assert_non_null(j);
	json_decref(j);
	assert_null(kube_yaml_load_all(y, strlen(y), &err));
	assert_non_null(strstr(err.buf, "line 4"));
	sb_release(&err);
}

static void billion_laughs_is_refused(void **state)
{
	(void)state;
	struct strbuf y = STRBUF_INIT, err = STRBUF_INIT;
	sb_adds(&y, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 10; i++) {
		sb_addf(&y, "a%d: &a%d [", i, i);
		for (int k = 0; k < 10; k++)
			sb_addf(&y, "%s*a%d", k ? ", " : "", i - 1);
		sb_adds(&y, "]\n");
	}
	int64_t t0 = kf_now_ms();
	assert_null(kube_yaml_load(y.buf, y.len, &err));
	int64_t ms = kf_now_ms() - t0;
	/* refused within the budget (10,000 nodes copied), not after expanding 10^9 nodes */
	assert_string_equal(err.buf, "line 4 column 45: document contains excessive aliasing (alias *a2: more than "
				     "10000 nodes or 1 MiB copied through aliases)");
	if (ms > 3000) /* a few ms natively; valgrind and sanitizers are much slower */
		fail_msg("refusing a billion laughs took %lld ms", (long long)ms);
	sb_release(&y);
	sb_release(&err);
}

/* Few nodes but long strings: 17 aliases of a 64 KiB scalar would copy 1.06 MiB. */
static void aliases_of_a_long_scalar_are_refused(void **state)
{
	(void)state;
	struct strbuf y = STRBUF_INIT, err = STRBUF_INIT;
	sb_adds(&y, "s: &s \"");
	for (int i = 0; i < (64 << 10); i++)
		sb_addc(&y, 'x');
	sb_adds(&y, "\"\nl: [");
	for (int k = 0; k < 17; k++)
		sb_addf(&y, "%s*s", k ? ", " : "");
	sb_adds(&y, "]\n");
	assert_null(kube_yaml_load(y.buf, y.len, &err));
	assert_non_null(strstr(err.buf, "excessive aliasing (alias *s: more than 10000 nodes or 1 MiB"));
	/* aliases of a short scalar are fine */
	sb_reset(&y);
	sb_adds(&y, "s: &s abc\nl: [*s, *s]\n");
	json_t *j = kube_yaml_load(y.buf, y.len, &err);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "l")), 2);
	json_decref(j);
	sb_release(&y);
	sb_release(&err);
}

static void deep_nesting_is_refused(void **state)
{
	(void)state;
	struct strbuf y = STRBUF_INIT, err = STRBUF_INIT;
	for (int i = 0; i < 2000; i++)
		sb_addc(&y, '[');
	assert_null(kube_yaml_load(y.buf, y.len, &err));
	assert_non_null(strstr(err.buf, "nesting too deep"));
	sb_release(&y);
	sb_release(&err);
}

static void kubernetes_manifest(void **state)
{
	(void)state;
	const char *y = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pull\n  labels: {app: kubefledged, "
			"\"kubefledged.io/x\": \"yes\"}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n"
			"      containers:\n      - name: c\n        image: busybox:1\n        command: [\"/bin/true\"]\n"
			"        env:\n        - {name: A, value: \"0123\"}\n";
	json_t *j = load(y);
	assert_string_equal(kf_jstr(j, "metadata", "labels", "kubefledged.io/x", NULL), "yes");
	assert_int_equal(json_integer_value(kf_jget(j, "spec", "backoffLimit", NULL)), 0);
	json_t *c = json_array_get(kf_jget(j, "spec", "template", "spec", "containers", NULL), 0);
	assert_string_equal(kf_jstr(c, "image", NULL), "busybox:1");
	assert_string_equal(kf_jstr(json_array_get(json_object_get(c, "env"), 0), "value", NULL), "0123");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_scalars_resolve_like_yaml_1_1),
		cmocka_unit_test(quoted_block_and_tagged_scalars_are_strings),
		cmocka_unit_test(keys_become_strings),
		cmocka_unit_test(flow_style_and_json_are_yaml),
		cmocka_unit_test(anchors_aliases_and_merge_keys),
		cmocka_unit_test(multi_document_streams),
		cmocka_unit_test(errors_give_line_and_column),
		cmocka_unit_test(billion_laughs_is_refused),
		cmocka_unit_test(aliases_of_a_long_scalar_are_refused),
		cmocka_unit_test(deep_nesting_is_refused),
		cmocka_unit_test(kubernetes_manifest),
	};
	return cmocka_run_group_tests_name("kube_yaml", tests, NULL, NULL);
}
