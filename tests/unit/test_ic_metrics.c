/* test_ic_metrics.c - the controller's /metrics exposition (ic_metrics.c): every family registered, with
 * its series at 0 before anything happened; the work queue's depth and adds; API requests by verb and
 * responses by code, counted by the real client against a scripted responder; syncs by key kind and
 * result; operations by type and result (Cancelled for one whose cache went), their tasks by action and
 * result; agent mode's pulls in flight and operations running; caches by status (annotation fallback
 * included); and readiness before the informers listed. Served over HTTP by metrics_http as the
 * controller serves it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "http_script.h"
#include "imagecache/ic_controller_int.h"
#include "imagecache/ic_metrics.h"
#include "util/metrics_http.h"
#include "util/util.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void expect_line(const char *text, const char *line)
{
	char *want = xasprintf("\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("missing line \"%s\" in:\n%s", line, text);
	free(want);
}

/* An operation of the given type with tasks (node, image, action, state). */
struct t {
	const char *node, *image;
	int action, state;
};
static struct ic_op *make_op(enum ic_op_type type, const struct t *ts, size_t n)
{
	struct ic_op *op = xcalloc(1, sizeof *op);
	op->type = type;
	op->ns = xstrdup("ns");
	op->name = xstrdup("c");
	ic_tasks_init(&op->ts);
	for (size_t i = 0; i < n; i++) {
		uint32_t ni = ic_tasks_add_node(&op->ts, ts[i].node, ts[i].node, NULL, NULL);
		uint32_t ii = ic_tasks_add_image(&op->ts, ts[i].image);
		ic_tasks_add(&op->ts, ni, ii, (enum ic_action)ts[i].action, ts[i].state);
	}
	ic_tasks_seal(&op->ts);
	return op;
}

static void render(struct metrics *reg, struct strbuf *out)
{
	sb_reset(out);
	sb_addc(out, '\n');
	metrics_render(reg, out);
}

static size_t collect_body(char *p, size_t s, size_t n, void *ud)
{
	sb_add(ud, p, s * n);
	return s * n;
}

