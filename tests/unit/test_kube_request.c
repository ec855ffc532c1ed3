/* test_kube_request.c - the client's request loop over a real loopback transport (http_script.h replays
 * recorded responses): retries after 429 and after a 5xx carrying Retry-After (how long, how often,
 * never a watch), the write fence (nothing sent, reads still go, a fence during a Retry-After wait), the
 * counters by verb and by status code, a GET stopped mid-flight, and per-thread connection reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_script.h"
#include "kube/kube_client.h"
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

/* kube-apiserver's max-in-flight and priority-and-fairness filters answer 429 with this plain-text body
 * and Retry-After: 1 (staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go, v1.20). */
#define TOO_MANY "Too many requests, please try again later.\n"
#define CM_BODY "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"}}"

static struct kube_client *client_for(struct hs *s, int64_t retry_cap_ms)
{
	char url[64];
	hs_url(s, url, sizeof url);
	struct kube_config cfg = { .server = url, .namespace = "ns" };
	struct kube_client_opts o = { .timeout_ms = 10000 };
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, &o, &err);
	assert_non_null(c);
	sb_release(&err);
	if (retry_cap_ms)
		c->retry_wait_cap_ms = retry_cap_ms;
	return c;
}

static void retry_wait_arithmetic(void **state)
{
	(void)state;
	struct kube_client c = { .max_retries = KUBE_MAX_RETRIES, .retry_wait_cap_ms = KUBE_RETRY_WAIT_CAP_MS };
	assert_int_equal(kube_retry_wait_ms(&c, 429, 0, 0), 1000);  /* 429 without Retry-After: 1 s */
	assert_int_equal(kube_retry_wait_ms(&c, 429, 3, 0), 3000);
	assert_int_equal(kube_retry_wait_ms(&c, 503, 2, 9), 2000);
	assert_int_equal(kube_retry_wait_ms(&c, 500, 0, 0), -1);    /* 5xx without Retry-After: caller decides */
	assert_int_equal(kube_retry_wait_ms(&c, 409, 5, 0), -1);
	assert_int_equal(kube_retry_wait_ms(&c, 429, 3600, 0), 10000); /* capped */
	assert_int_equal(kube_retry_wait_ms(&c, 429, 1, 10), -1);      /* 10 retries used */
}

static void only_an_expired_resource_version_means_relist(void **state)
{
	(void)state;
	struct kube_err e = { 410, "Expired", "too old resource version: 1 (590)", 0 };
	assert_true(kube_err_is_expired(&e));
	e = (struct kube_err){ 410, "Gone", "", 0 };
	assert_true(kube_err_is_expired(&e));
	e = (struct kube_err){ 500, "Expired", "", 0 }; /* reason decides even when a proxy rewrote the code */
	assert_true(kube_err_is_expired(&e));
	static const struct kube_err others[] = { { 0, "", "transport", 0 },     { 500, "InternalError", "", 0 },
						  { 504, "Timeout", "", 0 },         { 429, "TooManyRequests", "", 1 },
						  { 0, "", "no data for 60000 ms", 0 }, { 403, "Forbidden", "", 0 } };
	for (size_t i = 0; i < ARRAY_SIZE(others); i++)
		assert_false(kube_err_is_expired(&others[i]));
}

