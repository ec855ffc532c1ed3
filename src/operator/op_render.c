/* op_render.c - op_render(): runs the template mirrors over the merged values; plus the helpers they share
 * (op_render_int.h): value access with Go-template semantics, sticky errors, and the chart's named
 * templates of _helpers.tpl. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "op_render_int.h"
#include "op_values.h"
#include "util/util.h"

/* ---- context, errors, values ---- */

const char *r_keep(struct op_rctx *r, char *s)
{
	if (r->ntmp == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->tmp = xrealloc(r->tmp, r->cap * sizeof *r->tmp);
	}
	r->tmp[r->ntmp++] = s;
	return s;
}

void *r_fail(struct op_rctx *r, const char *path, const char *fmt, ...)
{
	if (r->failed)
		return NULL;
	r->failed = 1;
	sb_reset(r->err);
	if (path)
		sb_addf(r->err, "%s: ", path);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(r->err, fmt, ap);
	va_end(ap);
	return NULL;
}

/* The value quoted for a message: "text" for strings, JSON otherwise, cut at 80 characters. */
static const char *shown(struct op_rctx *r, json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (s && strlen(s) > 80)
		strcpy(s + 77, "...");
	return r_keep(r, s ? s : xstrdup("?"));
}

json_t *r_val(struct op_rctx *r, const char *path)
{
	return op_value_at(r->v, path);
}

int r_true(struct op_rctx *r, const char *path)
{
	return op_truthy(r_val(r, path));
}

const char *r_text(struct op_rctx *r, const char *path)
{
	json_t *v = r_val(r, path);
	struct strbuf sb = STRBUF_INIT;
	if (op_value_text(v, &sb) < 0) {
		sb_release(&sb);
		r_fail(r, path, "must be a single value, not %s %s", json_is_array(v) ? "a list" : "a map", shown(r, v));
		return "";
	}
	return sb.len ? r_keep(r, sb_detach(&sb)) : "";
}

const char *r_str(struct op_rctx *r, const char *path)
{
	json_t *v = r_val(r, path);
	if (!v)
		return "";
	if (!json_is_string(v)) {
		r_fail(r, path, "must be a string, not %s %s", kf_json_type_name(v), shown(r, v));
		return "";
	}
	return json_string_value(v);
}

const char *r_default(struct op_rctx *r, const char *d, const char *path)
{
	json_t *v = r_val(r, path);
	if (!op_truthy(v))
		return d;
	return r_str(r, path);
}

int r_eq(struct op_rctx *r, const char *path, const char *s)
{
	json_t *v = r_val(r, path);
	return json_is_string(v) && !strcmp(json_string_value(v), s);
}

json_t *r_scalar(struct op_rctx *r, const char *what, const char *text)
{
	if (r->failed)
		return json_null();
	json_t *v = op_yaml_scalar(text);
	if (!v) {
		r_fail(r, what, "\"%s\" does not read back as one YAML value in the manifest (a newline, \": \", a "
				"leading \"[\" or \"{\"...)", text);
		return json_null();
	}
	return v;
}

json_t *r_scalar_of(struct op_rctx *r, const char *path)
{
	return r_scalar(r, path, r_text(r, path));
}

const char *r_fmt(struct op_rctx *r, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return r_keep(r, sb_detach(&sb));
}

void r_with_block(struct op_rctx *r, json_t *obj, const char *key, const char *path, json_type type)
{
	json_t *v = r_val(r, path);
	if (!op_truthy(v))
		return;
	if (json_typeof(v) != type) {
		r_fail(r, path, "must be %s, not %s %s", type == JSON_ARRAY ? "a list" : "a map", kf_json_type_name(v),
		       shown(r, v));
		return;
	}
	json_object_set_new(obj, key, json_deep_copy(v));
}

void r_with_merge(struct op_rctx *r, json_t *obj, const char *path)
{
	json_t *v = r_val(r, path);
	if (!op_truthy(v))
		return;
	if (!json_is_object(v)) {
		r_fail(r, path, "must be a map, not %s %s", kf_json_type_name(v), shown(r, v));
		return;
	}
	json_t *copy = json_deep_copy(v);
	json_object_update(obj, copy);
	json_decref(copy);
}