static void job_mode_exposition(void **state)
{
	(void)state;
	static const struct hs_step steps[] = {
		{ 200, NULL, "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\"}}", 0, 0, 0, 0 },
		{ 404, NULL, "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}", 0, 0, 0, 0 },
		{ 200, NULL, "{\"kind\":\"Status\"}", 0, 0, 0, 0 },
	};
	struct hs hs;
	assert_int_equal(hs_start(&hs, steps, ARRAY_SIZE(steps)), 0);
	char url[64];
	hs_url(&hs, url, sizeof url);
	struct kube_config cfg = { .server = url, .namespace = "default" };
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, NULL, &err);
	assert_non_null(c);
	struct ic_controller_opts o = { .mode = IC_MODE_JOBS, .workers = 1 };
	struct ic_controller *ctl = ic_controller_new(c, &o);
	struct metrics *reg = metrics_new();
	ic_controller_metrics(ctl, reg);

	/* before anything happened: every family, fixed series at 0 */
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_workqueue_depth 0");
	expect_line(text.buf, "kubefledged_controller_jobs_in_flight 0");
	expect_line(text.buf, "kubefledged_controller_imagecaches{status=\"Succeeded\"} 0");
	expect_line(text.buf, "kubefledged_controller_imagecaches{status=\"Pending\"} 0");
	expect_line(text.buf, "kubefledged_controller_operations_running{type=\"purge\"} 0");
	expect_line(text.buf, "kubefledged_controller_api_requests_total{verb=\"PATCH\"} 0");
	expect_line(text.buf, "# TYPE kubefledged_controller_sync_duration_seconds histogram");
	expect_line(text.buf, "# TYPE kubefledged_controller_operations_total counter");
	assert_null(strstr(text.buf, "pulls_in_flight")); /* agent mode's */

	/* the API client's counters: 2 GETs (200, 404), a DELETE (200) */
	struct kube_err ke;
	json_decref(kube_get(c, "/api/v1/nodes/n1", &ke));
	assert_null(kube_get(c, "/api/v1/nodes/gone", &ke));
	assert_int_equal(kube_delete(c, "/api/v1/nodes/n1", NULL, &ke), 0);
	/* the queue: two keys queued, one of them twice */
	kube_wq_add(ctl->q, "ns/a");
	kube_wq_add(ctl->q, "ns/b");
	kube_wq_add(ctl->q, "ns/a");
	/* syncs */
	ic_metrics_sync(ctl, "ns/a", 3, 20, 0);
	ic_metrics_sync(ctl, "ns/a", 1, 4, -1);
	ic_metrics_sync(ctl, IC_NODE_KEY_PREFIX "n1", 1, 2, 0);
	/* a create that finished: 2 pulls succeeded, 1 present, 1 failed */
	static const struct t create_tasks[] = {
		{ "n1", "r/a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED }, { "n2", "r/a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED },
		{ "n1", "r/b:1", IC_ACTION_PULL, IC_TASK_PRESENT },   { "n2", "r/b:1", IC_ACTION_PULL, IC_TASK_FAILED },
	};
	struct ic_op *op = make_op(IC_OP_CREATE, create_tasks, ARRAY_SIZE(create_tasks));
	ic_metrics_op_started(ctl, op);
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_operations_running{type=\"create\"} 1");
	ic_metrics_op_finished(ctl, op, IC_STATUS_FAILED);
	ic_metrics_op_finished(ctl, op, IC_STATUS_FAILED); /* once only */
	ic_metrics_op_freed(ctl, op);
	ic_op_free(ctl, op);
	/* a purge whose cache was deleted before it finished */
	static const struct t purge_tasks[] = { { "n1", "r/a:1", IC_ACTION_DELETE, IC_TASK_KEPT } };
	op = make_op(IC_OP_PURGE, purge_tasks, 1);
	ic_metrics_op_started(ctl, op);
	ic_op_free(ctl, op); /* ic_op_free tells the metrics */
	atomic_store(&ctl->active_jobs, 7);
	atomic_store(&ctl->n_jobs_created, 9);

	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_workqueue_depth 2");
	expect_line(text.buf, "kubefledged_controller_workqueue_adds_total 2");
	expect_line(text.buf, "kubefledged_controller_api_requests_total{verb=\"GET\"} 2");
	expect_line(text.buf, "kubefledged_controller_api_requests_total{verb=\"DELETE\"} 1");
	expect_line(text.buf, "kubefledged_controller_api_responses_total{code=\"200\"} 2");
	expect_line(text.buf, "kubefledged_controller_api_responses_total{code=\"404\"} 1");
	expect_line(text.buf, "kubefledged_controller_sync_duration_seconds_count{kind=\"imagecache\",result=\"success\"} 1");
	expect_line(text.buf, "kubefledged_controller_sync_duration_seconds_count{kind=\"imagecache\",result=\"error\"} 1");
	expect_line(text.buf, "kubefledged_controller_sync_duration_seconds_count{kind=\"node\",result=\"success\"} 1");
	expect_line(text.buf, "kubefledged_controller_sync_duration_seconds_sum{kind=\"imagecache\",result=\"success\"} 0.02");
	expect_line(text.buf, "kubefledged_controller_workqueue_queue_duration_seconds_count{kind=\"imagecache\"} 2");
	expect_line(text.buf, "kubefledged_controller_operations_total{type=\"create\",result=\"Failed\"} 1");
	expect_line(text.buf, "kubefledged_controller_operations_total{type=\"purge\",result=\"Cancelled\"} 1");
	expect_line(text.buf, "kubefledged_controller_operation_duration_seconds_count{type=\"create\"} 1");
	expect_line(text.buf, "kubefledged_controller_operations_running{type=\"create\"} 0");
	expect_line(text.buf, "kubefledged_controller_tasks_total{action=\"pull\",result=\"succeeded\"} 2");
	expect_line(text.buf, "kubefledged_controller_tasks_total{action=\"pull\",result=\"present\"} 1");
	expect_line(text.buf, "kubefledged_controller_tasks_total{action=\"pull\",result=\"failed\"} 1");
	assert_null(strstr(text.buf, "result=\"kept\"")); /* the cancelled purge's tasks are not results */
	expect_line(text.buf, "kubefledged_controller_jobs_in_flight 7");
	expect_line(text.buf, "kubefledged_controller_jobs_created_total 9");
	assert_non_null(strstr(text.buf, "\nkubefledged_controller_info{version=\""));

	/* readiness: the informers have not listed */
	sb_reset(&err);
	assert_int_equal(ic_controller_ready(ctl, &err), 0);
	assert_string_equal(err.buf, "the nodes informer has not listed yet");

	/* served over HTTP as the controller serves it */
	struct metrics_http_opts mo = { "127.0.0.1:0", reg, NULL, NULL, NULL };
	sb_reset(&err);
	struct metrics_http *http = metrics_http_start(&mo, &err);
	assert_non_null(http);
	char murl[64];
	snprintf(murl, sizeof murl, "http://127.0.0.1:%d/metrics", metrics_http_port(http));
	CURL *h = curl_easy_init();
	struct strbuf body = STRBUF_INIT;
	curl_easy_setopt(h, CURLOPT_URL, murl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_cleanup(h);
	assert_non_null(strstr(body.buf, "kubefledged_controller_operations_total{type=\"create\",result=\"Failed\"} 1\n"));
	sb_release(&body);
	metrics_http_stop(http);

	kube_wq_shutdown(ctl->q);
	ic_controller_free(ctl);
	metrics_free(reg);
	kube_client_free(c);
	hs_stop(&hs);
	sb_release(&err);
	sb_release(&text);
}

