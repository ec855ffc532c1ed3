/* op_render_webhook.c - the webhook server's templates: validatingwebhook.yaml, webhook-deployment.yaml,
 * webhook-networkpolicy.yaml, webhook-rbac.yaml, webhook-secret.yaml, webhook-service.yaml,
 * webhook-serviceaccount.yaml (see op_render_int.h for the helpers). */
#include "op_render_int.h"
#include "op_values.h"

#define WH "webhook-server"

void t_validatingwebhook(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable") || !r_true(r, "validatingWebhook.create"))
		return;
	json_t *service = json_pack("{s:o, s:o, s:s, s:o}", "namespace", r_scalar(r, "the namespace", r->rel->ns),
				    "name", r_scalar(r, "webhookService.name", h_webhook_service(r)), "path",
				    "/validate-image-cache", "port", r_scalar_of(r, "webhookService.port"));
	json_t *hook = json_pack("{s:s, s:[s, s], s:o, s:o, s:s, s:{s:o}, s:[{s:[s, s], s:[s], s:[s], s:[s], s:s}]}",
		"name", "validate-image-cache.kubefledged.io", "admissionReviewVersions", "v1beta1", "v1",
		"timeoutSeconds", r_scalar_of(r, "validatingWebhook.timeoutSeconds"),
		"failurePolicy", r_scalar_of(r, "validatingWebhook.failurePolicy"), "sideEffects", "None",
		"clientConfig", "service", service,
		"rules", "operations", "CREATE", "UPDATE", "apiGroups", "kubefledged.io", "apiVersions", "v1alpha2",
		"resources", "imagecaches", "scope", "Namespaced");
	json_t *meta = h_metadata(r, h_vwc_name(r), 0, WH);
	r_emit(r, json_pack("{s:s, s:s, s:o, s:[o]}", "apiVersion", "admissionregistration.k8s.io/v1", "kind",
			    "ValidatingWebhookConfiguration", "metadata", meta, "webhooks", hook));
}

static json_t *probe(const char *path, int initial_delay, int period, int failures)
{
	json_t *p = json_pack("{s:{s:s, s:s, s:s}, s:i, s:i}", "httpGet", "path", path, "port", WH, "scheme", "HTTPS",
			      "periodSeconds", period, "failureThreshold", failures);
	if (initial_delay)
		json_object_set_new(p, "initialDelaySeconds", json_integer(initial_delay));
	return p;
}

void t_webhook_deployment(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable"))
		return;
	int files = r_true(r, "args.webhookServerCertFile") && r_true(r, "args.webhookServerKeyFile");
	json_t *spec = json_object(), *pod = json_object(), *c = json_object(), *args = json_array();
	json_object_set_new(pod, "serviceAccountName", r_scalar(r, "serviceAccount.webhookServerName", h_webhook_sa(r)));
	if (r_true(r, "webhookServer.hostNetwork")) {
		json_object_set_new(pod, "hostNetwork", json_true());
		json_object_set_new(pod, "dnsPolicy", json_string("ClusterFirstWithHostNet"));
	}
	if (r_true(r, "webhookServer.priorityClassName"))
		json_object_set_new(pod, "priorityClassName", r_scalar_of(r, "webhookServer.priorityClassName"));
	h_pod_common(r, pod);
	if (r_true(r, "affinity"))
		r_with_block(r, pod, "affinity", "affinity", JSON_OBJECT);
	else
		json_object_set_new(pod, "affinity", json_pack("{s:{s:[{s:i, s:{s:s, s:{s:o}}}]}}", "podAntiAffinity",
			"preferredDuringSchedulingIgnoredDuringExecution", "weight", 100, "podAffinityTerm", "topologyKey",
			"kubernetes.io/hostname", "labelSelector", "matchLabels", h_selector(r, WH)));

	json_object_set_new(c, "name", json_string(WH));
	json_object_set_new(c, "image", r_scalar(r, "image.repository", h_image(r, "image.kubefledgedWebhookServerRepository")));
	json_object_set_new(c, "imagePullPolicy", r_scalar_of(r, "image.pullPolicy"));
	r_item(r, args, WH);
	r_item(r, args, r_fmt(r, "--stderrthreshold=%s", r_text(r, "args.webhookServerLogLevel")));
	r_item(r, args, r_fmt(r, "--port=%s", r_text(r, "args.webhookServerPort")));
	if (files) {
		r_item(r, args, r_fmt(r, "--cert-file=%s", r_text(r, "args.webhookServerCertFile")));
		r_item(r, args, r_fmt(r, "--key-file=%s", r_text(r, "args.webhookServerKeyFile")));
	} else {
		r_item(r, args, r_fmt(r, "--tls-secret=%s", h_secret_name(r)));
	}
	r_item(r, args, r_fmt(r, "--webhook-service=%s", h_webhook_service(r)));
	if (r_true(r, "validatingWebhook.create"))
		r_item(r, args, r_fmt(r, "--validating-webhook-config=%s", h_vwc_name(r)));
	r_range_quoted(r, args, "args.webhookServerExtraArgs");
	json_object_set_new(c, "args", args);
	json_object_set_new(c, "env", json_pack("[o]", h_env_namespace()));
	json_object_set_new(c, "ports", json_pack("[{s:s, s:o, s:s}]", "name", WH, "containerPort",
						  r_scalar_of(r, "args.webhookServerPort"), "protocol", "TCP"));
	json_object_set_new(c, "readinessProbe", probe("/readyz", 0, 5, 2));
	json_object_set_new(c, "livenessProbe", probe("/healthz", 10, 10, 6));
	r_with_block(r, c, "resources", "resources", JSON_OBJECT);
	r_with_block(r, c, "securityContext", "securityContext", JSON_OBJECT);
	r_with_block(r, c, "volumeMounts", "webhookServer.extraVolumeMounts", JSON_ARRAY);
	json_object_set_new(pod, "containers", json_pack("[o]", c));
	r_with_block(r, pod, "volumes", "webhookServer.extraVolumes", JSON_ARRAY);

	json_object_set_new(spec, "replicas", r_scalar_of(r, "webhookServerReplicaCount"));
	json_object_set_new(spec, "selector", json_pack("{s:o}", "matchLabels", h_selector(r, WH)));
	json_object_set_new(spec, "template", json_pack("{s:{s:o}, s:o}", "metadata", "labels", h_labels(r, WH),
							"spec", pod));
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "apps/v1", "kind", "Deployment", "metadata",
			    h_metadata(r, h_webhook_name(r), 1, WH), "spec", spec));
}

