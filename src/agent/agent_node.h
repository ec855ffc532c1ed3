/* agent_node.h - one node's images: what its NodeImageCache spec asks for, what the runtime holds, what
 * the status says, and the decisions in between (docs/agent.md, "The agent").
 *
 * A node is a sorted table of entries, one per normalised image reference (spec entries that normalise
 * alike are one entry; Pull wins over Delete). The agent's sync of a node is, level-triggered:
 *   agent_node_set_spec     the spec from the NodeImageCache (and, once, the status: restart safety)
 *   agent_node_observe      at most every poll interval: ListImages, which entries are present
 *                           (an entry Present before and gone now is a self-heal)
 *   agent_node_plan         which pulls to start (jobs for the scheduler) and deletes to run; when to
 *                           look again
 *   agent_node_pull_done    a pull's result (from a pool thread)
 *   agent_node_delete       the guarded removal of one reference (runtime calls, on the sync thread)
 *   agent_node_status       the status object, and a hash of it to skip writes that change nothing
 * Runtime calls are made without the node's lock; everything else holds it. */
#ifndef AGENT_NODE_H
#define AGENT_NODE_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "agent_classify.h"
#include "agent_runtime.h"
#include "agent_sched.h"
#include "util/strbuf.h"

enum agent_state { AGENT_ABSENT = 0, AGENT_PRESENT, AGENT_PULLING, AGENT_FAILED, AGENT_DELETING };
const char *agent_state_name(enum agent_state s); /* "Absent", "Present", ... */

enum agent_action { AGENT_PULL = 0, AGENT_DELETE };

/* Status reasons beyond the pull errors of agent_classify.h. */
#define AGENT_REASON_DISK "ImageFsThresholdExceeded"
#define AGENT_REASON_IN_USE "ImageInUse"
#define AGENT_REASON_PINNED "ImagePinned"
#define AGENT_REASON_DELETE_ERROR "Error" /* job mode's delete Job: the terminated container's reason */

struct agent_secret_ref {
	char *ns, *name;
};

/* One image of the node. Strings owned by the entry. */
struct agent_entry {
	const char *key;    /* normalised reference: the table's sort key (a shared copy, util/intern.h) */
	char *image;        /* as the spec writes it (NULL = same as key) */
	/* spec */
	int in_spec;
	enum agent_action action;
	int64_t pull_gen;
	uint64_t size_hint;
	int owners;
	struct agent_secret_ref *secrets;
	size_t n_secrets;
	uint64_t spec_sig;  /* hash of action, pullGeneration and secrets: a Failed entry is tried again when
			     * it changes */
	int invalid;        /* the reference does not parse (state Failed, InvalidImageName) */
	/* what the runtime holds */
	int present;
	const char *image_id, *digest; /* shared copies (util/intern.h) */
	uint64_t size;
	int pinned;
	/* status */
	enum agent_state state;
	int64_t observed_gen; /* generation of the last finished attempt (success or final failure) */
	int64_t pulled_gen;   /* generation of the last successful pull (or of the present image) */
	time_t last_pull, last_transition;
	char *reason, *cause, *message;
	int attempts;
	/* work */
	int busy;             /* a pull or delete is queued or running */
	int64_t first_try_ms; /* start of the attempts at this generation (the deadline counts from here) */
	int64_t retry_at_ms;  /* transient failure: not before */
	uint64_t failed_sig;  /* spec_sig when it failed for good */
	uint64_t epoch;       /* the node's epoch when a pull or delete last changed it */
	int self_heal;        /* was Present, vanished: the next pull is a self-heal */
};

struct agent_node_config {
	int64_t pull_deadline_ms;    /* --image-pull-deadline-duration */
	int64_t poll_ms;             /* --poll-interval */
	int64_t status_interval_ms;  /* --status-interval */
	int fs_threshold_percent;    /* --image-fs-threshold; 0 = no check */
	int64_t backoff_base_ms;     /* first retry delay (1 s), doubling */
	int64_t backoff_max_ms;      /* cap (60 s) */
};

/* The image filesystem at the last check before a pull. */
struct agent_fs_state {
	int known;                   /* capacity known */
	uint64_t used, capacity, image_bytes;
	char *mountpoint;
	int warned;                  /* "capacity unknown" said once */
};

struct agent_node {
	char *name;
	struct agent_runtime *rt;    /* owned */
	pthread_mutex_t mu;
	struct agent_entry **e;      /* sorted by key */
	size_t n, cap;
	int have_nic;                /* the NodeImageCache exists */
	int64_t generation;          /* metadata.generation of the spec acted on */
	int seeded;                  /* status of a previous run read */
	int64_t next_poll_ms;        /* monotonic; 0 = observe now */
	int spec_changed;            /* observe at the next sync */
	/* status writes */
	uint64_t written_hash;
	int have_written;
	int64_t last_write_ms;
	int64_t write_after_ms;      /* a coalesced write is due at this time (0 = none) */
	struct agent_fs_state fs;
	struct agent_sched_node sched;
	uint64_t seq;                /* bumped by every change the status could show */
	uint64_t epoch;              /* bumped by every pull or delete result: an image list taken before
				      * does not override what they found */
	uint64_t rendered_seq;       /* seq of the last status computed */
	/* counters (under mu) */
	uint64_t pulls, self_heals, status_writes, disk_refusals;
};