void r_range_quoted(struct op_rctx *r, json_t *arr, const char *path)
{
	json_t *v = r_val(r, path), *it;
	size_t i;
	if (!v)
		return;
	if (!json_is_array(v)) {
		r_fail(r, path, "must be a list, not %s %s", kf_json_type_name(v), shown(r, v));
		return;
	}
	json_array_foreach(v, i, it) {
		struct strbuf sb = STRBUF_INIT;
		if (op_value_text(it, &sb) < 0) {
			r_fail(r, r_fmt(r, "%s[%zu]", path, i), "must be a single value, not %s", shown(r, it));
			sb_release(&sb);
			return;
		}
		json_array_append_new(arr, json_string(sb.buf));
		sb_release(&sb);
	}
}

void r_item(struct op_rctx *r, json_t *arr, const char *text)
{
	json_array_append_new(arr, r_scalar(r, "a list item", text));
}

void r_emit(struct op_rctx *r, json_t *obj)
{
	json_array_append_new(r->out, obj);
}

/* ---- _helpers.tpl ---- */

/* trunc 63 | trimSuffix "-" */
static const char *trunc63(struct op_rctx *r, const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		n = 63;
	if (n && s[n - 1] == '-')
		n--;
	return r_keep(r, xstrndup(s, n));
}

const char *h_name(struct op_rctx *r)
{
	return trunc63(r, r_default(r, r->chart->name, "nameOverride"));
}

const char *h_fullname(struct op_rctx *r)
{
	if (r_true(r, "fullnameOverride"))
		return trunc63(r, r_str(r, "fullnameOverride"));
	const char *name = r_default(r, r->chart->name, "nameOverride");
	if (strstr(r->rel->name, name))
		return trunc63(r, r->rel->name);
	return trunc63(r, r_fmt(r, "%s-%s", r->rel->name, name));
}

const char *h_controller_name(struct op_rctx *r) { return trunc63(r, r_fmt(r, "%s-controller", h_fullname(r))); }
const char *h_webhook_name(struct op_rctx *r) { return trunc63(r, r_fmt(r, "%s-webhook-server", h_fullname(r))); }
const char *h_agent_name(struct op_rctx *r) { return trunc63(r, r_fmt(r, "%s-agent", h_fullname(r))); }
const char *h_controller_sa(struct op_rctx *r) { return r_default(r, h_controller_name(r), "serviceAccount.name"); }
const char *h_webhook_sa(struct op_rctx *r)
{
	return r_default(r, h_webhook_name(r), "serviceAccount.webhookServerName");
}
const char *h_agent_sa(struct op_rctx *r) { return r_default(r, h_agent_name(r), "agent.serviceAccountName"); }
const char *h_webhook_service(struct op_rctx *r) { return r_default(r, h_webhook_name(r), "webhookService.name"); }
const char *h_vwc_name(struct op_rctx *r) { return r_default(r, h_webhook_name(r), "validatingWebhook.name"); }
const char *h_secret_name(struct op_rctx *r)
{
	return r_default(r, r_fmt(r, "%s-cert", h_webhook_name(r)), "secret.name");
}

static const char *h_tag(struct op_rctx *r) { return r_default(r, r->chart->app_version, "image.tag"); }

const char *h_image(struct op_rctx *r, const char *override_path)
{
	return r_fmt(r, "%s:%s", r_default(r, r_str(r, "image.repository"), override_path), h_tag(r));
}

const char *h_busybox_image(struct op_rctx *r)
{
	if (r_true(r, "image.busyboxImageRepository"))
		return r_fmt(r, "%s:%s", r_str(r, "image.busyboxImageRepository"),
			     r_default(r, h_tag(r), "image.busyboxImageVersion"));
	return r_fmt(r, "%s:%s", r_str(r, "image.repository"), h_tag(r));
}

json_t *h_selector(struct op_rctx *r, const char *component)
{
	json_t *l = json_object();
	json_object_set_new(l, "app.kubernetes.io/name", r_scalar(r, "nameOverride", h_name(r)));
	json_object_set_new(l, "app.kubernetes.io/instance", r_scalar(r, "the release name", r->rel->name));
	json_object_set_new(l, "app.kubernetes.io/part-of",
			    r_scalar(r, "the release name", r_fmt(r, "%s-%s", r->rel->name, component)));
	return l;
}