static void verbs_from_method_and_path(void **state)
{
	(void)state;
	static const struct { const char *m, *p; enum kube_verb v; } cases[] = {
		{ "GET", "/api/v1/namespaces/ns/pods", KUBE_VERB_LIST },
		{ "GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db&limit=500", KUBE_VERB_LIST },
		{ "GET", "/api/v1/namespaces/ns/pods/web-0", KUBE_VERB_GET },
		{ "GET", "/api/v1/namespaces/ns/pods/web-0/log", KUBE_VERB_GET },
		{ "GET", "/api/v1/pods", KUBE_VERB_LIST },
		{ "GET", "/api/v1/nodes/n1", KUBE_VERB_GET },
		{ "GET", "/api/v1/namespaces", KUBE_VERB_LIST },
		{ "GET", "/api/v1/namespaces/kube-system", KUBE_VERB_GET },
		{ "GET", "/apis/batch/v1/namespaces/kf/jobs", KUBE_VERB_LIST },
		{ "GET", "/apis/batch/v1/namespaces/kf/jobs/j", KUBE_VERB_GET },
		{ "GET", "/apis/kubefledged.io/v1alpha2/imagecaches", KUBE_VERB_LIST },
		{ "GET", "/apis/batch/v1/namespaces/kf/jobs?watch=1&resourceVersion=5", KUBE_VERB_WATCH },
		{ "GET", "/api/v1/pods?resourceVersion=5&watch=true", KUBE_VERB_WATCH },
		{ "GET", "/api/v1/pods?nowatch=1", KUBE_VERB_LIST },
		{ "GET", "/version", KUBE_VERB_GET },
		{ "GET", "/apis/batch/v1", KUBE_VERB_GET },
		{ "POST", "/api/v1/namespaces/ns/configmaps", KUBE_VERB_POST },
		{ "PUT", "/api/v1/namespaces/ns/configmaps/a", KUBE_VERB_PUT },
		{ "PATCH", "/api/v1/namespaces/ns/configmaps/a", KUBE_VERB_PATCH },
		{ "DELETE", "/api/v1/namespaces/ns/configmaps/a", KUBE_VERB_DELETE },
		{ "HEAD", "/", KUBE_VERB_OTHER },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (kube_verb_of(cases[i].m, cases[i].p) != cases[i].v)
			fail_msg("%s %s: %s, want %s", cases[i].m, cases[i].p,
				 kube_verb_name(kube_verb_of(cases[i].m, cases[i].p)), kube_verb_name(cases[i].v));
	}
	assert_string_equal(kube_verb_name(KUBE_VERB_WATCH), "WATCH");
}

static void a_429_is_retried_after_its_retry_after(void **state)
{
	(void)state;
	const struct hs_step steps[] = {
		{ 429, "Retry-After: 1\r\n", TOO_MANY, 0, 0, 0, 0 },
		{ 200, NULL, CM_BODY, 0, 0, 0, 0 },
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct kube_err e;
	int64_t t0 = kf_now_ms();
	json_t *j = kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e);
	int64_t ms = kf_now_ms() - t0;
	assert_non_null(j);
	assert_string_equal(kf_jstr(j, "metadata", "name", NULL), "a");
	assert_true(ms >= 1000); /* the server's Retry-After, honoured */
	assert_int_equal(hs_requests(&s), 2);
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.by_code[429], 1);
	assert_int_equal(st.by_code[200], 1);
	assert_int_equal(st.by_verb[KUBE_VERB_GET], 2);
	assert_int_equal(st.errors_4xx, 1);
	json_decref(j);
	kube_client_free(c);
	hs_stop(&s);
}

static void retries_are_bounded_and_every_verb_is_retried(void **state)
{
	(void)state;
	struct hs_step steps[12];
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
		steps[i] = (struct hs_step){ 429, NULL, TOO_MANY, 0, 0, 0, 0 }; /* no Retry-After: 1 s, capped below */
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 20);
	struct kube_err e;
	json_t *body = json_pack("{s:{s:s}}", "metadata", "name", "a");
	assert_null(kube_create(c, "/api/v1/namespaces/ns/configmaps", body, &e));
	assert_int_equal(e.code, 429);
	assert_string_equal(e.reason, "TooManyRequests");
	assert_non_null(strstr(e.msg, "Too many requests"));
	assert_non_null(strstr(e.msg, "(after 10 retries)"));
	assert_int_equal(hs_requests(&s), 11); /* the first try and 10 retries, like client-go */
	for (size_t i = 0; i < 11; i++)
		assert_string_equal(s.log[i], "POST /api/v1/namespaces/ns/configmaps");
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	assert_int_equal(st.retries, 10);
	assert_int_equal(st.by_verb[KUBE_VERB_POST], 11);
	json_decref(body);
	kube_client_free(c);
	hs_stop(&s);
}

