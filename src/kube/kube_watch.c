/* kube_watch.c - watch streams: the newline-delimited JSON decoder and the long-lived GET that feeds it.
 *
 * The decoder is a pure function over byte chunks (curl hands over whatever arrived: half an event, or
 * several): complete lines are decoded straight from the chunk, only an unterminated tail is copied into
 * a carry buffer, and that buffer is capped (KUBE_WATCH_MAX_LINE) and shrunk again after a large line, so
 * a watch holds no more memory than its largest in-flight event.
 *
 * The transfer runs on the calling thread's connection (kube_conn.c: the informer's list and its watch
 * share one keep-alive connection), in a loop that polls every 250 ms, so the caller's stop flag and the
 * idle timeout are checked at least that often even while the server sends nothing. */
#include <stdlib.h>
#include <string.h>

#include "kube_client.h"
#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"

#define KUBE_WATCH_POLL_MS 250
#define KUBE_WATCH_ERRBODY_MAX (64u << 10)
#define KUBE_WATCH_CARRY_KEEP (64u << 10) /* carry buffer kept allocated up to this size */

void kube_watch_decoder_init(struct kube_watch_decoder *d, size_t max_line, kube_watch_cb cb, void *ud)
{
	sb_init(&d->line);
	d->max_line = max_line ? max_line : KUBE_WATCH_MAX_LINE;
	d->cb = cb;
	d->ud = ud;
	d->events = 0;
}

void kube_watch_decoder_release(struct kube_watch_decoder *d)
{
	sb_release(&d->line);
}

static int blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
			return 0;
	return 1;
}

static int decode_line(struct kube_watch_decoder *d, const char *p, size_t n, struct kube_err *err)
{
	json_error_t je;
	if (blank(p, n))
		return 0;
	json_t *ev = json_loadb(p, n, 0, &je);
	const char *type = kf_jstr(ev, "type", NULL);
	json_t *obj = json_object_get(ev, "object");
	int rc;
	if (!ev || !type || !json_is_object(obj)) {
		kube_err_clear(err);
		err->code = 0;
		if (!ev)
			snprintf(err->msg, sizeof err->msg, "watch: undecodable event (%s at byte %d of %zu)", je.text,
				 je.position, n);
		else
			snprintf(err->msg, sizeof err->msg, "watch: event without type or object");
		rc = -1;
	} else if (!strcmp(type, "ERROR")) {
		kube_err_clear(err);
		kube_err_from_status(err, 0, obj);
		rc = -1;
	} else {
		d->events++;
		rc = d->cb(d->ud, type, obj) ? 1 : 0;
	}
	json_decref(ev);
	return rc;
}

static int line_too_long(struct kube_watch_decoder *d, struct kube_err *err)
{
	kube_err_clear(err);
	snprintf(err->msg, sizeof err->msg, "watch: event longer than the %zu-byte line limit", d->max_line);
	sb_release(&d->line);
	return -1;
}

int kube_watch_decoder_feed(struct kube_watch_decoder *d, const char *data, size_t len, struct kube_err *err)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		if (!nl) {
			if (d->line.len + len > d->max_line)
				return line_too_long(d, err);
			sb_add(&d->line, data, len);
			return 0;
		}
		size_t seg = (size_t)(nl - data);
		int rc;
		if (!d->line.len) {
			if (seg > d->max_line)
				return line_too_long(d, err);
			rc = decode_line(d, data, seg, err);
		} else {
			if (d->line.len + seg > d->max_line)
				return line_too_long(d, err);
			sb_add(&d->line, data, seg);
			rc = decode_line(d, d->line.buf, d->line.len, err);
			if (d->line.alloc > KUBE_WATCH_CARRY_KEEP)
				sb_release(&d->line);
			else
				sb_reset(&d->line);
		}
		if (rc)
			return rc;
		data = nl + 1;
		len -= seg + 1;
	}
	return 0;
}

int kube_watch_decoder_finish(struct kube_watch_decoder *d, struct kube_err *err)
{
	int rc = 0;
	if (d->line.len && !blank(d->line.buf, d->line.len)) {
		rc = decode_line(d, d->line.buf, d->line.len, err);
		if (rc < 0 && err->code == 0)
			snprintf(err->msg, sizeof err->msg, "watch: stream ended inside an event");
	}
	sb_release(&d->line);
	return rc;
}

/* ---- the transfer ---------------------------------------------------------------------------------- */

struct wctx {
	CURL *h;
	struct kube_watch_decoder dec;
	struct kube_err *err;
	long code;          /* HTTP status, once known */
	struct strbuf errbody;
	int result;         /* 0 running/ok, 1 callback stop, -1 decoder error */
	int retry_after_s;  /* Retry-After of an error response (429 / 503) */
	int64_t last_data_ms;
	uint64_t bytes;
};

static size_t on_watch_header(char *p, size_t sz, size_t n, void *ud)
{
	struct wctx *w = ud;
	kube_header_retry_after(p, sz * n, &w->retry_after_s);
	return sz * n;
}

