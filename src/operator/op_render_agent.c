/* op_render_agent.c - the node agent's templates (mode agent): agent-daemonset.yaml, agent-rbac.yaml,
 * agent-serviceaccount.yaml (see op_render_int.h for the helpers). */
#include <jansson.h>

#include "op_render_int.h"
#include "op_values.h"
#include "util/util.h"

/* concat (list "/run" "/var/run" "/var/lib") .Values.agent.extraHostPaths, as text */
static json_t *host_paths(struct op_rctx *r)
{
	json_t *paths = json_pack("[s, s, s]", "/run", "/var/run", "/var/lib");
	json_t *extra = r_val(r, "agent.extraHostPaths");
	if (extra && !json_is_array(extra))
		r_fail(r, "agent.extraHostPaths", "must be a list of host directories, not %s", kf_json_type_name(extra));
	else
		r_range_quoted(r, paths, "agent.extraHostPaths");
	return paths;
}

static json_t *http_probe(const char *path, int period, int failures)
{
	json_t *p = json_pack("{s:{s:s, s:s}, s:i}", "httpGet", "path", path, "port", "metrics", "periodSeconds", period);
	if (failures)
		json_object_set_new(p, "failureThreshold", json_integer(failures));
	return p;
}

void t_agent_daemonset(struct op_rctx *r)
{
	if (!r_eq(r, "mode", "agent"))
		return;
	const char *name = h_agent_name(r);
	json_t *pod = json_object(), *c = json_object(), *args = json_array(), *mounts = json_array(),
	       *volumes = json_array(), *paths = host_paths(r), *p;
	size_t i;
	json_object_set_new(pod, "serviceAccountName", r_scalar(r, "agent.serviceAccountName", h_agent_sa(r)));
	if (r_true(r, "agent.priorityClassName"))
		json_object_set_new(pod, "priorityClassName", r_scalar_of(r, "agent.priorityClassName"));
	r_with_block(r, pod, "imagePullSecrets", "imagePullSecrets", JSON_ARRAY);
	json_object_set_new(pod, "securityContext", json_pack("{s:i, s:i, s:{s:s}}", "runAsUser", 0, "runAsGroup", 0,
							      "seccompProfile", "type", "RuntimeDefault"));
	r_with_block(r, pod, "nodeSelector", "agent.nodeSelector", JSON_OBJECT);
	r_with_block(r, pod, "tolerations", "agent.tolerations", JSON_ARRAY);
	r_with_block(r, pod, "affinity", "agent.affinity", JSON_OBJECT);
	json_object_set_new(pod, "terminationGracePeriodSeconds", json_integer(10));

	json_object_set_new(c, "name", json_string("agent"));
	json_object_set_new(c, "image", r_scalar(r, "agent.repository", h_image(r, "agent.repository")));
	json_object_set_new(c, "imagePullPolicy", r_scalar_of(r, "image.pullPolicy"));
	r_item(r, args, "agent");
	r_item(r, args, r_fmt(r, "--stderrthreshold=%s", r_text(r, "agent.logLevel")));
	r_item(r, args, "--host-root=/host");
	r_item(r, args, r_fmt(r, "--max-parallel-pulls=%s", r_text(r, "agent.maxParallelPulls")));
	r_item(r, args, r_fmt(r, "--max-parallel-pulls-per-registry=%s", r_text(r, "agent.maxParallelPullsPerRegistry")));
	r_item(r, args, r_fmt(r, "--image-pull-deadline-duration=%s", r_text(r, "args.controllerImagePullDeadlineDuration")));
	r_item(r, args, r_fmt(r, "--poll-interval=%s", r_text(r, "agent.pollInterval")));
	r_item(r, args, r_fmt(r, "--image-fs-threshold=%s", r_text(r, "agent.imageFsThreshold")));
	r_item(r, args, r_fmt(r, "--metrics-bind-address=:%s", r_text(r, "agent.metricsPort")));
	if (r_true(r, "args.controllerCRISocketPath"))
		r_item(r, args, r_fmt(r, "--cri-socket-path=%s", r_text(r, "args.controllerCRISocketPath")));
	r_range_quoted(r, args, "agent.extraArgs");
	json_object_set_new(c, "args", args);
	json_object_set_new(c, "env", json_pack("[{s:s, s:{s:{s:s}}}]", "name", "NODE_NAME", "valueFrom", "fieldRef",
						"fieldPath", "spec.nodeName"));
	json_object_set_new(c, "ports", json_pack("[{s:s, s:o}]", "name", "metrics", "containerPort",
						  r_scalar_of(r, "agent.metricsPort")));
	json_object_set_new(c, "readinessProbe", http_probe("/readyz", 10, 0));
	json_object_set_new(c, "livenessProbe", http_probe("/healthz", 30, 3));
	r_with_block(r, c, "resources", "agent.resources", JSON_OBJECT);
	json_object_set_new(c, "securityContext", json_pack("{s:b, s:b, s:b, s:{s:[s]}}", "runAsNonRoot", 0,
		"allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1, "capabilities", "drop", "ALL"));
	json_array_foreach(paths, i, p) {
		const char *vol = r_fmt(r, "host-%zu", i);
		json_array_append_new(mounts, json_pack("{s:o, s:o, s:b}", "name", r_scalar(r, "a volume", vol),
			"mountPath", r_scalar(r, "agent.extraHostPaths", r_fmt(r, "/host%s", json_string_value(p))),
			"readOnly", 1));
		json_array_append_new(volumes, json_pack("{s:o, s:{s:o, s:s}}", "name", r_scalar(r, "a volume", vol),
			"hostPath", "path", r_scalar(r, "agent.extraHostPaths", json_string_value(p)), "type", "Directory"));
	}
	json_decref(paths);
	json_object_set_new(c, "volumeMounts", mounts);
	json_object_set_new(pod, "containers", json_pack("[o]", c));
	json_object_set_new(pod, "volumes", volumes);

	json_t *spec = json_pack("{s:{s:o}, s:{s:s, s:{s:o}}, s:{s:{s:o}, s:o}}",
		"selector", "matchLabels", h_selector(r, "agent"),
		"updateStrategy", "type", "RollingUpdate", "rollingUpdate", "maxUnavailable",
		r_scalar_of(r, "agent.maxUnavailable"),
		"template", "metadata", "labels", h_labels(r, "agent"), "spec", pod);
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "apps/v1", "kind", "DaemonSet", "metadata",
			    h_metadata(r, name, 1, "agent"), "spec", spec));
}

