/* ic_jobs.c - pull and delete Job rendering, pull policy, runtime detection; see ic_jobs.h. */
#include "ic_jobs.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "cri/cri_detect.h"
#include "util/imageref.h"
#include "util/util.h"

const char *ic_job_pull_policy(const char *flag, const char *image)
{
	if (!strcmp(flag, "Always"))
		return "Always";
	if (strcmp(flag, "IfNotPresent"))
		return "IfNotPresent";
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int floating = imageref_parse(image, &r, &err) == 0 ? imageref_is_floating(&r) : 0;
	sb_release(&err);
	return floating ? "Always" : "IfNotPresent";
}

int ic_pull_needed(const char *flag, const char *image, json_t *node)
{
	if (strcmp(flag, "IfNotPresent"))
		return 1;
	struct imageref r;
	struct strbuf err = STRBUF_INIT;
	int ok = imageref_parse(image, &r, &err) == 0;
	sb_release(&err);
	if (!ok || imageref_is_floating(&r))
		return 1;
	json_t *images = kf_jget(node, "status", "images", NULL);
	size_t i, j;
	json_t *img, *name;
	json_array_foreach(images, i, img) {
		json_array_foreach(json_object_get(img, "names"), j, name) {
			if (json_is_string(name) && imageref_matches(&r, json_string_value(name)))
				return 0;
		}
	}
	return 1;
}

void ic_runtime_detect(json_t *node, const char *flag_socket, const char **runtime, char **socket)
{
	cri_runtime_detect(kf_jstr(node, "status", "nodeInfo", "containerRuntimeVersion", NULL),
			   kf_jstr(node, "metadata", "annotations", IC_NODE_CRI_SOCKET_ANNOTATION, NULL), flag_socket,
			   runtime, socket);
}

static int valid_label_value(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && ((i == 0 || i == n - 1) || (c != '-' && c != '_' && c != '.')))
			return 0;
	}
	return 1;
}

void ic_cache_label_value(const char *name, char *buf, size_t n)
{
	if (valid_label_value(name)) {
		snprintf(buf, n, "%s", name);
		return;
	}
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)name, strlen(name), md);
	size_t keep = strlen(name) < 52 ? strlen(name) : 52;
	/* object names are DNS subdomains: [a-z0-9.-], so the prefix is already label-safe except for dots at
	 * the edges, which the hash suffix and the first character rule take care of */
	snprintf(buf, n, "%.*s-%02x%02x%02x%02x%02x", (int)keep, name, md[0], md[1], md[2], md[3], md[4]);
}

static json_t *labels(const char *cache_label)
{
	return json_pack("{s:s, s:s, s:s, s:s}", IC_LABEL_APP, IC_LABEL_APP_VALUE, IC_LABEL_KF, IC_LABEL_KF_VALUE,
			 IC_LABEL_CACHE, cache_label, IC_LABEL_CONTROLLER, IC_LABEL_CONTROLLER_VALUE);
}

static json_t *restricted_container_ctx(void)
{
	return json_pack("{s:b, s:b, s:{s:[s]}}", "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1,
			 "capabilities", "drop", "ALL");
}

/* The resources object for a container: --job-resources, or none. */
static void set_resources(const struct ic_job_opts *o, json_t *container)
{
	if (o->resources && json_object_size(o->resources))
		json_object_set(container, "resources", o->resources);
}

