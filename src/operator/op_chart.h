/* op_chart.h - the Helm chart the operator renders, as built into the binary.
 *
 * cmake/embed.cmake copies charts/kube-fledged/Chart.yaml, values.yaml and every crds/ file into the binary at
 * build time, so the operator's defaults and CRDs are the chart's by construction; only the templates are
 * mirrored by hand (op_render*.c), and tests/unit/operator-parity.sh compares that mirror with `helm
 * template` over a set of value files. */
#ifndef OP_CHART_H
#define OP_CHART_H

#include <jansson.h>

#include "util/strbuf.h"

/* The embedded files (generated op_chart_data.c): NUL-terminated texts; the list ends with {NULL, NULL}. */
struct embed_file {
	const char *name; /* base name, e.g. "kubefledged-crd.yaml" */
	const char *text;
};
extern const char op_chart_yaml[];
extern const char op_values_yaml[];
extern const struct embed_file op_chart_crds[];

struct op_chart {
	char *name;        /* Chart.yaml name: "kube-fledged" */
	char *version;     /* version: "0.1.0" */
	char *app_version; /* appVersion: "v0.1.0" */
	json_t *defaults;  /* values.yaml, an object */
	json_t *crds;      /* the CRDs of crds/, an array of objects (sorted by file name) */
};

/* Parses the embedded files. Returns a chart the caller frees with op_chart_free(), or NULL with err set
 * (only if the chart in the source tree is broken: the unit tests load it). */
struct op_chart *op_chart_load(struct strbuf *err);
void op_chart_free(struct op_chart *c);

#endif
