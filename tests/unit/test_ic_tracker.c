/* test_ic_tracker.c - task results from Job and Pod objects, and the reports at a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_tracker.h"
#include "util/util.h"

static json_t *load(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ic/%s", TEST_DATA_DIR, name);
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fail_msg("%s: %s", path, e.text);
	return j;
}

static void result_is(const char *job_file, const char *pod_file, enum ic_task_state want, const char *want_reason,
		      const char *want_message)
{
	json_t *job = load(job_file), *pod = pod_file ? load(pod_file) : NULL;
	char *reason, *message;
	enum ic_task_state s = ic_job_result(job, pod, &reason, &message);
	if (s != want)
		fail_msg("%s + %s: state %d, want %d", job_file, pod_file ? pod_file : "-", s, want);
	if (want_reason)
		assert_string_equal(reason, want_reason);
	else
		assert_null(reason);
	if (want_message)
		assert_string_equal(message, want_message);
	free(reason);
	free(message);
	json_decref(job);
	json_decref(pod);
}

static void results_from_job_and_pod(void **state)
{
	(void)state;
	result_is("job-running.json", NULL, IC_TASK_RUNNING, NULL, NULL);
	result_is("job-running.json", "pod-errimagepull.json", IC_TASK_RUNNING, NULL, NULL);
	result_is("job-running.json", "pod-backoff.json", IC_TASK_RUNNING, NULL, NULL);
	result_is("job-complete.json", NULL, IC_TASK_SUCCEEDED, NULL, NULL);
	/* a pod already Succeeded when first seen counts (upstream only saw transitions) */
	result_is("job-running.json", "pod-succeeded.json", IC_TASK_SUCCEEDED, NULL, NULL);
	/* the delete helper kept an image a container uses (issue 10, item 12) */
	result_is("job-running.json", "pod-delete-kept.json", IC_TASK_KEPT, "ImageInUse",
		  "kept 10.240.1.1:5000/app:1: used by container web of pod shop/web-6d4f");
	/* the delete helper's termination message is the failure message, trailing newline trimmed */
	result_is("job-running.json", "pod-delete-failed.json", IC_TASK_FAILED, "Error",
		  "rmi 127.0.0.1:5001/kftest/app2:1: rpc error: code = Unavailable desc = connection refused");
	/* a reference the kubelet can never pull fails at once, not at the deadline */
	result_is("job-running.json", "pod-invalid-name.json", IC_TASK_FAILED, "InvalidImageName",
		  "Failed to apply default image tag \"Bad/Name\": couldn't parse image reference");
	/* Job failed without a pod (activeDeadlineSeconds): the Job's own reason */
	result_is("job-failed-deadline.json", NULL, IC_TASK_FAILED, "DeadlineExceeded",
		  "Job was active longer than specified deadline");
}

static void pod_failed_with_two_containers_is_unknown(void **state)
{
	(void)state;
	json_t *job = load("job-running.json"), *pod = load("pod-delete-failed.json");
	json_t *cs = json_object_get(json_object_get(pod, "status"), "containerStatuses");
	json_array_append(cs, json_array_get(cs, 0));
	char *reason, *message;
	assert_int_equal(ic_job_result(job, pod, &reason, &message), IC_TASK_FAILED);
	assert_string_equal(reason, "ImagePullStatusUnknown");
	assert_string_equal(message,
			    "Unable to get the status of Image pull. Retry after some time or contact cluster administrator");
	free(reason);
	free(message);
	json_decref(job);
	json_decref(pod);
}

static void expire_is(const char *pod_file, int with_events, const char *pull_error, enum ic_action action,
		      enum ic_task_state want, const char *want_reason, const char *want_message)
{
	struct ic_task t = { 0 };
	t.job_name = xstrdup("imagecache1-m1");
	t.pull_error = pull_error ? xstrdup(pull_error) : NULL;
	t.action = action;
	t.state = IC_TASK_RUNNING;
	json_t *pod = pod_file ? load(pod_file) : NULL;
	json_t *events = with_events ? load("events-failed.json") : NULL;
	ic_task_expire(&t, pod, events);
	assert_int_equal(t.state, want);
	assert_string_equal(t.reason, want_reason);
	assert_string_equal(t.message, want_message);
	ic_task_clear(&t);
	json_decref(pod);
	json_decref(events);
}

static void deadline_reports_like_upstream(void **state)
{
	(void)state;
	expire_is(NULL, 0, NULL, IC_ACTION_PULL, IC_TASK_UNKNOWN, "No pods matched job imagecache1-m1",
		  "No pods matched job imagecache1-m1");
	expire_is("pod-pending.json", 0, NULL, IC_ACTION_PULL, IC_TASK_FAILED, "Pending", "Check if node is ready");
	/* waiting message, then ":" + each Failed event's message (pull Jobs only) */
	expire_is("pod-backoff.json", 1, NULL, IC_ACTION_PULL, IC_TASK_FAILED, "ImagePullBackOff",
		  "Back-off pulling image \"127.0.0.1:5001/kftest/missing:1\":Failed to pull image "
		  "\"127.0.0.1:5001/kftest/missing:1\": rpc error: code = NotFound desc = not found:Error: "
		  "ErrImagePull:Error: ImagePullBackOff");
	expire_is("pod-backoff.json", 1, NULL, IC_ACTION_DELETE, IC_TASK_FAILED, "ImagePullBackOff",
		  "Back-off pulling image \"127.0.0.1:5001/kftest/missing:1\"");
}

static void deadline_report_keeps_the_pull_error_seen_earlier(void **state)
{
	(void)state;
	json_t *err_pod = load("pod-errimagepull.json"), *backoff = load("pod-backoff.json");
	const char *pe = ic_pull_error(err_pod);
	assert_non_null(pe);
	assert_non_null(strstr(pe, "127.0.0.1:5001/kftest/missing:1: not found"));
	assert_null(ic_pull_error(backoff));
	assert_null(ic_pull_error(NULL));
	/* the kubelet's Events never came: the error seen on the pod says why */
	struct strbuf want = STRBUF_INIT;
	sb_addf(&want, "Back-off pulling image \"127.0.0.1:5001/kftest/missing:1\":%s", pe);
	expire_is("pod-backoff.json", 0, pe, IC_ACTION_PULL, IC_TASK_FAILED, "ImagePullBackOff", want.buf);
	/* the Events already carry it: not twice */
	expire_is("pod-backoff.json", 1, "rpc error: code = NotFound desc = not found", IC_ACTION_PULL, IC_TASK_FAILED,
		  "ImagePullBackOff",
		  "Back-off pulling image \"127.0.0.1:5001/kftest/missing:1\":Failed to pull image "
		  "\"127.0.0.1:5001/kftest/missing:1\": rpc error: code = NotFound desc = not found:Error: "
		  "ErrImagePull:Error: ImagePullBackOff");
	/* delete Jobs report as before */
	expire_is("pod-backoff.json", 0, pe, IC_ACTION_DELETE, IC_TASK_FAILED, "ImagePullBackOff",
		  "Back-off pulling image \"127.0.0.1:5001/kftest/missing:1\"");
	sb_release(&want);
	json_decref(err_pod);
	json_decref(backoff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(results_from_job_and_pod),
		cmocka_unit_test(pod_failed_with_two_containers_is_unknown),
		cmocka_unit_test(deadline_reports_like_upstream),
		cmocka_unit_test(deadline_report_keeps_the_pull_error_seen_earlier),
	};
	return cmocka_run_group_tests_name("ic_tracker", tests, NULL, NULL);
}
