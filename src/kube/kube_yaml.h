/* kube_yaml.h - YAML (1.1 as Kubernetes uses it) to jansson, via libyaml.
 *
 * Plain scalars become JSON true/false/null/integers/reals when they look like one (true, false, null, ~,
 * 42, 0x1f, 1.5); quoted scalars are always strings. Anchors and aliases are resolved. A multi-document
 * stream ("---") gives one JSON value per document. */
#ifndef KUBE_YAML_H
#define KUBE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "util/strbuf.h"

/* First document only. Returns a new reference, or NULL with err set ("line 3 column 5: ..."). */
json_t *kube_yaml_load(const char *text, size_t len, struct strbuf *err);
/* All documents, as a JSON array (empty documents skipped). New reference, or NULL with err set. */
json_t *kube_yaml_load_all(const char *text, size_t len, struct strbuf *err);

#endif
