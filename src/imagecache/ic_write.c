/* ic_write.c - writing an ImageCache's status and annotations, whatever CRD the cluster has installed.
 *
 * Our CRD (deploy/) has the status subresource and a schema with our status fields (conditions,
 * appliedSpec, progress). Upstream's CRD, which stays installed after `helm upgrade` from upstream's chart
 * (Helm never upgrades CRDs), has neither:
 *   - no status subresource: status is written through the main resource, and every such write bumps
 *     metadata.generation, so generations cannot tell an edit from our own write;
 *   - a schema that prunes our fields: observedGeneration and appliedSpec would be lost.
 * Both are found out by the writes themselves and kept in atomics (every worker reads them):
 *   - a 404 from /status while the object exists means no subresource; while so, the subresource is
 *     looked for again at most once a minute (the CRD may be upgraded later), and a write through the main
 *     resource whose reply does not show the status we sent means a subresource appeared;
 *   - a reply without the conditions we sent means the schema prunes them; ours are then kept in the
 *     annotation kubefledged.io/status ({conditions, appliedSpec, progress, specHash}), and edits are
 *     found by the hash of the spec instead of the generation. A reply that keeps them ends that mode.
 * So on upstream's CRD the controller neither loops on its own writes nor misses edits or refreshes. Once our
 * CRD is installed, the first status write that keeps our fields removes the annotation.
 *
 * Upstream's ClusterRole grants update but not patch of imagecaches: a PATCH of the main resource refused
 * with 403 switches every later main-resource write to a get + update (again on conflict).
 *
 * A status refused as too large (the object would pass etcd's limit) is written again without the
 * failures detail, so a cache never stays Processing for that reason. */
#include <openssl/sha.h>
#include <string.h>

#include "ic_controller_int.h"
#include "util/log.h"

#define PROBE_INTERVAL_MS 60000

static void note_write(struct ic_controller *ctl, struct ic_cache_state *st, json_t *written)
{
	const char *rv = ic_meta(written, "resourceVersion");
	pthread_mutex_lock(&ctl->mu);
	free(st->written_rv);
	st->written_rv = rv ? xstrdup(rv) : NULL;
	st->written_seen = 0;
	st->written_ms = kf_now_ms();
	pthread_mutex_unlock(&ctl->mu);
}

char *ic_spec_hash(json_t *spec_json)
{
	char *text = json_dumps(spec_json ? spec_json : json_null(), JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)(text ? text : ""), text ? strlen(text) : 0, md);
	free(text);
	char *hex = xmalloc(33);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

static json_t *ext_of(json_t *obj)
{
	const char *a = kf_jstr(obj, "metadata", "annotations", IC_ANNOTATION_STATUS, NULL);
	json_t *ext = a ? json_loads(a, 0, NULL) : NULL;
	if (ext && !json_is_object(ext)) {
		json_decref(ext);
		ext = NULL;
	}
	return ext;
}

json_t *ic_status_view(json_t *obj)
{
	json_t *st = json_object_get(obj, "status");
	json_t *view = json_is_object(st) ? json_deep_copy(st) : json_object();
	if (json_object_get(view, "conditions"))
		return view;
	json_t *ext = ext_of(obj);
	const char *keys[] = { "conditions", "appliedSpec", "progress" };
	for (size_t i = 0; ext && i < ARRAY_SIZE(keys); i++)
		if (!json_object_get(view, keys[i]) && json_object_get(ext, keys[i]))
			json_object_set(view, keys[i], json_object_get(ext, keys[i]));
	json_decref(ext);
	return view;
}

int ic_edit_pending(json_t *obj, json_t *view)
{
	long long gen = json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
	if (kf_jget(obj, "status", "conditions", NULL)) {
		long long observed = ic_status_observed_generation(view);
		return observed < 0 ? -1 : observed != gen;
	}
	json_t *ext = ext_of(obj);
	const char *h = kf_jstr(ext, "specHash", NULL);
	int rc = -1;
	if (h) {
		char *now = ic_spec_hash(json_object_get(obj, "spec"));
		rc = strcmp(now, h) != 0;
		free(now);
	}
	json_decref(ext);
	return rc;
}

