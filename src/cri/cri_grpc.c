/* cri_grpc.c - gRPC over HTTP/2 on a unix socket with libcurl: framing, status headers, and the curl
 * transport. See cri_grpc.h. The interpretation of a reply (status -> error text, v1alpha2 fallback)
 * lives in cri.c, so a fake transport in the tests goes through the same code. */
#include "cri_grpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cri.h"
#include "util/util.h"
#include "util/version.h"

void cri_grpc_reply_init(struct cri_grpc_reply *r)
{
	memset(r, 0, sizeof *r);
	r->grpc_status = -1;
	sb_init(&r->grpc_message);
	sb_init(&r->body);
}

void cri_grpc_reply_release(struct cri_grpc_reply *r)
{
	sb_release(&r->grpc_message);
	sb_release(&r->body);
	cri_grpc_reply_init(r);
}

void cri_grpc_frame(struct strbuf *out, const uint8_t *msg, size_t len)
{
	unsigned char p[5] = { 0, (unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8),
			       (unsigned char)len };
	sb_add(out, p, sizeof p);
	if (len)
		sb_add(out, msg, len);
}

int cri_grpc_unframe(const uint8_t *body, size_t n, const uint8_t **msg, size_t *msg_len, struct strbuf *err)
{
	*msg = NULL;
	*msg_len = 0;
	if (n == 0) {
		sb_adds(err, "reply has no message");
		return -1;
	}
	if (n < 5) {
		sb_addf(err, "reply is truncated: %zu bytes, a gRPC frame header alone is 5", n);
		return -1;
	}
	if (body[0] != 0) {
		sb_addf(err, "reply frame has compressed-flag %u; compression was not negotiated", body[0]);
		return -1;
	}
	uint32_t len = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 | (uint32_t)body[3] << 8 | body[4];
	if (len > n - 5) {
		sb_addf(err, "reply frame announces %u bytes but only %zu arrived", len, n - 5);
		return -1;
	}
	if (len != n - 5) {
		sb_addf(err, "reply has %zu bytes after its message; a unary reply carries one frame",
			n - 5 - (size_t)len);
		return -1;
	}
	*msg = body + 5;
	*msg_len = len;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void cri_grpc_percent_decode(struct strbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			sb_addc(out, (char)(hi << 4 | lo));
			i += 2;
		} else {
			sb_addc(out, s[i]);
		}
	}
}

/* "  value \r\n" -> pointer/length of "value" */
static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n && ((*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n' || (*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return 0;
	*val = line + k + 1;
	*vlen = n - k - 1;
	trim(val, vlen);
	return 1;
}

void cri_grpc_parse_header(struct cri_grpc_reply *r, const char *line, size_t n)
{
	const char *v;
	size_t vn;
	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		const char *sp = memchr(line, ' ', n);
		int code = 0;
		if (sp)
			for (const char *p = sp + 1; p < line + n && *p >= '0' && *p <= '9' && code < 1000; p++)
				code = code * 10 + (*p - '0');
		r->http_status = code;
	} else if (header_is(line, n, "grpc-status", &v, &vn)) {
		int code = 0, ok = vn > 0 && vn <= 4;
		for (size_t i = 0; ok && i < vn; i++) {
			if (v[i] < '0' || v[i] > '9')
				ok = 0;
			else
				code = code * 10 + (v[i] - '0');
		}
		/* An unparsable status is still a failed call: UNKNOWN, as grpc-go does; so is a code beyond the
		 * 17 gRPC defines (callers rely on cri.h's range: 0, 1..16, or a negative local code). */
		r->grpc_status = ok && code <= CRI_UNAUTHENTICATED ? code : CRI_UNKNOWN;
	} else if (header_is(line, n, "grpc-message", &v, &vn)) {
		sb_reset(&r->grpc_message);
		cri_grpc_percent_decode(&r->grpc_message, v, vn);
	} else if (header_is(line, n, "content-type", &v, &vn)) {
		r->content_type_grpc = vn >= 16 && !strncasecmp(v, "application/grpc", 16) &&
				       (vn == 16 || v[16] == '+' || v[16] == ';');
	}
}

const char *cri_grpc_code_name(int code)
{
	static const char *names[] = { "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
				       "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
				       "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
				       "Internal", "Unavailable", "DataLoss", "Unauthenticated" };
	static __thread char other[24];
	if (code >= 0 && (size_t)code < ARRAY_SIZE(names))
		return names[code];
	snprintf(other, sizeof other, "Code(%d)", code);
	return other;
}