static size_t on_watch_data(char *p, size_t sz, size_t n, void *ud)
{
	struct wctx *w = ud;
	size_t len = sz * n;
	w->last_data_ms = kf_now_ms();
	w->bytes += len;
	if (!w->code)
		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->code);
	if (w->code != 200) {
		if (w->errbody.len < KUBE_WATCH_ERRBODY_MAX)
			sb_add(&w->errbody, p, len < KUBE_WATCH_ERRBODY_MAX ? len : KUBE_WATCH_ERRBODY_MAX);
		return len;
	}
	w->result = kube_watch_decoder_feed(&w->dec, p, len, w->err);
	return w->result ? 0 : len; /* 0 aborts the transfer */
}

static int watch_once(struct kube_client *c, const char *url, const char *path, kube_watch_cb cb, void *ud,
		      const volatile int *stop, long idle_timeout_ms, struct kube_err *err, int *retry_401)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL;
	char *tok = NULL;
	struct wctx w = { .err = err, .errbody = STRBUF_INIT };
	struct kube_conn *k = NULL;
	int rc = -1;
	CURLcode cc = CURLE_OK;

	*retry_401 = 0;
	kube_err_clear(err);
	kube_watch_decoder_init(&w.dec, KUBE_WATCH_MAX_LINE, cb, ud);
	k = kube_conn_acquire(c);
	if (!k) {
		snprintf(err->msg, sizeof err->msg, "watch %s: cannot create curl handles", path);
		goto out;
	}
	w.h = kube_conn_easy(k);
	kube_easy_setup(c, w.h, "GET", url, NULL, &hdrs, errbuf, &tok);
	curl_easy_setopt(w.h, CURLOPT_WRITEFUNCTION, on_watch_data);
	curl_easy_setopt(w.h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(w.h, CURLOPT_HEADERFUNCTION, on_watch_header);
	curl_easy_setopt(w.h, CURLOPT_HEADERDATA, &w);
	kube_count_request(c, KUBE_VERB_WATCH);
	w.last_data_ms = kf_now_ms();
	int xr = kube_conn_run(k, stop, &w.last_data_ms, idle_timeout_ms, &cc);
	if (!w.code)
		curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.code);
	if (xr == KUBE_XFER_STOPPED) {
		rc = 0;
	} else if (xr == KUBE_XFER_IDLE) {
		snprintf(err->msg, sizeof err->msg, "watch %s: no data for %ld ms, stream presumed dead", path,
			 idle_timeout_ms);
		kube_count_response(c, 0);
	} else if (w.result == 1) { /* the callback asked to stop */
		rc = 0;
	} else if (w.result < 0) { /* ERROR event or undecodable stream: err is set */
		kube_count_response(c, err->code);
	} else if (cc != CURLE_OK) {
		snprintf(err->msg, sizeof err->msg, "watch %s: %s", path, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		kube_count_response(c, 0);
	} else if (w.code != 200) {
		kube_count_response(c, w.code);
		if (w.code == 401 && kube_token_refresh(c, tok)) {
			*retry_401 = 1;
		} else {
			err->retry_after_s = w.retry_after_s;
			kube_err_from_response(err, w.code, w.errbody.buf, w.errbody.len);
		}
	} else {
		kube_count_response(c, 200);
		rc = kube_watch_decoder_finish(&w.dec, err) < 0 ? -1 : 0;
	}
out:
	if (k) {
		curl_easy_setopt(w.h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(w.h, CURLOPT_ERRORBUFFER, NULL);
		kube_conn_release(k);
	}
	kube_headers_free(hdrs);
	if (tok) {
		memset(tok, 0, strlen(tok));
		free(tok);
	}
	LOG_V(5, "watch %s ended: rc %d, %llu events, %llu bytes", path, rc, (unsigned long long)w.dec.events,
	      (unsigned long long)w.bytes);
	kube_watch_decoder_release(&w.dec);
	sb_release(&w.errbody);
	return rc;
}

int kube_watch(struct kube_client *c, const char *path, kube_watch_cb cb, void *ud, const volatile int *stop,
	       long idle_timeout_ms, struct kube_err *err)
{
	struct strbuf p = STRBUF_INIT;
	sb_adds(&p, path);
	if (!strstr(path, "?watch=") && !strstr(path, "&watch="))
		sb_adds(&p, strchr(path, '?') ? "&watch=1" : "?watch=1");
	char *url = kube_url(c, p.buf);
	int retry = 0, rc = watch_once(c, url, path, cb, ud, stop, idle_timeout_ms, err, &retry);
	if (rc < 0 && retry) {
		LOG_V(2, "watch %s: 401 with a rotated token file; retrying with the new token", path);
		rc = watch_once(c, url, path, cb, ud, stop, idle_timeout_ms, err, &retry);
		if (rc < 0 && retry) { /* the token changed again meanwhile: report the 401 */
			kube_err_clear(err);
			err->code = 401;
			snprintf(err->reason, sizeof err->reason, "Unauthorized");
			snprintf(err->msg, sizeof err->msg, "Unauthorized");
		}
	}
	free(url);
	sb_release(&p);
	return rc;
}