char *ic_status_ext(json_t *status, const char *spec_hash)
{
	json_t *ext = json_object();
	const char *keys[] = { "conditions", "appliedSpec", "progress" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (json_object_get(status, keys[i]))
			json_object_set(ext, keys[i], json_object_get(status, keys[i]));
	if (spec_hash)
		json_object_set_new(ext, "specHash", json_string(spec_hash));
	char *text = json_dumps(ext, JSON_COMPACT | JSON_SORT_KEYS);
	if (strlen(text) > IC_STATUS_EXT_MAX) {
		LOG_WARN("status.appliedSpec is too big for annotation %s (%zu bytes): left out, so an edit that removes "
			 "images will not delete them from the nodes until the CRD from deploy/ is installed",
			 IC_ANNOTATION_STATUS, strlen(text));
		json_object_del(ext, "appliedSpec");
		free(text);
		text = json_dumps(ext, JSON_COMPACT | JSON_SORT_KEYS);
	}
	json_decref(ext);
	return text;
}

/* ---- get + update, for RBAC that refuses patch (upstream's ClusterRole) ---- */

/* A PATCH of the main resource refused with 403: from now on, get + update instead. */
static int patch_forbidden(struct ic_controller *ctl, const struct kube_err *err)
{
	if (err->code != 403)
		return 0;
	if (!atomic_exchange(&ctl->patch_forbidden, 1))
		LOG_WARN("patching imagecaches is forbidden (%s): writing them with get + update instead (upstream's "
			 "ClusterRole grants update only)", err->msg);
	return 1;
}

/* PUT of a fresh copy of the cache with edit() applied, again on 409. */
static json_t *update_cache(struct ic_controller *ctl, json_t *obj, void (*edit)(json_t *o, void *arg), void *arg,
			    struct kube_err *err)
{
	struct strbuf path = STRBUF_INIT;
	json_t *res = NULL;
	kube_path(&path, &IC_RESOURCE, ic_meta(obj, "namespace"), ic_meta(obj, "name"), NULL);
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

static void set_annotation(json_t *obj, const char *key, const char *value)
{
	json_t *m = json_object_get(obj, "metadata"), *a = json_object_get(m, "annotations");
	if (!json_is_object(a)) {
		a = json_object();
		json_object_set_new(m, "annotations", a);
	}
	if (value)
		json_object_set_new(a, key, json_string(value));
	else
		json_object_del(a, key);
}

struct status_edit {
	json_t *status;   /* borrowed; NULL: leave the status */
	const char *anns[2];
	const char *values[2]; /* NULL: remove the annotation */
};

static void edit_cache(json_t *obj, void *arg)
{
	struct status_edit *e = arg;
	if (e->status)
		json_object_set(obj, "status", e->status);
	for (int i = 0; i < 2; i++)
		if (e->anns[i])
			set_annotation(obj, e->anns[i], e->values[i]);
}

/* A JSON patch op that sets one annotation, whether or not the object has annotations yet. */
static json_t *annotation_op(json_t *obj, const char *key, const char *value)
{
	if (!json_is_object(kf_jget(obj, "metadata", "annotations", NULL)))
		return json_pack("{s:s, s:s, s:{s:s}}", "op", "add", "path", "/metadata/annotations", "value", key,
				 value);
	struct strbuf p = STRBUF_INIT;
	sb_adds(&p, "/metadata/annotations/");
	for (const char *c = key; *c; c++) /* JSON pointer escapes: ~ -> ~0, / -> ~1 */
		*c == '~' ? sb_adds(&p, "~0") : *c == '/' ? sb_adds(&p, "~1") : sb_addc(&p, *c);
	json_t *op = json_pack("{s:s, s:s, s:s}", "op", "add", "path", p.buf, "value", value);
	sb_release(&p);
	return op;
}

/* Sets (value) or removes (NULL) up to two annotations with one merge patch, or a get + update where RBAC
 * refuses the patch. Returns the object written (new reference) or NULL with err (404: the object is gone). */
static json_t *write_annotations(struct ic_controller *ctl, json_t *obj, const char *const keys[2],
				 const char *const values[2], struct kube_err *err)
{
	json_t *a = json_object();
	for (int i = 0; i < 2; i++)
		if (keys[i])
			json_object_set_new(a, keys[i], values[i] ? json_string(values[i]) : json_null());
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &IC_RESOURCE, ic_meta(obj, "namespace"), ic_meta(obj, "name"), NULL);
	json_t *patch = json_pack("{s:{s:o}}", "metadata", "annotations", a);
	json_t *res = NULL;
	memset(err, 0, sizeof *err);
	if (!atomic_load(&ctl->patch_forbidden))
		res = kube_patch(ctl->c, path.buf, patch, "application/merge-patch+json", err);
	json_decref(patch);
	sb_release(&path);
	if (!res && !kube_err_is_not_found(err) && (atomic_load(&ctl->patch_forbidden) || patch_forbidden(ctl, err))) {
		struct status_edit e = { NULL, { keys[0], keys[1] }, { values[0], values[1] } };
		res = update_cache(ctl, obj, edit_cache, &e, err);
	}
	return res;
}

static int patch_annotation(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const char *key,
			    const char *value)
{
	const char *keys[2] = { key, NULL }, *values[2] = { value, NULL };
	struct kube_err err;
	json_t *res = write_annotations(ctl, obj, keys, values, &err);
	if (!res) {
		LOG_ERROR("ImageCache %s/%s: writing annotation %s failed (HTTP %ld): %s", ic_meta(obj, "namespace"),
			  ic_meta(obj, "name"), key, err.code, err.msg);
		return -1;
	}
	note_write(ctl, st, res);
	json_decref(res);
	return 0;
}

static int too_large(const struct kube_err *e)
{
	return e->code == 413 || strstr(e->msg, "too large") || strstr(e->msg, "request is too large");
}

int ic_write_status(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *status,
		    const char *spec_hash)
{
	const char *ns = ic_meta(obj, "namespace"), *name = ic_meta(obj, "name");
	const char *sent = kf_jstr(status, "status", NULL);
	int sent_conditions = json_object_get(status, "conditions") != NULL;
	json_t *body = json_incref(status);
	struct strbuf path = STRBUF_INIT;
	struct kube_err err;
	int rc = -1, shrunk = 0;
	for (int attempt = 0; attempt < 4; attempt++) {
		int nosub = atomic_load(&ctl->crd_no_status_subresource);
		int64_t now = kf_now_ms();
		if (nosub && now - atomic_load(&ctl->crd_probe_ms) > PROBE_INTERVAL_MS) {
			atomic_store(&ctl->crd_probe_ms, now);
			nosub = 0; /* look for the subresource again: the CRD may have been upgraded */
		}
		int prunes = atomic_load(&ctl->crd_prunes_status);
		char *ext_text = NULL;
		if (prunes && sent_conditions)
			ext_text = ic_status_ext(body, spec_hash);
		json_t *res = NULL;
		if (!nosub || !atomic_load(&ctl->patch_forbidden)) {
			json_t *patch = json_pack("[{s:s, s:s, s:O}]", "op", "add", "path", "/status", "value", body);
			if (nosub && ext_text)
				json_array_append_new(patch, annotation_op(obj, IC_ANNOTATION_STATUS, ext_text));
			sb_reset(&path);
			kube_path(&path, &IC_RESOURCE, ns, name, nosub ? NULL : "status");
			res = kube_patch(ctl->c, path.buf, patch, "application/json-patch+json", &err);
			json_decref(patch);
		}
		if (!res && nosub && (atomic_load(&ctl->patch_forbidden) || patch_forbidden(ctl, &err))) {
			struct status_edit e = { body, { ext_text ? IC_ANNOTATION_STATUS : NULL, NULL }, { ext_text, NULL } };
			res = update_cache(ctl, obj, edit_cache, &e, &err);
		}
		if (!res) {
			free(ext_text);
			if (kube_err_is_not_found(&err) && !nosub) {
				/* is it the object or the subresource that is missing? */
				struct kube_err e2;
				sb_reset(&path);
				kube_path(&path, &IC_RESOURCE, ns, name, NULL);
				json_t *o = kube_get(ctl->c, path.buf, &e2);
				if (o) {
					if (!atomic_exchange(&ctl->crd_no_status_subresource, 1))
						LOG_WARN("imagecaches have no status subresource (upstream's CRD?): writing "
							 "status through the main resource; install the CRD from deploy/ to "
							 "fix this");
					atomic_store(&ctl->crd_probe_ms, kf_now_ms());
					json_decref(o);
					continue;
				}
			}
			if (too_large(&err) && !shrunk) {
				/* keep the object under etcd's limit: drop the failures detail (Events keep it) */
				LOG_WARN("ImageCache %s/%s: status refused as too large; writing it without failures",
					 ns, name);
				json_t *small = json_deep_copy(body);
				json_object_del(small, "failures");
				json_decref(body);
				body = small;
				shrunk = 1;
				continue;
			}
			LOG_ERROR("ImageCache %s/%s: status write failed (HTTP %ld): %s", ns, name, err.code, err.msg);
			break;
		}
		const char *got = kf_jstr(res, "status", "status", NULL);
		if (nosub && (!got || !sent || strcmp(got, sent))) {
			/* the main resource ignored the status: the CRD has a status subresource now */
			LOG_INFO("imagecaches have a status subresource now: writing status through it");
			atomic_store(&ctl->crd_no_status_subresource, 0);
			note_write(ctl, st, res);
			json_decref(res);
			free(ext_text);
			continue;
		}
		if (!nosub && atomic_exchange(&ctl->crd_no_status_subresource, 0))
			LOG_INFO("imagecaches have a status subresource now: writing status through it");
		int kept = kf_jget(res, "status", "conditions", NULL) != NULL;
		note_write(ctl, st, res);
		json_decref(res);
		atomic_fetch_add(&ctl->n_status_writes, 1);
		rc = 0;
		if (sent_conditions && !kept) {
			if (!atomic_exchange(&ctl->crd_prunes_status, 1))
				LOG_WARN("the ImageCache CRD's schema prunes status.conditions and status.appliedSpec "
					 "(upstream's CRD?): keeping them in the %s annotation; install the CRD from "
					 "deploy/ to fix this", IC_ANNOTATION_STATUS);
			if (!ext_text || !nosub) {
				free(ext_text);
				ext_text = ic_status_ext(body, spec_hash);
				rc = patch_annotation(ctl, st, obj, IC_ANNOTATION_STATUS, ext_text);
			}
		} else if (sent_conditions && kept) {
			if (atomic_exchange(&ctl->crd_prunes_status, 0))
				LOG_INFO("the ImageCache CRD keeps status.conditions now");
			/* back on our CRD: the annotation that carried our fields has served its turn */
			if (kf_jget(obj, "metadata", "annotations", IC_ANNOTATION_STATUS, NULL)) {
				const char *anns[2] = { IC_ANNOTATION_STATUS, NULL };
				if (ic_remove_annotations(ctl, st, obj, anns) == 0)
					LOG_INFO("ImageCache %s/%s: status is whole again; annotation %s removed", ns, name,
						 IC_ANNOTATION_STATUS);
			}
		}
		free(ext_text);
		break;
	}
	sb_release(&path);
	json_decref(body);
	return rc;
}

int ic_write_progress(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *progress)
{
	if (atomic_load(&ctl->crd_prunes_status))
		return 0; /* upstream's schema has no progress: the write would be pruned away */
	int nosub = atomic_load(&ctl->crd_no_status_subresource);
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &IC_RESOURCE, ic_meta(obj, "namespace"), ic_meta(obj, "name"), nosub ? NULL : "status");
	json_t *patch = json_pack("{s:{s:O}}", "status", "progress", progress);
	struct kube_err err;
	json_t *res = kube_patch(ctl->c, path.buf, patch, "application/merge-patch+json", &err);
	json_decref(patch);
	sb_release(&path);
	if (!res) {
		LOG_V(1, "ImageCache %s/%s: progress write failed (HTTP %ld): %s", ic_meta(obj, "namespace"),
		      ic_meta(obj, "name"), err.code, err.msg);
		return -1;
	}
	note_write(ctl, st, res);
	json_decref(res);
	atomic_fetch_add(&ctl->n_status_writes, 1);
	return 0;
}

int ic_remove_annotations(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj,
			  const char *const anns[2])
{
	const char *keys[2] = { NULL, NULL }, *values[2] = { NULL, NULL };
	for (int i = 0, k = 0; i < 2; i++)
		if (anns[i] && kf_jget(obj, "metadata", "annotations", anns[i], NULL))
			keys[k++] = anns[i];
	if (!keys[0])
		return 0;
	struct kube_err err;
	json_t *res = write_annotations(ctl, obj, keys, values, &err);
	if (!res) {
		if (kube_err_is_not_found(&err))
			return 0;
		LOG_ERROR("ImageCache %s/%s: removing annotations failed (HTTP %ld): %s", ic_meta(obj, "namespace"),
			  ic_meta(obj, "name"), err.code, err.msg);
		return -1;
	}
	note_write(ctl, st, res);
	json_decref(res);
	return 0;
}
