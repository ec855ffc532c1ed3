/* test_ic_validate.c - every ImageCache validation rule, upstream's and ours, on CREATE and UPDATE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_types.h"
#include "imagecache/ic_validate.h"
#include "util/strbuf.h"
#include "util/util.h"
#include "test_slow.h"

/* Parses `{"spec": <spec_json>}`; fails the test on a shape error. */
static void parse(const char *spec_json, struct ic_spec *out)
{
	char *doc = xasprintf("{\"spec\": %s}", spec_json);
	json_error_t jerr;
	json_t *obj = json_loads(doc, 0, &jerr);
	if (!obj)
		fail_msg("bad test JSON: %s: %s", jerr.text, doc);
	struct strbuf err = STRBUF_INIT;
	if (ic_spec_parse(obj, out, &err) < 0)
		fail_msg("ic_spec_parse: %s", err.buf);
	sb_release(&err);
	json_decref(obj);
	free(doc);
}

/* Validates new_json (against old_json when not NULL) and checks the verdict: want == NULL means allowed,
 * otherwise the exact denial message. */
static void check(const char *new_json, const char *old_json, const char *want)
{
	struct ic_spec spec, old;
	parse(new_json, &spec);
	if (old_json)
		parse(old_json, &old);
	struct strbuf msg = STRBUF_INIT;
	int rc = ic_validate(&spec, old_json ? &old : NULL, &msg);
	if (!want) {
		if (rc != 0)
			fail_msg("expected allowed, got denied: %s\n  new: %s", msg.buf, new_json);
	} else {
		if (rc == 0)
			fail_msg("expected denied with \"%s\", got allowed\n  new: %s", want, new_json);
		if (strcmp(msg.buf, want))
			fail_msg("message\n  got:  %s\n  want: %s", msg.buf, want);
	}
	sb_release(&msg);
	ic_spec_free(&spec);
	if (old_json)
		ic_spec_free(&old);
}

#define CREATE(spec, want) check(spec, NULL, want)
#define UPDATE(spec, old, want) check(spec, old, want)

static const char *SEED = "{\"cacheSpec\": [{\"images\": [\"127.0.0.1:5001/kftest/app1:1\", \"busybox:1.36\"]},"
			  " {\"images\": [\"nginx\"], \"nodeSelector\": {\"tier\": \"backend\"}}],"
			  " \"imagePullSecrets\": [{\"name\": \"myregistrykey\"}]}";

static void valid_specs_are_allowed(void **state)
{
	(void)state;
	CREATE(SEED, NULL);
	CREATE("{\"cacheSpec\": [{\"images\": [\"ghcr.io/jitesoft/nginx:1.23.1\"]}, {\"images\": "
	       "[\"us.gcr.io/k8s-artifacts-prod/cassandra:v7\", \"us.gcr.io/k8s-artifacts-prod/etcd:3.5.4-0\"], "
	       "\"nodeSelector\": {\"tier\": \"backend\", \"kubernetes.io/hostname\": \"rk8s-node2\", \"empty\": \"\"}}],"
	       " \"imagePullSecrets\": [{\"name\": \"myregistrykey\"}, {\"name\": \"a.b-c\"}]}",
	       NULL);
	CREATE("{\"cacheSpec\": [{\"images\": [\"busybox@sha256:"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]}]}",
	       NULL);
	/* the same image in two lists is fine (upstream compares within a list only) */
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"a:1\"], \"nodeSelector\": {}}]}", NULL);
}

static void empty_cache_spec_is_allowed(void **state)
{
	(void)state;
	CREATE("{\"cacheSpec\": []}", NULL);
	UPDATE("{\"cacheSpec\": []}", "{\"cacheSpec\": []}", NULL);
}

static void upstream_empty_image_list(void **state)
{
	(void)state;
	CREATE("{\"cacheSpec\": [{\"images\": []}]}", "No images specified within image list");
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": []}]}", "No images specified within image list");
	/* the recorded `kubectl patch /spec/cacheSpec/0/images = []` */
	UPDATE("{\"cacheSpec\": [{\"images\": []}]}", "{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}",
	       "No images specified within image list");
}

