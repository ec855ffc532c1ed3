/* agent_kube.c - NodeImageCache informer, status patches, pull Secrets, node annotation (see
 * agent_kube.h). */
#include "agent_kube.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent_auth.h"
#include "kube/kube_informer.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/util.h"

const struct kube_resource AGENT_NIC_RESOURCE = { "kubefledged.io", "v1alpha1", "nodeimagecaches", "NodeImageCache", 0 };

struct agent_kube {
	struct kube_client *c;
	char *node;
	char *selector;
	struct kube_informer *inf;
	struct agent *a;
	struct metric *requests;
	_Atomic uint64_t get_nic, patch_status, get_secret, errors;
};

/* The client's counters by request: its own calls are counted here, the rest is the informer's. */
static void collect(void *ud)
{
	struct agent_kube *k = ud;
	struct agent_kube_counts kc;
	struct kube_client_stats cs;
	agent_kube_counts(k, &kc);
	kube_client_stats(k->c, &cs);
	uint64_t mine = kc.get_nic + kc.patch_status + kc.get_secret;
	metric_set(k->requests, (double)kc.get_nic, "get_nodeimagecache");
	metric_set(k->requests, (double)kc.patch_status, "patch_nodeimagecache_status");
	metric_set(k->requests, (double)kc.get_secret, "get_secret");
	metric_set(k->requests, (double)cs.watches, "watch_nodeimagecaches");
	metric_set(k->requests, (double)(cs.requests > mine + cs.watches ? cs.requests - mine - cs.watches : 0),
		   "list_nodeimagecaches");
}

struct agent_kube *agent_kube_new(struct kube_client *client, const char *node, struct metrics *metrics)
{
	struct agent_kube *k = xcalloc(1, sizeof *k);
	k->c = client;
	if (metrics) {
		k->requests = metrics_counter(metrics, "kubefledged_agent_api_requests_total",
					      "Requests to the API server, by request (the informer's lists and watches, "
					      "its own reads and status writes).", "request");
		metrics_on_collect(metrics, collect, k);
	}
	if (node && *node) {
		k->node = xstrdup(node);
		k->selector = xasprintf("metadata.name=%s", node);
	}
	return k;
}

/* Keeps what a sync reads: metadata (name, uid, generation, resourceVersion) and the spec, as compact
 * JSON text ("specText": a fourth of the memory of the parsed tree; agent-sim keeps a thousand of them).
 * The status is most of an object once images are cached, and the agent wrote it itself. */
static json_t *trim(void *ud, json_t *obj)
{
	(void)ud;
	json_t *md = json_object_get(obj, "metadata");
	json_t *keep = json_object();
	static const char *keys[] = { "name", "uid", "generation", "resourceVersion" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(md, keys[i]);
		if (v)
			json_object_set(keep, keys[i], v);
	}
	json_t *out = json_pack("{s:o}", "metadata", keep);
	json_t *spec = json_object_get(obj, "spec");
	if (spec) {
		char *text = json_dumps(spec, JSON_COMPACT);
		json_object_set_new(out, "specText", json_string(text ? text : "{}"));
		free(text);
	}
	json_decref(obj);
	return out;
}

/* The cached object with its spec parsed again (new reference). */
static json_t *from_cache(struct agent_kube *k, const char *node)
{
	json_t *c = k->inf ? kube_informer_get(k->inf, node) : NULL;
	if (!c)
		return NULL;
	json_t *o = json_pack("{s:O}", "metadata", json_object_get(c, "metadata"));
	const char *text = json_string_value(json_object_get(c, "specText"));
	if (text)
		json_object_set_new(o, "spec", json_loads(text, 0, NULL));
	json_decref(c);
	return o;
}

static void on_add(void *ud, json_t *obj)
{
	struct agent_kube *k = ud;
	const char *name = kf_jstr(obj, "metadata", "name", NULL);
	if (name && k->a)
		agent_notify(k->a, name);
}

static void on_update(void *ud, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	on_add(ud, new_obj);
}

static json_t *get_nic(void *ud, const char *node, int fresh, int *ok)
{
	struct agent_kube *k = ud;
	*ok = 1;
	if (!fresh)
		return from_cache(k, node);
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	kube_path(&path, &AGENT_NIC_RESOURCE, NULL, node, NULL);
	k->get_nic++;
	json_t *o = kube_get(k->c, path.buf, &e);
	if (!o && !kube_err_is_not_found(&e)) {
		*ok = 0;
		k->errors++;
		LOG_WARN("node %s: GET its NodeImageCache: %s; using the cache", node, e.msg);
		o = from_cache(k, node);
	}
	sb_release(&path);
	return o;
}

