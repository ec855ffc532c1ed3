/* op_sync.c - one KubeFledged, level-triggered: render, check ownership, apply, prune, read readiness, write
 * status; or, once it is being deleted, uninstall and release the finalizer (op_controller.h). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "op_apply.h"
#include "op_controller_int.h"
#include "op_render.h"
#include "op_status.h"
#include "op_values.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_WEBHOOK_MS 2000

static void count(struct op_controller *oc, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&oc->mu);
	*field += n;
	pthread_mutex_unlock(&oc->mu);
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* 1 when key applied exactly hash since the last full reconcile (op_controller.c marks every memo stale
 * each resync_ms) */
static int memo_fresh(struct op_controller *oc, const char *key, const char *hash)
{
	pthread_mutex_lock(&oc->mu);
	struct op_memo *m = map_get(&oc->memo, key);
	int fresh = m && !strcmp(m->hash, hash) && m->at_ms;
	pthread_mutex_unlock(&oc->mu);
	return fresh;
}

/* Records hash as applied now; returns 1 if it differs from the one before (a change, or the first apply
 * since this process started). hash NULL forgets the key. */
static int memo_set(struct op_controller *oc, const char *key, const char *hash)
{
	pthread_mutex_lock(&oc->mu);
	struct op_memo *m = map_get(&oc->memo, key);
	int changed = !m || !hash || strcmp(m->hash, hash);
	if (!hash) {
		free(map_del(&oc->memo, key));
	} else {
		if (!m)
			map_put(&oc->memo, key, m = xcalloc(1, sizeof *m));
		snprintf(m->hash, sizeof m->hash, "%s", hash);
		m->at_ms = kf_now_ms();
	}
	pthread_mutex_unlock(&oc->mu);
	return changed;
}

static int finalizer_index(json_t *kf)
{
	size_t i;
	json_t *f;
	json_array_foreach(kf_jget(kf, "metadata", "finalizers", NULL), i, f)
		if (json_is_string(f) && !strcmp(json_string_value(f), OP_FINALIZER))
			return (int)i;
	return -1;
}

/* JSON patch of the KubeFledged's finalizers: add ours, or remove it at idx (tested first, so that a
 * concurrent change of the list makes the patch fail instead of removing someone else's). */
static int patch_finalizer(struct op_controller *oc, json_t *kf, int idx, struct kube_err *err)
{
	json_t *ops;
	if (idx < 0) {
		ops = json_is_array(kf_jget(kf, "metadata", "finalizers", NULL))
			      ? json_pack("[{s:s, s:s, s:s}]", "op", "add", "path", "/metadata/finalizers/-", "value",
					  OP_FINALIZER)
			      : json_pack("[{s:s, s:s, s:[s]}]", "op", "add", "path", "/metadata/finalizers", "value",
					  OP_FINALIZER);
	} else {
		char p[64];
		snprintf(p, sizeof p, "/metadata/finalizers/%d", idx);
		ops = json_pack("[{s:s, s:s, s:s}, {s:s, s:s}]", "op", "test", "path", p, "value", OP_FINALIZER, "op",
				"remove", "path", p);
	}
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &OP_KUBEFLEDGEDS, kf_jstr(kf, "metadata", "namespace", NULL),
		  kf_jstr(kf, "metadata", "name", NULL), NULL);
	json_t *out = kube_patch(oc->c, path.buf, ops, "application/json-patch+json", err);
	json_decref(ops);
	sb_release(&path);
	json_decref(out);
	return out ? 0 : -1;
}

/* The KubeFledged is being deleted: delete everything it applied, then let it go. */
static int uninstall(struct op_controller *oc, const char *key, json_t *kf)
{
	int idx = finalizer_index(kf);
	if (idx < 0)
		return 0;
	const char *uid = kf_jstr(kf, "metadata", "uid", NULL), *ns = kf_jstr(kf, "metadata", "namespace", NULL);
	struct kube_err err;
	struct strbuf done = STRBUF_INIT;
	int rc = -1;
	json_t *owned = op_list_owned(oc->c, uid ? uid : "", ns, &err);
	if (!owned) {
		LOG_ERROR("KubeFledged %s: uninstall: %s", key, err.msg);
		goto out;
	}
	int n = op_prune(oc->c, owned, NULL, &done, &err);
	if (n < 0) {
		LOG_ERROR("KubeFledged %s: uninstall: %s", key, err.msg);
		kube_event(oc->rec, kf, "Warning", "UninstallFailed", "%s", err.msg);
		goto out;
	}
	count(oc, &oc->stats.deletes, (uint64_t)n);
	if (done.len) {
		LOG_INFO("KubeFledged %s deleted: deleted %s", key, done.buf);
		kube_event(oc->rec, kf, "Normal", "Uninstalled", "deleted %zu objects (the CRDs and the ImageCaches "
			   "stay)", json_array_size(owned));
	}
	if (patch_finalizer(oc, kf, idx, &err) < 0) {
		LOG_ERROR("KubeFledged %s: removing finalizer %s: %s", key, OP_FINALIZER, err.msg);
		goto out;
	}
	memo_set(oc, key, NULL);
	rc = 0;
out:
	json_decref(owned);
	sb_release(&done);
	return rc;
}

