/* ic_status.h - the ImageCache status: upstream's vocabulary byte for byte (typos included: clients match
 * on these strings), the operation types, and the pure functions that turn an operation's finished tasks
 * (ic_task.h) into the final status.
 *
 * The status keeps upstream's fields (status, reason, message, failures, startTime, completionTime) and
 * adds three of ours, which upstream clients simply ignore:
 *   conditions    Ready and Progressing, each with observedGeneration (kubectl wait --for=condition=Ready)
 *   appliedSpec   {cacheSpec: [...]}: what the nodes hold: the image lists the last completed operation
 *                 applied, plus lists of the images whose removal failed (retried by the next refresh). An
 *                 edit is reconciled against it (not against the previous informer copy, upstream's #103), so
 *                 an edit made while Processing or while the controller was down is never lost.
 *   progress      {total, done, failed} node-image pairs of the running or last operation. */
#ifndef IC_STATUS_H
#define IC_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "ic_task.h"

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

/* The final status of an operation: status/reason/message/failures/startTime/completionTime, as upstream
 * computes them but deterministic: Failed when any task failed (message "pull failed" if any failed task
 * is a pull, else "deletion failed"); otherwise Succeeded when any task succeeded, was present or kept
 * ("deleted" text for a purge, "pulled" otherwise); NoImagesPulledOrDeleted when there were no tasks.
 * Cancelled tasks (their node left) count for nothing.
 *
 * failures[image] lists {node: hostname, reason, message} sorted by node, bounded so that the object stays
 * small at any scale: at most IC_FAILURES_PER_IMAGE nodes per image, then one entry
 * {node: "+N more nodes", reason: IC_REASON_MORE_FAILURES, ...}; messages over IC_FAILURE_MESSAGE_MAX
 * bytes lose their middle (the runtime's reason is at the end); past IC_FAILURES_BUDGET bytes in all, further images get the summary entry only, and past twice
 * that one key "+N more images" ends the map. The full detail lives in Events (job mode) and in the
 * NodeImageCache objects (agent mode).
 *
 * merge_from (may be NULL): the status of an earlier operation whose failures stay valid for the nodes
 * this one did not cover (a refresh of nodes that just joined): its entries for other nodes are kept and
 * count for the status and message. Returns a new object. */
#define IC_FAILURES_PER_IMAGE 10
#define IC_FAILURE_MESSAGE_MAX 512
#define IC_FAILURES_BUDGET (96 * 1024)
#define IC_REASON_MORE_FAILURES "MoreFailures"
json_t *ic_status_final(enum ic_op_type op, const struct ic_taskset *ts, json_t *merge_from, time_t start,
			time_t now);
/* Images whose failures were cut from the status, with every failed node of each (for an Event):
 * a new array of {image, nodes: "n1 (reason: message), n2 (...)"} strings cut at 4 KiB; NULL when none. */
json_t *ic_status_cut_failures(const struct ic_taskset *ts);

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
/* appliedSpec after an operation: the spec it applied (none for a purge) plus, for each image whose delete
 * did not succeed, a list with that image and the nodeSelector it had in applied_before (borrowed JSON
 * cacheSpec arrays; applied_before may be NULL). Returns a new {cacheSpec: [...]} object. */
json_t *ic_applied_outcome(enum ic_op_type op, json_t *spec_lists, json_t *applied_before,
			   const struct ic_taskset *ts);

/* Sets status.progress = {total, done, failed} from tasks (cancelled ones not counted). */
void ic_status_set_progress(json_t *status, const struct ic_taskset *ts);

/* The generation the status was computed for (Ready condition's observedGeneration), or -1 if unknown
 * (no conditions: an object last written by upstream kube-fledged). */
long long ic_status_observed_generation(json_t *status);

#endif
