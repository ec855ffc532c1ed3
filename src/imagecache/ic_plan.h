/* ic_plan.h - what an operation must do: the node x image tasks, worked out from the desired spec, the spec
 * the nodes hold (status.appliedSpec), and the nodes as the informer sees them. Pure: no API calls.
 *
 *   create, refresh  pull every image of every list onto every node the list selects; a refresh also
 *                    deletes what the nodes still hold from the applied spec and no list gives them any more
 *                    (a delete that failed before, an edit made while an operation was interrupted);
 *   update           pull the images each node should now have, and delete from each node the images it had
 *                    under the applied spec that no list gives it any more (an image moved between lists, or
 *                    listed twice, is kept); floating images (:latest, untagged) are re-pulled only when newly
 *                    added, so an unrelated edit does not re-pull them everywhere;
 *   purge            delete every image of the spec and of the applied spec from every node a list selects
 *                    (leftovers_only: only the applied spec's, to retry deletes that failed).
 *
 * Deletes are never planned for a reference that does not parse or is an image ID (status.appliedSpec is
 * outside input), and a delete of an image another ImageCache still lists for that node becomes a KEPT task
 * (the wanted_elsewhere callback). An image that does not parse as a reference gets a FAILED pull task
 * (InvalidImageName) on each node, so the valid ones are still cached (an object written before the webhook
 * checked references).
 *
 * In job mode a pull whose image the node already reports (node.status.images, exact reference match) is a
 * PRESENT task that needs no Job. In agent mode presence is the node agent's business: every pull is PENDING.
 * Cost: O(pairs) hashing plus a sort of the tasks, O(pairs log pairs). */
#ifndef IC_PLAN_H
#define IC_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "ic_status.h"
#include "ic_task.h"
#include "ic_types.h"

#define IC_REASON_INVALID_IMAGE "InvalidImageName" /* the kubelet's word for a reference it cannot parse */

struct ic_plan_input {
	enum ic_op_type op;
	const struct ic_spec *spec;     /* desired */
	const struct ic_spec *applied;  /* what the nodes hold (status.appliedSpec); NULL = unknown (no deletes) */
	json_t *nodes;                  /* JSON array of Node objects, borrowed */
	const char *const *only_nodes;  /* restrict to these node names; NULL = every node */
	size_t n_only;
	const char *pull_policy;        /* --image-pull-policy */
	const char *cri_socket;         /* --cri-socket-path, "" = detect */
	/* Optional: what the controller itself last did to (node, canonical image) recently: 1 pulled, 0 deleted,
	 * -1 nothing known. The kubelet's status.images lags a pull or a removal by up to ~30 s, so a refresh
	 * right after a purge would otherwise see deleted images as present. */
	int (*recent)(void *ud, const char *node, const char *canonical_image);
	void *recent_ud;
	/* The user asked for this operation (refresh annotation): a recent pull of ours is no proof of presence,
	 * since the image may have been removed behind our back since; only the node's status.images counts.
	 * A recent delete still forces the pull. */
	int explicit_request;
	int agent_mode;                 /* no presence from node status, no runtime detection */
	int leftovers_only;             /* purge: only the applied spec's images */
	/* Optional delete guard: 1 when another ImageCache wants this (node, canonical image). */
	int (*wanted_elsewhere)(void *ud, const char *node, const char *canonical_image);
	void *wanted_ud;
};

/* Fills ts (initialised by the caller with ic_tasks_init; sealed on return). */
void ic_plan(const struct ic_plan_input *in, struct ic_taskset *ts);

/* The node's kubernetes.io/hostname label, or its name when the label is missing. Borrowed. */
const char *ic_node_hostname(json_t *node);

#endif
