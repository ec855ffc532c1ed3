/* op_controller.h - the operator: a small controller over KubeFledged objects (charts.helm.kubefledged.io/
 * v1alpha2, upstream's custom resource, whose spec is the chart's values), in the sample-controller shape:
 * an informer lists and watches KubeFledgeds, its handlers enqueue "namespace/name" keys, workers run
 * op_sync() on each key.
 *
 * op_sync(), level-triggered: the chart's defaults merged with the spec are rendered (op_render.h); the
 * objects are applied in the KubeFledged's namespace with server-side apply, objects a value change no
 * longer renders are deleted (op_apply.h), and the status says what happened (op_status.h). A finalizer
 * (charts.helm.kubefledged.io/uninstall) lets it delete everything it applied, cluster-scoped objects
 * included, when the KubeFledged is deleted; the CRDs stay, as with Helm.
 *
 * Work per sync: when the rendered objects are those it applied last (same hash) since the last full
 * reconcile, only the readiness of the workloads is read (2 or 3 GETs); otherwise one label-selected LIST per
 * kind (12) and one apply per object. While something is not ready, the key comes back every poll_ms (3 s);
 * and every resync_ms each KubeFledged is applied in full, which repairs anything changed or deleted by hand
 * within that period. */
#ifndef OP_CONTROLLER_H
#define OP_CONTROLLER_H

#include <stdint.h>

#include "kube/kube_client.h"
#include "op_chart.h"

struct op_controller_opts {
	const char *watch_ns;   /* NULL or "": every namespace */
	int workers;            /* >= 1 */
	int64_t resync_ms;      /* full reconcile period, > 0 */
	int64_t poll_ms;        /* how soon a KubeFledged that is not Ready is looked at again; 0 = 3000 */
};

struct op_controller_stats {
	uint64_t syncs, applies, deletes, status_writes, errors;
};

/* c and chart are borrowed and must outlive the controller. */
struct op_controller *op_controller_new(struct kube_client *c, const struct op_chart *chart,
					const struct op_controller_opts *o);
/* Runs until *stop: starts the informer, waits for its first list, starts the workers. 0 on a clean stop,
 * -1 when it could not start. */
int op_controller_run(struct op_controller *oc, const volatile int *stop);
void op_controller_stats(struct op_controller *oc, struct op_controller_stats *out);
void op_controller_free(struct op_controller *oc);

#endif
