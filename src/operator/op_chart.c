/* op_chart.c - parses the chart files built into the binary (op_chart.h). */
#include <stdlib.h>
#include <string.h>

#include "kube/kube_yaml.h"
#include "op_chart.h"
#include "util/util.h"

static char *chart_field(json_t *meta, const char *key, struct strbuf *err)
{
	json_t *v = json_object_get(meta, key);
	if (!json_is_string(v) || !*json_string_value(v)) {
		sb_addf(err, "the built-in Chart.yaml has no %s", key);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

struct op_chart *op_chart_load(struct strbuf *err)
{
	struct op_chart *c = xcalloc(1, sizeof *c);
	json_t *meta = kube_yaml_load(op_chart_yaml, strlen(op_chart_yaml), err);
	if (!meta) {
		sb_addf(err, " (the built-in Chart.yaml)");
		goto fail;
	}
	if (!(c->name = chart_field(meta, "name", err)) || !(c->version = chart_field(meta, "version", err)) ||
	    !(c->app_version = chart_field(meta, "appVersion", err)))
		goto fail;
	c->defaults = kube_yaml_load(op_values_yaml, strlen(op_values_yaml), err);
	if (!c->defaults) {
		sb_addf(err, " (the built-in values.yaml)");
		goto fail;
	}
	if (!json_is_object(c->defaults)) {
		sb_addf(err, "the built-in values.yaml is not a map");
		goto fail;
	}
	c->crds = json_array();
	for (const struct embed_file *f = op_chart_crds; f->name; f++) {
		json_t *docs = kube_yaml_load_all(f->text, strlen(f->text), err);
		if (!docs) {
			sb_addf(err, " (the built-in crds/%s)", f->name);
			goto fail;
		}
		json_array_extend(c->crds, docs);
		json_decref(docs);
	}
	json_decref(meta);
	return c;
fail:
	json_decref(meta);
	op_chart_free(c);
	return NULL;
}

void op_chart_free(struct op_chart *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->version);
	free(c->app_version);
	json_decref(c->defaults);
	json_decref(c->crds);
	free(c);
}
