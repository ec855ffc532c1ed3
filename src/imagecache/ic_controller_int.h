/* ic_controller_int.h - state shared by ic_controller.c (informers, handlers, queue, workers) and ic_sync.c
 * (the sync of one cache). Not a public interface.
 *
 * Locking: ctl->mu guards the states map, every field of struct ic_cache_state except `op`, the pod index
 * and the node table. `op` belongs to the worker that is syncing the key: the work queue never hands one
 * key to two workers at once, so op needs no lock. */
#ifndef IC_CONTROLLER_INT_H
#define IC_CONTROLLER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "ic_controller.h"
#include "ic_status.h"
#include "ic_types.h"
#include "kube/kube_events.h"
#include "kube/kube_informer.h"
#include "kube/kube_workqueue.h"
#include "util/map.h"

struct ic_op {
	enum ic_op_type type;
	long long generation;     /* metadata.generation the operation applies */
	time_t start;
	struct ic_spec spec;      /* the spec at the start (imagePullSecrets for Jobs) */
	struct ic_task *tasks;
	size_t n;
	json_t *applied;          /* appliedSpec to record when done (new reference) */
	const char *annotation;   /* trigger annotation to remove when done, or NULL */
	int64_t last_progress_ms;
	size_t last_progress_done;
};

struct ic_cache_state {
	char *uid;
	struct ic_op *op;
	int first_sync_done;      /* leftovers of a previous controller dealt with */
	enum ic_op_type resume;   /* an operation interrupted by a restart, to run again */
	int refresh_due;          /* the periodic refresh ticked */
	struct map new_nodes;     /* nodes that joined or started matching a list since the last operation */
	const char *remove_annotation; /* annotation whose removal is still owed */
	char *written_rv;         /* resourceVersion of our last write to the cache ... */
	int written_seen;         /* ... and whether the informer has caught up with it */
	int64_t written_ms;
};

struct ic_controller {
	struct kube_client *c;
	struct ic_controller_opts o;
	struct kube_informer *caches, *nodes, *jobs, *pods;
	struct kube_workqueue *q;
	struct kube_recorder *rec;
	pthread_mutex_t mu;
	struct map states;        /* cache key -> struct ic_cache_state * */
	struct map pod_by_job;    /* "ns/job-name" -> json_t * (newest pod of the Job; a reference) */
	struct map node_labels;   /* node name -> json_t * labels (a reference) */
	struct map recent;        /* "node\ncanonical image" -> struct ic_recent *: what we did lately */
	int nodes_synced;
	atomic_int active_jobs;   /* running Jobs of all operations, for --jobs-max-surge */
	atomic_int no_status_subresource; /* the CRD has no status subresource (upstream's CRD): ic_compat.h */
	atomic_int patch_forbidden;        /* RBAC refuses PATCH of imagecaches (upstream's): get + update */
	_Atomic uint64_t n_syncs, n_ops, n_jobs_created, n_jobs_deleted, n_status_writes;
};

/* What the controller last did to an image on a node, trusted over the node's lagging status.images. */
#define IC_RECENT_MS 45000
struct ic_recent {
	int64_t ms;
	int present;
};
void ic_recent_note(struct ic_controller *ctl, const char *node, const char *image, int present);
int ic_recent_lookup(void *ctl, const char *node, const char *canonical_image);

/* ic_write.c: the status written whole (0 or -1, logged); an annotation removed (0, also when the object is
 * gone, or -1). obj is the cache as the sync sees it (borrowed); the write is noted in st. */
int ic_write_status(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *status);
int ic_remove_annotation(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const char *annotation);

/* ic_sync.c */
int ic_sync(struct ic_controller *ctl, const char *key, int64_t *requeue_ms);
void ic_op_free(struct ic_controller *ctl, struct ic_op *op);

/* ic_controller.c */
struct ic_cache_state *ic_state_get(struct ic_controller *ctl, const char *key, int create); /* lock held */
void ic_state_del(struct ic_controller *ctl, const char *key);                              /* lock held */
/* "ns/name" of the ImageCache owning a Job (controller ownerReference), into buf; NULL if none. */
char *ic_job_owner_key(json_t *job, char *buf, size_t n);

#endif
