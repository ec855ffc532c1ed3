/* ic_plan.h - what an operation must do: the node x image tasks, worked out from the desired spec, the spec
 * the last completed operation applied, and the nodes as the informer sees them. Pure: no API calls.
 *
 *   create, refresh  pull every image of every list onto every node the list selects;
 *   update           pull the images each node should now have, and delete from each node the images it
 *                    had under the applied spec that no list gives it any more (an image moved between
 *                    lists, or listed twice, is kept); floating images (:latest, untagged) are re-pulled
 *                    only when newly added, so an unrelated edit does not re-pull them everywhere;
 *   purge            delete every image of every list from every node the list selects.
 *
 * A pull whose image the node already reports (exact reference match in status.images) becomes a task in
 * state IC_TASK_PRESENT, which needs no Job. Tasks are unique per (node, image, action), images compared by
 * their normalised reference. */
#ifndef IC_PLAN_H
#define IC_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "ic_status.h"
#include "ic_types.h"

struct ic_plan_input {
	enum ic_op_type op;
	const struct ic_spec *spec;     /* desired */
	const struct ic_spec *applied;  /* applied by the last completed operation; NULL = unknown (no deletes) */
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
};

/* Returns a malloc'd array of *n tasks (free with ic_tasks_free); NULL with *n = 0 when there is nothing. */
struct ic_task *ic_plan(const struct ic_plan_input *in, size_t *n);
void ic_tasks_free(struct ic_task *tasks, size_t n);

/* The node's kubernetes.io/hostname label, or its name when the label is missing. Borrowed. */
const char *ic_node_hostname(json_t *node);

#endif
