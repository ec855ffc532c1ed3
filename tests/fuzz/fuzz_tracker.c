/* fuzz_tracker.c - libFuzzer target: the Job/Pod/Event tracker (src/imagecache/ic_tracker.h) given objects
 * an attacker shapes. Pods in a tenant's namespace that carry our Job labels are the tenant's to write, and
 * Events about them too, so every field the tracker reads may hold anything.
 *
 * Input: a JSON array [job, pod, events] (any element may be missing or of any type; a top-level value that
 * is not an array is used as all three). Runs ic_job_result, ic_pull_error and ic_task_expire for a pull and
 * a delete task, as the controller does (the pull error kept from the pod, then the deadline report).
 * Invariants beyond "no crash, no leak, no UB": a failed result carries a reason and a message, other
 * results none; an expired task is failed or unknown, with both set. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_status.h"
#include "imagecache/ic_tracker.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!root)
		return 0;
	json_t *job = json_is_array(root) ? json_array_get(root, 0) : root;
	json_t *pod = json_is_array(root) ? json_array_get(root, 1) : root;
	json_t *events = json_is_array(root) ? json_array_get(root, 2) : root;

	char *reason = NULL, *message = NULL;
	enum ic_task_state s = ic_job_result(job, pod, &reason, &message);
	int with_text = s == IC_TASK_FAILED || s == IC_TASK_KEPT;
	if (with_text ? (!reason || !message) : (reason || message || (s != IC_TASK_SUCCEEDED && s != IC_TASK_RUNNING)))
		abort();
	free(reason);
	free(message);

	const char *perr = ic_pull_error(pod);
	for (int action = IC_ACTION_PULL; action <= IC_ACTION_DELETE; action++) {
		struct ic_task t = { 0 };
		t.job_name = xstrdup("job-1");
		t.action = action;
		t.state = IC_TASK_RUNNING;
		t.pull_error = perr ? xstrdup(perr) : NULL;
		ic_task_expire(&t, pod, events);
		if ((t.state != IC_TASK_FAILED && t.state != IC_TASK_UNKNOWN) || !t.reason || !t.message)
			abort();
		ic_task_clear(&t);
	}
	json_decref(root);
	return 0;
}