static void a_5xx_is_retried_only_with_retry_after(void **state)
{
	(void)state;
	const char *st500 = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
			    "\"message\":\"etcdserver: leader changed\",\"code\":500}";
	const struct hs_step steps[] = {
		{ 503, "Retry-After: 1\r\n", st500, 0, 0, 0, 0 },
		{ 200, NULL, CM_BODY, 0, 0, 0, 0 },
		{ 500, NULL, st500, 0, 0, 0, 0 },
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 50);
	struct kube_err e;
	json_t *p = json_pack("{s:{s:s}}", "data", "k", "v");
	json_t *j = kube_patch(c, "/api/v1/namespaces/ns/configmaps/a", p, NULL, &e);
	assert_non_null(j);
	json_decref(j);
	assert_null(kube_patch(c, "/api/v1/namespaces/ns/configmaps/a", p, NULL, &e)); /* 500, no Retry-After */
	assert_int_equal(e.code, 500);
	assert_string_equal(e.msg, "etcdserver: leader changed");
	assert_int_equal(hs_requests(&s), 3);
	json_decref(p);
	kube_client_free(c);
	hs_stop(&s);
}

static int nop_cb(void *ud, const char *type, json_t *obj)
{
	(void)ud;
	(void)type;
	(void)obj;
	return 0;
}

static void a_watch_is_never_retried_and_reports_retry_after(void **state)
{
	(void)state;
	const struct hs_step steps[] = { { 429, "Retry-After: 7\r\n", TOO_MANY, 0, 0, 0, 0 } };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct kube_err e;
	int stop = 0;
	assert_int_equal(kube_watch(c, "/api/v1/pods?resourceVersion=5", nop_cb, NULL, &stop, 5000, &e), -1);
	assert_int_equal(e.code, 429);
	assert_int_equal(e.retry_after_s, 7);
	assert_int_equal(hs_requests(&s), 1);
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	assert_int_equal(st.by_verb[KUBE_VERB_WATCH], 1);
	assert_int_equal(st.watches, 1);
	assert_int_equal(st.by_code[429], 1);
	kube_client_free(c);
	hs_stop(&s);
}

static void a_fenced_client_sends_no_write(void **state)
{
	(void)state;
	const struct hs_step steps[] = { { 200, NULL, CM_BODY, 0, 0, 0, 0 } };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct kube_err e;
	assert_false(kube_client_fenced(c));
	kube_client_fence(c, "leader election lost: lease kf/lock held by other-1");
	kube_client_fence(c, "second reason is ignored");
	assert_true(kube_client_fenced(c));
	json_t *b = json_pack("{s:{s:s}}", "metadata", "name", "a");
	assert_null(kube_create(c, "/api/v1/namespaces/ns/configmaps", b, &e));
	assert_true(kube_err_is_fenced(&e));
	assert_false(kube_err_retryable(&e));
	assert_int_equal(e.code, 0);
	assert_string_equal(e.reason, "Fenced");
	assert_string_equal(e.msg, "POST /api/v1/namespaces/ns/configmaps: not sent: this client is fenced, writes are "
				   "refused (leader election lost: lease kf/lock held by other-1)");
	assert_null(kube_update(c, "/api/v1/namespaces/ns/configmaps/a", b, &e));
	assert_true(kube_err_is_fenced(&e));
	assert_null(kube_patch(c, "/api/v1/namespaces/ns/configmaps/a", b, NULL, &e));
	assert_true(kube_err_is_fenced(&e));
	assert_int_equal(kube_delete(c, "/api/v1/namespaces/ns/configmaps/a", "Background", &e), -1);
	assert_true(kube_err_is_fenced(&e));
	assert_null(kube_request_raw(c, "POST", "/api/v1/namespaces/ns/events", "{}", NULL, &e));
	assert_true(kube_err_is_fenced(&e));
	assert_int_equal(hs_requests(&s), 0); /* nothing reached the server */
	json_t *g = kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e); /* reads still go */
	assert_non_null(g);
	assert_int_equal(hs_requests(&s), 1);
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	assert_int_equal(st.fenced, 5);
	assert_int_equal(st.requests, 1);
	json_decref(g);
	json_decref(b);
	kube_client_free(c);
	hs_stop(&s);
}

