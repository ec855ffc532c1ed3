/* ic_jobs.h - the Kubernetes Jobs that pull and delete images on one node, rendered as JSON.
 *
 * Upstream's contract is kept: batch/v1 Job, generateName "<cache>-", the cache's namespace, labels
 * app=kubefledged, kubefledged=kubefledged-image-manager, imagecache=<cache>, controller=fledged, a controller
 * ownerReference to the ImageCache, backoffLimit 0, activeDeadlineSeconds 3600, nodeSelector
 * kubernetes.io/hostname, toleration {operator: Exists}, restartPolicy Never, the cache's imagePullSecrets,
 * optional serviceAccountName and priorityClassName. Pull Job: init container "busybox" runs
 * `cp /bin/echo /tmp/bin` into an emptyDir, container "imagepuller" runs the cached image with
 * `/tmp/bin/echo "Image pulled successfully!"`, so images without a shell work.
 *
 * Fixed here: the delete Job runs our binary with the image as one argv element (no shell: upstream spliced
 * the image into `bash -c` next to the node's runtime socket); pods run with a restrictive securityContext
 * (pull pods as nobody, no service-account token, no privilege escalation, read-only root, RuntimeDefault
 * seccomp), so namespaces enforcing the "restricted" Pod Security profile accept them; dnsPolicy Default
 * (the pods need no cluster DNS); the imagecache label stays a valid label for names over 63 characters;
 * Jobs carry kubefledged.io/{image,node,action} annotations so a restarted controller can adopt them. */
#ifndef IC_JOBS_H
#define IC_JOBS_H

#include <jansson.h>

#include "ic_status.h"
#include "ic_task.h"
#include "ic_types.h"

#define IC_LABEL_APP "app"
#define IC_LABEL_APP_VALUE "kubefledged"
#define IC_LABEL_KF "kubefledged"
#define IC_LABEL_KF_VALUE "kubefledged-image-manager"
#define IC_LABEL_CACHE "imagecache"
#define IC_LABEL_CONTROLLER "controller"
#define IC_LABEL_CONTROLLER_VALUE "fledged"
#define IC_JOB_SELECTOR "app=kubefledged,kubefledged=kubefledged-image-manager"
#define IC_ANN_IMAGE "kubefledged.io/image"
#define IC_ANN_NODE "kubefledged.io/node"
#define IC_ANN_ACTION "kubefledged.io/action"
#define IC_ANN_CACHE "kubefledged.io/imagecache"         /* "namespace/name" of the ImageCache (delete Jobs) */
#define IC_ANN_CACHE_UID "kubefledged.io/imagecache-uid"
#define IC_NODE_CRI_SOCKET_ANNOTATION "kubeadm.alpha.kubernetes.io/cri-socket"

struct ic_job_opts {
	const char *busybox_image;       /* BUSYBOX_IMAGE: init container of pull Jobs (needs static cp + echo) */
	const char *delete_namespace;    /* namespace of delete Jobs: the controller's own ("" = the cache's) */
	json_t *tolerations;             /* --job-tolerations: JSON array, borrowed; NULL = [{operator: Exists}] */
	json_t *resources;               /* --job-resources: a container resources object, borrowed; NULL = none */
	const char *cri_client_image;    /* KUBEFLEDGED_CRI_CLIENT_IMAGE: delete Jobs (runs kubefledged cri rmi) */
	const char *image_pull_policy;   /* --image-pull-policy */
	const char *service_account;     /* --service-account-name, "" = namespace default */
	const char *priority_class;      /* --job-priority-class-name, "" = none */
	int delete_job_host_network;     /* --image-delete-job-host-network */
	long long active_deadline_s;     /* Job activeDeadlineSeconds, upstream 3600 */
};

/* The imagePullPolicy of the "imagepuller" container: the flag's value, except that IfNotPresent becomes
 * Always for floating references (untagged or :latest; a registry port is not a tag). Unknown flag values
 * give IfNotPresent, as upstream. */
const char *ic_job_pull_policy(const char *flag, const char *image);
/* 1 when a pull Job is needed: any policy but IfNotPresent, a floating reference, or the node's
 * status.images (borrowed node object) does not list the image. Exact reference match, not substrings. */
int ic_pull_needed(const char *flag, const char *image, json_t *node);

/* Which runtime a node runs and where its socket is, for delete Jobs. Upstream's rules: the node's
 * status.nodeInfo.containerRuntimeVersion contains "containerd" -> containerd
 * (/run/containerd/containerd.sock), "crio"/"cri-o" -> CRI-O (/var/run/crio/crio.sock), otherwise Docker
 * (/var/run/docker.sock). The socket is flag_socket when set (not for undetected runtimes, as upstream), else
 * the node's kubeadm.alpha.kubernetes.io/cri-socket annotation (kubeadm records it; "unix://" is stripped),
 * else the default. *runtime is a static string: "containerd", "crio" or "docker"; *socket is malloc'd. */
void ic_runtime_detect(json_t *node, const char *flag_socket, const char **runtime, char **socket);

/* The imagecache label value for a cache name: the name itself when it is a valid label value (<= 63), else
 * its first 52 characters, '-', and 10 hex digits of its SHA-256. Written into buf (>= 64 bytes). */
void ic_cache_label_value(const char *name, char *buf, size_t n);

/* Renders the Job for task t (of set ts) of ImageCache cache (borrowed; metadata.name/namespace/uid are
 * read). spec gives imagePullSecrets. A pull Job lives in the cache's namespace and is owned by the cache;
 * a delete Job lives in o->delete_namespace when set (so that no tenant namespace ever holds a pod with
 * the runtime socket; it needs no pull secret, and an ownerReference cannot cross namespaces, so the
 * kubefledged.io/imagecache and -uid annotations name its cache). Returns a new object. */
json_t *ic_job_render(const struct ic_job_opts *o, json_t *cache, const struct ic_spec *spec,
		      const struct ic_taskset *ts, const struct ic_task *t);

#endif
