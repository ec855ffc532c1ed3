/* fuzz_admission.c - libFuzzer target: arbitrary bytes as an AdmissionReview body through wh_review(), the
 * whole admission path (decoding, ImageCache spec decoding, validation, reply encoding).
 * Invariants beyond "no crash, no leak, no UB": the status is 200 or 400; a 200 reply is valid JSON with
 * response.uid and response.allowed; a 400 reply is plain text ending in a newline. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "webhook/wh_admission.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wh_reply r;
	wh_review("application/json", (const char *)data, size, &r);
	if (r.status == 200) {
		json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
		if (!j || !json_is_string(kf_jget(j, "response", "uid", NULL)) ||
		    !json_is_boolean(json_object_get(json_object_get(j, "response"), "allowed")))
			abort();
		json_decref(j);
	} else if (r.status != 400 || !r.body_len || r.body[r.body_len - 1] != '\n') {
		abort();
	}
	if (strlen(r.body) != r.body_len)
		abort();
	wh_reply_free(&r);
	return 0;
}
