/* ic_controller_int.h - what the files of the ImageCache controller share: the controller structure, the
 * per-cache state, the running operation, and the functions each file offers the others. Not a public
 * interface (ic_controller.h is).
 *
 *   ic_controller.c   informers, event handlers, the work queue and its workers, the refresh ticker
 *   ic_state.c        the per-cache state table
 *   ic_sync.c         the sync of one cache: which operation is due (decides, never carries out)
 *   ic_op.c           an operation's life common to both modes: start (plan, Processing), progress, finish
 *   ic_write.c        status and annotation writes, whatever CRD is installed (ours or upstream's)
 *   ic_op_jobs.c      job mode: tasks carried out by Jobs
 *   ic_op_agent.c     agent mode: tasks carried out by the node agents, results folded from NodeImageCaches
 *   ic_nodesync.c     agent mode: each node's NodeImageCache spec, written when it differs
 *   ic_secrets.c      agent mode: RoleBindings that let the agents read the pull secrets caches name
 *
 * Locking: ctl->mu guards the states map, every field of struct ic_cache_state except `op`, the pod index,
 * the node table and the recent-actions table. `op` belongs to the worker that is syncing the key: the work
 * queue never hands one key to two workers at once, so op needs no lock (op_running mirrors it under mu for
 * the ticker). */
#ifndef IC_CONTROLLER_INT_H
#define IC_CONTROLLER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "ic_controller.h"
#include "ic_nic.h"
#include "ic_nodeplan.h"
#include "ic_status.h"
#include "ic_task.h"
#include "ic_types.h"
#include "kube/kube_events.h"
#include "kube/kube_informer.h"
#include "kube/kube_workqueue.h"
#include "util/map.h"
#include "util/util.h"

#define IC_ANNOTATION_STATUS "kubefledged.io/status" /* our status fields, where the CRD's schema prunes them */

struct ic_op {
	enum ic_op_type type;
	char *ns, *name;           /* the cache's namespace and name */
	long long generation;      /* metadata.generation the operation applies */
	char *spec_hash;           /* hash of the spec it applies (upstream's CRD: edits are found by it) */
	time_t start;
	struct ic_spec spec;       /* the spec at the start (Job pull secrets, appliedSpec afterwards) */
	json_t *applied_before;    /* status.appliedSpec.cacheSpec at the start (a reference), or NULL */
	struct ic_taskset ts;
	const char *annotations[2]; /* trigger annotations to remove when done (purge takes a refresh along) */
	int node_join;             /* covers only nodes that joined: earlier failures of other nodes are kept */
	json_t *merge_from;        /* node_join: the status before (a reference) */
	int64_t last_progress_ms;
	size_t last_progress_done;
	size_t next_pending;       /* job mode: no task before this index is pending */
	uint64_t *seen_versions;   /* agent mode: per node of ts, the NodeImageCache version last folded */
	int digest_round;          /* agent mode: a refresh asked nodes on an older digest to pull again */
	json_t *stale_digests;     /* agent mode: image -> [nodes] still on an older digest after that */
};

struct ic_cache_state {
	char *uid;
	struct ic_op *op;
	int op_running;           /* op != NULL, readable under ctl->mu */
	int first_sync_done;      /* leftovers of a previous controller dealt with */
	int status_folded;        /* tried once to bring the status annotation back into status */
	enum ic_op_type resume;   /* an interrupted operation to run again */
	int refresh_due;          /* the periodic refresh ticked while no operation ran */
	struct map new_nodes;     /* nodes that joined or started matching a list since the last operation */
	struct map gone_nodes;    /* nodes deleted while an operation ran: their tasks are cancelled */
	const char *owed[2];      /* annotations whose removal is still owed */
	char *written_rv;         /* resourceVersion of our last write to the cache ... */
	int written_seen;         /* ... and whether the informer has caught up with it */
	int64_t written_ms;
};

