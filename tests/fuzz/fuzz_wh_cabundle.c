/* fuzz_wh_cabundle.c - libFuzzer target: the caBundle patch (wh_cabundle.c) given a hostile
 * ValidatingWebhookConfiguration: the webhook reads its configuration back from the API server and patches
 * it; whoever can edit that object can put anything in it.
 * Input: the configuration's JSON. Oracle: the patch only touches webhooks[i] of the object with i in
 * range, "test"s names with their current value, adds exactly n_stale caBundles, only with the two shapes
 * it means to (a caBundle string into an object clientConfig, or a whole clientConfig object); applied by a
 * small JSON Patch applier for those shapes, it leaves nothing to patch when every webhook is an object. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/wh_cabundle.h"

static const char CA[] = "-----BEGIN CERTIFICATE-----\nMIIBfuzz\n-----END CERTIFICATE-----\n";

static void check_cabundle(json_t *vwc)
{
	int n = -1;
	json_t *patch = wh_cabundle_patch(vwc, CA, &n);
	if (!patch) {
		if (n != 0)
			abort();
		return;
	}
	json_t *hooks = json_object_get(vwc, "webhooks");
	size_t nh = json_array_size(hooks), i, adds = 0;
	int all_objects = json_is_array(hooks);
	json_t *op, *h;
	json_array_foreach(hooks, i, h) all_objects &= json_is_object(h);
	json_t *copy = json_deep_copy(vwc);
	json_array_foreach(patch, i, op) {
		const char *o = json_string_value(json_object_get(op, "op"));
		const char *path = json_string_value(json_object_get(op, "path"));
		json_t *value = json_object_get(op, "value");
		char *end;
		if (!o || !path || !value || strncmp(path, "/webhooks/", 10))
			abort();
		unsigned long k = strtoul(path + 10, &end, 10);
		if (k >= nh || *end != '/')
			abort();
		json_t *target = json_array_get(json_object_get(copy, "webhooks"), k);
		if (!strcmp(o, "test")) {
			if (strcmp(end, "/name") || !json_equal(value, json_object_get(target, "name")))
				abort();
		} else if (!strcmp(o, "add")) {
			adds++;
			if (!strcmp(end, "/clientConfig/caBundle") && json_is_string(value))
				json_object_set(json_object_get(target, "clientConfig"), "caBundle", value);
			else if (!strcmp(end, "/clientConfig") && json_is_object(value))
				json_object_set(target, "clientConfig", value);
			else
				abort();
		} else {
			abort();
		}
	}
	if ((size_t)n != adds || n <= 0)
		abort();
	if (all_objects) { /* the patched object needs no more patching */
		int n2 = -1;
		json_t *again = wh_cabundle_patch(copy, CA, &n2);
		if (again || n2)
			abort();
	}
	json_decref(copy);
	json_decref(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!j)
		return 0;
	check_cabundle(j);
	json_decref(j);
	return 0;
}
