/* op_status.c - builds and writes a KubeFledged's status (op_status.h). */
#include <string.h>

#include "op_apply.h"
#include "op_status.h"
#include "util/strbuf.h"
#include "util/util.h"

json_t *op_condition(json_t *status, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(status, "conditions"), i, c) {
		const char *t = kf_jstr(c, "type", NULL);
		if (t && !strcmp(t, type))
			return c;
	}
	return NULL;
}

static json_t *condition(json_t *old_status, const char *type, int ok, const char *reason, const char *msg,
			 json_int_t gen, const char *now)
{
	const char *st = ok ? "True" : "False";
	json_t *old = op_condition(old_status, type);
	const char *was = kf_jstr(old, "status", NULL), *since = kf_jstr(old, "lastTransitionTime", NULL);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", type, "status", st, "reason", reason, "message",
			 msg ? msg : "", "observedGeneration", gen, "lastTransitionTime",
			 was && since && !strcmp(was, st) ? since : now);
}

json_t *op_status_build(json_t *old_status, const struct op_outcome *o, const char *now)
{
	json_t *st = json_object(), *conds = json_array();
	json_object_set_new(st, "observedGeneration", json_integer(o->generation));
	json_array_append_new(conds, condition(old_status, "Deployed", o->deployed, o->deployed_reason, o->deployed_msg,
					       o->generation, now));
	json_t *old_ready = op_condition(old_status, "Ready");
	if (o->ready >= 0)
		json_array_append_new(conds, condition(old_status, "Ready", o->ready, o->ready_reason, o->ready_msg,
						       o->generation, now));
	else if (old_ready)
		json_array_append_new(conds, json_deep_copy(old_ready));
	json_object_set_new(st, "conditions", conds);
	if (o->objects) {
		json_t *objs = json_array(), *obj;
		size_t i;
		json_array_foreach(o->objects, i, obj) {
			json_t *id = json_object();
			json_object_set(id, "apiVersion", json_object_get(obj, "apiVersion"));
			json_object_set(id, "kind", json_object_get(obj, "kind"));
			json_t *ns = kf_jget(obj, "metadata", "namespace", NULL);
			if (ns)
				json_object_set(id, "namespace", ns);
			json_object_set(id, "name", kf_jget(obj, "metadata", "name", NULL));
			json_array_append_new(objs, id);
		}
		json_object_set_new(st, "objects", objs);
	} else if (json_object_get(old_status, "objects")) {
		json_object_set(st, "objects", json_object_get(old_status, "objects"));
	}
	return st;
}

int op_status_write(struct kube_client *c, const char *ns, const char *name, json_t *old_status, json_t *status,
		    struct kube_err *err)
{
	if (old_status && json_equal(old_status, status))
		return 0;
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &OP_KUBEFLEDGEDS, ns, name, "status");
	/* a JSON merge patch: the whole status is ours, lists are replaced */
	json_t *patch = json_pack("{s:O}", "status", status);
	json_t *out = kube_patch(c, path.buf, patch, "application/merge-patch+json", err);
	json_decref(patch);
	sb_release(&path);
	if (!out)
		return -1;
	json_decref(out);
	return 1;
}