static void agent_mode_counts_running_pulls(void **state)
{
	(void)state;
	struct kube_config cfg = { .server = "http://127.0.0.1:9", .namespace = "default" };
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, NULL, &err);
	assert_non_null(c);
	struct ic_controller_opts o = { .mode = IC_MODE_AGENT, .workers = 1 };
	struct ic_controller *ctl = ic_controller_new(c, &o);
	struct metrics *reg = metrics_new();
	ic_controller_metrics(ctl, reg);
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_pulls_in_flight 0");
	assert_null(strstr(text.buf, "jobs_in_flight"));
	assert_non_null(strstr(text.buf, ",mode=\"agent\"} 1\n"));

	static const struct t tasks[] = {
		{ "n1", "r/a:1", IC_ACTION_PULL, IC_TASK_RUNNING },   { "n2", "r/a:1", IC_ACTION_PULL, IC_TASK_RUNNING },
		{ "n3", "r/a:1", IC_ACTION_PULL, IC_TASK_RUNNING },   { "n1", "r/b:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED },
		{ "n1", "r/old:1", IC_ACTION_DELETE, IC_TASK_RUNNING },
	};
	struct ic_op *op = make_op(IC_OP_REFRESH, tasks, ARRAY_SIZE(tasks));
	ic_metrics_op_progress(ctl, op); /* not started: ignored */
	ic_metrics_op_started(ctl, op);
	ic_metrics_op_progress(ctl, op);
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_pulls_in_flight 3");
	expect_line(text.buf, "kubefledged_controller_operations_running{type=\"refresh\"} 1");
	for (size_t i = 0; i < op->ts.n; i++)
		op->ts.v[i].state = IC_TASK_SUCCEEDED;
	op->ts.v[0].state = IC_TASK_RUNNING;
	ic_metrics_op_progress(ctl, op);
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_pulls_in_flight 1");
	op->ts.v[0].state = IC_TASK_SUCCEEDED;
	ic_metrics_op_progress(ctl, op);
	ic_metrics_op_finished(ctl, op, IC_STATUS_SUCCEEDED);
	ic_op_free(ctl, op);
	render(reg, &text);
	expect_line(text.buf, "kubefledged_controller_pulls_in_flight 0");
	expect_line(text.buf, "kubefledged_controller_operations_running{type=\"refresh\"} 0");
	expect_line(text.buf, "kubefledged_controller_operations_total{type=\"refresh\",result=\"Succeeded\"} 1");
	expect_line(text.buf, "kubefledged_controller_tasks_total{action=\"pull\",result=\"succeeded\"} 4");
	expect_line(text.buf, "kubefledged_controller_tasks_total{action=\"delete\",result=\"succeeded\"} 1");
	sb_release(&text);
	ic_controller_free(ctl);
	metrics_free(reg);
	kube_client_free(c);
	sb_release(&err);
}

static void caches_count_by_status_word(void **state)
{
	(void)state;
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{\"status\":\"Succeeded\"}}", "Succeeded" },
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{\"status\":\"Processing\"}}", "Processing" },
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{\"status\":\"NoImagesPulledOrDeleted\"}}",
		  "NoImagesPulledOrDeleted" },
		{ "{\"metadata\":{\"name\":\"a\"}}", "Pending" },
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{}}", "Pending" },
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{\"status\":\"Weird\"}}", "Other" },
		{ "{\"metadata\":{\"name\":\"a\"},\"status\":{\"status\":\"Aborted\"}}", "Aborted" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *j = parse(cases[i].json);
		assert_string_equal(ic_metrics_cache_status(j), cases[i].want);
		json_decref(j);
	}
	/* the recorded cache object */
	struct strbuf err = STRBUF_INIT;
	char *text = kf_read_file(TEST_DATA_DIR "/ic/cache.json", NULL, &err);
	assert_non_null(text);
	json_t *j = parse(text);
	const char *want = kf_jstr(j, "status", "status", NULL);
	assert_string_equal(ic_metrics_cache_status(j), want && *want ? want : "Pending");
	json_decref(j);
	free(text);
	sb_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(job_mode_exposition),
		cmocka_unit_test(agent_mode_counts_running_pulls),
		cmocka_unit_test(caches_count_by_status_word),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests_name("ic_metrics", tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
