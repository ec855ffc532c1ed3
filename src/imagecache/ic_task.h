/* ic_task.h - the work of one ImageCache operation: node x image tasks, stored compactly.
 *
 * An operation on 1,000 nodes x 100 images is 100,000 tasks, so a task holds no strings of its own: it
 * points into the task set's node table and image table by index (4 bytes each), and only a task that
 * failed, or that has a Job, owns a few strings. Tasks are kept sorted by (node, image, action), so the
 * tasks of one node are a contiguous range (ic_tasks_node_range) and a (node, image, action) triple is
 * found by binary search (ic_tasks_find).
 *
 * Both modes use the same model: in job mode a task is carried out by a Job (ic_op_jobs.c), in agent
 * mode by the node's agent through its NodeImageCache (ic_op_agent.c). */
#ifndef IC_TASK_H
#define IC_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "util/map.h"
#include "util/strbuf.h"

enum ic_action { IC_ACTION_PULL = 0, IC_ACTION_DELETE };

enum ic_task_state {
	IC_TASK_PENDING = 0, /* planned; nothing asked of the node yet */
	IC_TASK_RUNNING,     /* a Job exists (job mode) / the node was asked (agent mode); no result yet */
	IC_TASK_SUCCEEDED,   /* pulled / deleted */
	IC_TASK_PRESENT,     /* no work needed: the node already holds the image (upstream: alreadypulled) */
	IC_TASK_KEPT,        /* a delete not done on purpose: another ImageCache wants the image on this node,
			      * a container uses it, or the runtime pins it */
	IC_TASK_FAILED,      /* failed, or the deadline passed first */
	IC_TASK_UNKNOWN,     /* the Job could not be created or has no pod (upstream: unknown) */
	IC_TASK_CANCELLED,   /* the node left the cluster: neither a success nor a failure */
};

static inline int ic_task_done(int s) { return s >= IC_TASK_SUCCEEDED; }
static inline int ic_task_ok(int s) { return s == IC_TASK_SUCCEEDED || s == IC_TASK_PRESENT || s == IC_TASK_KEPT; }
static inline int ic_task_failed(int s) { return s == IC_TASK_FAILED || s == IC_TASK_UNKNOWN; }

/* A node of the operation. Strings owned by the set. */
struct ic_task_node {
	char *name;     /* Node metadata.name */
	char *hostname; /* kubernetes.io/hostname label (Job nodeSelector, failures[].node), else the name */
	char *runtime;  /* job mode, delete tasks: "containerd", "crio" or "docker"; NULL when not needed */
	char *socket;   /* job mode, delete tasks: host path of the runtime socket */
};

/* An image of the operation, as written in the spec (failures are keyed by it). Strings owned by the set. */
struct ic_task_image {
	char *image;     /* as written */
	char *canonical; /* normalised (util/imageref.h), or the text itself when it does not parse */
	unsigned floating : 1; /* :latest or untagged */
	unsigned invalid : 1;  /* does not parse as an image reference (an object written before validation) */
};

struct ic_task {
	uint32_t node, image; /* indexes into the set's tables */
	uint8_t action;       /* enum ic_action */
	uint8_t state;        /* enum ic_task_state */
	uint8_t cleanup;      /* job mode: the finished task's Job still has to be deleted */
	int64_t deadline_ms;  /* monotonic ms after which a running task is given up; 0 = none */
	int64_t pull_gen;     /* agent mode: the pullGeneration the node must report for this pull to count */
	char *job_name;       /* job mode: once created */
	char *reason;         /* failure (or kept) reason and message; NULL until known */
	char *message;
	char *seen_rv;        /* job mode: "<Job rv>/<Pod rv>" when last found running (skip unchanged Jobs) */
	char *pull_error;     /* job mode: the kubelet's last pull error seen on the pod, or NULL */
};

/* The tasks of an operation with their node and image tables. Build with ic_tasks_add_node /
 * ic_tasks_add_image / ic_tasks_add, then ic_tasks_seal (sorts and drops duplicates). */
struct ic_taskset {
	struct ic_task_node *nodes;
	size_t n_nodes;
	struct ic_task_image *images;
	size_t n_images;
	struct ic_task *v;
	size_t n;
	/* building */
	size_t cap_nodes, cap_images, cap;
	struct map node_ix, image_ix; /* name -> index + 1, image text -> index + 1 */
};

void ic_tasks_init(struct ic_taskset *ts);
void ic_tasks_release(struct ic_taskset *ts); /* frees everything; ts is left empty (ic_tasks_init state) */

/* Index of node `name`, added if new (hostname, runtime and socket may be NULL; copied). */
uint32_t ic_tasks_add_node(struct ic_taskset *ts, const char *name, const char *hostname, const char *runtime,
			   const char *socket);
/* Index of image `image` (as written), added if new; canonical form and flags worked out here. */
uint32_t ic_tasks_add_image(struct ic_taskset *ts, const char *image);
/* Appends a task in state `state`; returns it (valid until the next add). */
struct ic_task *ic_tasks_add(struct ic_taskset *ts, uint32_t node, uint32_t image, enum ic_action a, int state);
/* Sorts by (node name, canonical image, action) and keeps the first of tasks equal in that key. */
void ic_tasks_seal(struct ic_taskset *ts);

/* The tasks of node index `node`: [*from, *to). Needs a sealed set. */
void ic_tasks_node_range(const struct ic_taskset *ts, uint32_t node, size_t *from, size_t *to);
/* Node index by name, or -1. */
long ic_tasks_node_index(const struct ic_taskset *ts, const char *name);
/* The task (node, canonical image, action), or NULL. Needs a sealed set. */
struct ic_task *ic_tasks_find(const struct ic_taskset *ts, uint32_t node, const char *canonical, enum ic_action a);

static inline const char *ic_task_node_name(const struct ic_taskset *ts, const struct ic_task *t)
{
	return ts->nodes[t->node].name;
}
static inline const char *ic_task_image(const struct ic_taskset *ts, const struct ic_task *t)
{
	return ts->images[t->image].image;
}

/* Frees the task's strings and zeroes them (indexes, action and state kept). */
void ic_task_clear(struct ic_task *t);
/* Sets the state and a copy of reason / message (either may be NULL). */
void ic_task_set_result(struct ic_task *t, enum ic_task_state s, const char *reason, const char *message);

/* Counts for status.progress: total excludes cancelled tasks. */
struct ic_task_counts {
	size_t total, done, failed;
};
void ic_tasks_count(const struct ic_taskset *ts, struct ic_task_counts *c);

/* Canonical form of an image reference into out (the text itself when it does not parse); returns 1 when
 * it parsed. *floating (may be NULL) is set for :latest and untagged references. */
int ic_image_canonical(const char *image, struct strbuf *out, int *floating);

#endif