void t_agent_rbac(struct op_rctx *r)
{
	if (!r_eq(r, "mode", "agent"))
		return;
	const char *name = h_agent_name(r);
	if (r_true(r, "clusterRole.create")) {
		r_emit(r, h_role(r, "ClusterRole", name, 0, "agent", json_pack("[o, o, o]",
			h_rule("kubefledged.io", "nodeimagecaches", NULL, "get list watch"),
			h_rule("kubefledged.io", "nodeimagecaches/status", NULL, "patch"),
			h_rule("", "nodes", NULL, "get"))));
		/* one per cluster, under the name the controller binds */
		r_emit(r, h_role(r, "ClusterRole", "kubefledged-agent-pull-secrets", 0, "agent",
				 json_pack("[o]", h_rule("", "secrets", NULL, "get"))));
	}
	if (r_true(r, "clusterRoleBinding.create"))
		r_emit(r, h_binding(r, "ClusterRoleBinding", "ClusterRole", name, 0, "agent", h_agent_sa(r),
				    "agent.serviceAccountName"));
}

void t_agent_serviceaccount(struct op_rctx *r)
{
	if (r_eq(r, "mode", "agent") && r_true(r, "serviceAccount.create"))
		r_emit(r, h_service_account(r, h_agent_sa(r), "agent.serviceAccountName", "agent"));
}
