/* fuzz_watch.c - libFuzzer target: the watch-stream decoder (kube_watch_decoder_*) fed arbitrary bytes cut
 * at arbitrary chunk boundaries, as curl hands them over.
 *
 * Input: 4 bytes seed the chunk cuts, 1 byte picks the line cap (16..4111 bytes), the rest is the stream.
 * The stream is decoded twice: in one chunk, and in chunks whose sizes come from the seed (1 byte up to
 * the whole). Invariants: no crash or leak; the carried partial line never exceeds the cap; both runs
 * deliver the same events (type and object) and end the same way (return code, error code and message).
 * An object holding the key "stop" makes the callback ask to stop, so that path is covered too. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_internal.h"
#include "util/strbuf.h"

struct rec {
	struct strbuf log;
};

static int rec_cb(void *ud, const char *type, json_t *obj)
{
	struct rec *r = ud;
	char *o = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	sb_addf(&r->log, "%s %s\n", type, o ? o : "?");
	free(o);
	return json_object_get(obj, "stop") != NULL;
}

/* Decodes the stream in chunks (sizes from *seed; 0 = one chunk). Appends the outcome to r->log. */
static void run(const char *p, size_t n, size_t max_line, uint32_t seed, struct rec *r)
{
	struct kube_watch_decoder d;
	struct kube_err err;
	int rc = 0;
	kube_watch_decoder_init(&d, max_line, rec_cb, r);
	size_t off = 0;
	while (off < n && rc == 0) {
		size_t len = n - off;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			size_t want = 1 + (seed >> 8) % (seed & 0x80 ? 7 : 300);
			if (want < len)
				len = want;
		}
		rc = kube_watch_decoder_feed(&d, p + off, len, &err);
		if (d.line.len > d.max_line)
			abort();
		off += len;
	}
	if (rc == 0)
		rc = kube_watch_decoder_finish(&d, &err);
	if (rc != 0 && rc != 1 && rc != -1)
		abort();
	sb_addf(&r->log, "rc %d", rc);
	if (rc < 0)
		sb_addf(&r->log, " code %ld reason %s msg %s", err.code, err.reason, err.msg);
	kube_watch_decoder_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
	size_t max_line = 16 + (size_t)data[4] * 16;
	const char *p = (const char *)data + 5;
	size_t n = size - 5;
	struct rec whole = { STRBUF_INIT }, cut = { STRBUF_INIT };
	run(p, n, max_line, 0, &whole);
	run(p, n, max_line, seed | 1, &cut);
	if (whole.log.len != cut.log.len || memcmp(whole.log.buf, cut.log.buf, whole.log.len))
		abort();
	sb_release(&whole.log);
	sb_release(&cut.log);
	return 0;
}
