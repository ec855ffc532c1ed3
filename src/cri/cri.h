/* cri.h - a client for a node's container runtime image store: the Kubernetes CRI ImageService over
 * gRPC on a unix socket (containerd, CRI-O), and the Docker Engine API (cri_docker.h).
 *
 * Everything here is synchronous and a client is not thread safe (one per thread). Every call takes a
 * struct strbuf *err that receives, on failure, a message a person can act on:
 *   - gRPC errors from the runtime, verbatim and kubelet-like: "rpc error: code = NotFound desc = ..."
 *   - transport errors, naming the socket: "connect to unix socket /run/containerd/containerd.sock: ..."
 * Callers add their own context ("pull image \"x\": ...").
 *
 * API version: calls go to runtime.v1 first; when the runtime answers UNIMPLEMENTED before any v1
 * call ever worked, they are retried on runtime.v1alpha2 (containerd < 1.7 without v1, kubelet <= 1.22
 * era runtimes) and the client remembers whichever worked. */
#ifndef KF_CRI_H
#define KF_CRI_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Return codes: 0, a gRPC status code (1..16) from the runtime, or one of the negative local codes.
 * The Docker client maps HTTP statuses onto the same codes (404 -> CRI_NOT_FOUND, ...). */
enum cri_code {
	CRI_OK = 0,
	CRI_CANCELLED = 1,
	CRI_UNKNOWN = 2,
	CRI_INVALID_ARGUMENT = 3,
	CRI_DEADLINE_EXCEEDED = 4,
	CRI_NOT_FOUND = 5,
	CRI_ALREADY_EXISTS = 6,
	CRI_PERMISSION_DENIED = 7,
	CRI_RESOURCE_EXHAUSTED = 8,
	CRI_FAILED_PRECONDITION = 9,
	CRI_ABORTED = 10,
	CRI_OUT_OF_RANGE = 11,
	CRI_UNIMPLEMENTED = 12,
	CRI_INTERNAL = 13,
	CRI_UNAVAILABLE = 14,
	CRI_DATA_LOSS = 15,
	CRI_UNAUTHENTICATED = 16,
	CRI_ETRANSPORT = -1, /* no reply: cannot connect, connection broken, HTTP/2 error */
	CRI_EPROTO = -2,     /* a reply that is not valid gRPC / protobuf / JSON */
	CRI_EINVAL = -3,     /* a bad argument caught before any call (e.g. an invalid image reference) */
	CRI_EREFUSED = -4,   /* refused to act: would remove more than was asked (see cri_rmi) */
};

/* One image. All strings malloc'd and owned by the struct; free with cri_image_clear. */
struct cri_image {
	char *id;             /* "sha256:<hex>"; NULL in an ImageStatus reply for an absent image */
	char **repo_tags;     /* "docker.io/library/busybox:1.36" (CRI) or "busybox:1.36" (Docker) */
	size_t n_repo_tags;
	char **repo_digests;  /* "docker.io/library/busybox@sha256:<hex>" */
	size_t n_repo_digests;
	uint64_t size;        /* bytes, as the runtime reports it */
	int pinned;
};
void cri_image_clear(struct cri_image *img); /* frees the members, zeroes the struct */

struct cri_image_list {
	struct cri_image *items; /* owned */
	size_t n;
};
void cri_image_list_free(struct cri_image_list *l); /* frees the items, zeroes the struct */

/* RuntimeService.Version; for Docker: runtime_name "docker", runtime_version = Version,
 * runtime_api_version = ApiVersion. Strings owned; free with cri_version_clear. */
struct cri_version {
	char *version;
	char *runtime_name;
	char *runtime_version;
	char *runtime_api_version;
};
void cri_version_clear(struct cri_version *v);

/* Registry credentials for a pull. All members borrowed, each may be NULL. auth is base64("user:pass"). */
struct cri_auth {
	const char *username;
	const char *password;
	const char *auth;
	const char *server_address;
};