struct fence_later {
	struct kube_client *c;
	int ms;
	volatile int *flag;
};

static void *fence_after(void *arg)
{
	struct fence_later *f = arg;
	kf_sleep_ms(f->ms);
	if (f->flag)
		kube_stop_set(f->flag);
	else
		kube_client_fence(f->c, "test");
	return NULL;
}

static void a_fence_during_a_retry_wait_stops_the_write(void **state)
{
	(void)state;
	const struct hs_step steps[] = { { 429, "Retry-After: 5\r\n", TOO_MANY, 0, 0, 0, 0 },
					 { 201, NULL, CM_BODY, 0, 0, 0, 0 } };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct fence_later f = { c, 300, NULL };
	pthread_t th;
	pthread_create(&th, NULL, fence_after, &f);
	struct kube_err e;
	json_t *b = json_pack("{s:{s:s}}", "metadata", "name", "a");
	int64_t t0 = kf_now_ms();
	assert_null(kube_create(c, "/api/v1/namespaces/ns/configmaps", b, &e));
	int64_t ms = kf_now_ms() - t0;
	pthread_join(th, NULL);
	assert_true(kube_err_is_fenced(&e));
	assert_true(ms < 2000); /* not the 5 s Retry-After */
	assert_int_equal(hs_requests(&s), 1);
	json_decref(b);
	kube_client_free(c);
	hs_stop(&s);
}

static void a_stoppable_get_returns_when_stopped(void **state)
{
	(void)state;
	const struct hs_step steps[] = { { 200, NULL, CM_BODY, 20000, 0, 0, 0 } };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	volatile int stop = 0;
	struct fence_later f = { c, 300, &stop };
	pthread_t th;
	pthread_create(&th, NULL, fence_after, &f);
	struct kube_err e;
	int64_t t0 = kf_now_ms();
	assert_null(kube_get_stoppable(c, "/api/v1/namespaces/ns/configmaps?limit=500", &stop, &e));
	int64_t ms = kf_now_ms() - t0;
	pthread_join(th, NULL);
	assert_string_equal(e.reason, "Stopped");
	assert_true(ms < 1300);
	kube_client_free(c);
	hs_stop(&s);
}

