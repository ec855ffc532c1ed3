/* fuzz_imagecache.c - libFuzzer target: ImageCache objects through ic_spec_parse() and ic_validate().
 * The input is one JSON object (CREATE), or two separated by a newline (UPDATE: old, then new).
 * Invariants: a denial always has a message, an acceptance never does; a spec validated against itself
 * (UPDATE with an unchanged spec) is always accepted. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_types.h"
#include "imagecache/ic_validate.h"
#include "util/strbuf.h"

static int parse(const char *p, size_t n, struct ic_spec *out)
{
	json_t *j = json_loadb(p, n, 0, NULL);
	if (!j)
		return -1;
	struct strbuf err = STRBUF_INIT;
	int rc = ic_spec_parse(j, out, &err);
	if ((rc < 0) != (err.len > 0))
		abort();
	sb_release(&err);
	json_decref(j);
	return rc;
}

static void check(const struct ic_spec *spec, const struct ic_spec *old)
{
	struct strbuf msg = STRBUF_INIT;
	int rc = ic_validate(spec, old, &msg);
	if ((rc < 0) != (msg.len > 0) || (rc != 0 && rc != -1))
		abort();
	sb_release(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	struct ic_spec a, b;
	if (!nl) {
		if (parse(s, size, &a) == 0) {
			check(&a, NULL);
			struct strbuf msg = STRBUF_INIT;
			if (ic_validate(&a, &a, &msg) != 0) /* unchanged spec on UPDATE: always allowed */
				abort();
			sb_release(&msg);
			ic_spec_free(&a);
		}
		return 0;
	}
	size_t n1 = (size_t)(nl - s);
	if (parse(s, n1, &a) == 0) {
		if (parse(nl + 1, size - n1 - 1, &b) == 0) {
			check(&b, &a);
			check(&b, NULL);
			ic_spec_free(&b);
		}
		ic_spec_free(&a);
	}
	return 0;
}