struct cri_fs_usage {
	char *mountpoint; /* owned */
	int64_t timestamp_ns;
	uint64_t used_bytes, inodes_used;
	int has_used_bytes, has_inodes_used;
};
struct cri_fs_info {
	struct cri_fs_usage *image_fs; /* owned array */
	size_t n_image_fs;
	struct cri_fs_usage *container_fs;
	size_t n_container_fs;
};
void cri_fs_info_clear(struct cri_fs_info *fi);

/* ---- the CRI client ---- */

struct cri_client; /* opaque */

#define CRI_DEFAULT_ENDPOINT "unix:///run/containerd/containerd.sock"

/* endpoint: "unix:///path" or "/path" (other schemes are rejected). Does not connect. Returns NULL with
 * err set on a bad endpoint. Free with cri_client_free. Default timeout: 2 minutes per call. */
struct cri_client *cri_client_new(const char *endpoint, struct strbuf *err);
void cri_client_free(struct cri_client *c);
/* Per-call timeout in milliseconds (pulls can take long); <= 0 means none. */
void cri_client_set_timeout(struct cri_client *c, int64_t timeout_ms);
const char *cri_client_socket(const struct cri_client *c); /* borrowed */
/* "runtime.v1" or "runtime.v1alpha2" once a call worked (or one was set), else NULL. */
const char *cri_client_api(const struct cri_client *c);
/* Pins the API version instead of probing: "v1" / "runtime.v1", "v1alpha2" / "runtime.v1alpha2", or
 * "auto" / "" for the default (v1, then v1alpha2 on UNIMPLEMENTED). Returns 0 or CRI_EINVAL with err. */
int cri_client_set_api(struct cri_client *c, const char *api, struct strbuf *err);

int cri_version(struct cri_client *c, struct cri_version *out, struct strbuf *err);
/* filter: an image reference to list only that one, or NULL for all. */
int cri_list_images(struct cri_client *c, const char *filter, struct cri_image_list *out, struct strbuf *err);
/* An absent image is not an error: returns 0 with *present = 0 and out zeroed. */
int cri_image_status(struct cri_client *c, const char *image, struct cri_image *out, int *present,
		     struct strbuf *err);
/* auth may be NULL. *image_ref (may be NULL if not wanted) gets the runtime's id of the pulled image,
 * malloc'd, caller frees. */
int cri_pull_image(struct cri_client *c, const char *image, const struct cri_auth *auth, char **image_ref,
		   struct strbuf *err);
/* CRI RemoveImage: removes the WHOLE image the reference (or id) resolves to, with all its tags and
 * digests. Low level, unchecked: use cri_rmi to remove a single reference. */
int cri_remove_image(struct cri_client *c, const char *image, struct strbuf *err);
int cri_image_fs_info(struct cri_client *c, struct cri_fs_info *out, struct strbuf *err);

/* containerd's native /containerd.services.images.v1.Images/Delete on the same socket, in namespace ns
 * (the CRI plugin's is "k8s.io"): deletes one image name, leaving other names of the same content. */
#define CRI_CONTAINERD_NAMESPACE "k8s.io"
int cri_containerd_delete_image(struct cri_client *c, const char *name, int sync, const char *ns,
				struct strbuf *err);

/* containerd's native /containerd.services.images.v1.Images/Update: sets label key=value on the image
 * record named name (value "" clears it), leaving everything else as it is (a field mask
 * "labels.<key>"). NOT_FOUND when no image has that name. The agent pins with
 * CRI_CONTAINERD_PINNED_LABEL=pinned, which containerd >= 1.7 reports as Image.pinned. */
#define CRI_CONTAINERD_PINNED_LABEL "io.cri-containerd.pinned"
int cri_containerd_label_image(struct cri_client *c, const char *name, const char *key, const char *value,
			       const char *ns, struct strbuf *err);

/* One container as the runtime lists it (CRI RuntimeService.ListContainers, or Docker's
 * GET /containers/json?all=1). Strings owned; free with cri_container_list_free. */
enum cri_container_state { CRI_CONTAINER_CREATED = 0, CRI_CONTAINER_RUNNING, CRI_CONTAINER_EXITED,
			   CRI_CONTAINER_UNKNOWN };
