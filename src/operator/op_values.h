/* op_values.h - Helm values as the chart's templates see them: the merge of the chart's defaults with the
 * user's values (a KubeFledged's spec), and the few Go-template semantics the templates rely on (what is
 * true, how a value prints, how printed text reads back as YAML).
 *
 * Merge (Helm's coalesce, which helm-operator applies to a custom resource's spec): the user's value wins;
 * where both are maps they merge key by key, recursively; a user's null deletes the default (so `agent:
 * {tolerations: null}` removes the default toleration); lists are replaced, never merged. */
#ifndef OP_VALUES_H
#define OP_VALUES_H

#include <jansson.h>
#include <stddef.h>

#include "util/strbuf.h"

/* New reference; neither argument is modified. user may be NULL (defaults only). A user value that is
 * not a map where the default is one wins, as in Helm (which only warns). */
json_t *op_values_merge(json_t *defaults, json_t *user);

/* The value at a dotted path ("args.controllerLogLevel"), borrowed; NULL when a step is missing, is not a
 * map, or the value is null (Go templates see all of these as nil). */
json_t *op_value_at(json_t *values, const char *path);

/* Go template truth: false for nil, false, 0, 0.0, "", [] and {}; true otherwise ("false" is true). */
int op_truthy(const json_t *v);

/* How `{{ v }}` prints a scalar (Go's fmt %v): strings as they are, true/false, integers in decimal, reals
 * in Go's shortest %g form ("0.5", "1e+06"), nil as "" (Helm drops "<no value>"). Returns -1 for maps and
 * lists, which no template of the chart prints. out is appended to. */
int op_value_text(const json_t *v, struct strbuf *out);

/* Reads text back the way the rendered manifest is read: as the YAML plain scalar after "key: " ("3" is
 * the number 3, "true" a boolean, "" null, "a" a string). New reference, or NULL when the text is not one
 * plain scalar (a newline, "a: b", a leading "[" ...). */
json_t *op_yaml_scalar(const char *text);

#endif
