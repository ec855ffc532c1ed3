/* wh_server.c - HTTPS transport for the webhook on libmicrohttpd; see wh_server.h.
 *
 * libmicrohttpd calls handler() several times per request: once when the headers are in (we allocate the
 * per-request state, take the body's bytes from the budget, and may answer 413 or 503 at once), once per
 * chunk of body (appended, or discarded when over the limit), and once more with no data (we answer).
 * completed() frees the state and gives the bytes back. on_connection() tracks every connection in the
 * wh_guard from accept to close, and the handler and completed() move its deadline. */
#include "wh_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/listen.h"
#include "util/log.h"
#include "util/util.h"
#include "wh_admission.h"
#include "wh_guard.h"

/* TLS 1.2 and 1.3; AEAD ciphers only (no CBC with its MAC-then-encrypt history), ECDHE only (forward
 * secrecy; the certificate may be ECDSA, ours, or RSA, a user's). What the API server's Go client offers
 * first anyway. */
#define TLS_PRIORITIES                                                                                    \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"

enum route { R_NOT_FOUND, R_VALIDATE, R_MUTATE, R_READYZ, R_HEALTHZ };

struct wh_server {
	struct MHD_Daemon *d;
	int port;
	struct wh_server_opts o;
	struct wh_guard *guard;
	atomic_int inflight;
	atomic_int draining;
	atomic_uint_fast64_t requests, allowed, denied, errors, dropped, busy;
};

struct req {
	int64_t start_us;
	enum route route;
	struct wh_guard_conn *gc; /* the connection's guard record: deadlines, its address's share */
	char *body;       /* len bytes of cap, the cap taken from the budget (reserved) */
	size_t len, cap, reserved;
	int too_big;
	int over_budget;  /* a chunked body outgrew the budget: discarded, 503 at its end */
	int answered;     /* a reply was queued on the first call (413, 503) */
};

/* The wh_guard record of a connection (set by on_connection), or NULL. */
static struct wh_guard_conn *guard_conn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void guard_due(struct wh_server *s, struct MHD_Connection *c, int64_t in_ms)
{
	wh_guard_set_deadline(s->guard, guard_conn(c), in_ms > 0 ? kf_now_ms() + in_ms : 0);
}

/* What a client sent, quoted and escaped for a log line. */
static const char *esc(struct strbuf *sb, const char *s)
{
	sb_add_quoted(sb, s ? s : "");
	return sb->buf;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static enum route route_of(const char *url)
{
	if (!strcmp(url, "/validate-image-cache"))
		return R_VALIDATE;
	if (!strcmp(url, "/mutate-image-cache"))
		return R_MUTATE;
	if (!strcmp(url, "/readyz"))
		return R_READYZ;
	if (!strcmp(url, "/healthz"))
		return R_HEALTHZ;
	return R_NOT_FOUND;
}

/* Queues a reply; body is malloc'd (taken) or NULL. */
static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *ctype, char *body, size_t len)
{
	struct MHD_Response *r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) :
					MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status >= 400)
		MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, int status, const char *text)
{
	char *b = xstrdup(text);
	return reply(c, status, "text/plain; charset=utf-8", b, strlen(b));
}

