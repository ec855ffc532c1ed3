/* wh_server.c - HTTPS transport for the webhook on libmicrohttpd; see wh_server.h.
 *
 * libmicrohttpd calls handler() several times per request: once when the headers are in (we allocate the
 * per-request state and may answer 413 at once), once per chunk of body (appended, or discarded when over
 * the limit), and once more with no data (we answer). completed() frees the state. */
#include "wh_server.h"

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

#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

enum route { R_NOT_FOUND, R_VALIDATE, R_MUTATE, R_READYZ, R_HEALTHZ };

struct wh_server {
	struct MHD_Daemon *d;
	int port;
	struct wh_server_opts o;
	atomic_int inflight;
	atomic_int draining;
	atomic_uint_fast64_t requests, allowed, denied, errors, dropped;
};

struct req {
	int64_t start_us;
	enum route route;
	struct strbuf body;
	int too_big;
	int answered; /* a reply was queued on the first call (413) */
};

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

static enum MHD_Result validate(struct wh_server *s, struct MHD_Connection *c, struct req *r)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct wh_reply rep;
	LOG_V(5, "request body (%zu bytes): %.*s", r->body.len, (int)(r->body.len > 65536 ? 65536 : r->body.len),
	      r->body.buf);
	wh_review(ct, r->body.buf, r->body.len, &rep);
	const char *verdict = rep.verdict == WH_ALLOWED ? "allowed" : rep.verdict == WH_DENIED ? "denied" : "error";
	atomic_fetch_add(rep.verdict == WH_ALLOWED ? &s->allowed : rep.verdict == WH_DENIED ? &s->denied : &s->errors,
			 1);
	enum MHD_Result ret = reply(c, rep.status, rep.content_type, rep.body, rep.body_len);
	rep.body = NULL; /* taken by reply() */
	LOG_V(2, "POST /validate-image-cache %d uid=%s op=%s %s%s%s %s%s%s%s %.3fms", rep.status,
	      rep.uid[0] ? rep.uid : "-", rep.operation[0] ? rep.operation : "-", rep.ns, rep.ns[0] ? "/" : "",
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
		sb_init(&r->body);
		*con_cls = r;
		atomic_fetch_add(&s->inflight, 1);
		atomic_fetch_add(&s->requests, 1);
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
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (s->o.request_timeout_ms > 0 && now_us() - r->start_us > s->o.request_timeout_ms * 1000) {
			atomic_fetch_add(&s->dropped, 1);
			LOG_V(1, "%s %s: request body not received within %lldms, connection dropped", method, url,
			      (long long)s->o.request_timeout_ms);
			return MHD_NO;
		}
		if (r->route == R_VALIDATE && !r->too_big && !r->answered) {
			if (r->body.len + *upload_data_size > s->o.max_body) {
				r->too_big = 1;
				sb_release(&r->body);
			} else {
				sb_add(&r->body, upload_data, *upload_data_size);
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
		return validate(s, c, r);
	case R_MUTATE:
		LOG_V(2, "%s /mutate-image-cache 200 (no-op)", method);
		return reply(c, 200, NULL, NULL, 0);
	case R_READYZ:
		if (atomic_load(&s->draining))
			return reply_text(c, 503, "shutting down\n");
		/* fall through */
	case R_HEALTHZ:
		LOG_V(4, "%s %s 200", method, url);
		return reply_text(c, 200, "ok");
	default:
		LOG_V(2, "%s %s 404", method, url);
		return reply_text(c, 404, "404 page not found\n");
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)c, (void)toe;
	struct wh_server *s = cls;
	struct req *r = *con_cls;
	if (!r)
		return;
	sb_release(&r->body);
	free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
}

/* Replies are small and written in more than one piece (TLS records for headers and body): without
 * TCP_NODELAY, Nagle's algorithm holds the last piece until the client's delayed ACK, up to 40 ms. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls, (void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int one = 1;
	if (ci)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_verbosity < 1)
		return; /* TLS garbage from port scanners is not worth a line at the default level */
	struct strbuf sb = STRBUF_INIT;
	sb_vaddf(&sb, fmt, ap);
	while (sb.len && (sb.buf[sb.len - 1] == '\n'))
		sb.buf[--sb.len] = 0;
	LOG_V(1, "libmicrohttpd: %s", sb.buf);
	sb_release(&sb);
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
	free(s);
}
