/* metrics_http.h - a small plain-HTTP server for a component's operational endpoints (libmicrohttpd, one
 * internal thread):
 *   GET /metrics   the registry in Prometheus text format (text/plain; version=0.0.4)
 *   GET /healthz   200 "ok", or 500 with the reason when the healthy callback says so
 *   GET /readyz    200 "ok", or 503 with the reason while the ready callback says not ready
 *   anything else 404; methods other than GET/HEAD 405.
 * Kept generic: the agent uses it now, the controller can later. Connections are limited (64) and
 * closed when idle for 30 s, so a slow scraper cannot pile them up. */
#ifndef KF_METRICS_HTTP_H
#define KF_METRICS_HTTP_H

#include "metrics.h"
#include "strbuf.h"

struct metrics_http_opts {
	const char *bind_address; /* "host:port", ":port", "[::1]:port"; port 0 = any free port */
	struct metrics *registry; /* borrowed, must outlive the server */
	/* Optional. Return 1 when healthy / ready, else 0 with a reason in why. Called on the server's
	 * thread: keep them cheap (read a flag). */
	int (*healthy)(void *ud, struct strbuf *why);
	int (*ready)(void *ud, struct strbuf *why);
	void *ud;
};

struct metrics_http;

/* Binds and serves. NULL with err set on failure (bad address, port in use). */
struct metrics_http *metrics_http_start(const struct metrics_http_opts *o, struct strbuf *err);
int metrics_http_port(const struct metrics_http *s); /* the bound port */
void metrics_http_stop(struct metrics_http *s);     /* stops, closes every connection, frees s */

#endif