/* GET of an object for its readiness (the memo path: nothing was applied this time). */
static json_t *get_live(struct op_controller *oc, json_t *obj)
{
	const struct kube_resource *r = op_resource_of(kf_jstr(obj, "apiVersion", NULL), kf_jstr(obj, "kind", NULL));
	if (!r)
		return NULL;
	struct strbuf path = STRBUF_INIT;
	struct kube_err err;
	kube_path(&path, r, r->namespaced ? kf_jstr(obj, "metadata", "namespace", NULL) : NULL,
		  kf_jstr(obj, "metadata", "name", NULL), NULL);
	json_t *live = kube_get(oc->c, path.buf, &err);
	sb_release(&path);
	return live;
}

static int is_kind(json_t *obj, const char *kind)
{
	const char *k = kf_jstr(obj, "kind", NULL);
	return k && !strcmp(k, kind);
}

/* The sync's result, turned into status, events and the return value. */
struct sync_state {
	struct op_controller *oc;
	const char *key;
	json_t *kf;
	struct op_outcome o;
	struct strbuf deployed_msg, ready_msg;
};

static int finish(struct sync_state *s, int rc)
{
	char now[32];
	kf_rfc3339((int64_t)time(NULL), now);
	s->o.deployed_msg = s->deployed_msg.buf;
	s->o.ready_msg = s->ready_msg.buf;
	json_t *old = json_object_get(s->kf, "status");
	json_t *st = op_status_build(old, &s->o, now);
	struct kube_err err;
	int w = op_status_write(s->oc->c, kf_jstr(s->kf, "metadata", "namespace", NULL),
				kf_jstr(s->kf, "metadata", "name", NULL), old, st, &err);
	if (w < 0) {
		LOG_ERROR("KubeFledged %s: status write failed: %s", s->key, err.msg);
		rc = -1;
	} else if (w > 0) {
		count(s->oc, &s->oc->stats.status_writes, 1);
	}
	json_decref(st);
	sb_release(&s->deployed_msg);
	sb_release(&s->ready_msg);
	return rc;
}

/* Deployed=False with reason and message; Ready kept. Logged and recorded as an Event when it is news (the
 * status does not say so already for this generation), so that the syncs its own status write and the
 * periodic reconcile cause do not repeat it. */
static int not_deployed(struct sync_state *s, const char *reason, int rc)
{
	s->o.deployed = 0;
	s->o.deployed_reason = reason;
	s->o.ready = -1;
	json_t *was = op_condition(json_object_get(s->kf, "status"), "Deployed");
	const char *wr = kf_jstr(was, "reason", NULL), *wm = kf_jstr(was, "message", NULL);
	json_t *wg = json_object_get(was, "observedGeneration");
	int known = wr && wm && !strcmp(wr, reason) && !strcmp(wm, s->deployed_msg.buf) && json_is_integer(wg) &&
		    json_integer_value(wg) == s->o.generation;
	if (!known) {
		LOG_ERROR("KubeFledged %s: %s: %s", s->key, reason, s->deployed_msg.buf);
		kube_event(s->oc->rec, s->kf, "Warning", reason, "%s", s->deployed_msg.buf);
	} else {
		LOG_V(1, "KubeFledged %s: still %s: %s", s->key, reason, s->deployed_msg.buf);
	}
	count(s->oc, &s->oc->stats.errors, 1);
	return finish(s, rc);
}