static enum MHD_Result too_big(struct wh_server *s, struct MHD_Connection *c, struct req *r)
{
	atomic_fetch_add(&s->errors, 1);
	LOG_V(1, "POST /validate-image-cache 413 body over %zu bytes, %.3fms", s->o.max_body,
	      (double)(now_us() - r->start_us) / 1000.0);
	char *msg = xasprintf("Request body is larger than %zu bytes, the limit of this webhook\n", s->o.max_body);
	return reply(c, 413, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* 503: the request's body does not fit the bytes the server holds at once. Answered before the body is
 * read (or, chunked, at its end); the connection is then closed. */
static enum MHD_Result busy(struct wh_server *s, struct MHD_Connection *c, struct req *r)
{
	atomic_fetch_add(&s->busy, 1);
	atomic_fetch_add(&s->errors, 1);
	LOG_V(1, "POST /validate-image-cache 503 request bytes in flight over %zu, %.3fms", s->o.max_inflight_bytes,
	      (double)(now_us() - r->start_us) / 1000.0);
	char *msg = xasprintf("The webhook holds at most %zu bytes of requests at once and is full; retry\n",
			      s->o.max_inflight_bytes);
	struct MHD_Response *rs = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_FREE);
	if (!rs) {
		free(msg);
		return MHD_NO;
	}
	MHD_add_response_header(rs, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(rs, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	enum MHD_Result ret = MHD_queue_response(c, 503, rs);
	MHD_destroy_response(rs);
	return ret;
}

static void body_free(struct wh_server *s, struct req *r)
{
	free(r->body);
	r->body = NULL;
	r->len = r->cap = 0;
	wh_guard_release(s->guard, r->gc, r->reserved);
	r->reserved = 0;
}

/* Appends a chunk of body within the budget: the announced length was taken up front; a chunked body
 * takes more as it grows (doubling). 0, or -1 when the budget is spent (nothing kept). */
static int body_add(struct wh_server *s, struct req *r, const char *data, size_t n)
{
	size_t need = r->len + n;
	if (need > r->cap) {
		size_t cap = r->reserved >= need ? r->reserved : r->cap * 2 > need ? r->cap * 2 : need;
		if (cap < 4096 && need <= 4096 && s->o.max_body >= 4096)
			cap = 4096;
		if (cap > s->o.max_body)
			cap = s->o.max_body;
		if (cap > r->reserved) {
			if (wh_guard_reserve(s->guard, r->gc, cap - r->reserved) < 0)
				return -1;
			r->reserved = cap;
		}
		r->body = xrealloc(r->body, cap);
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len = need;
	return 0;
}

static enum MHD_Result validate(struct wh_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct wh_reply rep;
	LOG_V(5, "request body (%zu bytes): %.*s", r->len, (int)(r->len > 65536 ? 65536 : r->len),
	      r->body ? r->body : "");
	wh_review(ct, r->body ? r->body : "", r->len, &rep);
	const char *verdict = rep.verdict == WH_ALLOWED ? "allowed" : rep.verdict == WH_DENIED ? "denied" : "error";
	atomic_fetch_add(rep.verdict == WH_ALLOWED ? &s->allowed : rep.verdict == WH_DENIED ? &s->denied : &s->errors,
			 1);
	enum MHD_Result ret = reply(c, rep.status, rep.content_type, rep.body, rep.body_len);
	rep.body = NULL; /* taken by reply() */
	LOG_V(2, "POST /validate-image-cache %d from %s uid=%s op=%s %s%s%s %s%s%s%s %.3fms", rep.status,
	      *wh_guard_addr(r->gc) ? wh_guard_addr(r->gc) : "-", rep.uid[0] ? rep.uid : "-", rep.operation[0] ? rep.operation : "-", rep.ns, rep.ns[0] ? "/" : "",
	      rep.name[0] ? rep.name : "-", verdict, rep.message[0] ? " \"" : "", rep.message,
	      rep.message[0] ? "\"" : "", (double)(now_us() - r->start_us) / 1000.0);
	wh_reply_free(&rep);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_data_size,
			       void **con_cls)
{
	(void)version;
	struct wh_server *s = cls;
	struct req *r = *con_cls;
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->start_us = now_us();
		r->route = route_of(url);
		r->gc = guard_conn(c);
		*con_cls = r;
		atomic_fetch_add(&s->inflight, 1);
		atomic_fetch_add(&s->requests, 1);
		guard_due(s, c, s->o.request_timeout_ms); /* headers are in: now the body and the reply */
		if (r->route == R_VALIDATE && !strcmp(method, "POST")) {
			/* An announced body over the limit is read and discarded, then answered 413: a reply
			 * sent while the client is still sending is often lost to a broken pipe. Only an absurd
			 * announcement (beyond 4x the limit) is answered at once and the connection closed. */
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
			unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
			if (n > s->o.max_body)
				r->too_big = 1;
			if (n / 4 > s->o.max_body) {
				r->answered = 1;
				return too_big(s, c, r);
			}
			/* A body that will be kept takes its bytes from the budget now, or is refused now: a
			 * prompt 503 rather than memory the pod does not have. */
			if (!r->too_big && n > 0) {
				if (wh_guard_reserve(s->guard, r->gc, (size_t)n) < 0) {
					r->answered = 1;
					return busy(s, c, r);
				}
				r->reserved = (size_t)n;
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (s->o.request_timeout_ms > 0 && now_us() - r->start_us > s->o.request_timeout_ms * 1000) {
			struct strbuf m = STRBUF_INIT, u = STRBUF_INIT;
			atomic_fetch_add(&s->dropped, 1);
			LOG_V(1, "%s %s: request body not received within %lldms, connection dropped", esc(&m, method),
			      esc(&u, url), (long long)s->o.request_timeout_ms);
			sb_release(&m);
			sb_release(&u);
			return MHD_NO;
		}
		if (r->route == R_VALIDATE && !r->too_big && !r->answered && !r->over_budget) {
			if (r->len + *upload_data_size > s->o.max_body) {
				r->too_big = 1;
				body_free(s, r);
			} else if (body_add(s, r, upload_data, *upload_data_size) < 0) {
				r->over_budget = 1;
				body_free(s, r);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;

	switch (r->route) {
	case R_VALIDATE:
		if (strcmp(method, "POST")) {
			atomic_fetch_add(&s->errors, 1);
			return reply_text(c, 405, "Method not allowed: use POST\n");
		}
		if (r->too_big)
			return too_big(s, c, r);
		if (r->over_budget)
			return busy(s, c, r);
		return validate(s, c, r);
	case R_MUTATE:
		LOG_V(2, "POST /mutate-image-cache 200 (no-op)");
		return reply(c, 200, NULL, NULL, 0);
	case R_READYZ:
		if (atomic_load(&s->draining))
			return reply_text(c, 503, "shutting down\n");
		/* fall through */
	case R_HEALTHZ:
		LOG_V(4, "%s %s 200", method, url); /* a fixed route, not whatever the client sent */
		return reply_text(c, 200, "ok");
	default: {
		struct strbuf m = STRBUF_INIT, u = STRBUF_INIT;
		LOG_V(2, "%s %s 404", esc(&m, method), esc(&u, url));
		sb_release(&m);
		sb_release(&u);
		return reply_text(c, 404, "404 page not found\n");
	}
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	struct wh_server *s = cls;
	struct req *r = *con_cls;
	if (!r)
		return;
	body_free(s, r);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
	/* kept alive: the next request's headers are due within the idle timeout */
	guard_due(s, c, (int64_t)s->o.idle_timeout_s * 1000);
}

/* Every connection is tracked by the guard from accept (handshake and headers due within the header
 * timeout) to close. Replies are small and written in more than one piece (TLS records for headers and
 * body): without TCP_NODELAY, Nagle's algorithm holds the last piece until the client's delayed ACK, up
 * to 40 ms. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct wh_server *s = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		wh_guard_close(s->guard, *socket_context);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci)
		return;
	int one = 1;
	setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char addr[INET6_ADDRSTRLEN] = "";
	const struct sockaddr *sa = ai ? ai->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
	*socket_context = wh_guard_open(s->guard, ci->connect_fd, addr, kf_now_ms() + s->o.header_timeout_ms);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_verbosity < 1)
		return; /* TLS garbage from port scanners is not worth a line at the default level */
	struct strbuf sb = STRBUF_INIT, e = STRBUF_INIT;
	sb_vaddf(&sb, fmt, ap);
	while (sb.len && (sb.buf[sb.len - 1] == '\n'))
		sb.buf[--sb.len] = 0;
	LOG_V(1, "libmicrohttpd: %s", esc(&e, sb.buf)); /* may quote what a client sent */
	sb_release(&sb);
	sb_release(&e);
}

struct wh_server *wh_server_start(const struct wh_server_opts *o, struct strbuf *err)
{
	if (!o->tls || !wh_tls_ready(o->tls)) {
		sb_adds(err, "no serving certificate loaded");
		return NULL;
	}
	if (o->threads < 1 || o->max_connections < 1 || o->max_body < 1 || o->idle_timeout_s < 1) {
		sb_adds(err, "threads, max connections, max request bytes and idle timeout must be positive");
		return NULL;
	}
	if (wh_tls_register(o->tls) < 0) {
		sb_adds(err, "another webhook server already serves in this process");
		return NULL;
	}
	struct wh_server *s = xcalloc(1, sizeof *s);
	s->o = *o;
	if (s->o.max_conns_per_ip <= 0)
		s->o.max_conns_per_ip = WH_DEFAULT_CONNS_PER_IP;
	if (s->o.header_timeout_ms <= 0)
		s->o.header_timeout_ms = WH_DEFAULT_HEADER_TIMEOUT_MS;
	if (!s->o.max_inflight_bytes)
		s->o.max_inflight_bytes = WH_DEFAULT_INFLIGHT_BYTES;
	if (!s->o.max_inflight_bytes_per_ip)
		s->o.max_inflight_bytes_per_ip = s->o.max_inflight_bytes / 4;
	if (s->o.max_inflight_bytes_per_ip < s->o.max_body)
		s->o.max_inflight_bytes_per_ip = s->o.max_body;
	if (!(s->guard = wh_guard_new(s->o.max_inflight_bytes, s->o.max_inflight_bytes_per_ip))) {
		sb_adds(err, "cannot start the connection deadline thread");
		goto fail;
	}
	int fd = kf_listen_tcp(o->bind_address, o->port, &s->port, err);
	if (fd < 0)
		goto fail;
	gnutls_certificate_retrieve_function2 *cb = (gnutls_certificate_retrieve_function2 *)wh_tls_cert_callback();
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ITC |
			     MHD_USE_ERROR_LOG;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				MHD_OPTION_HTTPS_CERT_CALLBACK, cb, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->o.max_conns_per_ip,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->idle_timeout_s,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(o->threads > 1 ? o->threads : 0),
				MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
				s, MHD_OPTION_END);
	if (!s->d) {
		sb_addf(err, "cannot start the HTTPS server on port %d (libmicrohttpd refused the configuration)",
			s->port);
		close(fd);
		goto fail;
	}
	return s;
fail:
	wh_tls_register(NULL);
	wh_guard_free(s->guard);
	free(s);
	return NULL;
}

int wh_server_port(const struct wh_server *s)
{
	return s->port;
}

void wh_server_stats(struct wh_server *s, struct wh_server_stats *out)
{
	out->requests = atomic_load(&s->requests);
	out->allowed = atomic_load(&s->allowed);
	out->denied = atomic_load(&s->denied);
	out->errors = atomic_load(&s->errors);
	out->dropped = atomic_load(&s->dropped);
	out->busy = atomic_load(&s->busy);
	struct wh_guard_stats gs;
	wh_guard_stats(s->guard, &gs);
	out->expired = gs.expired;
	out->inflight_peak = gs.peak;
}

void wh_server_stop(struct wh_server *s, int64_t grace_ms)
{
	if (!s)
		return;
	atomic_store(&s->draining, 1);
	MHD_socket lfd = MHD_quiesce_daemon(s->d);
	int64_t deadline = kf_now_ms() + grace_ms;
	while (atomic_load(&s->inflight) > 0 && kf_now_ms() < deadline)
		kf_sleep_ms(10);
	MHD_stop_daemon(s->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	wh_tls_register(NULL);
	wh_guard_free(s->guard);
	free(s);
}
