/* ic_tracker.h - what a Job and its Pod say about a task: succeeded, failed (and why), or still running;
 * and what to report when a running task reaches its deadline. Pure functions over API objects.
 *
 * Failure reasons and messages follow upstream, so existing dashboards keep reading them:
 *   pod failed, one app container terminated      -> its terminated reason / message (the delete helper
 *                                                     writes its result to the termination log)
 *   pod failed, 0 or several app containers        -> ImagePullStatusUnknown / "Unable to get the status..."
 *   deadline, pod waiting (ErrImagePull, ImagePullBackOff, ContainerCreating, ...)
 *                                                  -> waiting reason / waiting message, then for pulls
 *                                                     ":" + the message of each pod Event with reason Failed
 *   deadline, pod Pending without container status -> Pending / "Check if node is ready"
 *   deadline, no pod                               -> "No pods matched job <job>" as reason and message
 * Better than upstream: a pod already terminal when first seen counts (upstream only saw transitions), and
 * a waiting reason that never resolves by itself (InvalidImageName, ErrImageNeverPull) fails at once
 * instead of at the deadline. */
#ifndef IC_TRACKER_H
#define IC_TRACKER_H

#include <jansson.h>

#include "ic_status.h"

/* State of a task whose Job is job (borrowed) and whose newest Pod is pod (borrowed, may be NULL). Returns
 * IC_TASK_RUNNING, IC_TASK_SUCCEEDED, IC_TASK_KEPT (a delete helper that kept the image a container uses
 * or the runtime pins: its termination message starts "kept ") or IC_TASK_FAILED; for the last two
 * *reason and *message are malloc'd. */
enum ic_task_state ic_job_result(json_t *job, json_t *pod, char **reason, char **message);

/* The kubelet's pull error for the pod's image container: its waiting message while the reason is
 * ErrImagePull, else NULL. Borrowed from pod. The pod soon moves on to ImagePullBackOff, whose message only
 * says "Back-off pulling image ..."; the controller keeps this one in t->pull_error for the deadline report,
 * so that the cause is known even when the kubelet's Events come late or not at all (the kubelet sends
 * them at 5 per second, and kube-fledged makes many pods at once). */
const char *ic_pull_error(json_t *pod);

/* Marks a running task failed at its deadline, with the reason and message described above. events is a
 * JSON array of core/v1 Events about the pod (borrowed; may be NULL), used for pull tasks only; for those,
 * t->pull_error is appended as ":" + error when neither the waiting message nor the Events hold it. */
void ic_task_expire(struct ic_task *t, json_t *pod, json_t *events);

#endif
