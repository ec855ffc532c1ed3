/* cri_docker.h - the Docker Engine API client (dockershim nodes, and cri-dockerd ones where the kubelet
 * still talks CRI but images live in dockerd): HTTP/1.1 with JSON over dockerd's unix socket, unversioned
 * paths (the daemon then speaks its own newest API).
 *
 *   version  GET /version            list    GET /images/json          inspect  GET /images/{name}/json
 *   pull     POST /images/create?fromImage=REPO&tag=TAG, credentials in X-Registry-Auth
 *   containers GET /containers/json?all=1   info GET /info (DockerRootDir)
 *   remove   GET /images/{name}/json, then DELETE /images/{name} (no force): with a name, docker untags
 *            just that reference and removes the image only when nothing else refers to it (unlike CRI
 *            RemoveImage), and refuses (409) to drop the last reference of an image a container uses.
 *
 * Results use the types and codes of cri.h; errors read like the docker CLI's
 * ("Error response from daemon: No such image: x"), with HTTP statuses mapped to codes
 * (404 -> CRI_NOT_FOUND, 409 -> CRI_FAILED_PRECONDITION, ...). Not thread safe. */
#ifndef KF_CRI_DOCKER_H
#define KF_CRI_DOCKER_H

#include <stddef.h>
#include <stdint.h>

#include "cri.h"
#include "util/strbuf.h"

struct cri_docker; /* opaque */

#define CRI_DOCKER_DEFAULT_ENDPOINT "unix:///var/run/docker.sock"

/* endpoint: "unix:///path" or "/path". Does not connect. NULL with err set on a bad endpoint.
 * Default timeout 2 minutes per request. Free with cri_docker_free. */
struct cri_docker *cri_docker_new(const char *endpoint, struct strbuf *err);
void cri_docker_free(struct cri_docker *d);
void cri_docker_set_timeout(struct cri_docker *d, int64_t timeout_ms); /* <= 0: none */

int cri_docker_version(struct cri_docker *d, struct cri_version *out, struct strbuf *err);
int cri_docker_list_images(struct cri_docker *d, struct cri_image_list *out, struct strbuf *err);
/* Absent image: 0 with *present = 0. */
int cri_docker_inspect(struct cri_docker *d, const char *ref, struct cri_image *out, int *present,
		       struct strbuf *err);
/* Pulls ref (validated first). auth may be NULL. *image_ref (if not NULL) gets the image id, malloc'd. */
int cri_docker_pull(struct cri_docker *d, const char *ref, const struct cri_auth *auth, char **image_ref,
		    struct strbuf *err);
/* Removes one reference (docker semantics, see above). Absent: 0 with msg "image X not present".
 * Image IDs are refused (CRI_EINVAL, as cri_check_ref). The image the name resolves to must carry the
 * reference itself in RepoTags (or RepoDigests, for a digest reference), else CRI_EREFUSED and nothing is
 * removed: dockerd resolves a name it does not know as an image-ID prefix. The DELETE names the image
 * fully qualified (docker.io/library/busybox:1.36), which dockerd never reads as an ID.
 * msg gets a one-line account ("untagged X", "untagged X, deleted sha256:..."). */
int cri_docker_remove(struct cri_docker *d, const char *ref, struct strbuf *msg, struct strbuf *err);

/* GET /containers/json?all=1: every container, running or exited (the agent's delete guard). */
int cri_docker_list_containers(struct cri_docker *d, struct cri_container_list *out, struct strbuf *err);
/* DELETE /containers/ID without force (a running one is refused); absent counts as removed. id: hex only. */
int cri_docker_remove_container(struct cri_docker *d, const char *id, struct strbuf *err);
/* dockerd refuses to untag the last reference of an image a stopped container uses: removes the spent pull
 * containers (cri_container_spent_puller) of cl that use img, logging those it could not remove. */
void cri_docker_remove_spent_pullers(struct cri_docker *d, const struct cri_container_list *cl,
				     const struct cri_image *img, const char *canonical_ref);
/* GET /info: the daemon's DockerRootDir (malloc'd into *root_dir), where its images live (for the
 * image filesystem's capacity). */
int cri_docker_root_dir(struct cri_docker *d, char **root_dir, struct strbuf *err);

/* ---- parsers of recorded replies, exposed for tests ---- */

/* GET /images/json */
int cri_docker_parse_images(const char *json, size_t len, struct cri_image_list *out, struct strbuf *err);
/* GET /images/{name}/json */
int cri_docker_parse_inspect(const char *json, size_t len, struct cri_image *out, struct strbuf *err);
/* GET /containers/json?all=1 */
int cri_docker_parse_containers(const char *json, size_t len, struct cri_container_list *out, struct strbuf *err);
/* GET /version */
int cri_docker_parse_version(const char *json, size_t len, struct cri_version *out, struct strbuf *err);
/* The progress stream of POST /images/create (one JSON object per line). 0 when it ends without an
 * error object, else CRI_UNKNOWN (or CRI_NOT_FOUND for "not found"/"manifest unknown") with err =
 * the daemon's message; CRI_EPROTO for a line that is not JSON. */
int cri_docker_parse_pull_stream(const char *body, size_t len, struct strbuf *err);
/* DELETE /images/{name}: [{"Untagged": ...}, {"Deleted": ...}] -> "untagged X, deleted Y" into msg. */
int cri_docker_parse_delete(const char *json, size_t len, struct strbuf *msg, struct strbuf *err);
/* {"message": "..."} error bodies -> "Error response from daemon: ..." (falls back to the raw body). */
void cri_docker_error_text(int http_status, const char *body, size_t len, struct strbuf *err);
/* The X-Registry-Auth value: base64url of {"username","password","auth","serveraddress"}; malloc'd. */
char *cri_docker_registry_auth(const struct cri_auth *auth);

#endif
