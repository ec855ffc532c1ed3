/* kube_request.c - one API request from start to end: the write fence, the token bucket, the calling
 * thread's connection, the 401-after-rotation retry, the 429 / Retry-After retries, the counters by verb
 * and status code, and the verbs built on it (kube_get, kube_create, ...). See kube_client.h.
 *
 * Retries wait outside any lock, in 100 ms slices that end early on the caller's stop flag or, for a
 * write, on the fence; the fence is checked again before every attempt. Counters are relaxed atomics:
 * each is exact, a snapshot of several is not one instant. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kube_client.h"
#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"

#define KUBE_MAX_BODY (64u << 20) /* a non-watch response larger than this is refused */

/* ---- counters and the fence ------------------------------------------------------------------------- */

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define BUMP(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)

void kube_client_stats(struct kube_client *c, struct kube_client_stats *out)
{
	out->requests = LOAD(c->n_requests);
	out->watches = LOAD(c->n_watches);
	out->errors_transport = LOAD(c->n_err_transport);
	out->errors_4xx = LOAD(c->n_err_4xx);
	out->errors_5xx = LOAD(c->n_err_5xx);
	out->retries = LOAD(c->n_retries);
	out->fenced = LOAD(c->n_fenced);
	for (int i = 0; i < KUBE_VERB_N; i++)
		out->by_verb[i] = LOAD(c->n_verb[i]);
	for (int i = 0; i < KUBE_STATS_CODES; i++)
		out->by_code[i] = LOAD(c->n_code[i]);
}

const char *kube_verb_name(enum kube_verb v)
{
	static const char *const names[KUBE_VERB_N] = { "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE",
							 "OTHER" };
	return (unsigned)v < KUBE_VERB_N ? names[v] : "OTHER";
}

/* 1 if the query string of path has watch=1 or watch=true. */
static int query_watch(const char *q)
{
	for (const char *p = q; p && *p; p = strchr(p, '&')) {
		p += *p == '&' || *p == '?';
		if (!strncmp(p, "watch=1", 7) || !strncmp(p, "watch=true", 10))
			return 1;
	}
	return 0;
}

enum kube_verb kube_verb_of(const char *method, const char *path)
{
	if (!strcmp(method, "POST"))
		return KUBE_VERB_POST;
	if (!strcmp(method, "PUT"))
		return KUBE_VERB_PUT;
	if (!strcmp(method, "PATCH"))
		return KUBE_VERB_PATCH;
	if (!strcmp(method, "DELETE"))
		return KUBE_VERB_DELETE;
	if (strcmp(method, "GET"))
		return KUBE_VERB_OTHER;
	const char *q = strchr(path, '?');
	if (query_watch(q))
		return KUBE_VERB_WATCH;
	/* /api/V/..., /apis/G/V/...; then [namespaces/NS/]RESOURCE[/NAME[/SUB]] */
	size_t plen = q ? (size_t)(q - path) : strlen(path), nseg = 0;
	const char *seg[8];
	size_t seglen[8];
	for (size_t i = 0; i < plen && nseg < 8;) {
		while (i < plen && path[i] == '/')
			i++;
		if (i >= plen)
			break;
		size_t j = i;
		while (j < plen && path[j] != '/')
			j++;
		seg[nseg] = path + i;
		seglen[nseg++] = j - i;
		i = j;
	}
	size_t skip;
	if (nseg >= 1 && seglen[0] == 3 && !strncmp(seg[0], "api", 3))
		skip = 2;
	else if (nseg >= 1 && seglen[0] == 4 && !strncmp(seg[0], "apis", 4))
		skip = 3;
	else
		return KUBE_VERB_GET; /* /version, /healthz, /openapi/... */
	if (nseg <= skip)
		return KUBE_VERB_GET; /* discovery */
	size_t rest = nseg - skip;
	if (rest >= 3 && seglen[skip] == 10 && !strncmp(seg[skip], "namespaces", 10))
		rest -= 2; /* namespaced: namespaces/NS/RESOURCE... */
	return rest == 1 ? KUBE_VERB_LIST : KUBE_VERB_GET;
}

void kube_count_request(struct kube_client *c, enum kube_verb v)
{
	BUMP(c->n_requests);
	BUMP(c->n_verb[(unsigned)v < KUBE_VERB_N ? v : KUBE_VERB_OTHER]);
	if (v == KUBE_VERB_WATCH)
		BUMP(c->n_watches);
}

void kube_count_response(struct kube_client *c, long code)
{
	if (code >= 100 && code < KUBE_STATS_CODES)
		BUMP(c->n_code[code]);
	else if (code == 0)
		BUMP(c->n_code[0]);
	if (code == 0)
		BUMP(c->n_err_transport);
	else if (code >= 500)
		BUMP(c->n_err_5xx);
	else if (code >= 400)
		BUMP(c->n_err_4xx);
}

void kube_client_fence(struct kube_client *c, const char *why)
{
	pthread_mutex_lock(&c->fence_mu);
	if (!atomic_load(&c->fenced)) {
		snprintf(c->fence_reason, sizeof c->fence_reason, "%s", why && *why ? why : "fenced by the caller");
		atomic_store(&c->fenced, 1);
		LOG_WARN("kube client fenced: every write is refused from now on (%s)", c->fence_reason);
	}
	pthread_mutex_unlock(&c->fence_mu);
}

