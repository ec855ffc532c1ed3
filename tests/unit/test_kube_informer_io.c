/* test_kube_informer_io.c - the informer's reflector loop over a loopback transport (http_script.h replays
 * lists and watch streams recorded from kube-apiserver v1.20.2): it relists only when the watch's
 * resourceVersion expired (410) and resumes the watch from the last resourceVersion after a dead stream
 * or a 5xx; its backoff waits at least the server's Retry-After; and kube_informer_stop() returns promptly
 * while a page of a paginated list is still on its way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_script.h"
#include "kube/kube_informer.h"
#include "kube/kube_internal.h"
#include "util/util.h"

static char *data_file(const char *name)
{
	char p[512];
	size_t len;
	struct strbuf err = STRBUF_INIT;
	snprintf(p, sizeof p, "%s/kube/%s", TEST_DATA_DIR, name);
	char *t = kf_read_file(p, &len, &err);
	if (!t)
		fail_msg("%s", err.buf);
	sb_release(&err);
	return t;
}

static struct kube_client *client_for(struct hs *s)
{
	char url[64];
	hs_url(s, url, sizeof url);
	struct kube_config cfg = { .server = url, .namespace = "rec" };
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, NULL, &err);
	assert_non_null(c);
	sb_release(&err);
	return c;
}

static const struct kube_resource CM = { "", "v1", "configmaps", "ConfigMap", 1 };

/* Waits until the responder has served n requests (or 15 s). */
static void wait_requests(struct hs *s, size_t n)
{
	for (int i = 0; i < 1500 && hs_requests(s) < n; i++)
		kf_sleep_ms(10);
	if (hs_requests(s) < n)
		fail_msg("only %zu of %zu requests arrived", hs_requests(s), n);
}

/* "WATCH rv=X" / "LIST" for the logged request i. */
static void shape(const struct hs *s, size_t i, char *out, size_t n)
{
	const char *l = s->log[i], *w = strstr(l, "watch=1"), *rv = strstr(l, "resourceVersion=");
	if (w && rv)
		snprintf(out, n, "WATCH rv=%.*s", (int)strcspn(rv + 16, "&"), rv + 16);
	else
		snprintf(out, n, "%s", strstr(l, "limit=") ? "LIST" : l);
}

static void relists_only_when_the_resource_version_expired(void **state)
{
	(void)state;
	char *list1 = data_file("configmaps-list1.json"), *list2 = data_file("configmaps-list2.json");
	char *events = data_file("configmaps-watch.ndjson"), *gone = data_file("watch-410.ndjson");
	const char *st500 = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
			    "\"message\":\"etcdserver: request timed out\",\"code\":500}";
	/* the first recorded event only (cm-b MODIFIED at resourceVersion 194) */
	char *first = xstrndup(events, strcspn(events, "\n") + 1);
	const struct hs_step steps[] = {
		{ 200, NULL, list1, 0, 0, 0, 0 },      /* LIST at 193 */
		{ 200, NULL, first, 0, 1, 100, 1 },    /* WATCH from 193: one event (194), then the stream dies */
		{ 500, NULL, st500, 0, 0, 0, 0 },      /* WATCH from 194: a 5xx */
		{ 200, NULL, gone, 0, 1, 0, 0 },       /* WATCH from 194: ERROR 410 Expired */
		{ 200, NULL, list2, 0, 0, 0, 0 },      /* LIST again at 197 */
		{ 200, NULL, "", 0, 1, 20000, 0 },     /* WATCH from 197, held open until the stop */
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s);
	struct kube_informer_opts o = { .res = &CM, .ns = "rec" };
	struct kube_informer *inf = kube_informer_new(c, &o, NULL);
	assert_int_equal(kube_informer_start(inf), 0);
	wait_requests(&s, 6);
	kube_informer_stop(inf);
	assert_non_null(strstr(s.log[0], "limit=500")); /* client-go's page size by default */
	static const char *const want[] = { "LIST", "WATCH rv=193", "WATCH rv=194", "WATCH rv=194", "LIST", "WATCH rv=197" };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char got[128];
		shape(&s, i, got, sizeof got);
		if (strcmp(got, want[i]))
			fail_msg("request %zu: %s (%s), want %s", i, got, s.log[i], want[i]);
	}
	assert_int_equal(hs_requests(&s), 6);
	char rv[32];
	kube_informer_resource_version(inf, rv, sizeof rv);
	assert_string_equal(rv, "197");
	kube_informer_free(inf);
	kube_client_free(c);
	hs_stop(&s);
	free(first);
	free(list1);
	free(list2);
	free(events);
	free(gone);
}

static void watch_backoff_honours_retry_after(void **state)
{
	(void)state;
	char *list1 = data_file("configmaps-list1.json");
	const struct hs_step steps[] = {
		{ 200, NULL, list1, 0, 0, 0, 0 },
		{ 429, "Retry-After: 2\r\n", "Too many requests, please try again later.\n", 0, 0, 0, 0 },
		{ 200, NULL, "", 0, 1, 20000, 0 },
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s);
	struct kube_informer_opts o = { .res = &CM, .ns = "rec" };
	struct kube_informer *inf = kube_informer_new(c, &o, NULL);
	assert_int_equal(kube_informer_start(inf), 0);
	wait_requests(&s, 3);
	kube_informer_stop(inf);
	int64_t gap = s.log_ms[2] - s.log_ms[1];
	if (gap < 2000) /* the backoff alone would be 0.5-0.6 s */
		fail_msg("the watch came back %lld ms after a 429 with Retry-After: 2", (long long)gap);
	char w1[128], w2[128];
	shape(&s, 1, w1, sizeof w1);
	shape(&s, 2, w2, sizeof w2);
	assert_string_equal(w1, "WATCH rv=193");
	assert_string_equal(w2, "WATCH rv=193"); /* no relist after a 429 */
	kube_informer_free(inf);
	kube_client_free(c);
	hs_stop(&s);
	free(list1);
}

static void stop_returns_promptly_in_the_middle_of_a_paged_list(void **state)
{
	(void)state;
	char *page1 = data_file("configmaps-list1-page1.json"), *page2 = data_file("configmaps-list1-page2.json");
	const struct hs_step steps[] = {
		{ 200, NULL, page1, 0, 0, 0, 0 },
		{ 200, NULL, page2, 30000, 0, 0, 0 }, /* a slow page: the server takes 30 s */
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s);
	struct kube_informer_opts o = { .res = &CM, .ns = "rec", .page_limit = 2 };
	struct kube_informer *inf = kube_informer_new(c, &o, NULL);
	assert_int_equal(kube_informer_start(inf), 0);
	wait_requests(&s, 2);
	assert_non_null(strstr(s.log[0], "limit=2")); /* the page size asked for */
	assert_non_null(strstr(s.log[1], "limit=2&continue="));
	kf_sleep_ms(100);
	int64_t t0 = kf_now_ms();
	kube_informer_stop(inf);
	int64_t ms = kf_now_ms() - t0;
	if (ms > 1000)
		fail_msg("kube_informer_stop took %lld ms during a list page", (long long)ms);
	assert_false(kube_informer_has_synced(inf));
	kube_informer_free(inf);
	kube_client_free(c);
	hs_stop(&s);
	free(page1);
	free(page2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(relists_only_when_the_resource_version_expired),
		cmocka_unit_test(watch_backoff_honours_retry_after),
		cmocka_unit_test(stop_returns_promptly_in_the_middle_of_a_paged_list),
	};
	return cmocka_run_group_tests_name("kube_informer_io", tests, NULL, NULL);
}