static int patch_status(void *ud, const char *node, json_t *status, struct strbuf *err)
{
	struct agent_kube *k = ud;
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	kube_path(&path, &AGENT_NIC_RESOURCE, NULL, node, "status");
	json_t *body = json_pack("{s:O}", "status", status);
	k->patch_status++;
	json_t *r = kube_patch(k->c, path.buf, body, "application/merge-patch+json", &e);
	json_decref(body);
	sb_release(&path);
	if (!r) {
		k->errors++;
		sb_addf(err, "PATCH NodeImageCache %s status: %s%s(HTTP %ld)", node, e.msg, e.msg[0] ? " " : "", e.code);
		return -1;
	}
	json_decref(r);
	return 0;
}

static int get_secret(void *ud, const char *ns, const char *name, char **text, size_t *len, int *legacy,
		      struct strbuf *err)
{
	struct agent_kube *k = ud;
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	int rc = -1;
	*text = NULL;
	*len = 0;
	*legacy = 0;
	kube_path(&path, &KUBE_SECRETS, ns, name, NULL);
	k->get_secret++;
	json_t *s = kube_get(k->c, path.buf, &e);
	sb_release(&path);
	if (!s) {
		k->errors++;
		sb_adds(err, e.msg[0] ? e.msg : "cannot read it");
		return -1;
	}
	const char *type = kf_jstr(s, "type", NULL);
	const char *field = NULL;
	if (type && !strcmp(type, "kubernetes.io/dockerconfigjson")) {
		field = ".dockerconfigjson";
	} else if (type && !strcmp(type, "kubernetes.io/dockercfg")) {
		field = ".dockercfg";
		*legacy = 1;
	} else {
		sb_addf(err, "type \"%s\", want kubernetes.io/dockerconfigjson", type ? type : "");
		goto out;
	}
	const char *data = kf_jstr(s, "data", field, NULL);
	if (!data) {
		sb_addf(err, "no data[\"%s\"]", field);
		goto out;
	}
	unsigned char *dec = kf_base64_decode(data, strlen(data), len, NULL);
	if (!dec) {
		sb_addf(err, "data[\"%s\"] is not valid base64", field);
		goto out;
	}
	*text = (char *)dec;
	rc = 0;
out:
	agent_json_wipe(s);
	json_decref(s);
	return rc;
}

void agent_kube_api(struct agent_kube *k, struct agent_api *api)
{
	api->get_nic = get_nic;
	api->patch_status = patch_status;
	api->get_secret = get_secret;
	api->ud = k;
}

int agent_kube_start(struct agent_kube *k, struct agent *a)
{
	k->a = a;
	struct kube_informer_opts io = { 0 };
	io.res = &AGENT_NIC_RESOURCE;
	io.field_selector = k->selector;
	io.transform = trim;
	io.transform_ud = k;
	struct kube_informer_handlers h = { on_add, on_update, NULL, k };
	/* A deleted object: the node then wants nothing; the sync sees it gone. */
	h.on_delete = on_add;
	k->inf = kube_informer_new(k->c, &io, &h);
	return kube_informer_start(k->inf);
}

int agent_kube_wait_synced(struct agent_kube *k, int64_t timeout_ms)
{
	return k->inf ? kube_informer_wait_synced(k->inf, timeout_ms) : -1;
}

int agent_kube_synced(struct agent_kube *k)
{
	return k->inf && kube_informer_has_synced(k->inf);
}

void agent_kube_free(struct agent_kube *k)
{
	if (!k)
		return;
	if (k->inf) {
		kube_informer_stop(k->inf);
		kube_informer_free(k->inf);
	}
	free(k->node);
	free(k->selector);
	free(k);
}

void agent_kube_counts(struct agent_kube *k, struct agent_kube_counts *out)
{
	out->get_nic = k->get_nic;
	out->patch_status = k->patch_status;
	out->get_secret = k->get_secret;
	out->errors = k->errors;
}

char *agent_kube_node_annotation(struct kube_client *client, const char *node, const char *key, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	kube_path(&path, &KUBE_NODES, NULL, node, NULL);
	json_t *o = kube_get(client, path.buf, &e);
	sb_release(&path);
	if (!o) {
		sb_addf(err, "GET node %s: %s", node, e.msg);
		return NULL;
	}
	const char *v = kf_jstr(o, "metadata", "annotations", key, NULL);
	char *r = v ? xstrdup(v) : NULL;
	json_decref(o);
	return r;
}