int kube_client_fenced(struct kube_client *c)
{
	return atomic_load(&c->fenced);
}

static int is_read(const char *method)
{
	return !strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "OPTIONS");
}

int kube_fence_check(struct kube_client *c, const char *method, const char *path, struct kube_err *err)
{
	if (is_read(method) || !atomic_load(&c->fenced))
		return 0;
	kube_err_clear(err);
	snprintf(err->reason, sizeof err->reason, "Fenced");
	/* fence_reason is written once, before fenced was set (seq_cst), and never again */
	snprintf(err->msg, sizeof err->msg, "%s %s: not sent: this client is fenced, writes are refused (%s)", method,
		 path, c->fence_reason);
	BUMP(c->n_fenced);
	return 1;
}

/* ---- requests -------------------------------------------------------------------------------------- */

struct resp {
	struct strbuf body;
	int too_big;
	int retry_after_s;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = sz * n;
	if (r->body.len + len > KUBE_MAX_BODY) {
		r->too_big = 1;
		return 0;
	}
	sb_add(&r->body, p, len);
	return len;
}

void kube_header_retry_after(const char *line, size_t len, int *retry_after_s)
{
	if (len > 12 && len < 200 && !strncasecmp(line, "Retry-After:", 12)) {
		char v[200];
		memcpy(v, line + 12, len - 12);
		v[len - 12] = '\0';
		*retry_after_s = kube_parse_retry_after(v);
	}
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	kube_header_retry_after(p, sz * n, &r->retry_after_s);
	return sz * n;
}

int64_t kube_retry_wait_ms(const struct kube_client *c, long code, int retry_after_s, int retries)
{
	int64_t ms;
	if (retries >= c->max_retries)
		return -1;
	if (code == 429)
		ms = retry_after_s > 0 ? (int64_t)retry_after_s * 1000 : KUBE_RETRY_DEFAULT_MS;
	else if (code >= 500 && retry_after_s > 0)
		ms = (int64_t)retry_after_s * 1000;
	else
		return -1;
	return ms > c->retry_wait_cap_ms ? c->retry_wait_cap_ms : ms;
}

/* Sleeps ms in 100 ms slices; returns nonzero early when *stop is set or, for a write, the client got
 * fenced meanwhile. No lock is held. */
static int retry_sleep(struct kube_client *c, int64_t ms, const volatile int *stop, int write)
{
	int64_t end = kf_now_ms() + ms;
	for (;;) {
		if (kube_stop_get(stop) || (write && atomic_load(&c->fenced)))
			return 1;
		int64_t left = end - kf_now_ms();
		if (left <= 0)
			return 0;
		kf_sleep_ms(left < 100 ? left : 100);
	}
}

static void set_stopped(struct kube_err *err, const char *method, const char *path)
{
	kube_err_clear(err);
	snprintf(err->reason, sizeof err->reason, "Stopped");
	snprintf(err->msg, sizeof err->msg, "%s %s: stopped", method, path);
}

/* Sends one request on the calling thread's connection: once more after a 401 if the token file has
 * rotated, and again after a 429 or a 5xx with Retry-After (kube_retry_wait_ms). A write is refused while
 * the client is fenced, checked before every attempt. On 2xx returns 0 with the body in *out (caller
 * releases); else -1 with err filled. stop (may be NULL) aborts the transfer and the waits. */
