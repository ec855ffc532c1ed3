/* ic_status.h - the ImageCache status: upstream's vocabulary byte for byte (typos included: clients match
 * on these strings), the operation and task model shared by the planner and the controller, and the pure
 * function that turns an operation's finished tasks into the final status.
 *
 * The status keeps upstream's fields (status, reason, message, failures, startTime, completionTime) and
 * adds three of ours, which upstream clients simply ignore:
 *   conditions    Ready and Progressing, each with observedGeneration (kubectl wait --for=condition=Ready)
 *   appliedSpec   {cacheSpec: [...]}: the image lists the last completed operation applied. An edit is
 *                 reconciled against it (not against the previous informer copy, upstream's #103), so an
 *                 edit made while Processing or while the controller was down is never lost.
 *   progress      {total, done, failed} node-image pairs of the running or last operation. */
#ifndef IC_STATUS_H
#define IC_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* status.status */
#define IC_STATUS_PROCESSING "Processing"
#define IC_STATUS_SUCCEEDED "Succeeded"
#define IC_STATUS_FAILED "Failed"
#define IC_STATUS_ABORTED "Aborted"
#define IC_STATUS_NOIMAGES "NoImagesPulledOrDeleted"

/* status.reason */
#define IC_REASON_CREATE "ImageCacheCreate"
#define IC_REASON_UPDATE "ImageCacheUpdate"
#define IC_REASON_REFRESH "ImageCacheRefresh"
#define IC_REASON_PURGE "ImageCachePurge"
#define IC_REASON_ABORTED "ImagePullAborted"
#define IC_REASON_STATUS_UNKNOWN "ImagePullStatusUnknown"
#define IC_REASON_SPEC_INVALID "CacheSpecValidationFailed" /* upstream legacy; refresh skips such caches */

/* status.message */
#define IC_MSG_PULLING "Images are being pulled on to the nodes. Please view the status after some time"
#define IC_MSG_UPDATING "Image cache is being updated. Please view the status after some time"
#define IC_MSG_REFRESHING "Image cache is being refreshed. Please view the status after some time"
#define IC_MSG_PURGING "Image cache is being purged. Please view the status after some time"
#define IC_MSG_PULLED "All requested images pulled succesfully to respective nodes"
#define IC_MSG_DELETED "All cached images succesfully deleted from respective nodes"
#define IC_MSG_PULL_FAILED "Image pull failed for some images. Please see \"failures\" section"
#define IC_MSG_DELETE_FAILED "Image deletion failed for some images. Please see \"failures\" section"
#define IC_MSG_STATUS_UNKNOWN \
	"Unable to get the status of Image pull. Retry after some time or contact cluster administrator"
#define IC_MSG_ABORTED "Image cache processing aborted. Image cache will get refreshed during next refresh cycle"
#define IC_MSG_NOIMAGES "No images were pulled or deleted because nodeSelector specified did not match any nodes"

enum ic_op_type { IC_OP_NONE = 0, IC_OP_CREATE, IC_OP_UPDATE, IC_OP_REFRESH, IC_OP_PURGE };

const char *ic_op_reason(enum ic_op_type op);          /* ImageCacheCreate, ... */
const char *ic_op_processing_message(enum ic_op_type op);
const char *ic_op_name(enum ic_op_type op);            /* "create", "update", "refresh", "purge" */
enum ic_op_type ic_op_from_reason(const char *reason); /* IC_OP_NONE if not an operation reason */

enum ic_action { IC_ACTION_PULL = 0, IC_ACTION_DELETE };

enum ic_task_state {
	IC_TASK_PENDING = 0,    /* planned; no Job yet */
	IC_TASK_RUNNING,        /* Job created, result not known yet */
	IC_TASK_SUCCEEDED,      /* the Job's pod succeeded */
	IC_TASK_PRESENT,        /* no Job needed: the node already reports the image (upstream: alreadypulled) */
	IC_TASK_FAILED,         /* the pod failed, or the deadline passed first */
	IC_TASK_UNKNOWN,        /* the Job could not be created or has no pod (upstream: unknown) */
};

static inline int ic_task_done(enum ic_task_state s) { return s >= IC_TASK_SUCCEEDED; }
static inline int ic_task_ok(enum ic_task_state s) { return s == IC_TASK_SUCCEEDED || s == IC_TASK_PRESENT; }

/* One node x image unit of work of an operation. All strings owned by the task (ic_task_clear frees). */
struct ic_task {
	char *node;         /* Node metadata.name */
	char *hostname;     /* the node's kubernetes.io/hostname label: Job nodeSelector and failures[].node */
	char *image;        /* as written in the spec (failures are keyed by it) */
	enum ic_action action;
	enum ic_task_state state;
	char *job_name;     /* once created */
	long long deadline_ms; /* monotonic ms after which a running Job is given up; 0 = none */
	int cleanup;        /* the finished task's Job still has to be deleted (retention policy delete) */
	char *reason;       /* failure reason / message, NULL until failed */
	char *message;
	char *runtime;      /* delete tasks: "containerd", "crio" or "docker" (ic_jobs.h) */
	char *socket;       /* delete tasks: host path of the runtime socket */
	char *seen_rv;      /* "<Job resourceVersion>/<Pod resourceVersion>" when last found still running, so a
			     * sync skips the Jobs that did not change since (NULL: not looked at yet) */
	char *pull_error;   /* pull tasks: the kubelet's last pull error seen on the pod (ic_pull_error), or NULL */
};

void ic_task_clear(struct ic_task *t);
void ic_task_set_result(struct ic_task *t, enum ic_task_state s, const char *reason, const char *message);

/* The final status of an operation: status/reason/message/failures/startTime/completionTime, as upstream
 * computes them but deterministic: Failed when any task failed (message "pull failed" if any failed task
 * is a pull, else "deletion failed"); otherwise Succeeded when any task succeeded or was present
 * ("deleted" text for a purge, "pulled" otherwise); NoImagesPulledOrDeleted when there were no tasks.
 * failures[image] lists {node: hostname, reason, message}, sorted by node. Returns a new object. */
json_t *ic_status_final(enum ic_op_type op, const struct ic_task *tasks, size_t n, time_t start, time_t now);
/* {status: Processing, reason, message, startTime} for an operation starting now. New object. */
json_t *ic_status_processing(enum ic_op_type op, time_t start);
/* {status: Aborted, reason: ImagePullAborted, message, startTime (kept), completionTime}. New object. */
json_t *ic_status_aborted(json_t *old_status, time_t now);
/* {status: Failed, reason: CacheSpecValidationFailed, message: msg, startTime, completionTime}. */
json_t *ic_status_invalid(const char *msg, time_t now);

/* Completes a new status (borrowed, modified) with conditions (Ready, Progressing; lastTransitionTime kept
 * from old_status when a condition's status did not change), observedGeneration, and appliedSpec:
 * applied_spec (borrowed; NULL = carry old_status's appliedSpec over). */
void ic_status_decorate(json_t *status, json_t *old_status, long long generation, json_t *applied_spec,
			time_t now);
/* Sets status.progress = {total, done, failed} from tasks. */
void ic_status_set_progress(json_t *status, const struct ic_task *tasks, size_t n);

/* The generation the status was computed for (Ready condition's observedGeneration), or -1 if unknown
 * (no conditions: an object last written by upstream kube-fledged). */
long long ic_status_observed_generation(json_t *status);

#endif
