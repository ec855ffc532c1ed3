/* op_controller_int.h - the operator's state, shared by its loop (op_controller.c) and its sync
 * (op_sync.c). */
#ifndef OP_CONTROLLER_INT_H
#define OP_CONTROLLER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "kube/kube_events.h"
#include "kube/kube_informer.h"
#include "kube/kube_workqueue.h"
#include "op_controller.h"
#include "util/map.h"

/* What a KubeFledged had applied last: the hash of its rendered objects, and when (0: stale, the next sync
 * applies in full; the periodic reconcile sets every memo stale). */
struct op_memo {
	char hash[65];
	int64_t at_ms;
};

struct op_controller {
	struct kube_client *c;
	const struct op_chart *chart;
	struct op_controller_opts o;
	struct kube_informer *inf;
	struct kube_workqueue *q;
	struct kube_recorder *rec;
	pthread_mutex_t mu;        /* guards memo and stats */
	struct map memo;           /* key -> struct op_memo * */
	struct op_controller_stats stats;
};

/* One KubeFledged, by key. Returns 0 (done; *requeue_ms > 0 asks to look again after that long) or -1
 * (failed: retried with backoff). */
int op_sync(struct op_controller *oc, const char *key, int64_t *requeue_ms);

#endif
