/* ic_compat.c - upstream's CRD: spec digest as generation, pruned status fields in an annotation; see
 * ic_compat.h. */
#include "ic_compat.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "ic_types.h"
#include "util/log.h"
#include "util/util.h"

static const char *const EXTRAS[] = { "conditions", "appliedSpec", "progress" };

int ic_compat_has_status_subresource(struct kube_client *c, struct kube_err *err)
{
	json_t *d = kube_get(c, "/apis/" IC_GROUP "/" IC_VERSION, err);
	if (!d)
		return -1;
	int has_resource = 0, has_status = 0;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(d, "resources"), i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		if (name && !strcmp(name, IC_RESOURCE.plural))
			has_resource = 1;
		if (name && !strcmp(name, "imagecaches/status"))
			has_status = 1;
	}
	json_decref(d);
	if (!has_resource) {
		err->code = 404;
		snprintf(err->msg, sizeof err->msg, "API discovery of %s/%s lists no %s", IC_GROUP, IC_VERSION,
			 IC_RESOURCE.plural);
		return -1;
	}
	return has_status;
}

long long ic_spec_generation(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	char *text = spec ? json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)(text ? text : ""), text ? strlen(text) : 0, md);
	free(text);
	long long g = 0;
	for (int i = 0; i < 6; i++)
		g = (g << 8) | md[i];
	return g + 1; /* never 0 */
}

long long ic_generation(int compat, json_t *obj)
{
	if (compat)
		return ic_spec_generation(obj);
	return json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
}

int ic_compat_has_stash(json_t *obj)
{
	return kf_jget(obj, "metadata", "annotations", IC_ANNOTATION_STATUS, NULL) != NULL;
}

json_t *ic_compat_view(int compat, json_t *obj)
{
	const char *text = kf_jstr(obj, "metadata", "annotations", IC_ANNOTATION_STATUS, NULL);
	json_t *status = json_object_get(obj, "status");
	if (!text || !json_is_object(status))
		return obj;
	if (!compat && json_array_size(json_object_get(status, "conditions")))
		return obj; /* the subresource holds them again: the annotation is a leftover */
	json_t *stash = json_loads(text, 0, NULL);
	if (!json_is_object(stash)) {
		LOG_WARN("ImageCache %s/%s: ignoring annotation %s, which is not a JSON object",
			 kf_jstr(obj, "metadata", "namespace", NULL), kf_jstr(obj, "metadata", "name", NULL),
			 IC_ANNOTATION_STATUS);
		json_decref(stash);
		return obj;
	}
	json_t *view = json_deep_copy(obj);
	json_decref(obj);
	status = json_object_get(view, "status");
	for (size_t i = 0; i < ARRAY_SIZE(EXTRAS); i++) {
		json_t *v = json_object_get(stash, EXTRAS[i]);
		if (v && !json_object_get(status, EXTRAS[i]))
			json_object_set(status, EXTRAS[i], v);
	}
	if (!compat) {
		/* observedGeneration there is a spec digest: the current spec's, or an edit not applied yet */
		long long gen = json_integer_value(kf_jget(view, "metadata", "generation", NULL));
		long long spec_gen = ic_spec_generation(view);
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(status, "conditions"), i, c) {
			json_t *og = json_object_get(c, "observedGeneration");
			if (json_is_integer(og))
				json_object_set_new(c, "observedGeneration",
						    json_integer(json_integer_value(og) == spec_gen ? gen : gen - 1));
		}
	}
	json_decref(stash);
	return view;
}

char *ic_compat_stash(json_t *status, const char *key)
{
	json_t *stash = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(EXTRAS); i++) {
		json_t *v = json_object_get(status, EXTRAS[i]);
		if (v)
			json_object_set(stash, EXTRAS[i], v);
		json_object_del(status, EXTRAS[i]);
	}
	char *text = json_dumps(stash, JSON_COMPACT | JSON_SORT_KEYS);
	if (strlen(text) > IC_STASH_MAX_BYTES) {
		LOG_WARN("ImageCache %s: status.appliedSpec is too big for annotation %s (%zu bytes): left out, so "
			 "an edit that removes images will not delete them from the nodes until the CRD from deploy/ "
			 "is installed",
			 key, IC_ANNOTATION_STATUS, strlen(text));
		json_object_del(stash, "appliedSpec");
		free(text);
		text = json_dumps(stash, JSON_COMPACT | JSON_SORT_KEYS);
	}
	json_decref(stash);
	return text;
}