json_t *h_labels(struct op_rctx *r, const char *component)
{
	json_t *l = h_selector(r, component);
	struct strbuf chart = STRBUF_INIT;
	for (const char *s = r_fmt(r, "%s-%s", r->chart->name, r->chart->version); *s; s++)
		sb_addc(&chart, *s == '+' ? '_' : *s);
	json_object_set_new(l, "helm.sh/chart", r_scalar(r, "the chart's name", trunc63(r, chart.buf)));
	sb_release(&chart);
	json_object_set_new(l, "app.kubernetes.io/version", json_string(r->chart->app_version)); /* | quote */
	json_object_set_new(l, "app.kubernetes.io/managed-by", r_scalar(r, "the release service", r->rel->service));
	return l;
}

json_t *h_metadata(struct op_rctx *r, const char *name, int ns, const char *component)
{
	json_t *m = json_object();
	json_object_set_new(m, "name", r_scalar(r, "a name", name));
	if (ns)
		json_object_set_new(m, "namespace", r_scalar(r, "the namespace", r->rel->ns));
	json_object_set_new(m, "labels", h_labels(r, component));
	return m;
}

void h_pod_common(struct op_rctx *r, json_t *spec)
{
	r_with_block(r, spec, "imagePullSecrets", "imagePullSecrets", JSON_ARRAY);
	r_with_block(r, spec, "securityContext", "podSecurityContext", JSON_OBJECT);
	r_with_block(r, spec, "nodeSelector", "nodeSelector", JSON_OBJECT);
	r_with_block(r, spec, "tolerations", "tolerations", JSON_ARRAY);
}

json_t *h_env_namespace(void)
{
	return json_pack("{s:s, s:{s:{s:s}}}", "name", "KUBEFLEDGED_NAMESPACE", "valueFrom", "fieldRef", "fieldPath",
			 "metadata.namespace");
}

json_t *h_rule(const char *group, const char *resources, const char *resource_names, const char *verbs)
{
	json_t *r = json_object(), *a;
	json_object_set_new(r, "apiGroups", json_pack("[s]", group));
	const char *lists[][2] = { { "resources", resources }, { "resourceNames", resource_names }, { "verbs", verbs } };
	for (size_t i = 0; i < 3; i++) {
		if (!lists[i][1])
			continue;
		a = json_array();
		for (const char *s = lists[i][1]; *s;) {
			size_t n = strcspn(s, " ");
			json_array_append_new(a, json_stringn(s, n));
			s += n + (s[n] == ' ');
		}
		json_object_set_new(r, lists[i][0], a);
	}
	return r;
}

json_t *h_binding(struct op_rctx *r, const char *kind, const char *role_kind, const char *name, int ns,
		  const char *component, const char *sa, const char *sa_path)
{
	return json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:o}, s:[{s:s, s:o, s:o}]}", "apiVersion",
			 "rbac.authorization.k8s.io/v1", "kind", kind, "metadata", h_metadata(r, name, ns, component),
			 "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", role_kind, "name",
			 r_scalar(r, "a role name", name), "subjects", "kind", "ServiceAccount", "name",
			 r_scalar(r, sa_path, sa), "namespace", r_scalar(r, "the namespace", r->rel->ns));
}

json_t *h_role(struct op_rctx *r, const char *kind, const char *name, int ns, const char *component, json_t *rules)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "rbac.authorization.k8s.io/v1", "kind", kind,
			 "metadata", h_metadata(r, name, ns, component), "rules", rules);
}

json_t *h_service_account(struct op_rctx *r, const char *name, const char *name_path, const char *component)
{
	json_t *meta = h_metadata(r, "x", 1, component);
	json_object_set_new(meta, "name", r_scalar(r, name_path, name));
	json_t *sa = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata", meta);
	r_with_block(r, sa, "imagePullSecrets", "imagePullSecrets", JSON_ARRAY);
	return sa;
}

