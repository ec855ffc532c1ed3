/* agent_pull.h - one pull attempt, as a pool thread runs it (no node lock held):
 *   1. the disk check: the image filesystem's usage (statvfs of the runtime's image filesystem under
 *      --host-root; the kubelet's image GC reckons the same way: capacity - available) plus the image's
 *      size hint must stay under --image-fs-threshold, else the pull is refused
 *      (ImageFsThresholdExceeded); when the capacity cannot be read the pull goes ahead;
 *   2. credentials: each referenced pull Secret is read at pull time (get_secret), parsed, matched
 *      against the image's registry (agent_auth.h) and tried in order until one is not refused; no
 *      matching credential: an anonymous pull. Every copy of a credential is wiped afterwards;
 *   3. the pull, then ImageStatus for the image id, repo digest and size, then the pin where the runtime
 *      supports it. */
#ifndef AGENT_PULL_H
#define AGENT_PULL_H

#include "agent_node.h"

/* Reads Secret ns/name and returns its docker config text (malloc'd; the caller wipes and frees it) and
 * whether it is the legacy .dockercfg form. 0, or -1 with err (never holding secret data). */
typedef int (*agent_secret_fn)(void *ud, const char *ns, const char *name, char **text, size_t *len,
			       int *legacy, struct strbuf *err);

struct agent_pull_env {
	const struct agent_node_config *cfg;
	const char *host_root;     /* "" out of cluster, "/host" in the DaemonSet */
	agent_secret_fn get_secret; /* NULL: no Secret can be read */
	void *ud;
};

/* Runs j against its node's runtime; fills r (cleared first). */
void agent_pull_run(const struct agent_pull_env *env, const struct agent_pull_job *j, struct agent_pull_result *r);

/* The usage of the filesystem holding path (host_root prefixed): capacity and used = capacity - available,
 * as the kubelet's image GC computes them. 0, or -1 with err. */
int agent_fs_usage(const char *host_root, const char *path, uint64_t *used, uint64_t *capacity, struct strbuf *err);

#endif
