/* wh_server.h - the webhook's HTTPS server (libmicrohttpd, GnuTLS backend).
 *
 *   POST /validate-image-cache   AdmissionReview -> wh_review() (wh_admission.h)
 *        /mutate-image-cache     200 with an empty body (registered by upstream, never configured)
 *   GET  /readyz, /healthz       "ok" (503 "shutting down" for /readyz once a graceful stop began)
 *   anything else                404 "404 page not found"
 *
 * Threads: libmicrohttpd's internal pool of `threads` epoll workers; a request is handled on the worker
 * that owns its connection (validation is CPU-only and takes microseconds).
 * Limits, so slow or hostile clients cannot exhaust it: at most max_connections open connections
 * (further ones are refused by the kernel backlog or closed at once); a connection idle for
 * idle_timeout_s is closed (keep it above the API server's 90 s idle pool timeout so the client closes
 * first); a request body must arrive within request_timeout_ms of its headers or the connection is
 * dropped; a body over max_body bytes is answered 413 at once when Content-Length announces it, else
 * discarded as it streams and answered 413 at its end, never buffered. Headers are bounded by
 * libmicrohttpd's per-connection memory pool (32 KiB).
 * TLS 1.2 and 1.3 only; the certificate comes from a wh_tls (hot-swappable), registered for the process.
 *
 * Request log at -v=2: method, path, status, uid, operation, namespace/name, verdict and message, latency.
 */
#ifndef WH_SERVER_H
#define WH_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"
#include "wh_tls.h"

struct wh_server_opts {
	const char *bind_address;   /* NULL or "" = every interface (IPv6 dual-stack if available, else IPv4) */
	int port;                   /* 0 = any free port (see wh_server_port) */
	int threads;                /* worker threads, >= 1 */
	int max_connections;
	int idle_timeout_s;
	int64_t request_timeout_ms;
	size_t max_body;
	struct wh_tls *tls;         /* borrowed, must outlive the server; registered with wh_tls_register */
};

struct wh_server_stats {
	uint64_t requests, allowed, denied, errors; /* errors: 4xx/5xx replies on /validate-image-cache */
	uint64_t dropped;                           /* connections dropped for a request timeout */
};

struct wh_server;

/* Binds, listens and starts serving. NULL with err set on failure (port in use, bad address, no TLS). */
struct wh_server *wh_server_start(const struct wh_server_opts *o, struct strbuf *err);
int wh_server_port(const struct wh_server *s);
void wh_server_stats(struct wh_server *s, struct wh_server_stats *out);
/* Graceful stop: stop accepting, /readyz turns 503, requests in flight get up to grace_ms to finish,
 * then every connection is closed. Frees s. */
void wh_server_stop(struct wh_server *s, int64_t grace_ms);

#endif