int cri_grpc_code_from_http(int s)
{
	switch (s) {
	case 400: return CRI_INTERNAL;
	case 401: return CRI_UNAUTHENTICATED;
	case 403: return CRI_PERMISSION_DENIED;
	case 404: return CRI_UNIMPLEMENTED;
	case 429: case 502: case 503: case 504: return CRI_UNAVAILABLE;
	default: return CRI_UNKNOWN;
	}
}

/* ---- the libcurl transport ---- */

static size_t on_header(char *d, size_t size, size_t nmemb, void *u)
{
	size_t n = size * nmemb;
	cri_grpc_parse_header(u, d, n);
	return n;
}

static size_t on_body(char *d, size_t size, size_t nmemb, void *u)
{
	struct cri_grpc_reply *r = u;
	size_t n = size * nmemb;
	if (r->body.len + n > CRI_GRPC_MAX_MSG + 5) {
		r->body_too_large = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	sb_add(&r->body, d, n);
	return n;
}

/* "grpc-timeout: 120000m": at most 8 digits, so long timeouts go in seconds or hours. */
static void add_grpc_timeout(struct strbuf *h, int64_t ms)
{
	if (ms <= 99999999)
		sb_addf(h, "grpc-timeout: %lldm", (long long)ms);
	else if (ms / 1000 <= 99999999)
		sb_addf(h, "grpc-timeout: %lldS", (long long)(ms / 1000));
	else
		sb_addf(h, "grpc-timeout: %lldH", (long long)(ms / 3600000));
}

int cri_grpc_curl_transport(void *ctx, const char *socket_path, int64_t timeout_ms,
			    const struct cri_grpc_call *call, struct cri_grpc_reply *reply, struct strbuf *err)
{
	(void)ctx;
	int rc = CRI_ETRANSPORT;
	struct curl_slist *hd = NULL;
	struct strbuf frame = STRBUF_INIT, url = STRBUF_INIT, tmo = STRBUF_INIT, ua = STRBUF_INIT;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct stat st;

	/* Say plainly what is wrong with the socket before curl says "Couldn't connect to server". */
	if (stat(socket_path, &st) < 0) {
		sb_addf(err, "connect to unix socket %s: %s (is the container runtime running, and is its socket "
			     "mounted here?)", socket_path, strerror(errno));
		return CRI_ETRANSPORT;
	}
	if (!S_ISSOCK(st.st_mode)) {
		sb_addf(err, "connect to unix socket %s: not a socket", socket_path);
		return CRI_ETRANSPORT;
	}

	CURL *h = curl_easy_init();
	if (!h) {
		sb_adds(err, "curl_easy_init failed");
		return CRI_ETRANSPORT;
	}
	cri_grpc_frame(&frame, call->msg, call->msg_len);
	sb_addf(&url, "http://localhost%s", call->path);
	sb_addf(&ua, "user-agent: grpc-c-curl %s", kf_user_agent());
	hd = curl_slist_append(hd, "content-type: application/grpc");
	hd = curl_slist_append(hd, "te: trailers");
	hd = curl_slist_append(hd, "accept:");
	hd = curl_slist_append(hd, "expect:");
	hd = curl_slist_append(hd, ua.buf);
	if (timeout_ms > 0) {
		add_grpc_timeout(&tmo, timeout_ms);
		hd = curl_slist_append(hd, tmo.buf);
	}
	for (const char *const *x = call->headers; x && *x; x++)
		hd = curl_slist_append(hd, *x);

	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* curl 7.88 h2c reuse bug (#10634) */
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(h, CURLOPT_URL, url.buf);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, frame.buf);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)frame.len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, reply);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	if (timeout_ms > 0) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 10000 ? timeout_ms : 10000));
	}

	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		rc = 0;
	} else if (reply->body_too_large) {
		sb_addf(err, "reply from unix socket %s is larger than %u bytes", socket_path, CRI_GRPC_MAX_MSG);
		rc = CRI_EPROTO;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		char d[32];
		kf_format_duration(timeout_ms, d, sizeof d);
		sb_addf(err, "rpc error: code = DeadlineExceeded desc = no reply from unix socket %s within %s (%s)",
			socket_path, d, call->path);
		rc = CRI_DEADLINE_EXCEEDED;
	} else {
		long oserr = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
		/* errno only explains a failed connect; later on it may be stale */
		if (cc == CURLE_COULDNT_CONNECT && oserr)
			sb_addf(err, "connect to unix socket %s: %s", socket_path, strerror((int)oserr));
		else
			sb_addf(err, "talk to unix socket %s: %s (is this a CRI runtime socket?)", socket_path,
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (cc == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED)
			sb_adds(err, " (nothing listens there: is the container runtime running?)");
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hd);
	sb_release(&frame);
	sb_release(&url);
	sb_release(&tmo);
	sb_release(&ua);
	return rc;
}
