/* plugin_cluster.c - connection, checks, mode detection and requests of `kubectl fledged` (see
 * plugin_cluster.h). */
#include "plugin_cluster.h"

#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_types.h"
#include "util/util.h"

const struct kube_resource PLUGIN_NIC_RESOURCE = { "kubefledged.io", "v1alpha1", "nodeimagecaches", "NodeImageCache",
						   0 };

void plugin_explain(struct plugin_session *s, const char *what, const struct kube_err *e, struct strbuf *err)
{
	const char *server = s->cfg ? s->cfg->server : "?";
	const char *ctx = s->cfg && s->cfg->context ? s->cfg->context : "?";
	if (e->code == 0)
		sb_addf(err, "cannot reach the Kubernetes API server at %s (context %s): %s", server, ctx, e->msg);
	else if (e->code == 401)
		sb_addf(err, "the API server at %s did not accept the credentials of context %s (HTTP 401%s%s)", server,
			ctx, *e->msg ? ": " : "", e->msg);
	else if (e->code == 403)
		sb_addf(err, "%s: forbidden (HTTP 403): %s", what, *e->msg ? e->msg : "no message");
	else
		sb_addf(err, "%s: HTTP %ld%s%s", what, e->code, *e->msg ? ": " : "", e->msg);
}

/* GET of an API group version: 1 served, 0 not served (404), -1 error (err filled). */
static int group_version_served(struct plugin_session *s, const char *group, const char *version, struct strbuf *err)
{
	char path[128];
	snprintf(path, sizeof path, "/apis/%s/%s", group, version);
	struct kube_err e;
	json_t *j = kube_get(s->c, path, &e);
	if (j) {
		json_decref(j);
		return 1;
	}
	if (e.code == 404)
		return 0;
	plugin_explain(s, path, &e, err);
	return -1;
}

int plugin_connect(const struct plugin_conn_opts *o, struct plugin_session *s, struct strbuf *err)
{
	memset(s, 0, sizeof *s);
	s->cfg = kube_config_load(o->kubeconfig && *o->kubeconfig ? o->kubeconfig : NULL,
				  o->context && *o->context ? o->context : NULL, NULL, err);
	if (!s->cfg)
		return -1;
	struct kube_client_opts co = { .qps = 50, .burst = 100, .timeout_ms = 30000 };
	s->c = kube_client_new(s->cfg, &co, err);
	if (!s->c)
		return -1;
	s->ns = xstrdup(o->ns && *o->ns ? o->ns : s->cfg->namespace && *s->cfg->namespace ? s->cfg->namespace : "default");
	int served = group_version_served(s, IC_GROUP, IC_VERSION, err);
	if (served < 0)
		return -1;
	if (!served) {
		sb_addf(err, "the ImageCache CRD (imagecaches.%s, version %s) is not installed in the cluster at %s: "
			     "install kube-fledged first (kubectl apply -f deploy/kubefledged-crd.yaml, or the Helm chart)",
			IC_GROUP, IC_VERSION, s->cfg->server);
		return -1;
	}
	s->mode_fixed = o->mode && (!strcmp(o->mode, "jobs") || !strcmp(o->mode, "agent"));
	s->mode = s->mode_fixed && !strcmp(o->mode, "agent") ? PLUGIN_MODE_AGENT : PLUGIN_MODE_JOBS;
	served = group_version_served(s, PLUGIN_NIC_RESOURCE.group, PLUGIN_NIC_RESOURCE.version, err);
	if (served < 0)
		return -1;
	s->nic_crd = served;
	if (s->mode_fixed && s->mode == PLUGIN_MODE_AGENT && !served) {
		sb_addf(err, "--mode=agent, but the NodeImageCache CRD (nodeimagecaches.%s) is not installed in the "
			     "cluster at %s", PLUGIN_NIC_RESOURCE.group, s->cfg->server);
		return -1;
	}
	return 0;
}

json_t *plugin_list_caches_all(struct plugin_session *s, int *partial, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	*partial = 0;
	json_t *all = plugin_list(s, &IC_RESOURCE, NULL, &e);
	if (!all) {
		*partial = 1;
		all = plugin_list(s, &IC_RESOURCE, s->ns, err);
	}
	sb_release(&e);
	return all;
}

int plugin_load_nodes(struct plugin_session *s, json_t *caches_all, int complete, json_t **nodes, json_t **nics,
		      struct strbuf *err)
{
	*nics = NULL;
	*nodes = plugin_list(s, &KUBE_NODES, NULL, err);
	if (!*nodes)
		return -1;
	if (s->nic_crd && (!s->mode_fixed || s->mode == PLUGIN_MODE_AGENT)) {
		*nics = plugin_list(s, &PLUGIN_NIC_RESOURCE, NULL, err);
		if (!*nics)
			return -1;
	}
	if (!s->mode_fixed)
		s->mode = plugin_mode_guess(*nics, caches_all, complete);
	return 0;
}

void plugin_disconnect(struct plugin_session *s)
{
	kube_client_free(s->c);
	kube_config_free(s->cfg);
	free(s->ns);
	memset(s, 0, sizeof *s);
}

json_t *plugin_list(struct plugin_session *s, const struct kube_resource *r, const char *ns, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT, what = STRBUF_INIT;
	json_t *items = json_array();
	char *cont = NULL;
	/* pages of 500, as kubectl lists */
	for (;;) {
		sb_reset(&path);
		kube_path(&path, r, ns, NULL, NULL);
		sb_adds(&path, "?limit=500");
		if (cont) {
			sb_adds(&path, "&continue=");
			sb_add_urlencoded(&path, cont);
		}
		struct kube_err e;
		json_t *l = kube_get(s->c, path.buf, &e);
		if (!l) {
			sb_addf(&what, "listing %s%s%s", r->plural, ns ? " in namespace " : "", ns ? ns : "");
			plugin_explain(s, what.buf, &e, err);
			json_decref(items);
			items = NULL;
			break;
		}
		json_array_extend(items, json_object_get(l, "items"));
		free(cont);
		const char *c = kf_jstr(l, "metadata", "continue", NULL);
		cont = c && *c ? xstrdup(c) : NULL;
		json_decref(l);
		if (!cont)
			break;
	}
	free(cont);
	sb_release(&path);
	sb_release(&what);
	return items;
}

json_t *plugin_get_cache(struct plugin_session *s, const char *ns, const char *name, int *not_found, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &IC_RESOURCE, ns, name, NULL);
	struct kube_err e;
	json_t *obj = kube_get(s->c, path.buf, &e);
	*not_found = 0;
	if (!obj) {
		if (e.code == 404) {
			*not_found = 1;
			sb_addf(err, "ImageCache %s/%s not found", ns, name);
		} else {
			char *what = xasprintf("getting ImageCache %s/%s", ns, name);
			plugin_explain(s, what, &e, err);
			free(what);
		}
	}
	sb_release(&path);
	return obj;
}

int plugin_annotate(struct plugin_session *s, const char *ns, const char *name, const char *key, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &IC_RESOURCE, ns, name, NULL);
	json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", key, "");
	struct kube_err e;
	json_t *r = kube_patch(s->c, path.buf, patch, "application/merge-patch+json", &e);
	json_decref(patch);
	sb_release(&path);
	if (r) {
		json_decref(r);
		return 0;
	}
	if (e.code == 404)
		sb_addf(err, "ImageCache %s/%s not found", ns, name);
	else {
		char *what = xasprintf("annotating ImageCache %s/%s", ns, name);
		plugin_explain(s, what, &e, err);
		free(what);
	}
	return -1;
}
