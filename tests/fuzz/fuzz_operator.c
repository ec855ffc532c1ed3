/* fuzz_operator.c - libFuzzer target: a KubeFledged's spec through the operator's value merge and renderer
 * (what `kubefledged operator` does with every KubeFledged, and `operator render` with a values file).
 * The input is a JSON object, the spec; its first byte also picks a release name among a few, valid and
 * not, and whether the CRDs come too. Invariants: either a list of objects comes back, each with
 * apiVersion, kind and metadata.name, and no error; or no list and an error message; the same input
 * renders the same twice. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "operator/op_chart.h"
#include "operator/op_render.h"
#include "operator/op_values.h"
#include "util/strbuf.h"
#include "util/util.h"

static struct op_chart *chart;

static const char *const names[] = { "kube-fledged", "kf", "my-kube-fledged-prod", "a.b-c", "-bad", "",
				     "a-release-name-of-fifty-three-characters-the-most-okk" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!chart) {
		struct strbuf err = STRBUF_INIT;
		if (!(chart = op_chart_load(&err)))
			abort();
		sb_release(&err);
	}
	if (size < 1)
		return 0;
	json_t *spec = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (!spec)
		return 0;
	const char *name = names[data[0] % ARRAY_SIZE(names)];
	int crds = data[0] & 0x80;
	json_t *values = op_values_merge(chart->defaults, spec);
	struct op_release rel = { name, "kube-fledged", "kubefledged-operator" };
	struct strbuf err = STRBUF_INIT, err2 = STRBUF_INIT;
	json_t *a = op_render(chart, &rel, values, crds, &err);
	json_t *b = op_render(chart, &rel, values, crds, &err2);
	if (!a != !b || (a && !json_equal(a, b)) || strcmp(err.buf, err2.buf))
		abort(); /* not deterministic */
	if (!a && !err.len)
		abort(); /* refused without a word */
	if (a) {
		if (err.len || !json_is_array(a))
			abort();
		size_t i;
		json_t *o;
		json_array_foreach(a, i, o)
			if (!kf_jstr(o, "apiVersion", NULL) || !kf_jstr(o, "kind", NULL) ||
			    !kf_jget(o, "metadata", "name", NULL))
				abort();
	}
	json_decref(a);
	json_decref(b);
	json_decref(values);
	json_decref(spec);
	sb_release(&err);
	sb_release(&err2);
	return 0;
}
