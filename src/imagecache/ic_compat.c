/* ic_compat.c - is the installed ImageCache CRD upstream's? See ic_compat.h. */
#include "ic_compat.h"

#include <stdio.h>
#include <string.h>

#include "ic_types.h"
#include "util/util.h"

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
