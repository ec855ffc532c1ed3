/* ic_status.c - status vocabulary, task results and final status aggregation; see ic_status.h. */
#include "ic_status.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static const struct {
	const char *name, *reason, *message;
} ops[] = {
	[IC_OP_NONE] = { "none", "", "" },
	[IC_OP_CREATE] = { "create", IC_REASON_CREATE, IC_MSG_PULLING },
	[IC_OP_UPDATE] = { "update", IC_REASON_UPDATE, IC_MSG_UPDATING },
	[IC_OP_REFRESH] = { "refresh", IC_REASON_REFRESH, IC_MSG_REFRESHING },
	[IC_OP_PURGE] = { "purge", IC_REASON_PURGE, IC_MSG_PURGING },
};

const char *ic_op_reason(enum ic_op_type op) { return ops[op].reason; }
const char *ic_op_processing_message(enum ic_op_type op) { return ops[op].message; }
const char *ic_op_name(enum ic_op_type op) { return ops[op].name; }

enum ic_op_type ic_op_from_reason(const char *reason)
{
	for (int i = IC_OP_CREATE; i <= IC_OP_PURGE; i++)
		if (reason && !strcmp(reason, ops[i].reason))
			return (enum ic_op_type)i;
	return IC_OP_NONE;
}

void ic_task_clear(struct ic_task *t)
{
	free(t->node);
	free(t->hostname);
	free(t->image);
	free(t->job_name);
	free(t->reason);
	free(t->message);
	free(t->runtime);
	free(t->socket);
	free(t->seen_rv);
	free(t->pull_error);
	memset(t, 0, sizeof *t);
}

void ic_task_set_result(struct ic_task *t, enum ic_task_state s, const char *reason, const char *message)
{
	t->state = s;
	free(t->reason);
	free(t->message);
	t->reason = reason ? xstrdup(reason) : NULL;
	t->message = message ? xstrdup(message) : NULL;
}

static void set_time(json_t *o, const char *key, time_t t)
{
	char buf[32];
	kf_rfc3339(t, buf);
	json_object_set_new(o, key, json_string(buf));
}

static int cmp_task_ptr(const void *a, const void *b)
{
	const struct ic_task *x = *(const struct ic_task *const *)a, *y = *(const struct ic_task *const *)b;
	int c = strcmp(x->image, y->image);
	if (!c)
		c = strcmp(x->hostname ? x->hostname : "", y->hostname ? y->hostname : "");
	if (!c)
		c = (int)x->action - (int)y->action;
	return c;
}

json_t *ic_status_final(enum ic_op_type op, const struct ic_task *tasks, size_t n, time_t start, time_t now)
{
	json_t *st = json_object();
	const char *status = IC_STATUS_NOIMAGES, *message = IC_MSG_NOIMAGES;
	int any_ok = 0, pull_failed = 0, delete_failed = 0;
	const struct ic_task **failed = xcalloc(n, sizeof *failed);
	size_t nf = 0;
	for (size_t i = 0; i < n; i++) {
		if (ic_task_ok(tasks[i].state)) {
			any_ok = 1;
		} else {
			/* pending or running at the end only happens when an operation is cut short: unknown */
			failed[nf++] = &tasks[i];
			if (tasks[i].action == IC_ACTION_PULL)
				pull_failed = 1;
			else
				delete_failed = 1;
		}
	}
	if (pull_failed || delete_failed) {
		status = IC_STATUS_FAILED;
		message = pull_failed ? IC_MSG_PULL_FAILED : IC_MSG_DELETE_FAILED;
	} else if (any_ok) {
		status = IC_STATUS_SUCCEEDED;
		message = op == IC_OP_PURGE ? IC_MSG_DELETED : IC_MSG_PULLED;
	}
	json_object_set_new(st, "status", json_string(status));
	json_object_set_new(st, "reason", json_string(ic_op_reason(op)));
	json_object_set_new(st, "message", json_string(message));
	if (nf) {
		qsort(failed, nf, sizeof *failed, cmp_task_ptr);
		json_t *fm = json_object();
		for (size_t i = 0; i < nf; i++) {
			const struct ic_task *t = failed[i];
			json_t *arr = json_object_get(fm, t->image);
			if (!arr) {
				arr = json_array();
				json_object_set_new(fm, t->image, arr);
			}
			int unknown = !ic_task_done(t->state) || (t->state == IC_TASK_UNKNOWN && !t->reason);
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "node", t->hostname ? t->hostname : "",
							     "reason",
							     unknown ? IC_REASON_STATUS_UNKNOWN : t->reason ? t->reason : "",
							     "message",
							     unknown ? IC_MSG_STATUS_UNKNOWN : t->message ? t->message : ""));
		}
		json_object_set_new(st, "failures", fm);
	}
	set_time(st, "startTime", start);
	set_time(st, "completionTime", now);
	free(failed);
	return st;
}