static void upstream_duplicate_image_in_a_list(void **state)
{
	(void)state;
	CREATE("{\"cacheSpec\": [{\"images\": [\"127.0.0.1:5001/kftest/app1:1\", \"127.0.0.1:5001/kftest/app1:1\"]}]}",
	       "Duplicate image names within image list: 127.0.0.1:5001/kftest/app1:1");
	/* the first repeat in list order is named, as upstream's nested loop finds it */
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"b:1\", \"b:1\", \"a:1\"]}]}",
	       "Duplicate image names within image list: b:1");
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"b:1\", \"a:1\", \"b:1\"]}]}",
	       "Duplicate image names within image list: a:1");
	/* lists are checked in order: list 0's duplicate before list 1's emptiness */
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"a:1\"]}, {\"images\": []}]}",
	       "Duplicate image names within image list: a:1");
	CREATE("{\"cacheSpec\": [{\"images\": []}, {\"images\": [\"a:1\", \"a:1\"]}]}",
	       "No images specified within image list");
	/* upstream's rules come before ours: a duplicated invalid image gets upstream's message */
	CREATE("{\"cacheSpec\": [{\"images\": [\"BAD IMAGE\", \"BAD IMAGE\"]}]}",
	       "Duplicate image names within image list: BAD IMAGE");
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"c:1\", \"c:1\"]}]}", "{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}",
	       "Duplicate image names within image list: c:1");
}

static void upstream_list_count_must_not_change(void **state)
{
	(void)state;
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"]}]}", "Mismatch in no. of image lists");
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"]}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", "Mismatch in no. of image lists");
	/* rule order: an empty list is reported before the count */
	UPDATE("{\"cacheSpec\": [{\"images\": []}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"]}]}",
	       "No images specified within image list");
	/* and the count before the selectors */
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {\"x\": \"y\"}}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"]}]}", "Mismatch in no. of image lists");
}

static void upstream_selector_must_not_change(void **state)
{
	(void)state;
	const char *old = "{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"], \"nodeSelector\": "
			  "{\"tier\": \"backend\"}}]}";
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"], \"nodeSelector\": {\"tier\": \"frontend\"}}]}",
	       old, "Mismatch in node selector");
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"]}]}", old, "Mismatch in node selector");
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\"], \"nodeSelector\": "
	       "{\"tier\": \"backend\", \"zone\": \"a\"}}]}",
	       old, "Mismatch in node selector");
	/* absent and {} differ, as in upstream's reflect.DeepEqual */
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {}}, {\"images\": [\"b:1\"], "
	       "\"nodeSelector\": {\"tier\": \"backend\"}}]}",
	       old, "Mismatch in node selector");
	/* same labels in another key order are equal */
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {\"b\": \"2\", \"a\": \"1\"}}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {\"a\": \"1\", \"b\": \"2\"}}]}", NULL);
}

static void update_adding_and_removing_images_is_allowed(void **state)
{
	(void)state;
	const char *old = "{\"cacheSpec\": [{\"images\": [\"a:1\", \"b:1\"]}, {\"images\": [\"c:1\"], "
			  "\"nodeSelector\": {\"tier\": \"backend\"}}]}";
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"c:1\", \"d:1\"], "
	       "\"nodeSelector\": {\"tier\": \"backend\"}}]}",
	       old, NULL);
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"b:1\"]}, {\"images\": [\"c:1\"], "
	       "\"nodeSelector\": {\"tier\": \"backend\"}}], \"imagePullSecrets\": [{\"name\": \"new-secret\"}]}",
	       old, NULL);
}

static void update_with_unchanged_spec_is_allowed_at_once(void **state)
{
	(void)state;
	/* even a spec every rule would deny: status/annotation writes must never be blocked */
	const char *bad = "{\"cacheSpec\": [{\"images\": []}, {\"images\": [\"x;y\", \"x;y\"]}]}";
	UPDATE(bad, bad, NULL);
	CREATE(bad, "No images specified within image list");
}

