/* kube_client.c - the client itself: configuration, TLS, tokens, the token bucket, error decoding; see
 * kube_client.h. (The request loop with its retries, the fence and the counters is in kube_request.c,
 * watches in kube_watch.c, per-thread connections and the transfer loop in kube_conn.c.)
 *
 * Connection reuse: each thread runs its requests on its own reused easy handle and multi handle, whose
 * connection stays open for the thread's next request (HTTP/2 over TLS when the server negotiates it by
 * ALPN; never h2c). One CURLSH per client shares only what libcurl supports across threads, TLS session
 * ids and the DNS cache (pthread mutex per lock_data); never the connection cache.
 *
 * TLS material is handed to curl from memory (CAINFO_BLOB, SSLCERT_BLOB, SSLKEY_BLOB); with a CA from the
 * config the system trust store is switched off, as in client-go. tls-server-name (SNI and certificate
 * name) is done by rewriting the URL's host to that name and pointing curl at the real address with
 * CURLOPT_CONNECT_TO ("name:port:realhost:port"): curl then sends SNI = name, verifies the certificate
 * against name, and connects to the real host. The Host header also carries name, which the API server
 * ignores.
 *
 * Bearer tokens from a file (bound service-account tokens rotate) are re-read when the file's identity
 * (device, inode, mtime, size) changes, checked before every request, and after every 401; a 401 with a
 * token that has since changed is retried once. Tokens never appear in logs or error messages.
 *
 * A token bucket (qps, burst) paces every request except watches, like client-go's default rate
 * limiter; a waiting caller sleeps outside any lock. */
#include "kube_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#define KUBE_CONNECT_TIMEOUT_MS 10000L

/* ---- resources ------------------------------------------------------------------------------------ */

const struct kube_resource KUBE_NODES = { "", "v1", "nodes", "Node", 0 };
const struct kube_resource KUBE_PODS = { "", "v1", "pods", "Pod", 1 };
const struct kube_resource KUBE_EVENTS = { "", "v1", "events", "Event", 1 };
const struct kube_resource KUBE_SECRETS = { "", "v1", "secrets", "Secret", 1 };
const struct kube_resource KUBE_NAMESPACES = { "", "v1", "namespaces", "Namespace", 0 };
const struct kube_resource KUBE_JOBS = { "batch", "v1", "jobs", "Job", 1 };
const struct kube_resource KUBE_LEASES = { "coordination.k8s.io", "v1", "leases", "Lease", 1 };
const struct kube_resource KUBE_VALIDATING_WEBHOOK_CONFIGURATIONS = {
	"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", 0
};

void kube_path(struct strbuf *sb, const struct kube_resource *r, const char *ns, const char *name, const char *sub)
{
	if (!r->group || !*r->group) {
		sb_addf(sb, "/api/%s", r->version);
	} else {
		sb_adds(sb, "/apis/");
		sb_add_urlencoded(sb, r->group);
		sb_addf(sb, "/%s", r->version);
	}
	if (r->namespaced && ns && *ns) {
		sb_adds(sb, "/namespaces/");
		sb_add_urlencoded(sb, ns);
	}
	sb_addc(sb, '/');
	sb_add_urlencoded(sb, r->plural);
	if (name && *name) {
		sb_addc(sb, '/');
		sb_add_urlencoded(sb, name);
		if (sub && *sub) {
			sb_addc(sb, '/');
			sb_add_urlencoded(sb, sub);
		}
	}
}

/* ---- errors --------------------------------------------------------------------------------------- */

void kube_err_clear(struct kube_err *e)
{
	e->code = 0;
	e->reason[0] = e->msg[0] = '\0';
	e->retry_after_s = 0;
}

int kube_err_is_expired(const struct kube_err *e)
{
	return e->code == 410 || !strcmp(e->reason, "Expired") || !strcmp(e->reason, "Gone");
}

int kube_err_is_fenced(const struct kube_err *e)
{
	return e->code == 0 && !strcmp(e->reason, "Fenced");
}

int kube_err_retryable(const struct kube_err *e)
{
	if (kube_err_is_fenced(e))
		return 0;
	return e->code == 0 || e->code == 429 || e->code >= 500;
}

const char *kube_reason_for_code(long code)
{
	switch (code) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	case 504: return "Timeout";
	default: return code >= 500 ? "InternalError" : "";
	}
}

