/* metrics_http.c - /metrics, /healthz and /readyz over plain HTTP with libmicrohttpd (see
 * metrics_http.h). */
#include "metrics_http.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "util.h"

struct metrics_http {
	struct metrics_http_opts o;
	struct MHD_Daemon *d;
	int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *ctype, struct strbuf *body)
{
	size_t len = body->len;
	char *buf = sb_detach(body);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	struct metrics_http *s = cls;
	struct strbuf body = STRBUF_INIT;
	if (!*con_cls) { /* first call: headers only */
		*con_cls = s;
		return MHD_YES;
	}
	if (*upload_data_size) { /* a body we do not want: swallow it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		sb_adds(&body, "method not allowed\n");
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", &body);
	}
	if (!strcmp(url, "/metrics")) {
		metrics_render(s->o.registry, &body);
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &body);
	}
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz")) {
		int ready = !strcmp(url, "/readyz");
		int (*fn)(void *, struct strbuf *) = ready ? s->o.ready : s->o.healthy;
		struct strbuf why = STRBUF_INIT;
		int ok = !fn || fn(s->o.ud, &why);
		if (ok)
			sb_adds(&body, "ok\n");
		else
			sb_addf(&body, "%s\n", why.len ? why.buf : "not ready");
		sb_release(&why);
		return reply(c, ok ? MHD_HTTP_OK : ready ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
			     "text/plain; charset=utf-8", &body);
	}
	sb_adds(&body, "404 page not found\n");
	return reply(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", &body);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	struct strbuf sb = STRBUF_INIT;
	sb_vaddf(&sb, fmt, ap);
	while (sb.len && sb.buf[sb.len - 1] == '\n')
		sb.buf[--sb.len] = 0;
	LOG_V(1, "libmicrohttpd: %s", sb.buf);
	sb_release(&sb);
}

struct metrics_http *metrics_http_start(const struct metrics_http_opts *o, struct strbuf *err)
{
	char *host = NULL;
	int port = 0;
	struct strbuf why = STRBUF_INIT;
	if (!o->registry) {
		sb_adds(err, "metrics server: no registry");
		return NULL;
	}
	if (kf_split_host_port(o->bind_address, &host, &port, &why) < 0) {
		sb_addf(err, "invalid metrics bind address %s", why.buf);
		sb_release(&why);
		return NULL;
	}
	sb_release(&why);
	struct metrics_http *s = xcalloc(1, sizeof *s);
	s->o = *o;
	int fd = kf_listen_tcp(host, port, &s->port, err);
	free(host);
	if (fd < 0) {
		free(s);
		return NULL;
	}
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
				NULL, NULL, handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, 64u,
				MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (!s->d) {
		sb_addf(err, "cannot start the metrics server on %s", o->bind_address);
		close(fd);
		free(s);
		return NULL;
	}
	return s;
}

int metrics_http_port(const struct metrics_http *s)
{
	return s->port;
}

void metrics_http_stop(struct metrics_http *s)
{
	if (!s)
		return;
	MHD_socket fd = MHD_quiesce_daemon(s->d);
	MHD_stop_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	free(s);
}