json_t *ic_status_processing(enum ic_op_type op, time_t start)
{
	json_t *st = json_pack("{s:s, s:s, s:s}", "status", IC_STATUS_PROCESSING, "reason", ic_op_reason(op),
			       "message", ic_op_processing_message(op));
	set_time(st, "startTime", start);
	return st;
}

json_t *ic_status_aborted(json_t *old_status, time_t now)
{
	json_t *st = json_pack("{s:s, s:s, s:s}", "status", IC_STATUS_ABORTED, "reason", IC_REASON_ABORTED,
			       "message", IC_MSG_ABORTED);
	json_t *start = json_object_get(old_status, "startTime");
	if (json_is_string(start))
		json_object_set(st, "startTime", start);
	else
		set_time(st, "startTime", now);
	set_time(st, "completionTime", now);
	return st;
}

json_t *ic_status_invalid(const char *msg, time_t now)
{
	json_t *st = json_pack("{s:s, s:s, s:s}", "status", IC_STATUS_FAILED, "reason", IC_REASON_SPEC_INVALID,
			       "message", msg);
	set_time(st, "startTime", now);
	set_time(st, "completionTime", now);
	return st;
}

static json_t *find_condition(json_t *status, const char *type)
{
	json_t *conds = json_object_get(status, "conditions");
	size_t i;
	json_t *c;
	json_array_foreach(conds, i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		if (t && !strcmp(t, type))
			return c;
	}
	return NULL;
}

static json_t *condition(json_t *old_status, const char *type, const char *cstatus, const char *reason,
			 const char *message, long long generation, time_t now)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", type, "status", cstatus, "reason", reason,
			      "message", message, "observedGeneration", (json_int_t)generation);
	json_t *old = find_condition(old_status, type);
	const char *ostatus = json_string_value(json_object_get(old, "status"));
	json_t *olt = json_object_get(old, "lastTransitionTime");
	if (ostatus && !strcmp(ostatus, cstatus) && json_is_string(olt))
		json_object_set(c, "lastTransitionTime", olt);
	else
		set_time(c, "lastTransitionTime", now);
	return c;
}

void ic_status_decorate(json_t *status, json_t *old_status, long long generation, json_t *applied_spec, time_t now)
{
	const char *st = json_string_value(json_object_get(status, "status"));
	const char *reason = json_string_value(json_object_get(status, "reason"));
	const char *msg = json_string_value(json_object_get(status, "message"));
	st = st ? st : "";
	reason = reason && *reason ? reason : "Unknown";
	msg = msg ? msg : "";
	int processing = !strcmp(st, IC_STATUS_PROCESSING);
	const char *ready = processing ? "Unknown" : !strcmp(st, IC_STATUS_SUCCEEDED) ? "True" : "False";
	json_t *conds = json_array();
	json_array_append_new(conds, condition(old_status, "Ready", ready, processing ? reason : st, msg,
					       generation, now));
	json_array_append_new(conds, condition(old_status, "Progressing", processing ? "True" : "False", reason,
					       msg, generation, now));
	json_object_set_new(status, "conditions", conds);
	json_t *applied = applied_spec ? applied_spec : json_object_get(old_status, "appliedSpec");
	if (applied)
		json_object_set(status, "appliedSpec", applied);
}

void ic_status_set_progress(json_t *status, const struct ic_task *tasks, size_t n)
{
	size_t done = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (ic_task_done(tasks[i].state))
			done++;
		if (tasks[i].state == IC_TASK_FAILED || tasks[i].state == IC_TASK_UNKNOWN)
			failed++;
	}
	json_object_set_new(status, "progress", json_pack("{s:I, s:I, s:I}", "total", (json_int_t)n, "done",
							  (json_int_t)done, "failed", (json_int_t)failed));
}

long long ic_status_observed_generation(json_t *status)
{
	json_t *g = json_object_get(find_condition(status, "Ready"), "observedGeneration");
	return json_is_integer(g) ? (long long)json_integer_value(g) : -1;
}
