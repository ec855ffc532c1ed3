/* ic_controller.h - the ImageCache controller (sample-controller shape): informers on ImageCaches, Nodes,
 * and kube-fledged's Jobs and Pods feed one rate-limited work queue of cache keys ("namespace/name");
 * workers run ic_sync(key), which compares what the cache asks for with what was applied and what the
 * Jobs report, acts, and writes status. Level-triggered: a sync never depends on which event woke it, so
 * an edit made while an operation runs, or while the controller was down, is applied afterwards, never lost.
 *
 * Operations keep upstream's meaning and status words: create, update (spec edit), refresh (periodic, on
 * the refresh annotation, and now also for a node that joins or starts matching a list), purge (annotation).
 * One operation at a time per cache; a trigger that arrives meanwhile runs next (purge first). */
#ifndef IC_CONTROLLER_H
#define IC_CONTROLLER_H

#include <stdint.h>

#include "ic_jobs.h"
#include "kube/kube_client.h"
#include "util/strbuf.h"

enum ic_mode {
	IC_MODE_JOBS = 0, /* a Job per node x image (upstream's design) */
	IC_MODE_AGENT,    /* the node agents, through NodeImageCache objects (docs/agent.md) */
};

struct ic_controller_opts {
	enum ic_mode mode;            /* --mode */
	struct ic_job_opts job;       /* Job rendering; job.image_pull_policy is --image-pull-policy */
	const char *cri_socket;       /* --cri-socket-path ("" = detect per node) */
	int64_t pull_deadline_ms;     /* --image-pull-deadline-duration: per Job, from its creation */
	int64_t refresh_ms;           /* --image-cache-refresh-frequency; 0 = no periodic refresh */
	int retain_jobs;              /* --job-retention-policy=retain */
	int jobs_max_surge;           /* --jobs-max-surge: most Jobs in flight; 0 = derived from the node count */
	int workers;                  /* --workers: caches synced in parallel */
	int64_t progress_interval_ms; /* shortest interval between progress writes while Processing */
	int64_t agent_grace_ms;       /* agent mode: a task is given up at pull deadline + this (agents retry
				       * transient errors until the deadline themselves) */
	const char *agent_service_account; /* agent mode: "namespace/name" of the agents' service account,
					    * bound to read the pull secrets ImageCaches name; "" = no bindings */
};

struct ic_controller;

/* c is borrowed and must outlive the controller. */
struct ic_controller *ic_controller_new(struct kube_client *c, const struct ic_controller_opts *o);
/* Starts informers, waits for their caches (up to 60 s each), runs workers and the refresh ticker until
 * *stop becomes nonzero, then stops and joins everything. Returns 0, or -1 when the caches never synced
 * (message logged). */
int ic_controller_run(struct ic_controller *ctl, const volatile int *stop);
void ic_controller_free(struct ic_controller *ctl);

/* Counters for logs, metrics and benchmarks. */
struct ic_controller_stats {
	uint64_t syncs, operations, jobs_created, jobs_deleted, status_writes;
};
void ic_controller_stats(struct ic_controller *ctl, struct ic_controller_stats *out);

#endif
