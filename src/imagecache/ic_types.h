/* ic_types.h - the ImageCache resource (kubefledged.io/v1alpha2): its identity, annotation keys, and the
 * spec decoded from JSON into C. Shared by the controller and the admission webhook.
 *
 *   spec:
 *     cacheSpec:                 # ordered image lists
 *     - images: [string, ...]
 *       nodeSelector: {k: v}     # optional; absent or empty = every node
 *     imagePullSecrets: [{name: string}]
 *
 * ic_spec_parse() checks only the JSON shape (what the CRD's OpenAPI schema already guarantees when the
 * object came through the API server) and names the field on error; content rules (empty lists,
 * duplicates, reference syntax, ...) live in ic_validate.h. */
#ifndef IC_TYPES_H
#define IC_TYPES_H

#include <jansson.h>
#include <stddef.h>

#include "kube/kube_client.h"
#include "util/strbuf.h"

#define IC_GROUP "kubefledged.io"
#define IC_VERSION "v1alpha2"
#define IC_API_VERSION "kubefledged.io/v1alpha2"
#define IC_KIND "ImageCache"
#define IC_ANNOTATION_REFRESH "kubefledged.io/refresh-imagecache"
#define IC_ANNOTATION_PURGE "kubefledged.io/purge-imagecache"

extern const struct kube_resource IC_RESOURCE; /* imagecaches.kubefledged.io/v1alpha2, namespaced */

struct ic_selector_term {
	const char *key;   /* borrowed from the JSON the spec was parsed from */
	const char *value;
};

struct ic_list {
	const char **images;  /* borrowed strings; array owned by the spec */
	size_t n_images;
	struct ic_selector_term *selector; /* owned array of borrowed strings */
	size_t n_selector;
	int has_selector;     /* nodeSelector present (even if empty); upstream's webhook tells {} from absent */
};

struct ic_spec {
	json_t *json;         /* a reference to the spec object the strings borrow from */
	struct ic_list *lists;
	size_t n_lists;
	const char **pull_secrets; /* imagePullSecrets[].name, borrowed */
	size_t n_pull_secrets;
};

/* Decodes obj's "spec" (obj is an ImageCache; borrowed). On success fills *out (free with ic_spec_free;
 * the spec holds a reference to the JSON, so obj may be released first). On a shape error returns -1 and
 * appends e.g. `spec.cacheSpec[1].images[0]: must be a string, got number 3` to err. */
int ic_spec_parse(json_t *obj, struct ic_spec *out, struct strbuf *err);
void ic_spec_free(struct ic_spec *spec);

/* 1 when a node with these labels (a JSON object, borrowed; NULL = no labels) matches the list's selector:
 * every key present with an equal value. No selector, or an empty one, matches every node. */
int ic_list_matches_node(const struct ic_list *l, json_t *node_labels);

/* Deep equality of two nodeSelectors as upstream's webhook compares them (absent differs from {}). */
int ic_list_selector_equal(const struct ic_list *a, const struct ic_list *b);

#endif
