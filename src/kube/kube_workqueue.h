/* kube_workqueue.h - a rate-limited work queue with client-go's semantics.
 *
 *  - A key is queued at most once (dedup). A key being processed is never handed to a second worker: if it
 *    is added meanwhile it is marked dirty and queued again when the worker calls kube_wq_done().
 *  - kube_wq_add_after(): delayed add (a timer thread moves it into the queue when due; an earlier
 *    deadline for the same key wins).
 *  - kube_wq_add_rate_limited(): delayed add with per-key exponential backoff
 *    base_delay * 2^(requeues), capped at max_delay; kube_wq_forget() resets the key's count (call it when
 *    a sync succeeds), so failed keys do not leak memory (an upstream defect).
 *  - kube_wq_get() blocks until a key is available or the queue shuts down (returns NULL).
 *
 * Keys are strings copied by the queue; kube_wq_get() returns a malloc'd copy that the caller passes to
 * kube_wq_done() and then frees.
 *
 * Measurements (for metrics, as client-go's workqueue metrics): kube_wq_get_timed() also says how long the
 * key waited in the queue, from the add that queued it (a delayed add: from its due time; a key added while
 * being processed: from that add) to the get; kube_wq_stats() gives counts and what is being processed. */
#ifndef KUBE_WORKQUEUE_H
#define KUBE_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

struct kube_workqueue;

struct kube_workqueue *kube_wq_new(const char *name, int64_t base_delay_ms, int64_t max_delay_ms);
void kube_wq_add(struct kube_workqueue *q, const char *key);
void kube_wq_add_after(struct kube_workqueue *q, const char *key, int64_t delay_ms);
void kube_wq_add_rate_limited(struct kube_workqueue *q, const char *key);
void kube_wq_forget(struct kube_workqueue *q, const char *key);
int kube_wq_num_requeues(struct kube_workqueue *q, const char *key);
char *kube_wq_get(struct kube_workqueue *q);
void kube_wq_done(struct kube_workqueue *q, const char *key);
size_t kube_wq_len(struct kube_workqueue *q);          /* queued now (not delayed, not processing) */
/* As kube_wq_get; *queued_ms (may be NULL) = how long the key waited in the queue (see above). */
char *kube_wq_get_timed(struct kube_workqueue *q, int64_t *queued_ms);

struct kube_wq_stats {
	uint64_t adds;        /* keys queued since creation: an add of a key already queued does not count, a
			       * delayed add counts when it comes due, a key added while processing counts once */
	uint64_t retries;     /* kube_wq_add_rate_limited() calls */
	size_t depth;         /* queued now (kube_wq_len) */
	size_t delayed;       /* waiting for their delay */
	size_t processing;    /* handed out by get, not yet done */
	int64_t longest_processing_ms; /* how long the oldest key now processing has been (0: none) */
	int64_t unfinished_ms;         /* the sum of that over every key now processing */
};
void kube_wq_stats(struct kube_workqueue *q, struct kube_wq_stats *out);
/* Wakes every blocked kube_wq_get() (they return NULL); further adds are ignored. */
void kube_wq_shutdown(struct kube_workqueue *q);
int kube_wq_shutting_down(struct kube_workqueue *q);
void kube_wq_free(struct kube_workqueue *q);            /* after shutdown and after workers exited */

#endif