struct cri_container {
	char *id;
	char *name;          /* CRI metadata.name; Docker: the first name without '/' */
	char *image;         /* the image as the container was created with it: an image id (the kubelet's
			      * choice on containerd) or a reference */
	char *image_ref;     /* CRI image_ref / Docker ImageID: normally the image id */
	char *pod_name;      /* labels io.kubernetes.pod.name / .namespace, or "" */
	char *pod_namespace;
	int state;           /* enum cri_container_state */
};
struct cri_container_list {
	struct cri_container *items; /* owned */
	size_t n;
};
void cri_container_list_free(struct cri_container_list *l);
/* 1 when container k runs (or ran) the image img is (by its id), or was created from the reference whose
 * canonical form (util/imageref.h) is canonical_ref. */
int cri_container_uses(const struct cri_container *k, const struct cri_image *img, const char *canonical_ref);
/* 1 for an exited container named "imagepuller": what kube-fledged's own pull Job pods (restartPolicy Never)
 * leave behind until the kubelet collects them (up to a minute after the pod is gone). Never restarted, so
 * it does not keep its image in use. */
int cri_container_spent_puller(const struct cri_container *k);
/* How many containers of cl use img (cri_container_uses), not counting spent pullers; the first three are
 * described in who: "container C of pod NS/P (running), ..." and " and N more". */
size_t cri_image_users(const struct cri_container_list *cl, const struct cri_image *img, const char *canonical_ref,
		       struct strbuf *who);
/* Every container, running or exited (an empty filter). */
int cri_list_containers(struct cri_client *c, struct cri_container_list *out, struct strbuf *err);

/* Removes exactly one image reference (what `kubefledged cri rmi` does):
 *  - absent: success, msg "image X not present";
 *  - the image carries no reference but this one (its tag, and digest entries of its own repository):
 *    CRI RemoveImage by image id;
 *  - other references share the image: on containerd, delete only this name (and its repository's
 *    digest entry when no other tag of that repository remains) with the containerd Images API;
 *    on other runtimes return CRI_EREFUSED with err naming the other references, removing nothing.
 * A digest reference (repo@sha256:..., with or without a tag) owns only that digest entry, never the
 * repository's tags. The reference the runtime resolves must be carried by the image it resolves to
 * (containerd falls back to an image-ID prefix for unknown names): otherwise CRI_EREFUSED, nothing removed.
 * Image IDs ("sha256:<64 hex>", 64 hex alone) are refused with CRI_EINVAL like any invalid reference:
 * removing by ID would remove every tag of the image. msg gets a one-line account of what was done.
 * Validates ref first (CRI_EINVAL). */
int cri_rmi(struct cri_client *c, const char *ref, struct strbuf *msg, struct strbuf *err);

/* Checks an image reference given by a user, by the distribution grammar. Returns 0, or CRI_EINVAL with
 * err = 'invalid image reference "<ref, control characters escaped>": <reason>'. Whitespace, control
 * characters, shell syntax ("$(x)", "a;b") and image IDs ("sha256:<hex>", 64 hex alone: "an image ID is
 * not an image reference ...") never pass. */
int cri_check_ref(const char *ref, struct strbuf *err);
/* 1 for an image id "sha256:<64 lowercase hex>". */
int cri_is_image_id(const char *s);
/* 1 when img carries ref itself, compared after normalisation: for a tag reference a repo_tags entry of
 * that repository and tag (untagged = latest), for a digest reference a repo_digests entry of that
 * repository and digest. Docker spells entries short ("busybox:1.36"), CRI long; both compare equal. */
int cri_image_has_ref(const struct cri_image *img, const char *ref);

/* Pure part of cri_rmi, for tests: which of img's references belong to ref (to delete) and which do
 * not (to keep). ref's own: the entry naming ref itself, and for a tag reference the digest entries of its
 * repository when no other tag of that repository is on the image; nothing else, ever (another tag,
 * another repository, an unparsable entry). An invalid ref (or an image ID) owns nothing. Entries are
 * borrowed from img; the arrays are malloc'd (free only the arrays). */
void cri_rmi_partition(const char *ref, const struct cri_image *img, const char ***own, size_t *n_own,
		       const char ***others, size_t *n_others);

#endif