/* ---- op_render ---- */

/* Helm's install order (releaseutil.InstallOrder) for the kinds the chart has; Lease, ServiceMonitor and
 * ValidatingWebhookConfiguration are not in Helm's list, which puts them last, in alphabetical order: the
 * configuration after the webhook's Deployment, so that it is never in force before its server exists. */
static const char *const kind_order[] = {
	"Namespace", "NetworkPolicy", "ServiceAccount", "Secret", "ConfigMap", "CustomResourceDefinition",
	"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Deployment", "Lease",
	"ServiceMonitor", "ValidatingWebhookConfiguration",
};

int op_kind_rank(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_order); i++)
		if (kind && !strcmp(kind, kind_order[i]))
			return (int)i;
	return (int)ARRAY_SIZE(kind_order);
}

static int by_rank(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int d = op_kind_rank(kf_jstr(x, "kind", NULL)) - op_kind_rank(kf_jstr(y, "kind", NULL));
	if (d)
		return d;
	const char *nx = kf_jstr(x, "metadata", "name", NULL), *ny = kf_jstr(y, "metadata", "name", NULL);
	return strcmp(nx ? nx : "", ny ? ny : "");
}

/* Helm's rule for release names: a DNS subdomain of at most 53 characters (the chart appends suffixes). */
static int valid_release_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 53)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i], prev = i ? s[i - 1] : '.', next = s[i + 1] ? s[i + 1] : '.';
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (c == '-' ? prev == '.' || next == '.' : c == '.' ? prev == '.' || prev == '-' || next == '-' : !alnum)
			return 0;
	}
	return s[n - 1] != '.';
}

json_t *op_render(const struct op_chart *chart, const struct op_release *rel, json_t *values, int include_crds,
		  struct strbuf *err)
{
	struct op_rctx r = { .chart = chart, .rel = rel, .v = values, .out = json_array(), .err = err };
	/* the template files in helm's order (by name); `fail` in any of them stops the whole render */
	void (*const templates[])(struct op_rctx *) = {
		t_agent_daemonset, t_agent_rbac, t_agent_serviceaccount, t_controller_deployment,
		t_controller_lease, t_controller_rbac, t_controller_serviceaccount, t_metrics_service,
		t_servicemonitor, t_validatingwebhook,
		t_webhook_deployment, t_webhook_networkpolicy, t_webhook_rbac, t_webhook_secret, t_webhook_service,
		t_webhook_serviceaccount,
	};
	if (!valid_release_name(rel->name))
		r_fail(&r, NULL, "release name \"%s\": at most 53 characters, lowercase letters, digits, '-' and '.', "
				 "starting and ending with a letter or digit (Helm's rule; the KubeFledged's name is the "
				 "release name)", rel->name);
	/* the mode check comes first in effect: controller-deployment.yaml fails before anything is applied */
	if (!r.failed && !r_eq(&r, "mode", "agent") && !r_eq(&r, "mode", "jobs")) {
		struct strbuf t = STRBUF_INIT;
		json_t *m = r_val(&r, "mode");
		if (json_is_string(m))
			sb_addf(&t, "\"%s\"", json_string_value(m));
		else if (op_value_text(m, &t) < 0 || !m)
			sb_adds(&t, m ? "(not text)" : "\"\"");
		r_fail(&r, NULL, "mode: %s is neither agent nor jobs", t.buf);
		sb_release(&t);
	}
	for (size_t i = 0; i < ARRAY_SIZE(templates) && !r.failed; i++)
		templates[i](&r);
	json_t *out = NULL;
	if (!r.failed) {
		size_t n = json_array_size(r.out);
		json_t **objs = xcalloc(n + 1, sizeof *objs);
		for (size_t i = 0; i < n; i++)
			objs[i] = json_incref(json_array_get(r.out, i));
		qsort(objs, n, sizeof *objs, by_rank);
		out = json_array();
		if (include_crds)
			json_array_extend(out, chart->crds);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(out, objs[i]);
		free(objs);
	}
	json_decref(r.out);
	for (size_t i = 0; i < r.ntmp; i++)
		free(r.tmp[i]);
	free(r.tmp);
	return out;
}
