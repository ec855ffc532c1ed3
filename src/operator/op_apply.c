/* op_apply.c - server-side apply, ownership and pruning of a KubeFledged's objects (op_apply.h). */
#include <stdlib.h>
#include <string.h>

#include "op_apply.h"
#include "op_render.h"
#include "util/log.h"
#include "util/util.h"

const struct kube_resource OP_KUBEFLEDGEDS = { OP_GROUP, OP_VERSION, "kubefledgeds", OP_KIND, 1 };

/* Every kind the chart renders (and the CRDs of crds/). A kind with a hint comes from a CRD that a cluster
 * may not have installed (the Prometheus Operator's ServiceMonitor); the hint says what to do then. */
static const struct {
	const char *api_version;
	struct kube_resource res;
	const char *missing_hint;
} kinds[] = {
	{ "v1", { "", "v1", "serviceaccounts", "ServiceAccount", 1 } },
	{ "v1", { "", "v1", "secrets", "Secret", 1 } },
	{ "v1", { "", "v1", "services", "Service", 1 } },
	{ "apps/v1", { "apps", "v1", "deployments", "Deployment", 1 } },
	{ "apps/v1", { "apps", "v1", "daemonsets", "DaemonSet", 1 } },
	{ "coordination.k8s.io/v1", { "coordination.k8s.io", "v1", "leases", "Lease", 1 } },
	{ "networking.k8s.io/v1", { "networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", 1 } },
	{ "rbac.authorization.k8s.io/v1", { "rbac.authorization.k8s.io", "v1", "roles", "Role", 1 } },
	{ "rbac.authorization.k8s.io/v1", { "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", 1 } },
	{ "rbac.authorization.k8s.io/v1", { "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", 0 } },
	{ "rbac.authorization.k8s.io/v1",
	  { "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", 0 } },
	{ "admissionregistration.k8s.io/v1",
	  { "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", 0 } },
	{ "monitoring.coreos.com/v1",
	  { "monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", 1 },
	  "install the Prometheus Operator's CRDs, or set serviceMonitor.enabled: false" },
	{ "apiextensions.k8s.io/v1",
	  { "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", 0 } },
};

static int is_crd(const struct kube_resource *r) { return !strcmp(r->kind, "CustomResourceDefinition"); }

const struct kube_resource *op_resource_of(const char *api_version, const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (api_version && kind && !strcmp(kinds[i].api_version, api_version) && !strcmp(kinds[i].res.kind, kind))
			return &kinds[i].res;
	return NULL;
}

const char *op_object_name(json_t *obj, char *buf, size_t n)
{
	const char *kind = kf_jstr(obj, "kind", NULL), *ns = kf_jstr(obj, "metadata", "namespace", NULL),
		   *name = kf_jstr(obj, "metadata", "name", NULL);
	snprintf(buf, n, "%s %s%s%s", kind ? kind : "?", ns ? ns : "", ns ? "/" : "", name ? name : "?");
	return buf;
}

/* err->msg = "<prefix>: <err->msg>", cut to fit */
static void err_prefix(struct kube_err *err, const char *prefix)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "%s: %s", prefix, err->msg);
	size_t n = sb.len < sizeof err->msg - 1 ? sb.len : sizeof err->msg - 1;
	memcpy(err->msg, sb.buf, n);
	err->msg[n] = '\0';
	sb_release(&sb);
}

static const struct kube_resource *resource_of_obj(json_t *obj)
{
	return op_resource_of(kf_jstr(obj, "apiVersion", NULL), kf_jstr(obj, "kind", NULL));
}

