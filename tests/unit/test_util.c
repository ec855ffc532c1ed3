/* test_util.c - strbuf, durations, RFC 3339 times, JSON lookups, flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/flags.h"
#include "util/map.h"
#include "util/strbuf.h"
#include "util/util.h"

static void strbuf_grows_and_formats(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(sb.buf, "");
	for (int i = 0; i < 1000; i++)
		sb_addf(&sb, "%d,", i);
	assert_int_equal(sb.len, strlen(sb.buf));
	assert_true(!strncmp(sb.buf, "0,1,2,", 6));
	sb_reset(&sb);
	sb_add_urlencoded(&sb, "app=kubefledged,kubefledged=x y/z");
	assert_string_equal(sb.buf, "app%3Dkubefledged%2Ckubefledged%3Dx%20y%2Fz");
	char *d = sb_detach(&sb);
	assert_string_equal(sb.buf, "");
	free(d);
	sb_release(&sb);
}

static void durations_parse_like_go(void **state)
{
	(void)state;
	static const struct { const char *in; int64_t ms; } ok[] = {
		{ "0s", 0 }, { "0", 0 }, { "5m", 300000 }, { "15m", 900000 }, { "1h30m", 5400000 },
		{ "300ms", 300 }, { "1.5h", 5400000 }, { "2h45m10s", 9910000 }, { "1m0s", 60000 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		int64_t ms = -1;
		assert_int_equal(kf_parse_duration(ok[i].in, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	static const char *bad[] = { "", "5", "m", "5x", "-5m", "1h-", " 5m", "5m ", "1.2.3s" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t ms;
		assert_int_equal(kf_parse_duration(bad[i], &ms), -1);
	}
	char buf[32];
	kf_format_duration(300000, buf, sizeof buf);
	assert_string_equal(buf, "5m0s");
	kf_format_duration(3600000, buf, sizeof buf);
	assert_string_equal(buf, "1h0m0s");
	kf_format_duration(1500, buf, sizeof buf);
	assert_string_equal(buf, "1.500s");
	kf_format_duration(0, buf, sizeof buf);
	assert_string_equal(buf, "0s");
}

static void rfc3339_round_trips(void **state)
{
	(void)state;
	char buf[32];
	kf_rfc3339(1795314327, buf);
	assert_string_equal(buf, "2026-11-22T02:25:27Z");
	time_t t;
	assert_int_equal(kf_parse_rfc3339("2026-11-22T02:25:27Z", &t), 0);
	assert_int_equal(t, 1795314327);
	assert_int_equal(kf_parse_rfc3339("2026-11-22T03:25:27.123456+01:00", &t), 0);
	assert_int_equal(t, 1795314327);
	assert_int_equal(kf_parse_rfc3339("yesterday", &t), -1);
	assert_int_equal(kf_parse_rfc3339("2026-11-22T02:25:27", &t), -1);
}

/* 64-bit times whatever time_t is: on armhf (32-bit time_t) gmtime/timegm end at 2038-01-19T03:14:07Z */
static void times_past_2038_and_before_1970(void **state)
{
	(void)state;
	char buf[32];
	static const struct {
		int64_t t;
		const char *s;
		int y, mon, d, h, min, sec;
	} cases[] = {
		{ 2147483648LL, "2038-01-19T03:14:08Z", 2038, 1, 19, 3, 14, 8 },
		{ 2303683200LL, "2043-01-01T00:00:00Z", 2043, 1, 1, 0, 0, 0 },
		{ 951825600LL, "2000-02-29T12:00:00Z", 2000, 2, 29, 12, 0, 0 },
		{ 0, "1970-01-01T00:00:00Z", 1970, 1, 1, 0, 0, 0 },
		{ -1, "1969-12-31T23:59:59Z", 1969, 12, 31, 23, 59, 59 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		kf_rfc3339(cases[i].t, buf);
		assert_string_equal(buf, cases[i].s);
		struct tm tm = { .tm_year = cases[i].y - 1900, .tm_mon = cases[i].mon - 1, .tm_mday = cases[i].d,
				 .tm_hour = cases[i].h, .tm_min = cases[i].min, .tm_sec = cases[i].sec };
		assert_int_equal(kf_timegm64(&tm), cases[i].t);
	}
}

static void json_lookup_walks_keys_with_dots(void **state)
{
	(void)state;
	json_t *o = json_loads("{\"metadata\":{\"labels\":{\"kubernetes.io/hostname\":\"n1\"},\"n\":3}}", 0, NULL);
	assert_non_null(o);
	assert_string_equal(kf_jstr(o, "metadata", "labels", "kubernetes.io/hostname", NULL), "n1");
	assert_null(kf_jstr(o, "metadata", "n", NULL));
	assert_null(kf_jget(o, "metadata", "missing", "deeper", NULL));
	assert_null(kf_jget(NULL, "x", NULL));
	json_decref(o);
}

static void flags_parse_go_style(void **state)
{
	(void)state;
	char *s = NULL;
	int b = 0, n = 0;
	int64_t d = 0;
	struct flag tab[] = {
		{ "image-pull-policy", FLAG_STRING, &s, "IfNotPresent", "policy" },
		{ "image-delete-job-host-network", FLAG_BOOL, &b, "false", "hostnet" },
		{ "image-pull-deadline-duration", FLAG_DURATION, &d, "5m", "deadline" },
		{ "workers", FLAG_INT, &n, "4", "workers" },
		{ NULL },
	};
	char *argv[] = { "--image-pull-policy", "Always", "pos1", "-image-delete-job-host-network",
			 "--image-pull-deadline-duration=1m", "--stderrthreshold=INFO", "pos2" };
	struct strbuf err = STRBUF_INIT;
	int npos = flags_parse(tab, 7, argv, &err);
	assert_int_equal(npos, 2);
	assert_string_equal(argv[0], "pos1");
	assert_string_equal(argv[1], "pos2");
	assert_string_equal(s, "Always");
	assert_int_equal(b, 1);
	assert_int_equal(d, 60000);
	assert_int_equal(n, 4);
	flags_free(tab);
	assert_string_equal(s, "IfNotPresent");

	char *bad[] = { "--image-pull-deadline-duration=5 minutes" };
	assert_int_equal(flags_parse(tab, 1, bad, &err), -1);
	assert_non_null(strstr(err.buf, "--image-pull-deadline-duration"));
	assert_non_null(strstr(err.buf, "5 minutes"));
	sb_reset(&err);
	char *unknown[] = { "--no-such-flag=1" };
	assert_int_equal(flags_parse(tab, 1, unknown, &err), -1);
	assert_string_equal(err.buf, "unknown flag: --no-such-flag");
	flags_free(tab);
	sb_release(&err);
}

static void map_put_get_delete_many(void **state)
{
	(void)state;
	struct map m = MAP_INIT;
	char k[32];
	for (long i = 0; i < 5000; i++) {
		snprintf(k, sizeof k, "ns/name-%ld", i);
		assert_null(map_put(&m, k, (void *)(i + 1)));
	}
	assert_int_equal(m.len, 5000);
	for (long i = 0; i < 5000; i += 2) {
		snprintf(k, sizeof k, "ns/name-%ld", i);
		assert_ptr_equal(map_del(&m, k), (void *)(i + 1));
	}
	for (long i = 0; i < 5000; i++) {
		snprintf(k, sizeof k, "ns/name-%ld", i);
		assert_ptr_equal(map_get(&m, k), (i % 2) ? (void *)(i + 1) : NULL);
	}
	/* reinsert over tombstones, replace returns the old value */
	assert_null(map_put(&m, "ns/name-0", (void *)7));
	assert_ptr_equal(map_put(&m, "ns/name-0", (void *)8), (void *)7);
	size_t it = 0, n = 0;
	const char *key;
	while (map_next(&m, &it, &key, NULL))
		n++;
	assert_int_equal(n, 2501);
	map_free(&m, NULL);
}

/* A temp file is never an existing path: a symlink planted where a predictable temp name would be must not
 * be followed (before: "<path>.tmp.<pid>" opened with O_TRUNC, writing the key through the link). */
static void atomic_write_follows_no_planted_link(void **state)
{
	(void)state;
	char dir[] = "/tmp/kf-test-atomic-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/tls.key", dir), *victim = xasprintf("%s/victim", dir);
	char *planted = xasprintf("%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	fputs("untouched\n", f);
	fclose(f);
	assert_int_equal(symlink(victim, planted), 0);
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(kf_write_file_atomic(path, "KEY", 3, 0600, &err), 0);
	size_t n = 0;
	char *v = kf_read_file(victim, &n, &err), *k = kf_read_file(path, &n, &err);
	assert_string_equal(v, "untouched\n");
	assert_string_equal(k, "KEY");
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(lstat(planted, &st), 0); /* still the planted link, not replaced by our file */
	assert_true(S_ISLNK(st.st_mode));
	/* a target that is a dangling link is replaced by the rename, never written through */
	char *dangling = xasprintf("%s/dangling", dir), *target = xasprintf("%s/nowhere", dir);
	assert_int_equal(symlink(target, dangling), 0);
	assert_int_equal(kf_write_file_atomic(dangling, "X", 1, 0644, &err), 0);
	assert_int_equal(access(target, F_OK), -1);
	free(v), free(k);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd), free(path), free(victim), free(planted), free(dangling), free(target);
	sb_release(&err);
}

static void quoting_escapes_what_a_client_sends(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	sb_add_quoted(&sb, "/a\nI0101 forged\t\"q\"\\\x1b[31m\xc3\xa4");
	assert_string_equal(sb.buf, "\"/a\\nI0101 forged\\t\\\"q\\\"\\\\\\x1b[31m\\xc3\\xa4\"");
	sb_release_secret(&sb);
	assert_int_equal(sb.len, 0);
	char *s = xstrdup("secret");
	kf_free_secret(s);
	kf_free_secret(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strbuf_grows_and_formats),
		cmocka_unit_test(durations_parse_like_go),
		cmocka_unit_test(rfc3339_round_trips),
		cmocka_unit_test(times_past_2038_and_before_1970),
		cmocka_unit_test(json_lookup_walks_keys_with_dots),
		cmocka_unit_test(flags_parse_go_style),
		cmocka_unit_test(map_put_get_delete_many),
		cmocka_unit_test(atomic_write_follows_no_planted_link),
		cmocka_unit_test(quoting_escapes_what_a_client_sends),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
