/* agent_kube.h - the agent's Kubernetes side (struct agent_api for the real API server):
 *   - one informer over NodeImageCaches: the agent's own (field selector metadata.name=NODE) or, for
 *     agent-sim, every one; the cache keeps metadata and spec only (a status, written by the agent
 *     itself, is read once per node with a GET on its first sync);
 *   - status writes: a merge patch of the status subresource;
 *   - Secrets, read at pull time (GET), their docker config returned to the puller and the reply wiped;
 *   - the node's kubeadm.alpha.kubernetes.io/cri-socket annotation, to find the runtime.
 * Requests it makes itself are counted by verb (agent_kube_counts); the informer's list and watch
 * requests are the rest of the client's total. */
#ifndef AGENT_KUBE_H
#define AGENT_KUBE_H

#include <stdint.h>

#include "agent.h"
#include "kube/kube_client.h"
#include "util/metrics.h"

extern const struct kube_resource AGENT_NIC_RESOURCE; /* kubefledged.io/v1alpha1 nodeimagecaches */

struct agent_kube;

/* client borrowed. node: the one node to watch, or NULL for every NodeImageCache. metrics (borrowed, may
 * be NULL) gets kubefledged_agent_api_requests_total{request}. */
struct agent_kube *agent_kube_new(struct kube_client *client, const char *node, struct metrics *metrics);
/* Fills api with this object's callbacks. */
void agent_kube_api(struct agent_kube *k, struct agent_api *api);
/* Starts the informer; its events notify a. 0 or -1. */
int agent_kube_start(struct agent_kube *k, struct agent *a);
/* 0 once the first list is in, -1 on timeout. */
int agent_kube_wait_synced(struct agent_kube *k, int64_t timeout_ms);
int agent_kube_synced(struct agent_kube *k);
void agent_kube_free(struct agent_kube *k); /* stops the informer */

struct agent_kube_counts {
	uint64_t get_nic, patch_status, get_secret, errors;
};
void agent_kube_counts(struct agent_kube *k, struct agent_kube_counts *out);

/* The value of annotation key on Node node (malloc'd), NULL when it has none (err empty) or on an error
 * (err set). */
char *agent_kube_node_annotation(struct kube_client *client, const char *node, const char *key, struct strbuf *err);

#endif
