/* test_imageref.c - image reference parsing, normalisation and exact matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/imageref.h"
#include "util/util.h"

static void canonical_is(const char *in, const char *want)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT, out = STRBUF_INIT;
	if (imageref_parse(in, &r, &err) < 0)
		fail_msg("parse(%s) failed: %s", in, err.buf);
	imageref_canonical(&r, &out);
	if (strcmp(out.buf, want))
		fail_msg("canonical(%s) = %s, want %s", in, out.buf, want);
	sb_release(&err);
	sb_release(&out);
}

static void normalises_like_containerd(void **state)
{
	(void)state;
	canonical_is("busybox", "docker.io/library/busybox:latest");
	canonical_is("busybox:1.36", "docker.io/library/busybox:1.36");
	canonical_is("library/busybox:1.36", "docker.io/library/busybox:1.36");
	canonical_is("docker.io/busybox:1.36", "docker.io/library/busybox:1.36");
	canonical_is("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
	canonical_is("org/app:v1", "docker.io/org/app:v1");
	canonical_is("127.0.0.1:5001/kftest/app1:1", "127.0.0.1:5001/kftest/app1:1");
	canonical_is("127.0.0.1:5001/kftest/app1", "127.0.0.1:5001/kftest/app1:latest");
	canonical_is("localhost/app:2", "localhost/app:2");
	canonical_is("localhost:5000/a/b/c:2", "localhost:5000/a/b/c:2");
	canonical_is("ghcr.io/jitesoft/nginx:1.23.1", "ghcr.io/jitesoft/nginx:1.23.1");
	canonical_is("us.gcr.io/k8s-artifacts-prod/etcd:3.5.4-0", "us.gcr.io/k8s-artifacts-prod/etcd:3.5.4-0");
	canonical_is("[::1]:5000/app:1", "[::1]:5000/app:1");
	canonical_is("a__b/c---d.e/f_g:T_a.g-1", "docker.io/a__b/c---d.e/f_g:T_a.g-1");
	canonical_is("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		     "docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	canonical_is("nginx:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		     "docker.io/library/nginx:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	/* a registry host is recognised by '.', ':' or "localhost"; "Foo" with uppercase too (docker's rule) */
	canonical_is("Registry/app:1", "Registry/app:1");
	/* hex names that are not image IDs stay references (the grammar's rule is 64 hex characters) */
	canonical_is("deadbeef", "docker.io/library/deadbeef:latest");
	canonical_is("sha256:latest", "docker.io/library/sha256:latest");
	canonical_is("reg.io/sha256:0123abc", "reg.io/sha256:0123abc");
	canonical_is("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:1",
		     "docker.io/library/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:1");
}

static void rejects(const char *in, const char *reason_part)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	if (imageref_parse(in, &r, &err) == 0)
		fail_msg("parse(%s) succeeded, want an error containing \"%s\"", in, reason_part);
	if (!strstr(err.buf, reason_part))
		fail_msg("parse(%s) error \"%s\" does not mention \"%s\"", in, err.buf, reason_part);
	sb_release(&err);
}