void kube_err_from_status(struct kube_err *e, long http_code, json_t *status)
{
	json_t *jc = json_object_get(status, "code");
	long code = json_is_integer(jc) && json_integer_value(jc) > 0 ? (long)json_integer_value(jc) : http_code;
	const char *reason = kf_jstr(status, "reason", NULL), *msg = kf_jstr(status, "message", NULL);
	e->code = http_code ? http_code : code;
	if (!e->code)
		e->code = 500;
	snprintf(e->reason, sizeof e->reason, "%s", reason && *reason ? reason : kube_reason_for_code(e->code));
	if (msg && *msg)
		snprintf(e->msg, sizeof e->msg, "%s", msg);
	else
		snprintf(e->msg, sizeof e->msg, "the server responded with HTTP %ld%s%s%s", e->code,
			 *e->reason ? " (" : "", e->reason, *e->reason ? ")" : "");
}

void kube_err_from_response(struct kube_err *e, long http_code, const char *body, size_t len)
{
	int retry = e->retry_after_s;
	json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
	if (json_is_object(j) && (json_object_get(j, "reason") || json_object_get(j, "message") ||
				  !strcmp(kf_jstr(j, "kind", NULL) ? kf_jstr(j, "kind", NULL) : "", "Status"))) {
		kube_err_from_status(e, http_code, j);
	} else {
		e->code = http_code;
		snprintf(e->reason, sizeof e->reason, "%s", kube_reason_for_code(http_code));
		/* A proxy's HTML page or a plain-text error: keep the first line, printable bytes only. */
		char snippet[201];
		size_t n = 0;
		for (size_t i = 0; i < len && n < sizeof snippet - 1; i++) {
			unsigned char c = (unsigned char)body[i];
			if (c == '\n' || c == '\r') {
				if (n)
					break;
				continue;
			}
			snippet[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		}
		snippet[n] = '\0';
		snprintf(e->msg, sizeof e->msg, "the server responded with HTTP %ld%s%s%s%s%s", http_code,
			 *e->reason ? " (" : "", e->reason, *e->reason ? ")" : "", n ? ": " : "", snippet);
	}
	e->retry_after_s = retry;
	json_decref(j);
}

int kube_parse_retry_after(const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	if (!(*v >= '0' && *v <= '9'))
		return 0;
	long s = 0;
	for (; *v >= '0' && *v <= '9'; v++)
		if ((s = s * 10 + (*v - '0')) > 3600)
			s = 3600;
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	return *v ? 0 : (int)s;
}

/* ---- token bucket ----------------------------------------------------------------------------------- */

int64_t kube_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void kube_limiter_init(struct kube_limiter *l, double qps, int burst, int64_t now_ns)
{
	pthread_mutex_init(&l->mu, NULL);
	l->qps = qps;
	l->burst = burst >= 1 ? burst : 1;
	l->tokens = l->burst;
	l->last_ns = now_ns;
}

void kube_limiter_destroy(struct kube_limiter *l)
{
	pthread_mutex_destroy(&l->mu);
}

int64_t kube_limiter_reserve(struct kube_limiter *l, int64_t now_ns)
{
	if (l->qps <= 0)
		return 0;
	pthread_mutex_lock(&l->mu);
	if (now_ns > l->last_ns) {
		l->tokens += (double)(now_ns - l->last_ns) * l->qps / 1e9;
		if (l->tokens > l->burst)
			l->tokens = l->burst;
		l->last_ns = now_ns;
	}
	l->tokens -= 1;
	int64_t wait = l->tokens >= 0 ? 0 : (int64_t)(-l->tokens / l->qps * 1e9 + 0.5);
	pthread_mutex_unlock(&l->mu);
	return wait;
}

void kube_limiter_wait(struct kube_client *c)
{
	int64_t w = kube_limiter_reserve(&c->lim, kube_now_ns());
	if (w > 0) {
		struct timespec ts = { w / 1000000000, w % 1000000000 };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}

/* ---- tokens --------------------------------------------------------------------------------------- */

void kube_wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* With tok_mu held: re-reads the token file if forced or if its identity changed. Keeps the old token
 * when the file cannot be read (it may be mid-rotation); logs without the token. */
static void token_reload_locked(struct kube_client *c, int force)
{
	struct stat st;
	if (!c->token_file)
		return;
	if (stat(c->token_file, &st) < 0) {
		LOG_V(2, "token file %s: %s", c->token_file, strerror(errno));
		return;
	}
	int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (!force && st.st_dev == c->tok_dev && st.st_ino == c->tok_ino && mt == c->tok_mtime_ns &&
	    st.st_size == c->tok_size)
		return;
	struct strbuf e = STRBUF_INIT;
	size_t n;
	char *t = kf_read_file(c->token_file, &n, &e);
	if (!t) {
		LOG_WARN("token file: %s", e.buf);
		sb_release(&e);
		return;
	}
	sb_release(&e);
	size_t a = 0, b = n;
	while (a < b && strchr(" \t\r\n", t[a]))
		a++;
	while (b > a && strchr(" \t\r\n", t[b - 1]))
		b--;
	if (b > a) {
		kube_wipe_free(c->token);
		c->token = xstrndup(t + a, b - a);
		c->tok_dev = st.st_dev;
		c->tok_ino = st.st_ino;
		c->tok_mtime_ns = mt;
		c->tok_size = st.st_size;
		LOG_V(4, "bearer token re-read from %s", c->token_file);
	}
	memset(t, 0, n);
	free(t);
}

static char *token_copy(struct kube_client *c)
{
	pthread_mutex_lock(&c->tok_mu);
	token_reload_locked(c, 0);
	char *t = c->token ? xstrdup(c->token) : NULL;
	pthread_mutex_unlock(&c->tok_mu);
	return t;
}

int kube_token_refresh(struct kube_client *c, const char *token_used)
{
	if (!c->token_file)
		return 0;
	pthread_mutex_lock(&c->tok_mu);
	token_reload_locked(c, 1);
	int changed = c->token && (!token_used || strcmp(c->token, token_used));
	pthread_mutex_unlock(&c->tok_mu);
	return changed;
}

/* ---- client ------------------------------------------------------------------------------------------ */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)h;
	(void)access;
	struct kube_client *c = ud;
	pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	(void)h;
	struct kube_client *c = ud;
	pthread_mutex_unlock(&c->share_mu[data]);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Splits "scheme://host[:port][/prefix]" for the tls-server-name rewrite. Returns 0 or -1. */
static int split_url(const char *url, char **scheme, char **host, char **port, char **rest)
{
	const char *p = strstr(url, "://");
	if (!p)
		return -1;
	*scheme = xstrndup(url, (size_t)(p - url));
	p += 3;
	const char *hs = p, *he;
	if (*p == '[') {
		he = strchr(p, ']');
		if (!he)
			goto bad;
		he++;
	} else {
		he = p + strcspn(p, ":/");
	}
	*host = xstrndup(hs, (size_t)(he - hs));
	p = he;
	if (*p == ':') {
		const char *ps = ++p;
		p += strcspn(p, "/");
		*port = xstrndup(ps, (size_t)(p - ps));
	} else {
		*port = xstrdup(!strcmp(*scheme, "https") ? "443" : "80");
	}
	*rest = xstrdup(p);
	return 0;
bad:
	free(*scheme);
	return -1;
}

struct kube_client *kube_client_new(const struct kube_config *cfg, const struct kube_client_opts *opts,
				    struct strbuf *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		sb_addf(err, "cannot initialize libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	if (!cfg || !cfg->server || !*cfg->server) {
		sb_adds(err, "kube client: no API server URL in the configuration");
		return NULL;
	}
	struct kube_client *c = xcalloc(1, sizeof *c);
	c->id = kube_conn_new_client_id();
	c->max_retries = KUBE_MAX_RETRIES;
	c->retry_wait_cap_ms = KUBE_RETRY_WAIT_CAP_MS;
	pthread_mutex_init(&c->tok_mu, NULL);
	pthread_mutex_init(&c->fence_mu, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_mu[i], NULL);
	kube_limiter_init(&c->lim, opts ? opts->qps : 0, opts ? opts->burst : 1, kube_now_ns());
	c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	c->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : KUBE_CONNECT_TIMEOUT_MS;
	c->user_agent = xstrdup(opts && opts->user_agent ? opts->user_agent : kf_user_agent());
	c->namespace = xstrdup(cfg->namespace ? cfg->namespace : "default");
	c->ca_pem = cfg->ca_pem ? xstrdup(cfg->ca_pem) : NULL;
	c->cert_pem = cfg->cert_pem ? xstrdup(cfg->cert_pem) : NULL;
	c->key_pem = cfg->key_pem ? xstrdup(cfg->key_pem) : NULL;
	c->insecure = cfg->insecure;
	c->token = cfg->token ? xstrdup(cfg->token) : NULL;
	c->token_file = cfg->token_file ? xstrdup(cfg->token_file) : NULL;
	if (c->token_file) {
		pthread_mutex_lock(&c->tok_mu);
		token_reload_locked(c, 1);
		pthread_mutex_unlock(&c->tok_mu);
	}

	if (cfg->tls_server_name && *cfg->tls_server_name) {
		char *scheme, *host, *port, *rest;
		if (split_url(cfg->server, &scheme, &host, &port, &rest) < 0) {
			sb_addf(err, "kube client: cannot parse server URL \"%s\"", cfg->server);
			kube_client_free(c);
			return NULL;
		}
		c->base = xasprintf("%s://%s:%s%s", scheme, cfg->tls_server_name, port, rest);
		char *ct = xasprintf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
		c->connect_to = curl_slist_append(NULL, ct);
		free(ct);
		free(scheme);
		free(host);
		free(port);
		free(rest);
	} else {
		c->base = xstrdup(cfg->server);
	}

	c->share = curl_share_init();
	if (!c->share) {
		sb_adds(err, "kube client: curl_share_init failed");
		kube_client_free(c);
		return NULL;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	LOG_V(2, "kube client for %s (context %s, namespace %s, auth: %s%s)", cfg->server,
	      cfg->context ? cfg->context : "?", c->namespace,
	      c->cert_pem ? "client certificate" : c->token_file ? "token file" : c->token ? "token" : "none",
	      c->insecure ? ", TLS verification OFF" : "");
	return c;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	kube_conns_close_all(c);
	if (c->share && curl_share_cleanup(c->share) != CURLSHE_OK)
		LOG_ERROR("kube client freed while requests are still running");
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_mu[i]);
	pthread_mutex_destroy(&c->tok_mu);
	pthread_mutex_destroy(&c->fence_mu);
	kube_limiter_destroy(&c->lim);
	curl_slist_free_all(c->connect_to);
	free(c->base);
	free(c->ca_pem);
	free(c->cert_pem);
	if (c->key_pem)
		memset(c->key_pem, 0, strlen(c->key_pem));
	free(c->key_pem);
	kube_wipe_free(c->token);
	free(c->token_file);
	free(c->namespace);
	free(c->user_agent);
	free(c);
}

const char *kube_client_namespace(const struct kube_client *c)
{
	return c->namespace;
}

char *kube_url(struct kube_client *c, const char *path)
{
	return xasprintf("%s%s%s", c->base, path[0] == '/' ? "" : "/", path);
}

void kube_headers_free(struct curl_slist *hdrs)
{
	for (struct curl_slist *h = hdrs; h; h = h->next)
		if (!strncmp(h->data, "Authorization:", 14))
			memset(h->data, 0, strlen(h->data));
	curl_slist_free_all(hdrs);
}

CURL *kube_easy_new(struct kube_client *c, const char *method, const char *url, const char *content_type,
		    struct curl_slist **hdrs, char *errbuf, char **token_used)
{
	CURL *h = curl_easy_init();
	if (h)
		kube_easy_setup(c, h, method, url, content_type, hdrs, errbuf, token_used);
	return h;
}

void kube_easy_setup(struct kube_client *c, CURL *h, const char *method, const char *url, const char *content_type,
		     struct curl_slist **hdrs, char *errbuf, char **token_used)
{
	curl_easy_reset(h); /* keeps the handle's TLS session; connections live in the thread's multi */
	char *tok = token_copy(c);
	struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
	if (content_type) {
		char *ct = xasprintf("Content-Type: %s", content_type);
		l = curl_slist_append(l, ct);
		free(ct);
		l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip for large bodies */
	}
	if (tok) {
		char *a = xasprintf("Authorization: Bearer %s", tok);
		l = curl_slist_append(l, a);
		memset(a, 0, strlen(a));
		free(a);
	}
	if (token_used)
		*token_used = tok;
	else
		kube_wipe_free(tok);
	*hdrs = l;
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip for large lists */
	if (strcmp(method, "GET") && strcmp(method, "POST"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (c->connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
	if (c->ca_pem) {
		struct curl_blob b = { c->ca_pem, strlen(c->ca_pem), CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* only the configured CA, not the system store */
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (c->cert_pem && c->key_pem) {
		struct curl_blob cb = { c->cert_pem, strlen(c->cert_pem), CURL_BLOB_NOCOPY };
		struct curl_blob kb = { c->key_pem, strlen(c->key_pem), CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}