void op_decorate(json_t *desired, json_t *kf)
{
	const char *uid = kf_jstr(kf, "metadata", "uid", NULL), *ns = kf_jstr(kf, "metadata", "namespace", NULL),
		   *name = kf_jstr(kf, "metadata", "name", NULL);
	char owner[600];
	snprintf(owner, sizeof owner, "%s/%s", ns ? ns : "", name ? name : "");
	size_t i;
	json_t *obj;
	json_array_foreach(desired, i, obj) {
		const struct kube_resource *r = resource_of_obj(obj);
		if (!r || is_crd(r))
			continue;
		json_t *meta = json_object_get(obj, "metadata");
		json_t *labels = json_object_get(meta, "labels");
		if (!json_is_object(labels))
			json_object_set_new(meta, "labels", labels = json_object());
		json_object_set_new(labels, OP_OWNER_LABEL, json_string(uid ? uid : ""));
		json_t *ann = json_object_get(meta, "annotations");
		if (!json_is_object(ann))
			json_object_set_new(meta, "annotations", ann = json_object());
		json_object_set_new(ann, OP_OWNER_ANNOTATION, json_string(owner));
		if (r->namespaced)
			json_object_set_new(meta, "ownerReferences",
					    json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", OP_API_VERSION, "kind",
						      OP_KIND, "name", name ? name : "", "uid", uid ? uid : "", "controller", 1,
						      "blockOwnerDeletion", 1));
	}
}

json_t *op_list_owned(struct kube_client *c, const char *uid, const char *ns, struct kube_err *err)
{
	json_t *out = json_array();
	struct strbuf path = STRBUF_INIT, sel = STRBUF_INIT;
	sb_addf(&sel, "%s=%s", OP_OWNER_LABEL, uid);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct kube_resource *r = &kinds[i].res;
		if (is_crd(r))
			continue;
		sb_reset(&path);
		kube_path(&path, r, r->namespaced ? ns : NULL, NULL, NULL);
		sb_adds(&path, "?labelSelector=");
		sb_add_urlencoded(&path, sel.buf);
		json_t *list = kube_get(c, path.buf, err);
		/* a 404 on a list means the API server does not serve the kind (an empty namespace lists as
		 * empty): a CRD's kind the cluster lacks, of which nothing can have been applied */
		if (!list && kinds[i].missing_hint && kube_err_is_not_found(err))
			continue;
		if (!list) {
			char what[80];
			snprintf(what, sizeof what, "listing %s", r->plural);
			err_prefix(err, what);
			json_decref(out);
			out = NULL;
			break;
		}
		size_t j;
		json_t *item;
		json_array_foreach(json_object_get(list, "items"), j, item) {
			/* the items of a list carry no apiVersion and kind */
			json_object_set_new(item, "apiVersion", json_string(kinds[i].api_version));
			json_object_set_new(item, "kind", json_string(r->kind));
			json_array_append(out, item);
		}
		json_decref(list);
	}
	sb_release(&path);
	sb_release(&sel);
	return out;
}

int op_kind_served(struct kube_client *c, json_t *obj, struct strbuf *msg, struct kube_err *err)
{
	const char *api_version = kf_jstr(obj, "apiVersion", NULL), *kind = kf_jstr(obj, "kind", NULL);
	size_t k = 0, i;
	while (k < ARRAY_SIZE(kinds) && !(api_version && kind && !strcmp(kinds[k].api_version, api_version) &&
					  !strcmp(kinds[k].res.kind, kind)))
		k++;
	if (k == ARRAY_SIZE(kinds) || !kinds[k].missing_hint)
		return 1;
	const struct kube_resource *r = &kinds[k].res;
	struct strbuf path = STRBUF_INIT;
	sb_addf(&path, "/apis/%s/%s", r->group, r->version);
	json_t *disco = kube_get(c, path.buf, err);
	sb_release(&path);
	if (!disco && !kube_err_is_not_found(err))
		return -1;
	/* a 404 (the group or version is not served at all) or a version without the resource */
	int served = 0;
	json_t *res;
	json_array_foreach(json_object_get(disco, "resources"), i, res) {
		const char *name = kf_jstr(res, "name", NULL);
		served |= name && !strcmp(name, r->plural);
	}
	json_decref(disco);
	if (!served) {
		char name[400];
		sb_addf(msg, "%s: the cluster has no kind %s (%s %s): %s", op_object_name(obj, name, sizeof name), r->kind,
			api_version, r->plural, kinds[k].missing_hint);
	}
	return served;
}

