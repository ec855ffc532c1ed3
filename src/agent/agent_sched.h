/* agent_sched.h - the pull scheduler: a pool of worker threads shared by every node of the process (one
 * node for `kubefledged agent`, thousands for `agent-sim`), with two limits:
 *   per node       at most per_node pulls of one node run at once (--max-parallel-pulls)
 *   per registry   at most per_registry pulls of one node from one registry (--max-parallel-pulls-per-registry)
 * Each node keeps a FIFO of its waiting jobs; nodes with waiting jobs sit in a ring that the workers walk
 * round robin, so one node with 100 images does not starve another with 1. A job whose registry is at its
 * limit waits while later jobs of the same node to other registries go ahead. Picking a job costs
 * O(waiting jobs of one node), never a scan of every node's queue.
 *
 * Ownership: a submitted job belongs to the scheduler until it is handed to run(); run() owns it from then
 * on (frees it). The struct agent_sched_node lives inside the caller's node object. */
#ifndef AGENT_SCHED_H
#define AGENT_SCHED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct agent_job;

struct agent_sched_reg {
	char *registry;
	int running;
};

/* Scheduler state of one node; zero-initialised, owned by the node, guarded by the scheduler's lock. */
struct agent_sched_node {
	struct agent_job *head, *tail; /* waiting jobs, FIFO */
	size_t waiting;
	int running;
	struct agent_sched_reg *regs;
	size_t n_regs;
	struct agent_sched_node *ring_next, *ring_prev;
	int in_ring;
};

/* A job: the scheduler reads sn and registry; the rest is the caller's. */
struct agent_job {
	struct agent_sched_node *sn;
	char *registry;                /* owned by the job */
	struct agent_job *next;        /* scheduler's */
};

struct agent_sched_opts {
	int workers;      /* threads; >= 1 */
	int per_node;     /* >= 1 */
	int per_registry; /* >= 1 */
};

struct agent_sched;

/* run is called on a worker thread for every job, outside any scheduler lock; it owns the job. */
struct agent_sched *agent_sched_new(const struct agent_sched_opts *o, void (*run)(void *ud, struct agent_job *job),
				    void *ud);
int agent_sched_start(struct agent_sched *s); /* starts the workers; 0 or -1 */
void agent_sched_submit(struct agent_sched *s, struct agent_job *job);
/* Stops taking jobs; waits for running ones. Jobs still waiting are handed to drop (may be NULL: then
 * they are freed with free() after their registry). */
void agent_sched_stop(struct agent_sched *s, void (*drop)(void *ud, struct agent_job *job));
void agent_sched_free(struct agent_sched *s);
/* Frees what the scheduler allocated inside a node's state (after stop). */
void agent_sched_node_release(struct agent_sched_node *sn);

/* Jobs waiting and running right now (all nodes). */
void agent_sched_counts(struct agent_sched *s, size_t *waiting, size_t *running);

/* Without threads (tests): takes the next runnable job, or NULL; the caller runs it and then calls
 * agent_sched_finish(job) BEFORE freeing it. */
struct agent_job *agent_sched_take(struct agent_sched *s);
void agent_sched_finish(struct agent_sched *s, struct agent_job *job);

#endif
