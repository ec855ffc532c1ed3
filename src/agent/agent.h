/* agent.h - the node agent's engine: one process, one or many nodes (`kubefledged agent` runs one, the
 * simulator `kubefledged agent-sim` thousands), each with its own runtime, all sharing one work queue,
 * one pool of pull workers (agent_sched.h) and one metrics registry.
 *
 * The sample-controller shape: something tells the agent that a node's NodeImageCache changed
 * (agent_notify, from an informer), a worker takes the node's key from the rate-limited work queue and
 * syncs it:
 *   spec (agent_api.get_nic) -> runtime presence when a poll is due -> plan: pulls to the scheduler,
 *   deletes run here -> status: written (agent_api.patch_status) when it changed, coalesced while pulls
 *   run -> requeued for the next poll, retry or coalesced write.
 * A pull's completion requeues its node. Nothing here speaks HTTP: the Kubernetes side is the agent_api
 * given by the caller (agent_kube.h for the real one; unit tests give in-memory ones). */
#ifndef AGENT_H
#define AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_node.h"
#include "agent_pull.h"
#include "util/metrics.h"

struct agent_api {
	/* The node's NodeImageCache (new reference), or NULL when there is none. fresh = 1 until a node's
	 * status has been read once: read from the API server with its status (a cache may keep only the
	 * spec), so that a restarted agent resumes from what it reported; *ok = 0 when that read failed (the
	 * answer then comes from the cache, and the next sync asks again). */
	json_t *(*get_nic)(void *ud, const char *node, int fresh, int *ok);
	/* Writes status (borrowed) into the node's NodeImageCache status. 0, or -1 with err. */
	int (*patch_status)(void *ud, const char *node, json_t *status, struct strbuf *err);
	agent_secret_fn get_secret;
	void *ud;
};

struct agent_opts {
	struct agent_node_config node;
	int max_parallel_pulls;          /* per node */
	int max_parallel_pulls_per_registry;
	int pull_workers;                /* threads of the pull pool (0 = max_parallel_pulls; agent-sim sets more) */
	int sync_workers;                /* threads syncing nodes (0 = 1) */
	const char *host_root;
	struct agent_api api;
	struct metrics *metrics;         /* borrowed; the agent registers its families in it */
};

struct agent;

struct agent *agent_new(const struct agent_opts *o);
/* Adds a node before agent_start; takes ownership of rt. */
void agent_add_node(struct agent *a, const char *name, struct agent_runtime *rt);
/* The node named name (borrowed), or NULL. */
struct agent_node *agent_find_node(struct agent *a, const char *name);
/* Starts the workers and queues every node once. 0 or -1. */
int agent_start(struct agent *a);
/* Queues node name for a sync now (e.g. its NodeImageCache changed). Unknown names are ignored. */
void agent_notify(struct agent *a, const char *name);
/* Stops syncing; waits up to grace_ms for running pulls (an interrupted pull is resumed by the next
 * run from the NodeImageCache). */
void agent_stop(struct agent *a, int64_t grace_ms);
void agent_free(struct agent *a);

/* Syncs node name once, on the caller's thread, without the queue (tests and the first sync). */
void agent_sync_node(struct agent *a, const char *name);
/* 1 when no pull is waiting or running and no node has an unwritten change or a pull to retry (tests:
 * "settled"). */
int agent_idle(struct agent *a);

struct agent_stats {
	uint64_t syncs, pulls, pull_failures, self_heals, disk_refusals, deletes, status_writes,
		status_write_errors;
};
void agent_stats(struct agent *a, struct agent_stats *out);

#endif
