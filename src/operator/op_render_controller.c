/* op_render_controller.c - the controller's templates: controller-deployment.yaml, controller-lease.yaml,
 * controller-rbac.yaml, controller-serviceaccount.yaml (see op_render_int.h for the helpers). */
#include "op_render_int.h"

void t_controller_deployment(struct op_rctx *r)
{
	const char *name = h_controller_name(r);
	json_t *spec = json_object(), *pod = json_object(), *c = json_object(), *args = json_array();
	json_object_set_new(pod, "serviceAccountName", r_scalar(r, "serviceAccount.name", h_controller_sa(r)));
	if (r_true(r, "controller.hostNetwork")) {
		json_object_set_new(pod, "hostNetwork", json_true());
		json_object_set_new(pod, "dnsPolicy", json_string("ClusterFirstWithHostNet"));
	}
	if (r_true(r, "controller.priorityClassName"))
		json_object_set_new(pod, "priorityClassName", r_scalar_of(r, "controller.priorityClassName"));
	h_pod_common(r, pod);
	r_with_block(r, pod, "affinity", "affinity", JSON_OBJECT);

	json_object_set_new(c, "name", json_string("controller"));
	json_object_set_new(c, "image", r_scalar(r, "image.repository", h_image(r, "image.kubefledgedControllerRepository")));
	json_object_set_new(c, "imagePullPolicy", r_scalar_of(r, "image.pullPolicy"));
	r_item(r, args, "controller");
	r_item(r, args, r_fmt(r, "--mode=%s", r_text(r, "mode")));
	if (r_eq(r, "mode", "agent"))
		r_item(r, args, r_fmt(r, "--agent-service-account=%s", h_agent_sa(r)));
	r_item(r, args, r_fmt(r, "--stderrthreshold=%s", r_text(r, "args.controllerLogLevel")));
	r_item(r, args, r_fmt(r, "--image-pull-deadline-duration=%s", r_text(r, "args.controllerImagePullDeadlineDuration")));
	r_item(r, args, r_fmt(r, "--image-cache-refresh-frequency=%s", r_text(r, "args.controllerImageCacheRefreshFrequency")));
	r_item(r, args, r_fmt(r, "--image-pull-policy=%s", r_text(r, "args.controllerImagePullPolicy")));
	if (r_true(r, "args.controllerServiceAccountName"))
		r_item(r, args, r_fmt(r, "--service-account-name=%s", r_text(r, "args.controllerServiceAccountName")));
	r_item(r, args, r_fmt(r, "--image-delete-job-host-network=%s", r_text(r, "args.controllerImageDeleteJobHostNetwork")));
	if (r_true(r, "args.controllerJobPriorityClassName"))
		r_item(r, args, r_fmt(r, "--job-priority-class-name=%s", r_text(r, "args.controllerJobPriorityClassName")));
	if (r_true(r, "args.controllerJobRetentionPolicy"))
		r_item(r, args, r_fmt(r, "--job-retention-policy=%s", r_text(r, "args.controllerJobRetentionPolicy")));
	if (r_true(r, "args.controllerCRISocketPath"))
		r_item(r, args, r_fmt(r, "--cri-socket-path=%s", r_text(r, "args.controllerCRISocketPath")));
	if (r_true(r, "args.controllerJobsMaxSurge"))
		r_item(r, args, r_fmt(r, "--jobs-max-surge=%s", r_text(r, "args.controllerJobsMaxSurge")));
	r_item(r, args, r_fmt(r, "--leader-elect=%s", r_text(r, "args.controllerLeaderElect")));
	r_item(r, args, r_fmt(r, "--leader-elect-resource-name=%s", name));
	int metrics = r_true(r, "controller.metricsPort");
	r_item(r, args, metrics ? r_fmt(r, "--metrics-bind-address=:%s", r_text(r, "controller.metricsPort"))
				: "--metrics-bind-address=0");
	r_range_quoted(r, args, "args.controllerExtraArgs");
	json_object_set_new(c, "args", args);
	json_object_set_new(c, "env", json_pack("[o, {s:s, s:o}, {s:s, s:o}]", h_env_namespace(),
		"name", "KUBEFLEDGED_CRI_CLIENT_IMAGE",
		"value", r_scalar(r, "image.kubefledgedCRIClientRepository", h_image(r, "image.kubefledgedCRIClientRepository")),
		"name", "BUSYBOX_IMAGE", "value", r_scalar(r, "image.busyboxImageRepository", h_busybox_image(r))));
	if (metrics)
		json_object_set_new(c, "ports", json_pack("[{s:s, s:o}]", "name", "metrics", "containerPort",
							  r_scalar_of(r, "controller.metricsPort")));
	r_with_block(r, c, "resources", "resources", JSON_OBJECT);
	r_with_block(r, c, "securityContext", "securityContext", JSON_OBJECT);
	json_object_set_new(pod, "containers", json_pack("[o]", c));

	json_object_set_new(spec, "replicas", r_scalar_of(r, "controllerReplicaCount"));
	json_object_set_new(spec, "selector", json_pack("{s:o}", "matchLabels", h_selector(r, "controller")));
	json_object_set_new(spec, "template", json_pack("{s:{s:o}, s:o}", "metadata", "labels",
							h_labels(r, "controller"), "spec", pod));
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "apps/v1", "kind", "Deployment", "metadata",
			    h_metadata(r, name, 1, "controller"), "spec", spec));
}

