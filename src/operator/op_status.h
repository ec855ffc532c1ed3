/* op_status.h - a KubeFledged's status: what the operator last did with it, in the shape kubectl and
 * `kubectl wait --for=condition=Ready` read.
 *
 *   status:
 *     observedGeneration: 4            the spec generation the conditions speak of
 *     conditions:
 *     - type: Deployed                 True: every rendered object is applied (and nothing unrendered left);
 *       status: "True"                 False: RenderFailed (a value is wrong: the message names it; nothing
 *       reason: Applied                was changed), Conflict (an object of that name belongs to someone
 *       message: 14 objects applied    else), MissingCRD (the values render a kind the cluster lacks, e.g. a
 *       observedGeneration: 4          ServiceMonitor; nothing was changed), ApplyFailed (the API refused
 *       lastTransitionTime: ...        an object), WaitingForWebhook (the ValidatingWebhookConfiguration
 *                                      waits for a ready webhook server); lastTransitionTime changes only
 *                                      when status does
 *     - type: Ready                    True: Available (every Deployment and DaemonSet rolled out and
 *       status: "False"                available, the webhook's caBundle set); False: Progressing, with what
 *       reason: Progressing            is missing
 *       message: "Deployment kube-fledged-controller: 0 of 1 replicas updated, 0 available"
 *     objects:                         what is applied, as {apiVersion, kind, namespace, name}
 *     - {apiVersion: apps/v1, kind: Deployment, namespace: kube-fledged, name: kube-fledged-controller}
 *
 * Building a status is pure (unit-tested); writing it is a merge patch of the status subresource, sent only
 * when something changed, so the operator's own write does not wake it forever. */
#ifndef OP_STATUS_H
#define OP_STATUS_H

#include <jansson.h>

#include "kube/kube_client.h"

struct op_outcome {
	json_int_t generation;
	int deployed;                /* 1 True, 0 False */
	const char *deployed_reason; /* Applied, RenderFailed, Conflict, MissingCRD, ApplyFailed, WaitingForWebhook */
	const char *deployed_msg;
	int ready;                   /* 1 True, 0 False, -1 keep the previous Ready condition */
	const char *ready_reason;
	const char *ready_msg;
	json_t *objects;             /* the applied objects (borrowed; only identity fields are kept), or NULL
				      * to keep the previous list */
};

/* The new status (new reference) from the previous one (borrowed, may be NULL) and what happened; now is
 * the RFC 3339 time for conditions that change. */
json_t *op_status_build(json_t *old_status, const struct op_outcome *o, const char *now);

/* The condition of that type in status (borrowed) or NULL. */
json_t *op_condition(json_t *status, const char *type);

/* Writes status to the KubeFledged ns/name unless it equals old_status. Returns 1 written, 0 unchanged, -1
 * with err. */
int op_status_write(struct kube_client *c, const char *ns, const char *name, json_t *old_status, json_t *status,
		    struct kube_err *err);

#endif
