/* agent_runtime.h - the node's image store as the agent sees it: one interface (a table of operations)
 * with three implementations, so the agent has one code path for all of them:
 *
 *   CRI      containerd, CRI-O (cri.h: ImageService over gRPC, RuntimeService.ListContainers; on
 *            containerd >= 1.7 also its Images API on the same socket, to pin with a label)
 *   Docker   the Docker Engine API (cri_docker.h), for dockershim nodes
 *   simulated an in-memory store per node (agent_simrt.h), for `kubefledged agent-sim`
 *
 * Every operation is synchronous and thread safe (the CRI and Docker backends open a client per call:
 * the clients are not thread safe and cost one allocation). Results and errors use cri.h's types and
 * codes; errors are the runtime's own words. */
#ifndef AGENT_RUNTIME_H
#define AGENT_RUNTIME_H

#include <stdint.h>

#include "cri/cri.h"
#include "util/strbuf.h"

/* The image filesystem as the runtime reports it. */
struct agent_fs_info {
	uint64_t image_bytes;  /* what the images take (CRI ImageFsInfo used bytes) */
	int has_image_bytes;
	char *mountpoint;      /* host path of the filesystem holding the images (malloc'd), or NULL */
	/* Set only by runtimes that know the filesystem without statvfs (the simulated one). */
	uint64_t used_bytes, capacity_bytes;
	int has_capacity;
};
void agent_fs_info_clear(struct agent_fs_info *fi);

struct agent_runtime_ops {
	int (*list)(void *ctx, struct cri_image_list *out, struct strbuf *err);
	/* An absent image: 0 with *present = 0. */
	int (*status)(void *ctx, const char *ref, struct cri_image *out, int *present, struct strbuf *err);
	/* timeout_ms <= 0: none. *image_id (if not NULL) gets the pulled image's id, malloc'd. */
	int (*pull)(void *ctx, const char *ref, const struct cri_auth *auth, int64_t timeout_ms, char **image_id,
		    struct strbuf *err);
	/* Removes exactly ref (cri_rmi / cri_docker_remove semantics); msg says what was done. */
	int (*remove)(void *ctx, const char *ref, struct strbuf *msg, struct strbuf *err);
	int (*fs_info)(void *ctx, struct agent_fs_info *out, struct strbuf *err);
	/* Every container, running or exited. */
	int (*list_containers)(void *ctx, struct cri_container_list *out, struct strbuf *err);
	/* Sets (on = 1) or clears the runtime's pin of ref. NULL when the runtime cannot be told to pin. */
	int (*pin)(void *ctx, const char *ref, int on, struct strbuf *err);
	void (*free)(void *ctx);
	/* Removes the spent pull containers of cl that use img, for a runtime that will not remove an image a
	 * stopped container uses (Docker: cri_docker_remove_spent_pullers); NULL elsewhere (containerd and
	 * CRI-O remove the image; the container keeps its files). */
	void (*remove_spent_pullers)(void *ctx, const struct cri_container_list *cl, const struct cri_image *img,
				     const char *canonical_ref);
};

/* Whether cached images are kept out of the kubelet's image GC (status.agent.pinning). */
enum agent_pinning {
	AGENT_PIN_UNSUPPORTED = 0, /* "Unsupported": containerd < 1.7, Docker: self-healing is the guarantee */
	AGENT_PIN_LABEL,           /* "Pinned": containerd >= 1.7, the agent labels every image it caches */
	AGENT_PIN_RUNTIME_CONFIG,  /* "RuntimeConfigured": CRI-O pins the images of its pinned_images setting */
	AGENT_PIN_DISABLED,        /* "Disabled": --pin-images=false */
};
const char *agent_pinning_name(enum agent_pinning p);

struct agent_runtime {
	const struct agent_runtime_ops *ops;
	void *ctx;
	char *name;     /* "containerd", "cri-o", "docker", "simulated" (from the runtime's Version) */
	char *version;  /* "1.6.20~ds1" */
	char *api;      /* "runtime.v1", "runtime.v1alpha2", "docker" or "simulated" */
	char *socket;   /* the socket path as opened ("" for the simulated runtime) */
	enum agent_pinning pinning;
};

/* Opens the runtime behind socket (a CRI socket, or a Docker Engine socket when docker is set) and asks
 * its version. api: "auto", "v1" or "v1alpha2" (CRI only). pin: whether to pin where the runtime can.
 * Returns NULL with err (the runtime's words, naming the socket) when it does not answer. */
struct agent_runtime *agent_runtime_open(const char *socket, int docker, const char *api, int pin,
					 struct strbuf *err);
/* Wraps a backend (ops and ctx owned by the result; strings copied). */
struct agent_runtime *agent_runtime_new(const struct agent_runtime_ops *ops, void *ctx, const char *name,
					const char *version, const char *api, const char *socket,
					enum agent_pinning pinning);
void agent_runtime_free(struct agent_runtime *rt);

/* "containerd://1.6.20~ds1", as the kubelet reports containerRuntimeVersion. malloc'd. */
char *agent_runtime_label(const struct agent_runtime *rt);

/* 1 for containerd versions ("1.7.0", "v1.7.2", "2.0.1") that honour the pinned label. */
int agent_containerd_pins(const char *version);

#endif