static void object_path(struct strbuf *sb, const struct kube_resource *r, json_t *obj)
{
	kube_path(sb, r, r->namespaced ? kf_jstr(obj, "metadata", "namespace", NULL) : NULL,
		  kf_jstr(obj, "metadata", "name", NULL), NULL);
}

int op_may_apply(struct kube_client *c, json_t *obj, const char *uid, struct strbuf *msg, struct kube_err *err)
{
	const struct kube_resource *r = resource_of_obj(obj);
	if (!r || is_crd(r))
		return 1;
	struct strbuf path = STRBUF_INIT;
	object_path(&path, r, obj);
	json_t *live = kube_get(c, path.buf, err);
	sb_release(&path);
	if (!live)
		return kube_err_is_not_found(err) ? 1 : -1;
	const char *owner = kf_jstr(live, "metadata", "labels", OP_OWNER_LABEL, NULL);
	int ok = owner && !strcmp(owner, uid);
	if (!ok) {
		char name[400];
		const char *by = kf_jstr(live, "metadata", "annotations", OP_OWNER_ANNOTATION, NULL);
		sb_addf(msg, "%s exists and is not this KubeFledged's (%s%s%s): delete it, or give this KubeFledged "
			     "another name (or fullnameOverride)", op_object_name(obj, name, sizeof name),
			owner ? "it belongs to KubeFledged " : "no label " OP_OWNER_LABEL,
			owner ? (by ? by : "uid ") : "", owner ? (by ? "" : owner) : "");
	}
	json_decref(live);
	return ok;
}

static json_t *apply(struct kube_client *c, const struct kube_resource *r, json_t *obj, struct kube_err *err)
{
	struct strbuf path = STRBUF_INIT;
	object_path(&path, r, obj);
	sb_adds(&path, "?fieldManager=" OP_FIELD_MANAGER "&force=true");
	json_t *out = kube_patch(c, path.buf, obj, "application/apply-patch+yaml", err);
	sb_release(&path);
	return out;
}

json_t *op_apply_one(struct kube_client *c, json_t *obj, struct kube_err *err)
{
	const struct kube_resource *r = resource_of_obj(obj);
	if (!r) {
		memset(err, 0, sizeof *err);
		snprintf(err->msg, sizeof err->msg, "the chart rendered %s %s, which the operator cannot apply",
			 kf_jstr(obj, "apiVersion", NULL) ? kf_jstr(obj, "apiVersion", NULL) : "?",
			 kf_jstr(obj, "kind", NULL) ? kf_jstr(obj, "kind", NULL) : "?");
		return NULL;
	}
	json_t *out = apply(c, r, obj, err);
	if (!out && err->code == 422 && strstr(err->msg, "field is immutable") && strstr(err->msg, "selector") &&
	    (!strcmp(r->kind, "Deployment") || !strcmp(r->kind, "DaemonSet"))) {
		char name[400];
		LOG_INFO("%s: its selector changed (immutable): deleting it to create it again",
			 op_object_name(obj, name, sizeof name));
		struct strbuf path = STRBUF_INIT;
		object_path(&path, r, obj);
		int rc = kube_delete(c, path.buf, "Background", err);
		sb_release(&path);
		if (rc == 0 || kube_err_is_not_found(err))
			out = apply(c, r, obj, err);
	}
	return out;
}

static char *object_key(json_t *obj)
{
	const char *ns = kf_jstr(obj, "metadata", "namespace", NULL), *name = kf_jstr(obj, "metadata", "name", NULL),
		   *kind = kf_jstr(obj, "kind", NULL);
	return xasprintf("%s/%s/%s", kind ? kind : "", ns ? ns : "", name ? name : "");
}

static int in_set(json_t *set, json_t *obj)
{
	char *k = object_key(obj);
	size_t i;
	json_t *o;
	int found = 0;
	json_array_foreach(set, i, o) {
		char *ko = object_key(o);
		found = !strcmp(k, ko);
		free(ko);
		if (found)
			break;
	}
	free(k);
	return found;
}

