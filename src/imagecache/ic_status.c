/* ic_status.c - status vocabulary, task results and final status aggregation; see ic_status.h. */
#include "ic_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/map.h"
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

static void set_time(json_t *o, const char *key, time_t t)
{
	char buf[32];
	kf_rfc3339(t, buf);
	json_object_set_new(o, key, json_string(buf));
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A failed task, for sorting by (image, hostname). */
struct failed_ref {
	const char *image, *host;
	const struct ic_task *t;
};

static int cmp_failed(const void *a, const void *b)
{
	const struct failed_ref *x = a, *y = b;
	int c = strcmp(x->image, y->image);
	return c ? c : strcmp(x->host, y->host);
}

/* Backs k up to a UTF-8 character boundary of s. */
static size_t utf8_boundary(const char *s, size_t k)
{
	while (k && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	return k;
}

/* A long message keeps its head and its tail (where the runtime's reason is: "...: not found",
 * "401 Unauthorized") and loses its middle. */
static json_t *failure_entry(const char *node, const char *reason, const char *message)
{
	char cut[IC_FAILURE_MESSAGE_MAX + 1];
	size_t n = strlen(message);
	if (n > IC_FAILURE_MESSAGE_MAX) {
		size_t head = utf8_boundary(message, IC_FAILURE_MESSAGE_MAX / 3);
		size_t tail_from = n - (IC_FAILURE_MESSAGE_MAX - IC_FAILURE_MESSAGE_MAX / 3 - 5);
		while (tail_from < n && ((unsigned char)message[tail_from] & 0xc0) == 0x80)
			tail_from++;
		memcpy(cut, message, head);
		memcpy(cut + head, " ... ", 5);
		memcpy(cut + head + 5, message + tail_from, n - tail_from + 1);
		message = cut;
	}
	return json_pack("{s:s, s:s, s:s}", "node", node, "reason", reason, "message", message);
}

static size_t entry_bytes(json_t *e)
{
	/* what the entry adds to the serialised object, roughly */
	return strlen(json_string_value(json_object_get(e, "node"))) +
	       strlen(json_string_value(json_object_get(e, "reason"))) +
	       strlen(json_string_value(json_object_get(e, "message"))) + 40;
}

static struct failed_ref *collect_failed(const struct ic_taskset *ts, size_t *n_out, int *pull_failed,
					 int *delete_failed, int *any_ok)
{
	struct failed_ref *f = xcalloc(ts->n ? ts->n : 1, sizeof *f);
	size_t nf = 0;
	for (size_t i = 0; i < ts->n; i++) {
		const struct ic_task *t = &ts->v[i];
		if (t->state == IC_TASK_CANCELLED)
			continue;
		if (ic_task_ok(t->state)) {
			*any_ok = 1;
			continue;
		}
		/* pending or running at the end only happens when an operation is cut short: unknown */
		f[nf++] = (struct failed_ref){ ts->images[t->image].image, ts->nodes[t->node].hostname, t };
		if (t->action == IC_ACTION_PULL)
			*pull_failed = 1;
		else
			*delete_failed = 1;
	}
	qsort(f, nf, sizeof *f, cmp_failed);
	*n_out = nf;
	return f;
}

/* 1 when hostname is a node of the task set (the operation covered it). */
static int covered(const struct ic_taskset *ts, const char *host)
{
	for (size_t i = 0; i < ts->n_nodes; i++)
		if (!strcmp(ts->nodes[i].hostname, host))
			return 1;
	return 0;
}

json_t *ic_status_final(enum ic_op_type op, const struct ic_taskset *ts, json_t *merge_from, time_t start,
			time_t now)
{
	json_t *st = json_object();
	const char *status = IC_STATUS_NOIMAGES, *message = IC_MSG_NOIMAGES;
	int any_ok = 0, pull_failed = 0, delete_failed = 0;
	size_t nf;
	struct failed_ref *f = collect_failed(ts, &nf, &pull_failed, &delete_failed, &any_ok);

	/* (image -> [entries]) of this operation, then the kept ones of the earlier status */
	json_t *all = json_object();
	for (size_t i = 0; i < nf; i++) {
		const struct ic_task *t = f[i].t;
		json_t *arr = json_object_get(all, f[i].image);
		if (!arr) {
			arr = json_array();
			json_object_set_new(all, f[i].image, arr);
		}
		int unknown = !ic_task_done(t->state) || (t->state == IC_TASK_UNKNOWN && !t->reason);
		json_array_append_new(arr, failure_entry(f[i].host, unknown ? IC_REASON_STATUS_UNKNOWN : t->reason ? t->reason : "",
							 unknown ? IC_MSG_STATUS_UNKNOWN : t->message ? t->message : ""));
	}
	free(f);
	if (merge_from) {
		const char *key;
		json_t *arr;
		json_object_foreach(json_object_get(merge_from, "failures"), key, arr) {
			size_t i;
			json_t *e;
			json_array_foreach(arr, i, e) {
				const char *node = json_string_value(json_object_get(e, "node"));
				const char *reason = json_string_value(json_object_get(e, "reason"));
				if (!node || covered(ts, node) || (reason && !strcmp(reason, IC_REASON_MORE_FAILURES)))
					continue;
				json_t *mine = json_object_get(all, key);
				if (!mine) {
					mine = json_array();
					json_object_set_new(all, key, mine);
				}
				json_array_append(mine, e);
				const char *old = kf_jstr(merge_from, "message", NULL);
				if (old && !strcmp(old, IC_MSG_DELETE_FAILED))
					delete_failed = 1;
				else
					pull_failed = 1;
			}
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

	/* bounded copy, images in sorted order */
	if (json_object_size(all)) {
		json_t *fm = json_object();
		size_t n_keys = json_object_size(all), k = 0, bytes = 0, more_images = 0;
		const char **keys = xcalloc(n_keys, sizeof *keys);
		const char *key;
		json_t *arr;
		json_object_foreach(all, key, arr) keys[k++] = key;
		qsort(keys, n_keys, sizeof *keys, cmp_str_ptr);
		for (k = 0; k < n_keys; k++) {
			arr = json_object_get(all, keys[k]);
			size_t n = json_array_size(arr);
			if (bytes > 2 * IC_FAILURES_BUDGET) {
				more_images++;
				continue;
			}
			size_t keep = bytes > IC_FAILURES_BUDGET ? 0 : n < IC_FAILURES_PER_IMAGE ? n : IC_FAILURES_PER_IMAGE;
			json_t *out = json_array();
			for (size_t i = 0; i < keep; i++) {
				json_t *e = json_array_get(arr, i);
				json_t *c = failure_entry(json_string_value(json_object_get(e, "node")),
							  json_string_value(json_object_get(e, "reason")),
							  json_string_value(json_object_get(e, "message")));
				bytes += entry_bytes(c);
				json_array_append_new(out, c);
			}
			if (keep < n) {
				char node[48], msg[200];
				snprintf(node, sizeof node, "+%zu more nodes", n - keep);
				snprintf(msg, sizeof msg, "%zu more nodes failed: see the Events of this ImageCache, or "
					 "kubectl get nodeimagecaches in agent mode", n - keep);
				json_t *c = failure_entry(node, IC_REASON_MORE_FAILURES, msg);
				bytes += entry_bytes(c) + strlen(keys[k]);
				json_array_append_new(out, c);
			}
			json_object_set_new(fm, keys[k], out);
		}
		if (more_images) {
			char key2[48], msg[160];
			snprintf(key2, sizeof key2, "+%zu more images", more_images);
			snprintf(msg, sizeof msg, "%zu more images failed: see the Events of this ImageCache", more_images);
			json_object_set_new(fm, key2, json_pack("[o]", failure_entry("", IC_REASON_MORE_FAILURES, msg)));
		}
		free(keys);
		json_object_set_new(st, "failures", fm);
	}
	json_decref(all);
	set_time(st, "startTime", start);
	set_time(st, "completionTime", now);
	return st;
}

json_t *ic_status_cut_failures(const struct ic_taskset *ts)
{
	int a = 0, b = 0, c = 0;
	size_t nf;
	struct failed_ref *f = collect_failed(ts, &nf, &a, &b, &c);
	json_t *out = NULL;
	for (size_t i = 0; i < nf;) {
		size_t j = i;
		while (j < nf && !strcmp(f[j].image, f[i].image))
			j++;
		if (j - i > IC_FAILURES_PER_IMAGE) {
			struct strbuf sb = STRBUF_INIT;
			for (size_t k = i; k < j && sb.len < 4096; k++) {
				const struct ic_task *t = f[k].t;
				sb_addf(&sb, "%s%s (%s: %s)", k > i ? ", " : "", f[k].host, t->reason ? t->reason : "?",
					t->message ? t->message : "");
			}
			if (sb.len > 4096)
				strcpy(sb.buf + 4093, "...");
			if (!out)
				out = json_array();
			json_array_append_new(out, json_pack("{s:s, s:I, s:s}", "image", f[i].image, "count",
							     (json_int_t)(j - i), "nodes", sb.buf));
			sb_release(&sb);
		}
		i = j;
	}
	free(f);
	return out;
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

void ic_status_set_progress(json_t *status, const struct ic_taskset *ts)
{
	struct ic_task_counts c;
	ic_tasks_count(ts, &c);
	json_object_set_new(status, "progress", json_pack("{s:I, s:I, s:I}", "total", (json_int_t)c.total, "done",
							  (json_int_t)c.done, "failed", (json_int_t)c.failed));
}

json_t *ic_applied_outcome(enum ic_op_type op, json_t *spec_lists, json_t *applied_before,
			   const struct ic_taskset *ts)
{
	json_t *lists = op == IC_OP_PURGE ? json_array() : json_deep_copy(spec_lists);
	if (!json_is_array(lists)) {
		json_decref(lists);
		lists = json_array();
	}
	/* images whose delete did not succeed stay applied, with the selector they had */
	json_t *left = json_object(); /* serialised selector -> list object */
	struct map seen = MAP_INIT;   /* images already added */
	for (size_t i = 0; i < ts->n; i++) {
		const struct ic_task *t = &ts->v[i];
		if (t->action != IC_ACTION_DELETE || ic_task_ok(t->state) || t->state == IC_TASK_CANCELLED)
			continue;
		const char *img = ts->images[t->image].image;
		if (map_has(&seen, img))
			continue;
		map_put(&seen, img, NULL);
		json_t *sel = NULL;
		int found = 0;
		size_t li, ii;
		json_t *l, *s;
		json_array_foreach(applied_before, li, l) {
			json_array_foreach(json_object_get(l, "images"), ii, s) {
				if (json_is_string(s) && !strcmp(json_string_value(s), img)) {
					sel = json_object_get(l, "nodeSelector");
					found = 1;
					break;
				}
			}
			if (found)
				break;
		}
		char *skey = sel ? json_dumps(sel, JSON_SORT_KEYS | JSON_COMPACT) : xstrdup("");
		json_t *entry = json_object_get(left, skey);
		if (!entry) {
			entry = json_pack("{s:[]}", "images");
			if (sel)
				json_object_set(entry, "nodeSelector", sel);
			json_object_set_new(left, skey, entry);
		}
		json_array_append_new(json_object_get(entry, "images"), json_string(img));
		free(skey);
	}
	const char *k;
	json_t *v;
	json_object_foreach(left, k, v) json_array_append(lists, v);
	json_decref(left);
	map_free(&seen, NULL);
	return json_pack("{s:o}", "cacheSpec", lists);
}

long long ic_status_observed_generation(json_t *status)
{
	json_t *g = json_object_get(find_condition(status, "Ready"), "observedGeneration");
	return json_is_integer(g) ? (long long)json_integer_value(g) : -1;
}