static void image_references_are_parsed(void **state)
{
	(void)state;
#define IMG(ref) "{\"cacheSpec\": [{\"images\": [\"ok:1\", " ref "]}]}"
	CREATE(IMG("\"\""), "spec.cacheSpec[0].images[1]: invalid image reference \"\": image reference is empty");
	CREATE(IMG("\"nginx;reboot\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"nginx;reboot\": invalid character ';' in "
	       "repository name");
	CREATE(IMG("\"nginx:1 \""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"nginx:1 \": image reference contains a space "
	       "at position 7");
	CREATE(IMG("\"nginx\\n:1\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"nginx\\n:1\": image reference contains a "
	       "newline at position 5");
	CREATE(IMG("\"$(reboot)\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"$(reboot)\": invalid character '$' in "
	       "repository name");
	CREATE(IMG("\"a|b\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"a|b\": invalid character '|' in repository "
	       "name");
	CREATE(IMG("\"library/Nginx:1\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"library/Nginx:1\": repository name must be "
	       "lowercase");
	CREATE(IMG("\"busybox@sha256:abc\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"busybox@sha256:abc\": invalid digest: sha256 "
	       "needs 64 hex characters, got 3");
	CREATE(IMG("\"nginx:v1!\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"nginx:v1!\": invalid tag \"v1!\": '!' is not "
	       "allowed");
	CREATE(IMG("\"nginx:\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"nginx:\": empty tag after ':'");
	CREATE(IMG("\"a\\\"b\""),
	       "spec.cacheSpec[0].images[1]: invalid image reference \"a\\\"b\": invalid character '\"' in "
	       "repository name");
	/* the second list is named by its index */
	CREATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}, {\"images\": [\"b:1\", \"-x\"]}]}",
	       "spec.cacheSpec[1].images[1]: invalid image reference \"-x\": invalid character '-' in repository "
	       "name");
	/* a long value is cut in the message */
	char *longref = xmalloc(400);
	memset(longref, 'a', 300);
	strcpy(longref + 300, "!");
	char *spec = xasprintf("{\"cacheSpec\": [{\"images\": [\"%s\"]}]}", longref);
	struct ic_spec s;
	parse(spec, &s);
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(ic_validate(&s, NULL, &msg), -1);
	assert_non_null(strstr(msg.buf, "(301 bytes, cut)"));
	assert_true(msg.len < 400);
	sb_release(&msg);
	ic_spec_free(&s);
	free(spec);
	free(longref);
#undef IMG
}

static void node_selector_keys_and_values(void **state)
{
	(void)state;
#define SEL(sel) "{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {" sel "}}]}"
	CREATE(SEL("\"kubernetes.io/hostname\": \"node-1\", \"tier\": \"backend\", \"A_b.c-9\": \"X_y.z-0\""), NULL);
	CREATE(SEL("\"tier\": \"\""), NULL);
	CREATE(SEL("\"\": \"x\""), "spec.cacheSpec[0].nodeSelector: invalid label key \"\": name part must not be empty");
	CREATE(SEL("\"tier/\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"tier/\": name part must not be empty");
	CREATE(SEL("\"/tier\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"/tier\": prefix part must not be empty");
	CREATE(SEL("\"a/b/c\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"a/b/c\": must contain at most one '/'");
	CREATE(SEL("\"Example.com/tier\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"Example.com/tier\": prefix part must be a "
	       "lowercase DNS subdomain (RFC 1123): lower case alphanumeric characters, '-' or '.', starting and ending "
	       "with an alphanumeric character");
	CREATE(SEL("\"-tier\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"-tier\": name part must consist of alphanumeric "
	       "characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	CREATE(SEL("\"ti er\": \"x\""),
	       "spec.cacheSpec[0].nodeSelector: invalid label key \"ti er\": name part must consist of alphanumeric "
	       "characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	CREATE(SEL("\"tier\": \"back end\""),
	       "spec.cacheSpec[0].nodeSelector[\"tier\"]: invalid label value \"back end\": must be empty or consist "
	       "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	CREATE(SEL("\"tier\": \"x;\""),
	       "spec.cacheSpec[0].nodeSelector[\"tier\"]: invalid label value \"x;\": must be empty or consist of "
	       "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	/* lengths: name 63 ok / 64 not; value 63 ok / 64 not; prefix 253 ok / 254 not */
	char n63[64], n64[65], prefix253[254], prefix254[255];
	memset(n63, 'n', 63), n63[63] = 0;
	memset(n64, 'n', 64), n64[64] = 0;
	for (int i = 0; i < 253; i++)
		prefix253[i] = (i % 50 == 49) ? '.' : 'p';
	prefix253[253] = 0;
	memcpy(prefix254, prefix253, 253), prefix254[253] = 'p', prefix254[254] = 0;
	char *s = xasprintf(SEL("\"%s/%s\": \"%s\""), prefix253, n63, n63);
	CREATE(s, NULL);
	free(s);
	s = xasprintf(SEL("\"%s\": \"x\""), n64);
	char *want = xasprintf("spec.cacheSpec[0].nodeSelector: invalid label key \"%s\": name part must be no more "
			       "than 63 characters", n64);
	CREATE(s, want);
	free(s), free(want);
	s = xasprintf(SEL("\"x\": \"%s\""), n64);
	want = xasprintf("spec.cacheSpec[0].nodeSelector[\"x\"]: invalid label value \"%s\": must be no more than 63 "
			 "characters", n64);
	CREATE(s, want);
	free(s), free(want);
	s = xasprintf(SEL("\"%s/x\": \"y\""), prefix254);
	struct ic_spec sp;
	parse(s, &sp);
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(ic_validate(&sp, NULL, &msg), -1);
	assert_non_null(strstr(msg.buf, "prefix part must be no more than 253 characters"));
	sb_release(&msg);
	ic_spec_free(&sp);
	free(s);
	/* on UPDATE the selector equals the old one (upstream's rule), so an old odd key stays editable */
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\", \"b:1\"], \"nodeSelector\": {\"bad key\": \"v\"}}]}",
	       "{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {\"bad key\": \"v\"}}]}", NULL);
#undef SEL
}

static void image_pull_secret_names(void **state)
{
	(void)state;
#define PS(ps) "{\"cacheSpec\": [{\"images\": [\"a:1\"]}], \"imagePullSecrets\": [" ps "]}"
	CREATE(PS("{\"name\": \"regcred\"}, {\"name\": \"my.reg-cred2\"}"), NULL);
	CREATE(PS("{\"name\": \"\"}"), "spec.imagePullSecrets[0].name: invalid Secret name \"\": must not be empty");
	CREATE(PS("{}"), "spec.imagePullSecrets[0].name: invalid Secret name \"\": must not be empty");
	CREATE(PS("{\"name\": \"ok\"}, {\"name\": \"My_Secret\"}"),
	       "spec.imagePullSecrets[1].name: invalid Secret name \"My_Secret\": must be lowercase");
	CREATE(PS("{\"name\": \"my_secret\"}"),
	       "spec.imagePullSecrets[0].name: invalid Secret name \"my_secret\": must consist of lower case "
	       "alphanumeric characters, '-' or '.'");
	CREATE(PS("{\"name\": \"-x\"}"),
	       "spec.imagePullSecrets[0].name: invalid Secret name \"-x\": must start and end with an alphanumeric "
	       "character");
	CREATE(PS("{\"name\": \"x.\"}"),
	       "spec.imagePullSecrets[0].name: invalid Secret name \"x.\": must start and end with an alphanumeric "
	       "character");
	CREATE(PS("{\"name\": \"a..b\"}"),
	       "spec.imagePullSecrets[0].name: invalid Secret name \"a..b\": must not have an empty label between dots");
	char *n254 = xmalloc(255);
	memset(n254, 'a', 254), n254[254] = 0;
	char *s = xasprintf(PS("{\"name\": \"%s\"}"), n254);
	char *want = xasprintf("spec.imagePullSecrets[0].name: invalid Secret name \"%.128s\" (254 bytes, cut): must "
			       "be no more than 253 characters", n254);
	CREATE(s, want);
	free(s), free(want), free(n254);
	/* ratchet: an old bad name may stay, a new bad one may not */
	UPDATE(PS("{\"name\": \"Old_Bad\"}, {\"name\": \"new-good\"}"), PS("{\"name\": \"Old_Bad\"}"), NULL);
	UPDATE(PS("{\"name\": \"Old_Bad\"}, {\"name\": \"New_Bad\"}"), PS("{\"name\": \"Old_Bad\"}"),
	       "spec.imagePullSecrets[1].name: invalid Secret name \"New_Bad\": must be lowercase");
#undef PS
}

static void update_ratchets_our_image_rule(void **state)
{
	(void)state;
	/* an object created under upstream's webhook with an image we now reject can still be edited */
	const char *old = "{\"cacheSpec\": [{\"images\": [\"Bad;Image\", \"a:1\"]}]}";
	UPDATE("{\"cacheSpec\": [{\"images\": [\"Bad;Image\", \"a:1\", \"b:1\"]}]}", old, NULL);
	UPDATE("{\"cacheSpec\": [{\"images\": [\"a:1\"]}]}", old, NULL);
	UPDATE("{\"cacheSpec\": [{\"images\": [\"Bad;Image\", \"a:1\", \"c d\"]}]}", old,
	       "spec.cacheSpec[0].images[2]: invalid image reference \"c d\": image reference contains a space at "
	       "position 1");
	/* but upstream's rules are never ratcheted (upstream did not ratchet them either) */
	UPDATE("{\"cacheSpec\": [{\"images\": [\"Bad;Image\", \"a:1\", \"a:1\"]}]}", old,
	       "Duplicate image names within image list: a:1");
}

/* Builds a spec with n_lists lists of per_list distinct images each. */
static char *big_spec(size_t n_lists, size_t per_list, size_t n_secrets)
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "{\"cacheSpec\": [");
	for (size_t i = 0; i < n_lists; i++) {
		sb_addf(&sb, "%s{\"images\": [", i ? "," : "");
		for (size_t j = 0; j < per_list; j++)
			sb_addf(&sb, "%s\"r/img-%zu-%zu:1\"", j ? "," : "", i, j);
		sb_adds(&sb, "]}");
	}
	sb_adds(&sb, "], \"imagePullSecrets\": [");
	for (size_t i = 0; i < n_secrets; i++)
		sb_addf(&sb, "%s{\"name\": \"s%zu\"}", i ? "," : "", i);
	sb_adds(&sb, "]}");
	return sb_detach(&sb);
}

static void size_limits(void **state)
{
	(void)state;
	char *s = big_spec(100, 100, 100); /* at every limit: 100 lists, 10,000 images, 100 secrets */
	CREATE(s, NULL);
	free(s);
	s = big_spec(101, 1, 0);
	CREATE(s, "spec.cacheSpec: 101 image lists, the limit is 100");
	free(s);
	/* users run about 2,000 images per kubelet (upstream #177): one list holds 5,000 */
	s = big_spec(1, 5000, 0);
	CREATE(s, NULL);
	free(s);
	s = big_spec(1, 5001, 0);
	CREATE(s, "spec.cacheSpec[0].images: 5001 images, the limit is 5000 per list");
	free(s);
	s = big_spec(3, 5000, 0);
	CREATE(s, "spec.cacheSpec: 15000 images in all lists, the limit is 10000");
	free(s);
	s = big_spec(1, 1, 101);
	CREATE(s, "spec.imagePullSecrets: 101 entries, the limit is 100");
	free(s);
	struct strbuf sel = STRBUF_INIT;
	sb_adds(&sel, "{\"cacheSpec\": [{\"images\": [\"a:1\"], \"nodeSelector\": {");
	for (int i = 0; i < 65; i++)
		sb_addf(&sel, "%s\"k%d\": \"v\"", i ? "," : "", i);
	sb_adds(&sel, "}}]}");
	CREATE(sel.buf, "spec.cacheSpec[0].nodeSelector: 65 labels, the limit is 64");
	sb_release(&sel);
	/* ratchet: an old object over a limit may shrink or keep its size, not grow */
	char *old = big_spec(1, 5005, 0), *same = big_spec(1, 5005, 1), *grown = big_spec(1, 5006, 0);
	UPDATE(same, old, NULL);
	UPDATE(grown, old, "spec.cacheSpec[0].images: 5006 images, the limit is 5000 per list");
	free(old), free(same), free(grown);
}

#define slowdown test_slowdown

static void duplicate_check_is_linear(void **state)
{
	(void)state;
	/* 200,000 distinct images in one list: a quadratic check would take minutes; the size rule denies it
	 * after upstream's checks ran over all of it. Natively about 1.4 s on a loaded 2-CPU machine. */
	char *s = big_spec(1, 200000, 0);
	int64_t t0 = kf_now_ms();
	CREATE(s, "spec.cacheSpec[0].images: 200000 images, the limit is 5000 per list");
	assert_true(kf_now_ms() - t0 < 5000 * slowdown());
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_specs_are_allowed),
		cmocka_unit_test(empty_cache_spec_is_allowed),
		cmocka_unit_test(upstream_empty_image_list),
		cmocka_unit_test(upstream_duplicate_image_in_a_list),
		cmocka_unit_test(upstream_list_count_must_not_change),
		cmocka_unit_test(upstream_selector_must_not_change),
		cmocka_unit_test(update_adding_and_removing_images_is_allowed),
		cmocka_unit_test(update_with_unchanged_spec_is_allowed_at_once),
		cmocka_unit_test(image_references_are_parsed),
		cmocka_unit_test(node_selector_keys_and_values),
		cmocka_unit_test(image_pull_secret_names),
		cmocka_unit_test(update_ratchets_our_image_rule),
		cmocka_unit_test(size_limits),
		cmocka_unit_test(duplicate_check_is_linear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
