/* ic_tracker.c - Job/Pod -> task result; see ic_tracker.h. */
#include "ic_tracker.h"

#include <string.h>

#include "util/util.h"

static int job_condition(json_t *job, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(kf_jget(job, "status", "conditions", NULL), i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		const char *s = json_string_value(json_object_get(c, "status"));
		if (t && s && !strcmp(t, type) && !strcmp(s, "True"))
			return 1;
	}
	return 0;
}

static void dup_or_empty(char **dst, const char *s)
{
	*dst = xstrdup(s ? s : "");
}

/* The single app container's terminated state, reported like upstream */
static void terminated_reason(json_t *pod, char **reason, char **message)
{
	json_t *cs = kf_jget(pod, "status", "containerStatuses", NULL);
	if (json_array_size(cs) != 1) {
		*reason = xstrdup(IC_REASON_STATUS_UNKNOWN);
		*message = xstrdup(IC_MSG_STATUS_UNKNOWN);
		return;
	}
	json_t *term = kf_jget(json_array_get(cs, 0), "state", "terminated", NULL);
	if (!term) {
		/* e.g. the init container failed: say so rather than nothing */
		json_t *ics = kf_jget(pod, "status", "initContainerStatuses", NULL);
		json_t *it = kf_jget(json_array_get(ics, 0), "state", "terminated", NULL);
		if (it) {
			dup_or_empty(reason, kf_jstr(it, "reason", NULL));
			dup_or_empty(message, kf_jstr(it, "message", NULL));
			return;
		}
		*reason = xstrdup("");
		*message = xstrdup("");
		return;
	}
	dup_or_empty(reason, kf_jstr(term, "reason", NULL));
	const char *m = kf_jstr(term, "message", NULL);
	char *trimmed = xstrdup(m ? m : "");
	size_t n = strlen(trimmed);
	while (n && (trimmed[n - 1] == '\n' || trimmed[n - 1] == ' '))
		trimmed[--n] = '\0';
	*message = trimmed;
}

enum ic_task_state ic_job_result(json_t *job, json_t *pod, char **reason, char **message)
{
	*reason = *message = NULL;
	const char *phase = kf_jstr(pod, "status", "phase", NULL);
	json_t *succ = kf_jget(job, "status", "succeeded", NULL);
	if ((phase && !strcmp(phase, "Succeeded")) || job_condition(job, "Complete") ||
	    (json_is_integer(succ) && json_integer_value(succ) > 0)) {
		/* a delete Job's helper keeps an image a container uses or the runtime pins: "kept IMAGE: ..." */
		const char *msg = kf_jstr(json_array_get(kf_jget(pod, "status", "containerStatuses", NULL), 0), "state",
					  "terminated", "message", NULL);
		if (msg && !strncmp(msg, "kept ", 5)) {
			*reason = xstrdup(strstr(msg, "pins it") ? "ImagePinned" : "ImageInUse");
			*message = xstrdup(msg);
			return IC_TASK_KEPT;
		}
		return IC_TASK_SUCCEEDED;
	}
	if (phase && !strcmp(phase, "Failed")) {
		terminated_reason(pod, reason, message);
		return IC_TASK_FAILED;
	}
	if (job_condition(job, "Failed")) {
		if (pod) {
			terminated_reason(pod, reason, message);
		} else {
			json_t *c;
			size_t i;
			json_array_foreach(kf_jget(job, "status", "conditions", NULL), i, c) {
				const char *t = json_string_value(json_object_get(c, "type"));
				if (t && !strcmp(t, "Failed")) {
					dup_or_empty(reason, kf_jstr(c, "reason", NULL));
					dup_or_empty(message, kf_jstr(c, "message", NULL));
				}
			}
			if (!*reason)
				dup_or_empty(reason, "Failed");
			if (!*message)
				dup_or_empty(message, "");
		}
		return IC_TASK_FAILED;
	}
	/* waiting states that the kubelet will never get out of by itself */
	json_t *cs = kf_jget(pod, "status", "containerStatuses", NULL);
	size_t i;
	json_t *c;
	json_array_foreach(cs, i, c) {
		json_t *w = kf_jget(c, "state", "waiting", NULL);
		const char *wr = kf_jstr(w, "reason", NULL);
		if (wr && (!strcmp(wr, "InvalidImageName") || !strcmp(wr, "ErrImageNeverPull"))) {
			*reason = xstrdup(wr);
			dup_or_empty(message, kf_jstr(w, "message", NULL));
			return IC_TASK_FAILED;
		}
	}
	return IC_TASK_RUNNING;
}

const char *ic_pull_error(json_t *pod)
{
	size_t i;
	json_t *c;
	json_array_foreach(kf_jget(pod, "status", "containerStatuses", NULL), i, c) {
		json_t *w = kf_jget(c, "state", "waiting", NULL);
		const char *r = kf_jstr(w, "reason", NULL), *m = kf_jstr(w, "message", NULL);
		if (r && !strcmp(r, "ErrImagePull") && m && *m)
			return m;
	}
	return NULL;
}

void ic_task_expire(struct ic_task *t, json_t *pod, json_t *events)
{
	const char *job = t->job_name ? t->job_name : "";
	if (!pod) {
		char *m = xasprintf("No pods matched job %s", job);
		ic_task_set_result(t, IC_TASK_UNKNOWN, m, m);
		free(m);
		return;
	}
	json_t *cs = kf_jget(pod, "status", "containerStatuses", NULL);
	const char *reason = NULL, *message = NULL;
	if (json_array_size(cs) >= 1) {
		json_t *st = kf_jget(json_array_get(cs, 0), "state", NULL);
		json_t *w = json_object_get(st, "waiting");
		json_t *term = json_object_get(st, "terminated");
		json_t *src = w ? w : term;
		reason = kf_jstr(src, "reason", NULL);
		message = kf_jstr(src, "message", NULL);
		if (!src) {
			reason = "Running";
			message = "The image was pulled but the container did not finish before the deadline";
		}
	} else {
		/* no container status yet: still initialising, or never started on the node */
		json_t *ics = kf_jget(pod, "status", "initContainerStatuses", NULL);
		json_t *w = kf_jget(json_array_get(ics, 0), "state", "waiting", NULL);
		if (w) {
			reason = kf_jstr(w, "reason", NULL);
			message = kf_jstr(w, "message", NULL);
		} else {
			reason = "Pending";
			message = "Check if node is ready";
		}
	}
	struct strbuf msg = STRBUF_INIT;
	sb_adds(&msg, message ? message : "");
	if (t->action == IC_ACTION_PULL) {
		size_t i;
		json_t *e;
		json_array_foreach(events, i, e) {
			const char *r = kf_jstr(e, "reason", NULL);
			const char *m = kf_jstr(e, "message", NULL);
			if (r && !strcmp(r, "Failed") && m)
				sb_addf(&msg, ":%s", m);
		}
		if (t->pull_error && !strstr(msg.buf, t->pull_error))
			sb_addf(&msg, ":%s", t->pull_error);
	}
	ic_task_set_result(t, IC_TASK_FAILED, reason ? reason : "", msg.buf);
	sb_release(&msg);
}