int op_sync(struct op_controller *oc, const char *key, int64_t *requeue_ms)
{
	json_t *kf = kube_informer_get(oc->inf, key);
	if (!kf) {
		memo_set(oc, key, NULL);
		return 0;
	}
	count(oc, &oc->stats.syncs, 1);
	if (kf_jget(kf, "metadata", "deletionTimestamp", NULL)) {
		int rc = uninstall(oc, key, kf);
		json_decref(kf);
		return rc;
	}
	struct sync_state s = { oc, key, kf, { 0 }, STRBUF_INIT, STRBUF_INIT };
	json_t *gen = kf_jget(kf, "metadata", "generation", NULL);
	s.o.generation = json_is_integer(gen) ? json_integer_value(gen) : 0;
	const char *ns = kf_jstr(kf, "metadata", "namespace", NULL), *name = kf_jstr(kf, "metadata", "name", NULL),
		   *uid = kf_jstr(kf, "metadata", "uid", NULL);
	json_t *values = NULL, *desired = NULL, *owned = NULL, *applied = json_array();
	struct kube_err err;
	int rc = 0, ready = 1, deferred = 0;
	char hash[65] = "";

	/* the finalizer before anything cluster-scoped exists */
	if (finalizer_index(kf) < 0 && patch_finalizer(oc, kf, -1, &err) < 0) {
		sb_addf(&s.deployed_msg, "adding finalizer %s: %s", OP_FINALIZER, err.msg);
		rc = not_deployed(&s, "ApplyFailed", -1);
		goto out;
	}
	json_t *spec = json_object_get(kf, "spec");
	if (spec && !json_is_object(spec)) {
		sb_addf(&s.deployed_msg, "spec must be a map of the chart's values, not %s", kf_json_type_name(spec));
		rc = not_deployed(&s, "RenderFailed", 0);
		goto out;
	}
	values = op_values_merge(oc->chart->defaults, spec);
	struct op_release rel = { name, ns, OP_FIELD_MANAGER };
	struct strbuf rerr = STRBUF_INIT;
	desired = op_render(oc->chart, &rel, values, 1, &rerr);
	if (!desired) {
		sb_addf(&s.deployed_msg, "values: %s (nothing was changed)", rerr.buf);
		sb_release(&rerr);
		rc = not_deployed(&s, "RenderFailed", 0);
		goto out;
	}
	sb_release(&rerr);
	op_decorate(desired, kf);
	char *dump = json_dumps(desired, JSON_SORT_KEYS | JSON_COMPACT);
	sha256_hex(dump ? dump : "", hash);
	free(dump);

	size_t i;
	json_t *obj;
	if (memo_fresh(oc, key, hash)) {
		/* applied as it is, recently: only read what readiness needs */
		json_array_foreach(desired, i, obj) {
			if (!is_kind(obj, "Deployment") && !is_kind(obj, "DaemonSet") &&
			    !is_kind(obj, "ValidatingWebhookConfiguration")) {
				json_array_append(applied, obj);
				continue;
			}
			json_t *live = get_live(oc, obj);
			json_array_append_new(applied, live ? live : json_incref(obj));
		}
	} else {
		owned = op_list_owned(oc->c, uid ? uid : "", ns, &err);
		if (!owned) {
			sb_addf(&s.deployed_msg, "%s", err.msg);
			rc = not_deployed(&s, "ApplyFailed", -1);
			goto out;
		}
		/* a kind the cluster lacks, and then every conflict, before the first write: never half an
		 * installation */
		struct strbuf missing = STRBUF_INIT;
		json_array_foreach(desired, i, obj) {
			struct strbuf one = STRBUF_INIT;
			int served = op_kind_served(oc->c, obj, &one, &err);
			if (served < 0) {
				char n[400];
				sb_addf(&s.deployed_msg, "discovering the kind of %s: %s", op_object_name(obj, n, sizeof n),
					err.msg);
				sb_release(&one);
				sb_release(&missing);
				rc = not_deployed(&s, "ApplyFailed", -1);
				goto out;
			}
			if (!served)
				sb_addf(&missing, "%s%s", missing.len ? "; " : "", one.buf);
			sb_release(&one);
		}
		if (missing.len) {
			sb_addf(&s.deployed_msg, "%s (nothing was changed)", missing.buf);
			sb_release(&missing);
			rc = not_deployed(&s, "MissingCRD", 0);
			goto out;
		}
		sb_release(&missing);
		struct strbuf conflicts = STRBUF_INIT;
		json_array_foreach(desired, i, obj) {
			struct strbuf one = STRBUF_INIT;
			int may = op_may_apply(oc->c, obj, uid ? uid : "", &one, &err);
			if (may < 0) {
				char n[400];
				sb_addf(&s.deployed_msg, "reading %s: %s", op_object_name(obj, n, sizeof n), err.msg);
				sb_release(&one);
				sb_release(&conflicts);
				rc = not_deployed(&s, "ApplyFailed", -1);
				goto out;
			}
			if (!may)
				sb_addf(&conflicts, "%s%s", conflicts.len ? "; " : "", one.buf);
			sb_release(&one);
		}
		if (conflicts.len) {
			sb_addf(&s.deployed_msg, "%s (nothing was changed)", conflicts.buf);
			sb_release(&conflicts);
			rc = not_deployed(&s, "Conflict", 0);
			goto out;
		}
		sb_release(&conflicts);
		json_t *webhook_deploy = NULL;
		json_array_foreach(desired, i, obj) {
			char n[400];
			if (is_kind(obj, "ValidatingWebhookConfiguration") && webhook_deploy) {
				/* with failurePolicy Fail, a configuration in force before its server is ready refuses
				 * every ImageCache write: the first time, it waits for a ready replica */
				int wh_ready = json_integer_value(kf_jget(webhook_deploy, "status", "availableReplicas", NULL)) > 0;
				json_t *live = wh_ready ? NULL : get_live(oc, obj);
				if (!wh_ready && !live) {
					deferred = 1;
					continue;
				}
				json_decref(live);
			}
			json_t *out = op_apply_one(oc->c, obj, &err);
			if (!out) {
				sb_addf(&s.deployed_msg, "applying %s: %s", op_object_name(obj, n, sizeof n), err.msg);
				rc = not_deployed(&s, "ApplyFailed", -1);
				goto out;
			}
			count(oc, &oc->stats.applies, 1);
			if (is_kind(out, "Deployment") && !webhook_deploy) {
				json_t *c0 = json_array_get(kf_jget(out, "spec", "template", "spec", "containers", NULL), 0);
				const char *cn = kf_jstr(c0, "name", NULL);
				if (cn && !strcmp(cn, "webhook-server"))
					webhook_deploy = out;
			}
			json_array_append_new(applied, out);
		}
		struct strbuf pruned = STRBUF_INIT;
		int prc = op_prune(oc->c, owned, desired, &pruned, &err);
		if (prc > 0)
			count(oc, &oc->stats.deletes, (uint64_t)prc);
		if (pruned.len) {
			LOG_INFO("KubeFledged %s: deleted what the values no longer render: %s", key, pruned.buf);
			kube_event(oc->rec, kf, "Normal", "Pruned", "deleted what the values no longer render: %s",
				   pruned.buf);
		}
		sb_release(&pruned);
		if (prc < 0) {
			sb_addf(&s.deployed_msg, "%s", err.msg);
			rc = not_deployed(&s, "ApplyFailed", -1);
			goto out;
		}
		if (!deferred && memo_set(oc, key, hash)) {
			LOG_INFO("KubeFledged %s: applied %zu objects (generation %lld)", key, json_array_size(applied),
				 (long long)s.o.generation);
			kube_event(oc->rec, kf, "Normal", "Applied", "applied %zu objects of chart %s-%s (generation %lld)",
				   json_array_size(applied), oc->chart->name, oc->chart->version, (long long)s.o.generation);
		}
	}

	json_array_foreach(applied, i, obj) {
		struct strbuf why = STRBUF_INIT;
		if (!op_object_ready(obj, &why)) {
			sb_addf(&s.ready_msg, "%s%s", s.ready_msg.len ? "; " : "", why.buf);
			ready = 0;
		}
		sb_release(&why);
	}
	s.o.deployed = !deferred;
	s.o.deployed_reason = deferred ? "WaitingForWebhook" : "Applied";
	if (deferred)
		sb_addf(&s.deployed_msg, "%zu objects applied; the ValidatingWebhookConfiguration waits for a ready "
			"webhook server (with failurePolicy Fail it would refuse every ImageCache write until then)",
			json_array_size(applied));
	else
		sb_addf(&s.deployed_msg, "%zu objects applied", json_array_size(applied));
	s.o.ready = ready && !deferred;
	s.o.ready_reason = s.o.ready ? "Available" : "Progressing";
	if (ready && !deferred)
		sb_adds(&s.ready_msg, "every workload is available");
	else if (!s.ready_msg.len)
		sb_adds(&s.ready_msg, "waiting for the webhook server");
	s.o.objects = applied;
	rc = finish(&s, 0);
	if (!s.o.ready)
		*requeue_ms = deferred ? WAIT_WEBHOOK_MS : oc->o.poll_ms;
out:
	json_decref(values);
	json_decref(desired);
	json_decref(owned);
	json_decref(applied);
	json_decref(kf);
	return rc;
}
