/* kube_leader.h - leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection:
 * acquire when the lease is free or expired (renewTime + leaseDurationSeconds in the past, judged by
 * when *we* last saw it change, so clock skew between replicas does not matter), renew every retry
 * period, give up leadership if a renewal has not succeeded within renew_deadline. Conflicting writes
 * (409) mean another replica won the race. On graceful release the holder is cleared so a successor
 * takes over at once instead of after the lease expires.
 *
 * Losing the lease (no renewal within renew_deadline, or a renewal that finds another holder) fences the
 * client first (kube_client_fence: every later POST/PUT/PATCH/DELETE on it fails without being sent),
 * then calls on_lost: from that instant the old leader cannot write, whatever its workers still do. */
#ifndef KUBE_LEADER_H
#define KUBE_LEADER_H

#include <stdint.h>

#include "kube_client.h"

struct kube_leader_opts {
	const char *ns;          /* lease namespace */
	const char *name;        /* lease name */
	const char *identity;    /* unique per replica, e.g. "<hostname>_<random>" */
	int64_t lease_ms;        /* default 15000 */
	int64_t renew_deadline_ms; /* default 10000 */
	int64_t retry_ms;        /* default 2000 */
	/* Called (on the elector's thread) when leadership is lost after having been acquired, after the
	 * client was fenced. The usual reaction is to exit so that the replica restarts as a follower (the
	 * fenced client cannot write any more). */
	void (*on_lost)(void *ud);
	void *ud;
};

struct kube_leader;

struct kube_leader *kube_leader_new(struct kube_client *c, const struct kube_leader_opts *opts);
/* Blocks until this replica holds the lease (returns 0) or *stop becomes nonzero (returns -1). Then a
 * thread keeps renewing until kube_leader_release(). */
int kube_leader_acquire(struct kube_leader *l, const volatile int *stop);
int kube_leader_is_leader(struct kube_leader *l);
/* Stops renewing and, if still the holder, clears holderIdentity. */
void kube_leader_release(struct kube_leader *l);
void kube_leader_free(struct kube_leader *l);

#endif