static int by_rank_desc(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return op_kind_rank(kf_jstr(y, "kind", NULL)) - op_kind_rank(kf_jstr(x, "kind", NULL));
}

int op_prune(struct kube_client *c, json_t *owned, json_t *desired, struct strbuf *done, struct kube_err *err)
{
	size_t n = json_array_size(owned), m = 0;
	json_t **gone = xcalloc(n + 1, sizeof *gone);
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(owned, i);
		if (!desired || !in_set(desired, o))
			gone[m++] = o;
	}
	qsort(gone, m, sizeof *gone, by_rank_desc);
	int rc = 0, deleted = 0;
	struct strbuf path = STRBUF_INIT;
	for (size_t i = 0; i < m; i++) {
		const struct kube_resource *r = resource_of_obj(gone[i]);
		char name[400];
		struct kube_err e;
		sb_reset(&path);
		object_path(&path, r, gone[i]);
		if (kube_delete(c, path.buf, "Background", &e) < 0 && !kube_err_is_not_found(&e)) {
			if (rc == 0) {
				char what[420];
				*err = e;
				snprintf(what, sizeof what, "deleting %s", op_object_name(gone[i], name, sizeof name));
				err_prefix(err, what);
			}
			rc = -1;
			continue;
		}
		sb_addf(done, "%s%s", done->len ? ", " : "", op_object_name(gone[i], name, sizeof name));
		deleted++;
	}
	sb_release(&path);
	free(gone);
	return rc < 0 ? rc : deleted;
}

static json_int_t num(json_t *obj, const char *a, const char *b)
{
	json_t *v = kf_jget(obj, a, b, NULL);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

int op_object_ready(json_t *obj, struct strbuf *why)
{
	const char *kind = kf_jstr(obj, "kind", NULL), *name = kf_jstr(obj, "metadata", "name", NULL);
	if (!kind || !name)
		return 1;
	json_int_t gen = num(obj, "metadata", "generation"), seen = num(obj, "status", "observedGeneration");
	if (!strcmp(kind, "Deployment")) {
		json_t *rv = kf_jget(obj, "spec", "replicas", NULL);
		json_int_t want = json_is_integer(rv) ? json_integer_value(rv) : 1;
		json_int_t updated = num(obj, "status", "updatedReplicas"), avail = num(obj, "status", "availableReplicas"),
			   total = num(obj, "status", "replicas");
		if (seen < gen) {
			sb_addf(why, "Deployment %s: generation %lld not yet observed", name, (long long)gen);
			return 0;
		}
		if (updated < want || avail < want || total > updated) {
			sb_addf(why, "Deployment %s: %lld of %lld replicas updated, %lld available%s", name,
				(long long)updated, (long long)want, (long long)avail,
				total > updated ? ", old replicas still running" : "");
			return 0;
		}
	} else if (!strcmp(kind, "DaemonSet")) {
		json_int_t want = num(obj, "status", "desiredNumberScheduled"),
			   updated = num(obj, "status", "updatedNumberScheduled"),
			   avail = num(obj, "status", "numberAvailable");
		if (seen < gen) {
			sb_addf(why, "DaemonSet %s: generation %lld not yet observed", name, (long long)gen);
			return 0;
		}
		if (updated < want || avail < want) {
			sb_addf(why, "DaemonSet %s: %lld of %lld pods updated, %lld available", name, (long long)updated,
				(long long)want, (long long)avail);
			return 0;
		}
	} else if (!strcmp(kind, "ValidatingWebhookConfiguration")) {
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(obj, "webhooks"), i, w) {
			const char *ca = kf_jstr(w, "clientConfig", "caBundle", NULL);
			if (!ca || !*ca) {
				sb_addf(why, "ValidatingWebhookConfiguration %s: no caBundle yet (the webhook server sets "
					     "it)", name);
				return 0;
			}
		}
	}
	return 1;
}
