/* op_controller.c - the operator's loop: the KubeFledged informer, its work queue and the workers that run
 * op_sync() (op_controller.h). */
#include <stdlib.h>
#include <string.h>

#include "op_apply.h"
#include "op_controller_int.h"
#include "util/log.h"
#include "util/util.h"

static void enqueue(struct op_controller *oc, json_t *obj)
{
	char key[512];
	if (*kube_object_key(obj, key, sizeof key))
		kube_wq_add(oc->q, key);
}

static void on_add(void *ud, json_t *obj) { enqueue(ud, obj); }
static void on_update(void *ud, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj;
	enqueue(ud, new_obj);
}
static void on_delete(void *ud, json_t *obj) { enqueue(ud, obj); }

struct op_controller *op_controller_new(struct kube_client *c, const struct op_chart *chart,
					const struct op_controller_opts *o)
{
	struct op_controller *oc = xcalloc(1, sizeof *oc);
	oc->c = c;
	oc->chart = chart;
	oc->o = *o;
	if (oc->o.workers < 1)
		oc->o.workers = 1;
	if (oc->o.poll_ms <= 0)
		oc->o.poll_ms = 3000;
	if (oc->o.resync_ms <= 0)
		oc->o.resync_ms = 60000;
	pthread_mutex_init(&oc->mu, NULL);
	oc->q = kube_wq_new("KubeFledgeds", 500, 60000);
	oc->rec = kube_recorder_new(c, OP_FIELD_MANAGER, NULL);
	struct kube_informer_opts io = { .res = &OP_KUBEFLEDGEDS, .ns = o->watch_ns };
	struct kube_informer_handlers h = { on_add, on_update, on_delete, oc };
	oc->inf = kube_informer_new(c, &io, &h);
	return oc;
}

static void *worker(void *arg)
{
	struct op_controller *oc = arg;
	char *key;
	while ((key = kube_wq_get(oc->q))) {
		int64_t requeue = 0;
		if (op_sync(oc, key, &requeue) < 0) {
			kube_wq_add_rate_limited(oc->q, key);
		} else {
			kube_wq_forget(oc->q, key);
			if (requeue > 0)
				kube_wq_add_after(oc->q, key, requeue);
		}
		kube_wq_done(oc->q, key);
		free(key);
	}
	return NULL;
}

/* The periodic full reconcile: every memo stale, every KubeFledged queued, so each is applied in full (which
 * repairs what was changed or deleted by hand) within resync_ms. */
static void reconcile_all(struct op_controller *oc)
{
	pthread_mutex_lock(&oc->mu);
	size_t it = 0;
	void *v;
	while (map_next(&oc->memo, &it, NULL, &v))
		((struct op_memo *)v)->at_ms = 0;
	pthread_mutex_unlock(&oc->mu);
	json_t *all = kube_informer_list(oc->inf), *obj;
	size_t i;
	json_array_foreach(all, i, obj)
		enqueue(oc, obj);
	LOG_V(1, "periodic reconcile: %zu KubeFledged objects", json_array_size(all));
	json_decref(all);
}

int op_controller_run(struct op_controller *oc, const volatile int *stop)
{
	int rc = -1, started = 0;
	pthread_t *workers = xcalloc((size_t)oc->o.workers, sizeof *workers);
	if (kube_informer_start(oc->inf) < 0) {
		LOG_ERROR("cannot start the KubeFledged informer");
		goto out;
	}
	while (kube_informer_wait_synced(oc->inf, 1000) < 0) {
		if (*stop)
			goto out;
		LOG_INFO("waiting for the KubeFledged cache to sync (is the CRD kubefledgeds.%s installed?)", OP_GROUP);
	}
	LOG_INFO("caches synced: %zu KubeFledged objects in %s; starting %d workers", kube_informer_len(oc->inf),
		 oc->o.watch_ns && *oc->o.watch_ns ? oc->o.watch_ns : "every namespace", oc->o.workers);
	for (; started < oc->o.workers; started++)
		if (pthread_create(&workers[started], NULL, worker, oc)) {
			LOG_ERROR("cannot start worker threads");
			goto out;
		}
	int64_t next = kf_now_ms() + oc->o.resync_ms;
	while (!*stop) {
		if (kf_now_ms() >= next) {
			reconcile_all(oc);
			next = kf_now_ms() + oc->o.resync_ms;
		}
		kf_sleep_ms(200);
	}
	rc = 0;
out:
	LOG_INFO("shutting down");
	kube_wq_shutdown(oc->q);
	for (int i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	kube_informer_stop(oc->inf);
	return rc;
}

void op_controller_stats(struct op_controller *oc, struct op_controller_stats *out)
{
	pthread_mutex_lock(&oc->mu);
	*out = oc->stats;
	pthread_mutex_unlock(&oc->mu);
}

void op_controller_free(struct op_controller *oc)
{
	if (!oc)
		return;
	kube_informer_free(oc->inf);
	kube_wq_free(oc->q);
	kube_recorder_free(oc->rec);
	map_free(&oc->memo, free);
	pthread_mutex_destroy(&oc->mu);
	free(oc);
}
