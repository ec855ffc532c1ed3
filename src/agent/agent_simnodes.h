/* agent_simnodes.h - the Kubernetes side of simulated nodes (`kubefledged agent-sim`): Node objects
 * <prefix>0001..N against the real API server, made to look like live kubelets without any kubelet:
 *   - created, or adopted when they exist: label kubefledged.io/simulated=true (plus --node-labels and
 *     kubernetes.io/hostname, os, arch), taint kubefledged.io/simulated=true:NoSchedule so that no real
 *     pod is scheduled there (a pod bound to such a node would never run);
 *   - status Ready=True (the status subresource), capacity and nodeInfo (containerRuntimeVersion
 *     simulated://VERSION);
 *   - a Lease in kube-node-lease per node (owned by the Node), renewed every lease period: the node
 *     lifecycle controller then keeps them Ready, as it does for kubelets (lease duration 40 s).
 * Requests go through their own client (not the agents'), spread over a few threads, and are counted
 * by verb. */
#ifndef AGENT_SIMNODES_H
#define AGENT_SIMNODES_H

#include <stddef.h>
#include <stdint.h>

#include "kube/kube_client.h"
#include "util/strbuf.h"

#define AGENT_SIM_LABEL "kubefledged.io/simulated"

struct agent_simnodes_opts {
	const char *prefix;   /* "kf-sim-" */
	int count;
	const char *labels;   /* "k=v,k2=v2" or NULL */
	int64_t lease_ms;     /* renewal period */
	int threads;          /* parallel requests for setup, renewals and deletion */
};

struct agent_simnodes;

/* Checks the options (labels parse: err names the bad one). client borrowed (NULL: only check the
 * options, then free the result). NULL with err on bad input. */
struct agent_simnodes *agent_simnodes_new(struct kube_client *client, const struct agent_simnodes_opts *o,
					  struct strbuf *err);
void agent_simnodes_free(struct agent_simnodes *s);

const char *agent_simnodes_name(const struct agent_simnodes *s, size_t i); /* i < count */

/* Creates or adopts every Node, writes its Ready status and Lease. 0, or -1 with err (the first failure). */
int agent_simnodes_setup(struct agent_simnodes *s, const volatile int *stop, struct strbuf *err);
/* Renews the Leases every lease period on background threads (and the Ready status every 10 periods). */
int agent_simnodes_start(struct agent_simnodes *s);
void agent_simnodes_stop(struct agent_simnodes *s);
/* How many of our Nodes the API server shows Ready=True (one LIST). -1 with err on failure. */
int agent_simnodes_ready(struct agent_simnodes *s, struct strbuf *err);
/* Deletes every Node (their Leases and NodeImageCaches go with them: owner references). Returns how many
 * could not be deleted. */
int agent_simnodes_delete(struct agent_simnodes *s);

struct agent_simnodes_counts {
	uint64_t get, create, patch, patch_status, list, del, errors;
};
void agent_simnodes_counts(struct agent_simnodes *s, struct agent_simnodes_counts *out);

#endif