struct ic_controller {
	struct kube_client *c;
	struct ic_controller_opts o;
	const volatile int *stop;
	struct kube_informer *caches, *nodes, *jobs, *pods, *nics;
	struct ic_nic_index *nicx;       /* agent mode: the NodeImageCaches, compact */
	struct ic_cacheset *cacheset;    /* agent mode: every wanting cache, parsed; rebuilt when caches change */
	uint64_t caches_version, cacheset_version; /* (guarded by mu) */
	struct map node_reqs;            /* agent mode: node -> struct ic_reqs *: what running operations ask */
	struct kube_workqueue *q;
	struct kube_recorder *rec;
	pthread_mutex_t mu;
	struct map states;        /* cache key -> struct ic_cache_state * */
	struct map pod_by_job;    /* "ns/job-name" -> json_t * (newest pod of the Job; a reference) */
	struct map node_labels;   /* node name -> json_t * labels (a reference) */
	struct map recent;        /* "node\ncanonical image" -> struct ic_recent *: what we did lately */
	struct map orphan_jobs;   /* "ns/name" of finished Jobs whose deletion failed: retried by the ticker */
	int nodes_synced;
	atomic_int active_jobs;   /* Jobs in flight of all operations, for --jobs-max-surge */
	/* what the installed CRD offers (found out by the writes; atomics: every worker reads them) */
	atomic_int crd_no_status_subresource; /* status goes through the main resource */
	atomic_int crd_prunes_status;         /* our status fields are pruned: they go to IC_ANNOTATION_STATUS */
	_Atomic int64_t crd_probe_ms;         /* when the status subresource was last looked for */
	atomic_int patch_forbidden;           /* RBAC refuses PATCH of imagecaches (upstream's): get + update */
	_Atomic uint64_t n_syncs, n_ops, n_jobs_created, n_jobs_deleted, n_status_writes;
	struct ic_metrics *metrics;           /* NULL unless ic_controller_metrics() (ic_metrics.h) was called */
};

/* What the controller last did to an image on a node, trusted over the node's lagging status.images. */
#define IC_RECENT_MS 45000
struct ic_recent {
	int64_t ms;
	int present;
};
void ic_recent_note(struct ic_controller *ctl, const char *node, const char *canonical, int present);
int ic_recent_lookup(void *ctl, const char *node, const char *canonical_image);

/* ic_state.c (ctl->mu held) */
struct ic_cache_state *ic_state_get(struct ic_controller *ctl, const char *key, int create);
void ic_state_del(struct ic_controller *ctl, const char *key);
void ic_state_free(void *st);

/* ic_sync.c */
int ic_sync(struct ic_controller *ctl, const char *key, int64_t *requeue_ms);

/* ic_op.c */
struct ic_op_request {
	enum ic_op_type type;
	const char *annotations[2]; /* to remove when done */
	int adopt;                  /* resume: adopt the Jobs a previous controller left running */
	int node_join;              /* only the nodes in st->new_nodes */
	int leftovers_only;         /* purge: only the applied spec's leftovers */
};
int ic_op_start(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, const struct ic_spec *spec,
		const struct ic_op_request *req, int64_t *requeue_ms);
/* Moves the operation on (carries out what is due, handles results and deadlines, writes progress) and
 * finishes it when every task is done. */
int ic_op_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms);
void ic_op_free(struct ic_controller *ctl, struct ic_op *op);
/* Sets st->op (and op_running) under ctl->mu. */
void ic_op_attach(struct ic_controller *ctl, struct ic_cache_state *st, struct ic_op *op);

/* ic_write.c */
/* The cache's status as this controller wrote it: status plus our fields from IC_ANNOTATION_STATUS where
 * the CRD pruned them. New reference (an empty object when there is no status). */
json_t *ic_status_view(json_t *obj);
/* Whether the spec was edited since the status was written: 1 yes, 0 no, -1 cannot tell (the status was
 * written by upstream kube-fledged). */
int ic_edit_pending(json_t *obj, json_t *view);
/* The value of IC_ANNOTATION_STATUS for a status: its conditions, appliedSpec and progress, and spec_hash;
 * appliedSpec is left out (with a warning) past IC_STATUS_EXT_MAX bytes (annotations are capped at 256 KiB
 * in all). malloc'd. */
#define IC_STATUS_EXT_MAX (200 * 1024)
char *ic_status_ext(json_t *status, const char *spec_hash);
/* The hash of the spec by which edits are found where generations cannot be used. malloc'd. */
char *ic_spec_hash(json_t *spec_json);
/* Replaces the status (and, on a pruning CRD, IC_ANNOTATION_STATUS with spec_hash in it). 0 or -1. */
int ic_write_status(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *status,
		    const char *spec_hash);
/* Merge-patches status.progress only (the small write while Processing). 0 or -1. */
int ic_write_progress(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, json_t *progress);
/* Removes the annotations (NULL entries skipped). 0 or -1 (a missing object counts as done). */
int ic_remove_annotations(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj,
			  const char *const anns[2]);

