/* wh_cabundle.c - caBundle patch computation; see wh_cabundle.h. */
#include "wh_cabundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

/* 1 when the base64 caBundle b64 (may be NULL) decodes to exactly pem. */
static int bundle_is(const char *b64, const char *pem)
{
	if (!b64)
		return 0;
	size_t n = 0;
	unsigned char *raw = kf_base64_decode(b64, strlen(b64), &n, NULL);
	int same = raw && n == strlen(pem) && !memcmp(raw, pem, n);
	free(raw);
	return same;
}

json_t *wh_cabundle_patch(json_t *vwc, const char *ca_pem, int *n_stale)
{
	*n_stale = 0;
	json_t *hooks = json_object_get(vwc, "webhooks");
	size_t i;
	json_t *h;
	json_t *patch = json_array();
	char *b64 = kf_base64_encode(ca_pem, strlen(ca_pem));
	json_array_foreach(hooks, i, h) {
		json_t *cc = json_object_get(h, "clientConfig");
		if (bundle_is(json_string_value(json_object_get(cc, "caBundle")), ca_pem))
			continue;
		char path[96];
		json_t *name = json_object_get(h, "name");
		if (json_is_string(name)) {
			snprintf(path, sizeof path, "/webhooks/%zu/name", i);
			json_array_append_new(patch, json_pack("{s:s, s:s, s:O}", "op", "test", "path", path, "value", name));
		}
		snprintf(path, sizeof path, "/webhooks/%zu/clientConfig%s", i, json_is_object(cc) ? "/caBundle" : "");
		json_t *value = json_is_object(cc) ? json_string(b64) : json_pack("{s:s}", "caBundle", b64);
		json_array_append_new(patch, json_pack("{s:s, s:s, s:o}", "op", "add", "path", path, "value", value));
		(*n_stale)++;
	}
	free(b64);
	if (!*n_stale) {
		json_decref(patch);
		return NULL;
	}
	return patch;
}