static int perform(struct kube_client *c, const char *method, const char *path, const char *body, size_t body_len,
		   const char *content_type, const volatile int *stop, struct strbuf *out, struct kube_err *err)
{
	char errbuf[CURL_ERROR_SIZE];
	char *url = kube_url(c, path);
	int rc = -1, retries = 0, rotated = 0;
	enum kube_verb verb = kube_verb_of(method, path);
	kube_err_clear(err);
	for (;;) {
		struct resp r = { STRBUF_INIT, 0, 0 };
		struct curl_slist *hdrs = NULL;
		char *tok = NULL;
		long code = 0;
		CURLcode cc = CURLE_OK;
		if (kube_fence_check(c, method, path, err))
			break;
		kube_limiter_wait(c);
		if (kube_fence_check(c, method, path, err))
			break;
		struct kube_conn *k = kube_conn_acquire(c);
		if (!k) {
			snprintf(err->msg, sizeof err->msg, "%s %s: cannot create a curl handle", method, path);
			break;
		}
		CURL *h = kube_conn_easy(k);
		kube_easy_setup(c, h, method, url, body ? content_type : NULL, &hdrs, errbuf, &tok);
		if (body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		}
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
		kube_count_request(c, verb);
		int xr = kube_conn_run(k, stop, NULL, 0, &cc);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (log_verbosity >= 6 && xr == KUBE_XFER_DONE) { /* like client-go's round-trip log at -v=6; never headers */
			long hv = 0;
			curl_off_t us = 0;
			curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &hv);
			curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
			LOG_INFO("%s %s %ld in %.1f ms (%s)", method, url, code, (double)us / 1000.0,
				 hv == CURL_HTTP_VERSION_2_0 ? "HTTP/2" : hv == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1" : "HTTP/?");
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL); /* the list is freed next */
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf lives on this stack */
		kube_conn_release(k);
		kube_headers_free(hdrs);
		if (xr == KUBE_XFER_STOPPED) {
			set_stopped(err, method, path);
			sb_release(&r.body);
			kube_wipe_free(tok);
			break;
		}
		if (cc != CURLE_OK) {
			err->code = 0;
			if (r.too_big)
				snprintf(err->msg, sizeof err->msg, "%s %s: response larger than %u MiB", method, path,
					 KUBE_MAX_BODY >> 20);
			else
				snprintf(err->msg, sizeof err->msg, "%s %s: %s", method, path,
					 errbuf[0] ? errbuf : curl_easy_strerror(cc));
			kube_count_response(c, 0);
			sb_release(&r.body);
			kube_wipe_free(tok);
			break;
		}
		kube_count_response(c, code);
		if (code >= 200 && code < 300) {
			*out = r.body;
			kube_wipe_free(tok);
			rc = 0;
			break;
		}
		if (code == 401 && !rotated && kube_token_refresh(c, tok)) {
			LOG_V(2, "%s %s: 401 with a rotated token file; retrying with the new token", method, path);
			rotated = 1;
			sb_release(&r.body);
			kube_wipe_free(tok);
			continue;
		}
		kube_wipe_free(tok);
		int64_t wait = kube_retry_wait_ms(c, code, r.retry_after_s, retries);
		if (wait >= 0) {
			retries++;
			BUMP(c->n_retries);
			LOG_V(2, "%s %s: HTTP %ld (Retry-After %d s): retry %d of %d in %lld ms", method, path, code,
			      r.retry_after_s, retries, c->max_retries, (long long)wait);
			sb_release(&r.body);
			if (retry_sleep(c, wait, stop, !is_read(method)) && kube_stop_get(stop)) {
				set_stopped(err, method, path);
				break;
			}
			continue; /* fenced meanwhile: the check at the top refuses it */
		}
		err->retry_after_s = r.retry_after_s;
		kube_err_from_response(err, code, r.body.buf, r.body.len);
		if (retries)
			snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), " (after %d retries)",
				 retries);
		sb_release(&r.body);
		break;
	}
	free(url);
	return rc;
}

char *kube_request_raw(struct kube_client *c, const char *method, const char *path, const char *body,
		       const char *content_type, struct kube_err *err)
{
	struct strbuf out = STRBUF_INIT;
	if (perform(c, method, path, body, body ? strlen(body) : 0, content_type ? content_type : "application/json",
		    NULL, &out, err) < 0)
		return NULL;
	return sb_detach(&out);
}

static json_t *request_json(struct kube_client *c, const char *method, const char *path, json_t *body,
			    const char *content_type, const volatile int *stop, struct kube_err *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct strbuf out = STRBUF_INIT;
	json_t *j = NULL;
	if (body && !text) {
		kube_err_clear(err);
		snprintf(err->msg, sizeof err->msg, "%s %s: request body cannot be encoded as JSON", method, path);
		return NULL;
	}
	if (perform(c, method, path, text, text ? strlen(text) : 0, content_type, stop, &out, err) == 0) {
		json_error_t je;
		j = json_loadb(out.buf, out.len, 0, &je);
		if (!j) {
			err->code = 500;
			snprintf(err->reason, sizeof err->reason, "InternalError");
			snprintf(err->msg, sizeof err->msg, "%s %s: response is not JSON: %s", method, path, je.text);
		}
	}
	sb_release(&out);
	free(text);
	return j;
}

json_t *kube_get(struct kube_client *c, const char *path, struct kube_err *err)
{
	return request_json(c, "GET", path, NULL, NULL, NULL, err);
}

json_t *kube_get_stoppable(struct kube_client *c, const char *path, const volatile int *stop, struct kube_err *err)
{
	return request_json(c, "GET", path, NULL, NULL, stop, err);
}

json_t *kube_create(struct kube_client *c, const char *path, json_t *body, struct kube_err *err)
{
	return request_json(c, "POST", path, body, "application/json", NULL, err);
}

json_t *kube_update(struct kube_client *c, const char *path, json_t *body, struct kube_err *err)
{
	return request_json(c, "PUT", path, body, "application/json", NULL, err);
}

json_t *kube_patch(struct kube_client *c, const char *path, json_t *patch, const char *patch_type,
		   struct kube_err *err)
{
	return request_json(c, "PATCH", path, patch, patch_type ? patch_type : "application/merge-patch+json", NULL, err);
}

int kube_delete(struct kube_client *c, const char *path, const char *propagation, struct kube_err *err)
{
	json_t *opts = NULL;
	if (propagation && *propagation)
		opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1", "propagationPolicy",
				 propagation);
	json_t *r = request_json(c, "DELETE", path, opts, "application/json", NULL, err);
	json_decref(opts);
	if (!r)
		return -1;
	json_decref(r);
	return 0;
}
