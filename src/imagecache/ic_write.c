/* ic_write.c - the controller's writes to an ImageCache: its status, and the removal of an annotation.
 *
 * On our CRD a status write is a JSON patch of the status subresource and an annotation removal a merge patch
 * of the object. On upstream's CRD (no status subresource, a status schema that prunes our fields) the
 * status goes through the main resource, with what that CRD would prune moved to IC_ANNOTATION_STATUS
 * (ic_compat.h); back on our CRD that annotation is removed with the next status write. Where RBAC refuses
 * the patch (upstream's ClusterRole grants update, not patch, of imagecaches) the writes become get + update,
 * again on conflict. Every successful write is noted (note_write), so that the sync waits for the informer to
 * show it before deciding again. */
#include <string.h>

#include "ic_compat.h"
#include "ic_controller_int.h"
#include "util/log.h"
#include "util/util.h"

static const char *meta(json_t *obj, const char *field)
{
	return kf_jstr(obj, "metadata", field, NULL);
}

static void note_write(struct ic_controller *ctl, struct ic_cache_state *st, json_t *written)
{
	const char *rv = meta(written, "resourceVersion");
	pthread_mutex_lock(&ctl->mu);
	free(st->written_rv);
	st->written_rv = rv ? xstrdup(rv) : NULL;
	st->written_seen = 0;
	st->written_ms = kf_now_ms();
	pthread_mutex_unlock(&ctl->mu);
}

/* PUT of a fresh copy of the cache with edit() applied, again on 409: for RBAC that grants update but not
 * patch of imagecaches (upstream's ClusterRole). Such writes pass the webhook, as all of upstream's did. */
static json_t *update_cache(struct ic_controller *ctl, const char *ns, const char *name,
			    void (*edit)(json_t *obj, void *arg), void *arg, struct kube_err *err)
{
	struct strbuf path = STRBUF_INIT;
	json_t *res = NULL;
	kube_path(&path, &IC_RESOURCE, ns, name, NULL);
	for (int attempt = 0; attempt < 5 && !res; attempt++) {
		json_t *cur = kube_get(ctl->c, path.buf, err);
		if (!cur)
			break;
		edit(cur, arg);
		res = kube_update(ctl->c, path.buf, cur, err);
		json_decref(cur);
		if (!res && !kube_err_is_conflict(err))
			break;
	}
	sb_release(&path);
	return res;
}

/* A PATCH of the main resource refused with 403: from now on, update instead. */
static int patch_forbidden(struct ic_controller *ctl, const struct kube_err *err)
{
	if (err->code != 403)
		return 0;
	if (!atomic_exchange(&ctl->patch_forbidden, 1))
		LOG_WARN("patching imagecaches is forbidden (%s): writing them with get + update instead (upstream's "
			 "ClusterRole grants update only)", err->msg);
	return 1;
}

struct status_edit {
	json_t *status;    /* borrowed */
	const char *stash; /* IC_ANNOTATION_STATUS value, or NULL */
};

static void set_annotation(json_t *obj, const char *key, const char *value)
{
	json_t *m = json_object_get(obj, "metadata"), *a = json_object_get(m, "annotations");
	if (!json_is_object(a)) {
		a = json_object();
		json_object_set_new(m, "annotations", a);
	}
	json_object_set_new(a, key, json_string(value));
}

static void edit_status(json_t *obj, void *arg)
{
	struct status_edit *e = arg;
	json_object_set(obj, "status", e->status);
	if (e->stash)
		set_annotation(obj, IC_ANNOTATION_STATUS, e->stash);
}

static void edit_drop_annotation(json_t *obj, void *arg)
{
	json_object_del(kf_jget(obj, "metadata", "annotations", NULL), (const char *)arg);
}

int ic_remove_annotation(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj,
			 const char *annotation)
{
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &IC_RESOURCE, meta(obj, "namespace"), meta(obj, "name"), NULL);
	struct kube_err err;
	json_t *res = NULL;
	if (!atomic_load(&ctl->patch_forbidden)) {
		json_t *patch = json_pack("{s:{s:{s:n}}}", "metadata", "annotations", annotation);
		res = kube_patch(ctl->c, path.buf, patch, "application/merge-patch+json", &err);
		json_decref(patch);
	}
	if (!res && (atomic_load(&ctl->patch_forbidden) || patch_forbidden(ctl, &err)))
		res = update_cache(ctl, meta(obj, "namespace"), meta(obj, "name"), edit_drop_annotation,
				   (void *)annotation, &err);
	sb_release(&path);
	if (!res) {
		if (kube_err_is_not_found(&err))
			return 0;
		LOG_ERROR("ImageCache %s/%s: removing annotation %s failed (HTTP %ld): %s", meta(obj, "namespace"),
			  meta(obj, "name"), annotation, err.code, err.msg);
		return -1;
	}
	note_write(ctl, st, res);
	json_decref(res);
	return 0;
}

