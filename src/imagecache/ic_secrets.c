/* ic_secrets.c - agent mode: who may read which pull Secret (docs/agent.md, "Trust model").
 *
 * The agents pull with the kubernetes.io/dockerconfigjson Secrets that ImageCaches name in
 * imagePullSecrets, which live in the caches' namespaces. Rather than letting the agents read every Secret
 * of the cluster (what kruise-daemon's role allows), the controller binds the agents' service account to
 * the ClusterRole kubefledged-agent-pull-secrets (get secrets) with one RoleBinding, of the same name, in
 * each namespace where a cache that wants images names pull secrets, and deletes that binding when no such
 * cache remains. Work queue keys "ns:<namespace>". The controller itself never reads a Secret; it needs
 * RoleBinding rights and `bind` on that one ClusterRole. */
#include <string.h>

#include "ic_controller_int.h"
#include "util/log.h"

static const struct kube_resource ROLEBINDINGS = { "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", 1 };

void ic_nssync_enqueue(struct ic_controller *ctl, const char *ns)
{
	if (ctl->o.mode != IC_MODE_AGENT || !ctl->o.agent_service_account || !*ctl->o.agent_service_account || !ns)
		return;
	char key[300];
	snprintf(key, sizeof key, IC_NS_KEY_PREFIX "%s", ns);
	kube_wq_add(ctl->q, key);
}

/* 1 when a cache of namespace ns that wants images names pull secrets. */
static int needs_binding(struct ic_controller *ctl, const char *ns)
{
	json_t *caches = kube_informer_list(ctl->caches);
	int need = 0;
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c) {
		const char *cns = ic_meta(c, "namespace");
		if (!need && cns && !strcmp(cns, ns) && ic_cache_wants_images(c) &&
		    json_array_size(kf_jget(c, "spec", "imagePullSecrets", NULL)))
			need = 1;
	}
	json_decref(caches);
	return need;
}

int ic_nssync(struct ic_controller *ctl, const char *ns, int64_t *requeue_ms)
{
	*requeue_ms = 0;
	const char *sa = ctl->o.agent_service_account;
	const char *slash = strchr(sa, '/');
	if (!slash)
		return 0;
	int need = needs_binding(ctl, ns);
	struct strbuf path = STRBUF_INIT;
	kube_path(&path, &ROLEBINDINGS, ns, IC_AGENT_SECRETS_ROLE, NULL);
	struct kube_err err;
	json_t *have = kube_get(ctl->c, path.buf, &err);
	int rc = 0;
	if (!have && !kube_err_is_not_found(&err)) {
		LOG_WARN("RoleBinding %s/%s: %s", ns, IC_AGENT_SECRETS_ROLE, err.msg);
		rc = -1;
	} else if (need && !have) {
		char *sa_ns = xstrndup(sa, (size_t)(slash - sa));
		json_t *rb = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}",
				       "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata",
				       "name", IC_AGENT_SECRETS_ROLE, "namespace", ns, "labels", "app", "kubefledged",
				       "kubefledged", "kubefledged-agent", "roleRef", "apiGroup",
				       "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", IC_AGENT_SECRETS_ROLE,
				       "subjects", "kind", "ServiceAccount", "name", slash + 1, "namespace", sa_ns);
		free(sa_ns);
		sb_reset(&path);
		kube_path(&path, &ROLEBINDINGS, ns, NULL, NULL);
		json_t *res = kube_create(ctl->c, path.buf, rb, &err);
		json_decref(rb);
		if (res || err.code == 409) {
			LOG_INFO("namespace %s: the agents may read the pull secrets its ImageCaches name (RoleBinding %s)",
				 ns, IC_AGENT_SECRETS_ROLE);
		} else {
			LOG_WARN("namespace %s: cannot bind the agents to read pull secrets (HTTP %ld): %s", ns,
				 err.code, err.msg);
			rc = -1;
		}
		json_decref(res);
	} else if (!need && have && kf_jstr(have, "metadata", "labels", "app", NULL) &&
		   !strcmp(kf_jstr(have, "metadata", "labels", "app", NULL), "kubefledged")) {
		if (kube_delete(ctl->c, path.buf, NULL, &err) < 0 && !kube_err_is_not_found(&err)) {
			LOG_WARN("RoleBinding %s/%s: delete failed (HTTP %ld): %s", ns, IC_AGENT_SECRETS_ROLE, err.code,
				 err.msg);
			rc = -1;
		} else {
			LOG_INFO("namespace %s: no ImageCache names pull secrets any more: RoleBinding %s deleted", ns,
				 IC_AGENT_SECRETS_ROLE);
		}
	}
	json_decref(have);
	sb_release(&path);
	return rc;
}
