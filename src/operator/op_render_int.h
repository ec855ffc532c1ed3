/* op_render_int.h - what the template mirrors (op_render_*.c) share: the rendering context, value access
 * with Go-template semantics and error capture, and the chart's named templates (_helpers.tpl).
 *
 * Errors are sticky: the first one is kept in r->err and every later helper call is a no-op returning
 * something harmless, so that a template function reads top to bottom like its template, and op_render()
 * checks once at the end. Strings handed out by the helpers are owned by the context (freed with it). */
#ifndef OP_RENDER_INT_H
#define OP_RENDER_INT_H

#include <jansson.h>

#include "op_render.h"
#include "util/strbuf.h"

struct op_rctx {
	const struct op_chart *chart;
	const struct op_release *rel;
	json_t *v;           /* the merged values, borrowed */
	json_t *out;         /* the rendered objects */
	struct strbuf *err;
	int failed;
	char **tmp;          /* strings owned by the context */
	size_t ntmp, cap;
};

/* Takes ownership of s; returns it (valid until the context is freed). */
const char *r_keep(struct op_rctx *r, char *s);
/* Records the first error: "path: message". Always returns NULL. */
void *r_fail(struct op_rctx *r, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* .Values.<path>, borrowed, NULL for nil (missing or null). */
json_t *r_val(struct op_rctx *r, const char *path);
/* {{ if .Values.<path> }} */
int r_true(struct op_rctx *r, const char *path);
/* {{ .Values.<path> }} as text ("" for nil); an error for a map or a list. */
const char *r_text(struct op_rctx *r, const char *path);
/* A value used as a string (names, image references: printf "%s", default): "" for nil; an error for
 * anything but a string. */
const char *r_str(struct op_rctx *r, const char *path);
/* `default D .Values.<path>`: the value's string if it is a non-empty string, else D. */
const char *r_default(struct op_rctx *r, const char *d, const char *path);
/* {{ .Values.<path> == s }} for strings (eq, has): 1 only for a string equal to s. */
int r_eq(struct op_rctx *r, const char *path, const char *s);
/* `key: <text>` read back as YAML: a new reference to the scalar; an error (naming what) when text is not
 * one plain scalar. */
json_t *r_scalar(struct op_rctx *r, const char *what, const char *text);
/* `key: {{ .Values.<path> }}`: r_scalar(r_text(path)). */
json_t *r_scalar_of(struct op_rctx *r, const char *path);
/* printf-style text. */
const char *r_fmt(struct op_rctx *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `{{- with .Values.<path> }} key: {{ toYaml . }}`: sets obj[key] to a copy of the value when it is true;
 * an error when it is true but not of the type the field needs (JSON_ARRAY or JSON_OBJECT). */
void r_with_block(struct op_rctx *r, json_t *obj, const char *key, const char *path, json_type type);
/* `{{- with .Values.<path> }}{{- toYaml . | nindent N }}{{- end }}` among other keys of a map: copies each
 * key of the value into obj (a key obj has already is overwritten, as the later of two duplicate keys wins
 * when the manifest is read); an error when the value is true but not a map. */
void r_with_merge(struct op_rctx *r, json_t *obj, const char *path);
/* `{{- range .Values.<path> }} - {{ . | quote }}`: appends each item's text, as a string, to arr; nil is
 * no items; an error for anything but a list of scalars. */
void r_range_quoted(struct op_rctx *r, json_t *arr, const char *path);
/* Appends the scalar read from text to arr (a list item `- <text>`). */
void r_item(struct op_rctx *r, json_t *arr, const char *text);
/* Adds a rendered object to the output (steals obj). */
void r_emit(struct op_rctx *r, json_t *obj);

/* _helpers.tpl */
const char *h_name(struct op_rctx *r);          /* kubefledged.name */
const char *h_fullname(struct op_rctx *r);      /* kubefledged.fullname */
const char *h_controller_name(struct op_rctx *r);
const char *h_webhook_name(struct op_rctx *r);
const char *h_agent_name(struct op_rctx *r);
const char *h_controller_sa(struct op_rctx *r);
const char *h_webhook_sa(struct op_rctx *r);
const char *h_agent_sa(struct op_rctx *r);
const char *h_webhook_service(struct op_rctx *r);
const char *h_vwc_name(struct op_rctx *r);
const char *h_secret_name(struct op_rctx *r);
const char *h_image(struct op_rctx *r, const char *override_path); /* printf "%s:%s" (default repo X) tag */
const char *h_busybox_image(struct op_rctx *r);
/* kubefledged.labels / kubefledged.selectorLabels of a component ("controller", "webhook-server",
 * "agent", "metrics"): new objects. */
json_t *h_labels(struct op_rctx *r, const char *component);
json_t *h_selector(struct op_rctx *r, const char *component);
/* metadata: name (read back as YAML), namespace (when ns), labels of component. New object. */
json_t *h_metadata(struct op_rctx *r, const char *name, int ns, const char *component);
/* kubefledged.podCommon into a pod spec: imagePullSecrets, securityContext, nodeSelector, tolerations. */
void h_pod_common(struct op_rctx *r, json_t *pod_spec);
/* The env entry KUBEFLEDGED_NAMESPACE from the pod's namespace. New object. */
json_t *h_env_namespace(void);

/* A policy rule; resource_names may be NULL; resources, resource_names and verbs are space-separated. */
json_t *h_rule(const char *group, const char *resources, const char *resource_names, const char *verbs);
/* A Role or ClusterRole (kind) with rules (stolen). */
json_t *h_role(struct op_rctx *r, const char *kind, const char *name, int ns, const char *component, json_t *rules);
/* A RoleBinding or ClusterRoleBinding (kind) of role_kind `name` to the service account sa (sa_path: the
 * value that names it, for messages) of the release's namespace. */
json_t *h_binding(struct op_rctx *r, const char *kind, const char *role_kind, const char *name, int ns,
		  const char *component, const char *sa, const char *sa_path);
/* A ServiceAccount with the release's imagePullSecrets. */
json_t *h_service_account(struct op_rctx *r, const char *name, const char *name_path, const char *component);

/* The templates, one function per file. */
void t_controller_deployment(struct op_rctx *r);
void t_controller_lease(struct op_rctx *r);
void t_controller_rbac(struct op_rctx *r);
void t_controller_serviceaccount(struct op_rctx *r);
void t_agent_daemonset(struct op_rctx *r);
void t_agent_rbac(struct op_rctx *r);
void t_agent_serviceaccount(struct op_rctx *r);
void t_validatingwebhook(struct op_rctx *r);
void t_webhook_deployment(struct op_rctx *r);
void t_webhook_networkpolicy(struct op_rctx *r);
void t_webhook_rbac(struct op_rctx *r);
void t_webhook_secret(struct op_rctx *r);
void t_webhook_service(struct op_rctx *r);
void t_webhook_serviceaccount(struct op_rctx *r);
void t_metrics_service(struct op_rctx *r);
void t_servicemonitor(struct op_rctx *r);

#endif