/* Replaces .status through the status subresource. With upstream's CRD (no subresource: learnt at start from
 * API discovery, or from a 404 here) it writes the main resource, the fields that CRD would prune going to
 * IC_ANNOTATION_STATUS (ic_compat.h). A JSON patch "add" of /status replaces it whole, as upstream's PUT
 * did, without a resourceVersion precondition: the leader is the only status writer. Where RBAC refuses the
 * patch (upstream's ClusterRole), a get + update. */
int ic_write_status(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *status)
{
	const char *ns = meta(obj, "namespace"), *name = meta(obj, "name");
	struct strbuf path = STRBUF_INIT, key = STRBUF_INIT;
	struct kube_err err;
	json_t *body = NULL;
	char *stash = NULL;
	int rc = -1, compat = 0;
	sb_addf(&key, "%s/%s", ns, name);
	for (int attempt = 0; attempt < 2; attempt++) {
		compat = atomic_load(&ctl->no_status_subresource);
		json_decref(body);
		free(stash);
		body = json_deep_copy(status);
		stash = compat ? ic_compat_stash(body, key.buf) : NULL;
		struct status_edit e = { body, stash };
		json_t *res = NULL;
		if (!compat || !atomic_load(&ctl->patch_forbidden)) {
			json_t *patch = json_pack("[{s:s, s:s, s:O}]", "op", "add", "path", "/status", "value", body);
			if (stash && json_is_object(kf_jget(obj, "metadata", "annotations", NULL)))
				json_array_append_new(patch, json_pack("{s:s, s:s, s:s}", "op", "add", "path",
								       "/metadata/annotations/kubefledged.io~1status",
								       "value", stash));
			else if (stash)
				json_array_append_new(patch, json_pack("{s:s, s:s, s:{s:s}}", "op", "add", "path",
								       "/metadata/annotations", "value",
								       IC_ANNOTATION_STATUS, stash));
			sb_reset(&path);
			kube_path(&path, &IC_RESOURCE, ns, name, compat ? NULL : "status");
			res = kube_patch(ctl->c, path.buf, patch, "application/json-patch+json", &err);
			json_decref(patch);
		}
		if (!res && compat && (atomic_load(&ctl->patch_forbidden) || patch_forbidden(ctl, &err)))
			res = update_cache(ctl, ns, name, edit_status, &e, &err);
		if (res) {
			note_write(ctl, st, res);
			json_decref(res);
			atomic_fetch_add(&ctl->n_status_writes, 1);
			rc = 0;
			break;
		}
		if (kube_err_is_not_found(&err) && !compat) {
			/* is it the object or the subresource that is missing? */
			struct kube_err e2;
			sb_reset(&path);
			kube_path(&path, &IC_RESOURCE, ns, name, NULL);
			json_t *o = kube_get(ctl->c, path.buf, &e2);
			if (o) {
				LOG_WARN("imagecaches have no status subresource; writing status through the main "
					 "resource (install the CRD from deploy/ to fix this)");
				atomic_store(&ctl->no_status_subresource, 1);
				json_decref(o);
				continue;
			}
		}
		LOG_ERROR("ImageCache %s: status write failed (HTTP %ld): %s", key.buf, err.code, err.msg);
		break;
	}
	/* back on our CRD: the annotation that carried the pruned fields has served its turn */
	if (rc == 0 && !compat && ic_compat_has_stash(obj) && ic_remove_annotation(ctl, st, obj, IC_ANNOTATION_STATUS) == 0)
		LOG_INFO("ImageCache %s: status is whole again (status subresource); annotation %s removed", key.buf,
			 IC_ANNOTATION_STATUS);
	sb_release(&path);
	sb_release(&key);
	json_decref(body);
	free(stash);
	return rc;
}
