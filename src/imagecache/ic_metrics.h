/* ic_metrics.h - the ImageCache controller's Prometheus metrics (every one is described in docs/metrics.md):
 * the work queue (depth, adds, retries, queue latency, work in progress), sync durations, API requests by
 * verb and by code, operations by type and result with their durations, node x image tasks by result,
 * caches by status, and the work in flight (Jobs in job mode, pull tasks in agent mode).
 *
 * The controller keeps nothing of its own for them unless ic_controller_metrics() was called: every hook
 * below is a no-op then (unit tests and benchmarks run controllers without metrics). Counters the
 * controller already keeps (struct ic_controller_stats, the client's kube_client_stats, the queue's
 * kube_wq_stats) are read when /metrics is scraped, never copied on the hot path. */
#ifndef IC_METRICS_H
#define IC_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "util/metrics.h"
#include "util/strbuf.h"

struct ic_controller;
struct ic_op;

/* Registers the controller's metrics in reg (borrowed: it must outlive the controller, and the scrapes
 * must end before ic_controller_free). Call once, before ic_controller_run. */
void ic_controller_metrics(struct ic_controller *ctl, struct metrics *reg);
/* For /readyz: 1 once every informer of the controller has listed its objects, else 0 with the reason in
 * why. Cheap (reads flags). */
int ic_controller_ready(struct ic_controller *ctl, struct strbuf *why);

/* The label a cache counts under in kubefledged_controller_imagecaches: its status.status (as the
 * controller reads it, annotation fallback included: ic_status_view), "Pending" when it has none yet,
 * "Other" for a word that is not one of the controller's. Borrowed static string. */
const char *ic_metrics_cache_status(json_t *cache);

/* ---- hooks for the controller's own files (ic_controller.c, ic_op.c) ---- */

/* A worker finished one key: queued_ms from kube_wq_get_timed, took_ms the sync's duration, rc its result. */
void ic_metrics_sync(struct ic_controller *ctl, const char *key, int64_t queued_ms, int64_t took_ms, int rc);
/* An operation started (its Processing status was written). */
void ic_metrics_op_started(struct ic_controller *ctl, const struct ic_op *op);
/* The operation moved on: its running pull tasks are counted again (agent mode's pulls in flight). */
void ic_metrics_op_progress(struct ic_controller *ctl, const struct ic_op *op);
/* The operation finished with status.status `status`; its tasks are counted by action and result. */
void ic_metrics_op_finished(struct ic_controller *ctl, const struct ic_op *op, const char *status);
/* The operation is freed: forgotten; one that never finished (its cache was deleted) counts as Cancelled. */
void ic_metrics_op_freed(struct ic_controller *ctl, const struct ic_op *op);
/* Frees what ic_controller_metrics allocated (called by ic_controller_free). */
void ic_metrics_free(struct ic_controller *ctl);

#endif