json_t *ic_job_render(const struct ic_job_opts *o, json_t *cache, const struct ic_spec *spec,
		      const struct ic_taskset *ts, const struct ic_task *t)
{
	const char *name = kf_jstr(cache, "metadata", "name", NULL);
	const char *cache_ns = kf_jstr(cache, "metadata", "namespace", NULL);
	const char *uid = kf_jstr(cache, "metadata", "uid", NULL);
	const struct ic_task_node *node = &ts->nodes[t->node];
	const char *image = ts->images[t->image].image;
	char label[64];
	ic_cache_label_value(name ? name : "", label, sizeof label);
	char *gen = xasprintf("%s-", name ? name : "imagecache");
	int pull = t->action == IC_ACTION_PULL;
	const char *ns = !pull && o->delete_namespace && *o->delete_namespace ? o->delete_namespace : cache_ns;
	int own = ns && cache_ns && !strcmp(ns, cache_ns);
	char *cache_key = xasprintf("%s/%s", cache_ns ? cache_ns : "", name ? name : "");

	json_t *meta = json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s}}", "generateName", gen, "namespace",
				 ns ? ns : "", "labels", labels(label), "annotations", IC_ANN_IMAGE, image, IC_ANN_NODE,
				 node->name, IC_ANN_ACTION, pull ? "pull" : "delete", IC_ANN_CACHE, cache_key,
				 IC_ANN_CACHE_UID, uid ? uid : "");
	if (own)
		json_object_set_new(meta, "ownerReferences",
				    json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", IC_API_VERSION, "kind",
					      IC_KIND, "name", name ? name : "", "uid", uid ? uid : "", "controller", 1,
					      "blockOwnerDeletion", 1));
	free(gen);
	free(cache_key);

	json_t *pod = json_object();
	json_object_set_new(pod, "nodeSelector", json_pack("{s:s}", "kubernetes.io/hostname", node->hostname));
	if (pull) {
		json_t *mounts = json_pack("[{s:s, s:s}]", "name", "tmp-bin", "mountPath", "/tmp/bin");
		json_t *init = json_pack("{s:s, s:s, s:[s,s,s], s:O, s:s, s:o}", "name", "busybox", "image",
					 o->busybox_image, "command", "cp", "/bin/echo", "/tmp/bin", "volumeMounts",
					 mounts, "imagePullPolicy", "IfNotPresent", "securityContext",
					 restricted_container_ctx());
		json_t *main = json_pack("{s:s, s:s, s:[s,s], s:o, s:s, s:s, s:o}", "name", "imagepuller", "image", image,
					 "command", "/tmp/bin/echo", "Image pulled successfully!", "volumeMounts", mounts,
					 "imagePullPolicy", ic_job_pull_policy(o->image_pull_policy, image),
					 "terminationMessagePolicy", "FallbackToLogsOnError", "securityContext",
					 restricted_container_ctx());
		set_resources(o, init);
		set_resources(o, main);
		json_object_set_new(pod, "initContainers", json_pack("[o]", init));
		json_object_set_new(pod, "containers", json_pack("[o]", main));
		json_object_set_new(pod, "volumes", json_pack("[{s:s, s:{}}]", "name", "tmp-bin", "emptyDir"));
		json_object_set_new(pod, "automountServiceAccountToken", json_false());
		json_object_set_new(pod, "securityContext",
				    json_pack("{s:b, s:i, s:i, s:{s:s}}", "runAsNonRoot", 1, "runAsUser", 65534,
					      "runAsGroup", 65534, "seccompProfile", "type", "RuntimeDefault"));
	} else {
		const char *socket = node->socket ? node->socket : "/run/containerd/containerd.sock";
		const char *rt = node->runtime && !strcmp(node->runtime, "docker") ? "docker" : "cri";
		char *endpoint = xasprintf("--runtime-endpoint=unix://%s", socket);
		char *rtflag = xasprintf("--runtime=%s", rt);
		json_t *c = json_pack("{s:s, s:s, s:[s,s,s,s,s,s,s], s:[{s:s, s:s}], s:s, s:s, s:o}", "name",
				      "docker-cri-client", "image", o->cri_client_image, "command", "/usr/bin/kubefledged",
				      "cri", "rmi", endpoint, rtflag, "--", image, "volumeMounts", "name", "runtime-sock",
				      "mountPath", socket, "imagePullPolicy", "IfNotPresent", "terminationMessagePolicy",
				      "FallbackToLogsOnError", "securityContext", restricted_container_ctx());
		set_resources(o, c);
		json_object_set_new(pod, "containers", json_pack("[o]", c));
		free(endpoint);
		free(rtflag);
		json_object_set_new(pod, "volumes", json_pack("[{s:s, s:{s:s, s:s}}]", "name", "runtime-sock",
							      "hostPath", "path", socket, "type", "Socket"));
		json_object_set_new(pod, "automountServiceAccountToken", json_false());
		json_object_set_new(pod, "securityContext", json_pack("{s:{s:s}}", "seccompProfile", "type",
								      "RuntimeDefault"));
		if (o->delete_job_host_network)
			json_object_set_new(pod, "hostNetwork", json_true());
	}
	json_object_set_new(pod, "restartPolicy", json_string("Never"));
	json_object_set_new(pod, "dnsPolicy", json_string("Default"));
	json_object_set_new(pod, "enableServiceLinks", json_false());
	if (o->tolerations)
		json_object_set(pod, "tolerations", o->tolerations);
	else
		json_object_set_new(pod, "tolerations", json_pack("[{s:s}]", "operator", "Exists"));
	/* pull secrets: only the pull Job needs them (and only its namespace has them) */
	if (spec && spec->n_pull_secrets && (pull || own)) {
		json_t *ps = json_array();
		for (size_t i = 0; i < spec->n_pull_secrets; i++)
			json_array_append_new(ps, json_pack("{s:s}", "name", spec->pull_secrets[i]));
		json_object_set_new(pod, "imagePullSecrets", ps);
	}
	if (o->service_account && *o->service_account)
		json_object_set_new(pod, "serviceAccountName", json_string(o->service_account));
	if (o->priority_class && *o->priority_class)
		json_object_set_new(pod, "priorityClassName", json_string(o->priority_class));

	json_t *tmpl = json_pack("{s:{s:s, s:o}, s:o}", "metadata", "namespace", ns ? ns : "", "labels",
				 labels(label), "spec", pod);
	return json_pack("{s:s, s:s, s:o, s:{s:i, s:I, s:o}}", "apiVersion", "batch/v1", "kind", "Job", "metadata",
			 meta, "spec", "backoffLimit", 0, "activeDeadlineSeconds",
			 (json_int_t)(o->active_deadline_s ? o->active_deadline_s : 3600), "template", tmpl);
}