struct agent_node *agent_node_new(const char *name, struct agent_runtime *rt);
void agent_node_free(struct agent_node *n);

/* Replaces the spec with nic's (borrowed NodeImageCache object; NULL = the object is gone: no image
 * is wanted). With with_status (nic as the API server has it, or NULL when it has none), the first time,
 * its status seeds the entries, so that a restarted agent does not pull again what it already pulled
 * (observedPullGeneration) nor retry what failed for good. Returns 1 when the spec changed. Takes the
 * lock. */
int agent_node_set_spec(struct agent_node *n, json_t *nic, int with_status);

/* Events of an observation, for metrics. */
struct agent_observe_events {
	size_t self_heals; /* entries Present before and absent now */
};

/* Lists the runtime's images when a poll is due (or the spec changed) and marks entries present or not.
 * Returns 1 when it listed, 0 when not due, -1 on a runtime error (err set; entries left as they are). */
int agent_node_observe(struct agent_node *n, const struct agent_node_config *cfg, int64_t now_ms,
		       struct agent_observe_events *ev, struct strbuf *err);

/* A pull to start: everything the job needs, copied (owned by the job, freed by agent_pull_job_free). */
struct agent_pull_job {
	struct agent_job base;     /* scheduler part: base.sn = &node->sched, base.registry */
	struct agent_node *node;
	char *key, *image;
	int64_t gen;
	uint64_t size_hint;
	struct agent_secret_ref *secrets;
	size_t n_secrets;
	int self_heal;
	int64_t deadline_ms;       /* monotonic: the call must end by then */
};
void agent_pull_job_free(struct agent_pull_job *j);

struct agent_plan {
	struct agent_pull_job **pulls;
	size_t n_pulls;
	char **deletes;            /* keys of Delete entries to run */
	size_t n_deletes;
	int64_t wake_ms;           /* monotonic: look again then (poll, retry); 0 = no need */
};
void agent_plan_clear(struct agent_plan *p);

/* Decides under the lock; entries given a job or a delete are marked busy. */
void agent_node_plan(struct agent_node *n, const struct agent_node_config *cfg, int64_t now_ms,
		     struct agent_plan *out);

/* The outcome of one pull attempt. */
struct agent_pull_result {
	int ok;
	/* ok */
	char *image_id, *digest;
	uint64_t size;
	int pinned;
	/* failed */
	int code;                  /* cri_code */
	char *message;             /* the runtime's words */
	int disk_refused;          /* refused before pulling: ImageFsThresholdExceeded */
	int64_t duration_ms;
	/* the image filesystem as checked before the pull */
	int fs_checked;            /* a check ran (the threshold is on) */
	int fs_known;              /* its capacity could be read */
	uint64_t fs_used, fs_capacity, fs_image_bytes;
	char *fs_mountpoint;
};
void agent_pull_result_clear(struct agent_pull_result *r);

/* Records the result of j (not freed here). Returns the classification used (for metrics) in cls when
 * the pull failed. *final is set to 1 when the entry reached Present or Failed (not a retry). */
void agent_node_pull_done(struct agent_node *n, const struct agent_node_config *cfg, const struct agent_pull_job *j,
			  const struct agent_pull_result *r, int64_t now_ms, struct agent_pull_error *cls, int *final);

/* Runs the guarded removal of entry key: exactly that reference, only when it is still a Delete entry,
 * no container uses the image, and the runtime does not pin it. Runtime calls without the lock.
 * *outcome: "removed", "kept" or "failed" (static), for metrics. */
void agent_node_delete(struct agent_node *n, const struct agent_node_config *cfg, const char *key,
		       const char **outcome);

/* The status object (new reference) for the node's entries, with counts, the agent block (runtime from
 * rt, version) and imageFs; *hash gets a hash of everything but lastHeartbeatTime. Under the same lock,
 * so that they describe the same moment: *seq (if not NULL) the node's change counter it shows, *busy
 * (if not NULL) whether it shows pulls queued or running. now is wall time. */
json_t *agent_node_status(struct agent_node *n, const struct agent_node_config *cfg, time_t now, uint64_t *hash,
			  uint64_t *seq, int *busy);

/* Counts over the entries: desired (Pull entries), present (Pull entries Present), pulling, failed. */
void agent_node_counts(struct agent_node *n, size_t *desired, size_t *present, size_t *pulling, size_t *failed);

/* 1 while the node has pulls queued, running or waiting for a retry (status writes are then coalesced). */
int agent_node_busy(struct agent_node *n);

/* The repository digest ("sha256:...") img holds for the repository of the reference key (key's own
 * digest when it is a digest reference), or NULL. Borrowed from key or img. */
const char *agent_repo_digest(const char *key, const struct cri_image *img);

/* The registry of a reference ("docker.io", "10.240.4.1:5000"), malloc'd; "" when it does not parse. */
char *agent_registry_of(const char *ref);

/* FNV-1a 64 over bytes, continuing from h (start with AGENT_HASH_INIT). */
#define AGENT_HASH_INIT 1469598103934665603ull
uint64_t agent_hash(uint64_t h, const void *data, size_t len);

#endif
