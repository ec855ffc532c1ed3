/* test_metrics.c - the Prometheus text format (counters, gauges, histograms with labels, escaping,
 * stable order), thread safety under concurrent updates, and the /metrics, /healthz and /readyz server
 * on a free port (plain HTTP, fetched with libcurl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/metrics.h"
#include "util/metrics_http.h"

static const char expected[] =
	"# HELP t_pulls_total Pulls by result.\n"
	"# TYPE t_pulls_total counter\n"
	"t_pulls_total{result=\"failed\",cause=\"ImageNotFound\"} 2\n"
	"t_pulls_total{result=\"success\",cause=\"\"} 3\n"
	"# HELP t_images Images \\\\ by state.\n"
	"# TYPE t_images gauge\n"
	"t_images{state=\"a\\\"b\\\\c\\nd\"} 1.5\n"
	"t_images{state=\"present\"} 7\n"
	"# HELP t_seconds Durations.\n"
	"# TYPE t_seconds histogram\n"
	"t_seconds_bucket{le=\"0.5\"} 1\n"
	"t_seconds_bucket{le=\"1\"} 2\n"
	"t_seconds_bucket{le=\"10\"} 3\n"
	"t_seconds_bucket{le=\"+Inf\"} 4\n"
	"t_seconds_sum 106.25\n"
	"t_seconds_count 4\n"
	"# HELP t_plain A counter without labels.\n"
	"# TYPE t_plain counter\n"
	"t_plain 0\n";

static void text_format(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metric *pulls = metrics_counter(m, "t_pulls_total", "Pulls by result.", "result,cause");
	struct metric *images = metrics_gauge(m, "t_images", "Images \\ by state.", "state");
	const double b[] = { 0.5, 1, 10 };
	struct metric *secs = metrics_histogram(m, "t_seconds", "Durations.", NULL, b, 3);
	struct metric *plain = metrics_counter(m, "t_plain", "A counter without labels.", "");
	metric_add(pulls, 1, "success", "");
	metric_add(pulls, 2, "success", NULL);
	metric_add(pulls, 2, "failed", "ImageNotFound");
	metric_add(pulls, -5, "failed", "ImageNotFound"); /* counters never go down */
	metric_set(images, 7, "present");
	metric_set(images, 1.5, "a\"b\\c\nd");
	metric_observe(secs, 0.25);
	metric_observe(secs, 1);
	metric_observe(secs, 5);
	metric_observe(secs, 100);
	metric_add(plain, 0);
	assert_true(metric_value(pulls, "success", "") == 3);
	assert_true(metric_value(secs) == 4);
	assert_true(metric_value(pulls, "nope", "x") == 0);
	struct strbuf out = STRBUF_INIT;
	metrics_render(m, &out);
	assert_string_equal(out.buf, expected);
	sb_release(&out);
	metrics_free(m);
}

struct hammer {
	struct metric *c, *h;
};

static void *hammer(void *arg)
{
	struct hammer *hm = arg;
	for (int i = 0; i < 20000; i++) {
		metric_add(hm->c, 1, i % 2 ? "odd" : "even");
		metric_observe(hm->h, 0.1);
	}
	return NULL;
}

static void concurrent_updates(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	const double b[] = { 1 };
	struct hammer hm = { metrics_counter(m, "t_c", "c", "k"), metrics_histogram(m, "t_h", "h", "", b, 1) };
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, &hm);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(metric_value(hm.c, "odd") == 40000);
	assert_true(metric_value(hm.c, "even") == 40000);
	assert_true(metric_value(hm.h) == 80000);
	metrics_free(m);
}

static size_t collect_body(char *p, size_t s, size_t n, void *ud)
{
	struct strbuf *b = ud;
	sb_add(b, p, s * n);
	return s * n;
}

static long get(int port, const char *path, struct strbuf *body)
{
	CURL *h = curl_easy_init();
	char url[128];
	long code = 0;
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return code;
}

static int is_ready;
static int ready(void *ud, struct strbuf *why)
{
	(void)ud;
	if (!is_ready)
		sb_adds(why, "the NodeImageCache is not listed yet");
	return is_ready;
}

static void http_endpoints(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	metric_add(metrics_counter(m, "t_total", "t", NULL), 5);
	struct strbuf err = STRBUF_INIT, body = STRBUF_INIT;
	struct metrics_http_opts o = { "127.0.0.1:0", m, NULL, ready, NULL };
	struct metrics_http *s = metrics_http_start(&o, &err);
	assert_non_null(s);
	int port = metrics_http_port(s);
	assert_true(port > 0);
	assert_int_equal(get(port, "/metrics", &body), 200);
	assert_non_null(strstr(body.buf, "t_total 5\n"));
	sb_reset(&body);
	assert_int_equal(get(port, "/healthz", &body), 200);
	sb_reset(&body);
	assert_int_equal(get(port, "/readyz", &body), 503);
	assert_non_null(strstr(body.buf, "not listed yet"));
	is_ready = 1;
	sb_reset(&body);
	assert_int_equal(get(port, "/readyz", &body), 200);
	sb_reset(&body);
	assert_int_equal(get(port, "/nope", &body), 404);
	metrics_http_stop(s);
	/* bad addresses are named */
	const char *bad[] = { "8080", "127.0.0.1:99999", "::1:80", "127.0.0.1:x" };
	for (size_t i = 0; i < 4; i++) {
		sb_reset(&err);
		o.bind_address = bad[i];
		assert_null(metrics_http_start(&o, &err));
		if (!strstr(err.buf, bad[i]))
			fail_msg("error for \"%s\" does not name it: %s", bad[i], err.buf);
	}
	sb_release(&err);
	sb_release(&body);
	metrics_free(m);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_format),
		cmocka_unit_test(concurrent_updates),
		cmocka_unit_test(http_endpoints),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