static void counters_by_verb_and_code_and_connection_reuse(void **state)
{
	(void)state;
	char *s404 = data_file("status-404.json"), *s409 = data_file("status-409-conflict.json");
	char *list = data_file("configmaps-list2.json");
	const struct hs_step steps[] = {
		{ 200, NULL, CM_BODY, 0, 0, 0, 0 }, { 200, NULL, list, 0, 0, 0, 0 }, { 201, NULL, CM_BODY, 0, 0, 0, 0 },
		{ 409, NULL, s409, 0, 0, 0, 0 },    { 200, NULL, CM_BODY, 0, 0, 0, 0 }, { 404, NULL, s404, 0, 0, 0, 0 },
		{ 200, NULL, "{\"type\":\"ADDED\",\"object\":" CM_BODY "}\n", 0, 1, 0, 0 },
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct kube_err e;
	json_t *b = json_pack("{s:{s:s}}", "metadata", "name", "a");
	json_decref(kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e));
	json_decref(kube_get(c, "/api/v1/namespaces/ns/configmaps", &e));
	json_decref(kube_create(c, "/api/v1/namespaces/ns/configmaps", b, &e));
	assert_null(kube_update(c, "/api/v1/namespaces/ns/configmaps/a", b, &e));
	assert_true(kube_err_is_conflict(&e));
	json_decref(kube_patch(c, "/api/v1/namespaces/ns/configmaps/a", b, NULL, &e));
	assert_int_equal(kube_delete(c, "/api/v1/namespaces/ns/configmaps/a", NULL, &e), -1);
	assert_true(kube_err_is_not_found(&e));
	int stop = 0;
	assert_int_equal(kube_watch(c, "/api/v1/namespaces/ns/configmaps?resourceVersion=1", nop_cb, NULL, &stop, 5000, &e), 0);
	struct kube_client_stats st;
	kube_client_stats(c, &st);
	static const uint64_t want[KUBE_VERB_N] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	for (int v = 0; v < KUBE_VERB_N; v++)
		if (st.by_verb[v] != want[v])
			fail_msg("%s: %llu requests, want %llu", kube_verb_name((enum kube_verb)v),
				 (unsigned long long)st.by_verb[v], (unsigned long long)want[v]);
	assert_int_equal(st.requests, 7);
	assert_int_equal(st.watches, 1);
	assert_int_equal(st.by_code[200], 4);
	assert_int_equal(st.by_code[201], 1);
	assert_int_equal(st.by_code[409], 1);
	assert_int_equal(st.by_code[404], 1);
	assert_int_equal(st.errors_4xx, 2);
	assert_int_equal(st.errors_transport + st.errors_5xx + st.retries + st.fenced, 0);
	/* all seven went over one kept-alive connection: this thread's */
	assert_int_equal(s.nconns, 1);
	json_decref(b);
	kube_client_free(c);
	hs_stop(&s);
	free(s404);
	free(s409);
	free(list);
}

static void *get_twice(void *arg)
{
	struct kube_client *c = arg;
	struct kube_err e;
	for (int i = 0; i < 2; i++)
		json_decref(kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e));
	return NULL;
}

/* Each thread its own connection, reused for its requests, closed when the thread exits; the others'
 * when the client is freed. */
static void connections_are_per_thread_and_go_with_their_thread(void **state)
{
	(void)state;
	struct hs_step steps[6];
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
		steps[i] = (struct hs_step){ 200, NULL, CM_BODY, 0, 0, 0, 0 };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s, 0);
	struct kube_err e;
	json_decref(kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e)); /* main thread: connection 1 */
	pthread_t th;
	pthread_create(&th, NULL, get_twice, c); /* its own connection 2, used twice */
	pthread_join(th, NULL);
	assert_int_equal(hs_wait_closed(&s, 1, 3000), 1); /* closed at its thread's exit */
	json_decref(kube_get(c, "/api/v1/namespaces/ns/configmaps/a", &e)); /* main's connection 1 again */
	assert_int_equal(hs_requests(&s), 4);
	pthread_mutex_lock(&s.mu);
	int conns = s.nconns;
	pthread_mutex_unlock(&s.mu);
	assert_int_equal(conns, 2);
	kube_client_free(c);
	assert_int_equal(hs_wait_closed(&s, 2, 3000), 2); /* main's, with the client */
	hs_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(retry_wait_arithmetic),
		cmocka_unit_test(only_an_expired_resource_version_means_relist),
		cmocka_unit_test(verbs_from_method_and_path),
		cmocka_unit_test(a_429_is_retried_after_its_retry_after),
		cmocka_unit_test(retries_are_bounded_and_every_verb_is_retried),
		cmocka_unit_test(a_5xx_is_retried_only_with_retry_after),
		cmocka_unit_test(a_watch_is_never_retried_and_reports_retry_after),
		cmocka_unit_test(a_fenced_client_sends_no_write),
		cmocka_unit_test(a_fence_during_a_retry_wait_stops_the_write),
		cmocka_unit_test(a_stoppable_get_returns_when_stopped),
		cmocka_unit_test(counters_by_verb_and_code_and_connection_reuse),
		cmocka_unit_test(connections_are_per_thread_and_go_with_their_thread),
	};
	return cmocka_run_group_tests_name("kube_request", tests, NULL, NULL);
}