static void rejects_bad_references_with_reasons(void **state)
{
	(void)state;
	rejects("", "empty");
	rejects("nginx:1.23 ", "a space");
	rejects("nginx;rm -rf /", "a space");
	rejects("nginx;reboot", "invalid character ';'");
	rejects("$(id)", "invalid character '$'");
	rejects("$(touch /tmp/x)", "a space");
	rejects("a`id`", "invalid character '`'");
	rejects("nginx\n", "a newline");
	rejects("NGINX", "lowercase");
	rejects("org/App:1", "lowercase");
	rejects("nginx:", "empty tag");
	rejects("nginx:v1!", "invalid tag");
	rejects("nginx:.v1", "must start with");
	rejects("nginx@sha256:abc", "needs 64 hex");
	rejects("nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "lowercase");
	rejects("nginx@sha256:zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "not a hex");
	rejects("nginx@", "digest");
	rejects("a@b@c", "more than one");
	rejects("/nginx", "empty path component");
	rejects("org//app", "empty path component");
	rejects("org/app/", "empty path component");
	rejects("app-", "separator");
	rejects("a..b", "separator");
	rejects("-host.io/app", "registry host");
	rejects("host-.io/app", "registry host");
	rejects("host.io:99x/app", "registry");
	/* image IDs are not references (runtimes resolve them to an image with all its tags) */
	rejects("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "an image ID");
	rejects("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "an image ID");
	rejects("sha256:0123abc", "an image ID"); /* an ID prefix, which containerd's CRI resolves too */
	rejects("sha512:0123456789abcdef", "an image ID");
	rejects("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "an image ID");
	char longtag[200];
	memset(longtag, 'a', sizeof longtag);
	memcpy(longtag, "app:", 4);
	longtag[199] = '\0';
	rejects(longtag, "limit is 128");
	char longname[300];
	memset(longname, 'a', sizeof longname);
	longname[299] = '\0';
	rejects(longname, "limit is 255");
	/* the limit holds for the name in full, as Docker normalises it (docker.io/[library/]...): a short
	 * spelling within 255 whose full name is not (found by fuzz_imageref: its canonical form did not parse) */
	char shortname[260];
	memset(shortname, 'c', sizeof shortname);
	memcpy(shortname, "org/", 4);
	shortname[250] = '\0';
	rejects(shortname, "docker.io/org/ccc");
	rejects(shortname + 4, "limit is 255"); /* docker.io/library/ccc... */
	shortname[240] = '\0'; /* docker.io/org/ + 236: 250 */
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(imageref_parse(shortname, &r, &err), 0);
	sb_release(&err);
}

static int matches(const char *want, const char *have)
{
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(imageref_parse(want, &r, &err), 0);
	sb_release(&err);
	return imageref_matches(&r, have);
}

static void matching_is_exact_not_substring(void **state)
{
	(void)state;
	/* the upstream substring check matched all of these wrongly */
	assert_false(matches("nginx:1.2", "docker.io/library/nginx:1.23"));
	assert_false(matches("127.0.0.1:5001/kfperf/img-1:1", "127.0.0.1:5001/kfperf/img-10:1"));
	assert_false(matches("app:1", "docker.io/library/myapp:1"));
	assert_false(matches("reg.io/team/app:1", "reg.io/team/app-extra:1"));
	assert_false(matches("reg.io/app:1", "other.io/app:1"));
	/* and these are the same image */
	assert_true(matches("nginx:1.23", "docker.io/library/nginx:1.23"));
	assert_true(matches("nginx", "docker.io/library/nginx:latest"));
	assert_true(matches("127.0.0.1:5001/kftest/app1:1", "127.0.0.1:5001/kftest/app1:1"));
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char want[200], have[200];
	snprintf(want, sizeof want, "nginx@%s", d);
	snprintf(have, sizeof have, "docker.io/library/nginx@%s", d);
	assert_true(matches(want, have));
	assert_false(matches(want, "docker.io/library/nginx:latest"));
	assert_false(matches("nginx:latest", have));
	assert_false(matches("nginx", "not a reference"));
}

static void floating_references(void **state)
{
	(void)state;
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	static const struct { const char *in; int floating; } cases[] = {
		{ "busybox", 1 }, { "busybox:latest", 1 }, { "busybox:1.36", 0 },
		{ "127.0.0.1:5001/app", 1 }, /* upstream treated the port as a tag */
		{ "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0 },
		{ "busybox:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0 },
		{ "busybox:latest-alpine", 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(imageref_parse(cases[i].in, &r, &err), 0);
		if (imageref_is_floating(&r) != cases[i].floating)
			fail_msg("is_floating(%s) != %d", cases[i].in, cases[i].floating);
	}
	sb_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(normalises_like_containerd),
		cmocka_unit_test(rejects_bad_references_with_reasons),
		cmocka_unit_test(matching_is_exact_not_substring),
		cmocka_unit_test(floating_references),
	};
	return cmocka_run_group_tests_name("imageref", tests, NULL, NULL);
}
