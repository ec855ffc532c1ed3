/* op_render.h - the kube-fledged Helm chart's templates, in C: the objects `helm template` renders from a
 * set of values, as JSON, without Helm.
 *
 * One function per template file of charts/kube-fledged/templates (op_render_controller.c,
 * op_render_webhook.c, op_render_agent.c, op_render_metrics.c), written to read like the template it
 * mirrors: the same conditions, the same defaults, and values printed into the manifest read back as YAML
 * would read them (a replica count given as the string "3" is the number 3). Where the chart would render something the API
 * server must refuse (a list where a map belongs, a name that is not text) or calls `fail`, rendering stops
 * with a message naming the value, and nothing is returned: the caller never applies half a release.
 *
 * The mirror is kept honest by tests/unit/operator-parity.sh, which renders a set of value files with both
 * `helm template` and `kubefledged operator render` and compares the objects. */
#ifndef OP_RENDER_H
#define OP_RENDER_H

#include <jansson.h>

#include "op_chart.h"
#include "util/strbuf.h"

struct op_release {
	const char *name;      /* .Release.Name: the KubeFledged's name */
	const char *ns;        /* .Release.Namespace: the KubeFledged's namespace */
	const char *service;   /* .Release.Service: "Helm" under helm; the operator says "kubefledged-operator" */
};

/* values: the merged values (op_values_merge), borrowed. Returns a new array of the rendered objects in
 * apply order (Helm's install order by kind; the ValidatingWebhookConfiguration last), the chart's CRDs
 * first when include_crds; or NULL with err set to "<value path>: <what is wrong>". */
json_t *op_render(const struct op_chart *chart, const struct op_release *rel, json_t *values, int include_crds,
		  struct strbuf *err);

/* Position of a kind in the apply order (lower first); unknown kinds sort after the known ones. */
int op_kind_rank(const char *kind);

#endif