void t_webhook_networkpolicy(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable") || !r_true(r, "webhookServer.networkPolicy.enabled"))
		return;
	json_t *ingress = json_pack("{s:[{s:s, s:s}]}", "ports", "protocol", "TCP", "port", WH);
	json_t *cidrs = r_val(r, "webhookServer.networkPolicy.apiServerCIDRs");
	if (op_truthy(cidrs)) {
		json_t *quoted = json_array(), *from = json_array(), *it;
		size_t i;
		r_range_quoted(r, quoted, "webhookServer.networkPolicy.apiServerCIDRs");
		json_array_foreach(quoted, i, it)
			json_array_append_new(from, json_pack("{s:{s:O}}", "ipBlock", "cidr", it));
		json_decref(quoted);
		json_object_set_new(ingress, "from", from);
	}
	json_t *spec = json_pack("{s:{s:o}, s:[s], s:[o]}", "podSelector", "matchLabels", h_selector(r, WH),
				 "policyTypes", "Ingress", "ingress", ingress);
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "networking.k8s.io/v1", "kind", "NetworkPolicy",
			    "metadata", h_metadata(r, h_webhook_name(r), 1, WH), "spec", spec));
}

void t_webhook_rbac(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable"))
		return;
	const char *name = h_webhook_name(r), *sa = h_webhook_sa(r);
	int vwc = r_true(r, "validatingWebhook.create");
	if (r_true(r, "clusterRole.create")) {
		if (vwc)
			r_emit(r, h_role(r, "ClusterRole", name, 0, WH,
					 json_pack("[o]", h_rule("admissionregistration.k8s.io", "validatingwebhookconfigurations",
								 h_vwc_name(r), "get patch list watch"))));
		json_t *own = h_rule("", "secrets", NULL, "get update list watch");
		json_object_set_new(own, "resourceNames", json_pack("[s]", h_secret_name(r))); /* | quote */
		json_t *rules = json_pack("[o]", own);
		/* secret.create=false: the first replica creates the Secret, and create cannot be limited by name */
		if (!r_true(r, "secret.create"))
			json_array_append_new(rules, h_rule("", "secrets", NULL, "create"));
		r_emit(r, h_role(r, "Role", name, 1, WH, rules));
	}
	if (r_true(r, "clusterRoleBinding.create")) {
		if (vwc)
			r_emit(r, h_binding(r, "ClusterRoleBinding", "ClusterRole", name, 0, WH, sa,
					    "serviceAccount.webhookServerName"));
		r_emit(r, h_binding(r, "RoleBinding", "Role", name, 1, WH, sa, "serviceAccount.webhookServerName"));
	}
}

void t_webhook_secret(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable") || !r_true(r, "secret.create") || r_true(r, "args.webhookServerCertFile"))
		return;
	json_t *meta = h_metadata(r, h_secret_name(r), 1, WH);
	json_object_set_new(meta, "annotations", json_pack("{s:s}", "kubefledged.io/managed-by",
		"the webhook server fills in and renews this Secret's keys; do not edit"));
	r_emit(r, json_pack("{s:s, s:s, s:o, s:s}", "apiVersion", "v1", "kind", "Secret", "metadata", meta, "type",
			    "Opaque"));
}

void t_webhook_service(struct op_rctx *r)
{
	if (!r_true(r, "webhookServer.enable") || !r_true(r, "webhookService.create"))
		return;
	json_t *spec = json_pack("{s:o, s:o, s:[{s:s, s:o, s:o, s:s}]}", "type", r_scalar_of(r, "webhookService.type"),
				 "selector", h_selector(r, WH), "ports", "name", WH, "port",
				 r_scalar_of(r, "webhookService.port"), "targetPort",
				 r_scalar_of(r, "webhookService.targetPort"), "protocol", "TCP");
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Service", "metadata",
			    h_metadata(r, h_webhook_service(r), 1, WH), "spec", spec));
}

void t_webhook_serviceaccount(struct op_rctx *r)
{
	if (r_true(r, "webhookServer.enable") && r_true(r, "serviceAccount.create"))
		r_emit(r, h_service_account(r, h_webhook_sa(r), "serviceAccount.webhookServerName", WH));
}