/* ic_op_agent.c: agent mode */
/* Prepares a planned operation: which pulls must be fresh (pullGeneration raised), the requests of its
 * tasks registered for the node syncs, every task running. */
void ic_agent_start(struct ic_controller *ctl, struct ic_op *op);
int ic_agent_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms);
/* The result of a running task of the cache self ("ns/name") from what the node's NodeImageCache says: a done
 * state (reason and message set on the task when it failed or was kept), or IC_TASK_RUNNING. A delete is
 * kept for another cache only when a Pull entry names an owner other than self (its own old Pull entry only
 * means the node sync has not turned it into a Delete yet). Pure. */
enum ic_task_state ic_agent_fold(struct ic_task *t, const struct ic_nic_info *info, const char *self);
/* One digest per tag, when a refresh has folded: returns 1 when nodes on an older digest were asked to pull
 * again (the operation goes on), 0 when it may finish (op->stale_digests names who is still apart). */
int ic_agent_check_digests(struct ic_controller *ctl, struct ic_op *op);
/* Withdraws the operation's requests (it finished, or its cache went) and wakes the node syncs. */
void ic_agent_release(struct ic_controller *ctl, struct ic_op *op);

/* ic_nodesync.c: agent mode */
#define IC_NODE_KEY_PREFIX "node:" /* work queue keys "node:<name>" (cache keys are "ns/name") */
/* Writes node's NodeImageCache spec when it differs from what the caches and operations ask. */
int ic_nodesync(struct ic_controller *ctl, const char *node, int64_t *requeue_ms);
void ic_nodesync_enqueue(struct ic_controller *ctl, const char *node);
void ic_nodesync_enqueue_all(struct ic_controller *ctl);
/* A request of a running operation of cache_key ("ns/name") for (node, canonical image): a fresh pull
 * (pull_gen > 0) or a removal (pull_gen 0) on that cache's behalf. */
void ic_reqs_add(struct ic_controller *ctl, const char *node, const char *canonical, int64_t pull_gen,
		 const char *cache_key);
void ic_reqs_drop_cache(struct ic_controller *ctl, const char *cache_key, struct map *touched_nodes);
void ic_reqs_free_all(struct ic_controller *ctl);

/* ic_secrets.c: agent mode, the agents' right to read the pull secrets caches name */
#define IC_NS_KEY_PREFIX "ns:" /* work queue keys "ns:<namespace>" */
#define IC_AGENT_SECRETS_ROLE "kubefledged-agent-pull-secrets"
int ic_nssync(struct ic_controller *ctl, const char *ns, int64_t *requeue_ms);
void ic_nssync_enqueue(struct ic_controller *ctl, const char *ns);

/* ic_op_jobs.c: job mode */
int ic_jobs_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms);
/* Attaches the cache's surviving Jobs to op's pending tasks, deletes the rest (op NULL: all leftovers). */
void ic_jobs_adopt(struct ic_controller *ctl, json_t *obj, struct ic_op *op);
/* A task of op ends (Job finished or given up): counts, cleanup, logs. */
void ic_jobs_task_done(struct ic_controller *ctl, struct ic_op *op, struct ic_task *t, const char *ns);
/* Deletes the Jobs of a deleted cache that its deletion does not take along (delete Jobs in the controller's
 * namespace carry no ownerReference). */
void ic_jobs_forget_cache(struct ic_controller *ctl, const char *uid);
/* At start: deletes the Jobs whose ImageCache no longer exists and which no owner takes along. */
void ic_jobs_sweep(struct ic_controller *ctl);
/* Deletes the running Jobs of op (cache deleted, node gone). */
void ic_jobs_cancel(struct ic_controller *ctl, struct ic_op *op, struct ic_task *t);
/* Retries deleting Jobs whose deletion failed (called by the ticker). */
void ic_jobs_retry_orphans(struct ic_controller *ctl);
/* The Jobs in flight allowed at once: --jobs-max-surge, or derived from the node count when 0. */
int ic_jobs_surge_limit(struct ic_controller *ctl);
/* "ns/name" of the ImageCache a Job works for (ownerReference, else the kubefledged.io/imagecache
 * annotation of delete Jobs in the controller's namespace), into buf; NULL if none. */
char *ic_job_owner_key(json_t *job, char *buf, size_t n);

static inline const char *ic_meta(json_t *obj, const char *field)
{
	return kf_jstr(obj, "metadata", field, NULL);
}

#endif