void t_controller_lease(struct op_rctx *r)
{
	if (!r_true(r, "args.controllerLeaderElect"))
		return;
	r_emit(r, json_pack("{s:s, s:s, s:o}", "apiVersion", "coordination.k8s.io/v1", "kind", "Lease", "metadata",
			    h_metadata(r, h_controller_name(r), 1, "controller")));
}

void t_controller_rbac(struct op_rctx *r)
{
	const char *name = h_controller_name(r), *sa = h_controller_sa(r);
	if (r_true(r, "clusterRole.create")) {
		json_t *rules = json_pack("[o, o, o, o, o, o, o]",
			h_rule("kubefledged.io", "imagecaches", NULL, "get list watch patch"),
			h_rule("kubefledged.io", "imagecaches/status", NULL, "patch"),
			h_rule("kubefledged.io", "imagecaches/finalizers", NULL, "update"),
			h_rule("", "nodes", NULL, "list watch"),
			h_rule("batch", "jobs", NULL, "list watch create delete"),
			h_rule("", "pods", NULL, "list watch"),
			h_rule("", "events", NULL, "create patch list"));
		if (r_eq(r, "mode", "agent")) {
			json_array_append_new(rules, h_rule("kubefledged.io", "nodeimagecaches", NULL, "get list watch create patch"));
			json_array_append_new(rules, h_rule("rbac.authorization.k8s.io", "rolebindings", NULL, "get create delete"));
			json_array_append_new(rules, h_rule("rbac.authorization.k8s.io", "clusterroles",
							  "kubefledged-agent-pull-secrets", "bind"));
		}
		r_emit(r, h_role(r, "ClusterRole", name, 0, "controller", rules));
		json_t *lease = h_rule("coordination.k8s.io", "leases", NULL, "get update");
		json_object_set_new(lease, "resourceNames", json_pack("[s]", name)); /* | quote */
		r_emit(r, h_role(r, "Role", name, 1, "controller",
				  json_pack("[o, o]", lease, h_rule("coordination.k8s.io", "leases", NULL, "create"))));
	}
	if (r_true(r, "clusterRoleBinding.create")) {
		r_emit(r, h_binding(r, "ClusterRoleBinding", "ClusterRole", name, 0, "controller", sa, "serviceAccount.name"));
		r_emit(r, h_binding(r, "RoleBinding", "Role", name, 1, "controller", sa, "serviceAccount.name"));
	}
}

void t_controller_serviceaccount(struct op_rctx *r)
{
	if (r_true(r, "serviceAccount.create"))
		r_emit(r, h_service_account(r, h_controller_sa(r), "serviceAccount.name", "controller"));
}
