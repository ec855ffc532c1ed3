/* wh_server.h - the webhook's HTTPS server (libmicrohttpd, GnuTLS backend).
 *
 *   POST /validate-image-cache   AdmissionReview -> wh_review() (wh_admission.h)
 *        /mutate-image-cache     200 with an empty body (registered by upstream, never configured)
 *   GET  /readyz, /healthz       "ok" (503 "shutting down" for /readyz once a graceful stop began)
 *   anything else                404 "404 page not found"
 *
 * Threads: libmicrohttpd's internal pool of `threads` epoll workers; a request is handled on the worker
 * that owns its connection (validation is CPU-only and takes microseconds).
 * Limits, so that no client can starve the API server's reviews (issue 10 #15: one client holding 1,100
 * idle connections timed every review out; 1,000 connections x 4 MiB bodies fit no pod):
 *   - at most max_connections open connections, and at most max_conns_per_ip from one address (further
 *     ones are closed at once, so one client cannot take them all);
 *   - absolute deadlines (wh_guard.h), which a trickling client cannot push back: accept -> TLS handshake
 *     and request headers within header_timeout_ms; headers -> body and reply within request_timeout_ms;
 *     reply -> the next request's headers within idle_timeout_s (keep it above the API server's 90 s idle
 *     pool timeout so that the client closes first); libmicrohttpd's inactivity timeout (idle_timeout_s)
 *     stays as a second line;
 *   - request bytes held in memory, all connections together, at most max_inflight_bytes, and of them at
 *     most max_inflight_bytes_per_ip for one client address (so one client cannot take the budget): a
 *     request whose announced Content-Length does not fit is answered 503 (Retry-After: 1) at once and
 *     its body never read; a chunked one that outgrows it is discarded and answered 503 at its end;
 *   - a body over max_body bytes is answered 413 at once when Content-Length announces it over 4x the
 *     limit, else discarded as it streams and answered 413 at its end, never buffered;
 *   - headers are bounded by libmicrohttpd's per-connection memory pool (32 KiB).
 * TLS 1.2 and 1.3, AEAD ciphers (AES-GCM, ChaCha20-Poly1305) with ECDHE only (no CBC, no RSA key exchange);
 * the certificate comes from a wh_tls (hot-swappable), registered for the process.
 *
 * Request log at -v=2: method, path, status, client address, uid, operation, namespace/name, verdict and
 * message, latency;
 * whatever the client sent (method, path) is escaped before it is logged.
 */
#ifndef WH_SERVER_H
#define WH_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"
#include "wh_tls.h"

#define WH_DEFAULT_CONNS_PER_IP 100
#define WH_DEFAULT_HEADER_TIMEOUT_MS 10000
#define WH_DEFAULT_INFLIGHT_BYTES (32u * 1024 * 1024)

struct wh_server_opts {
	const char *bind_address;   /* NULL or "" = every interface (IPv6 dual-stack if available, else IPv4) */
	int port;                   /* 0 = any free port (see wh_server_port) */
	int threads;                /* worker threads, >= 1 */
	int max_connections;
	int idle_timeout_s;
	int64_t request_timeout_ms;
	size_t max_body;
	struct wh_tls *tls;         /* borrowed, must outlive the server; registered with wh_tls_register */
	int max_conns_per_ip;       /* 0 = WH_DEFAULT_CONNS_PER_IP */
	int64_t header_timeout_ms;  /* TLS handshake + request headers; 0 = WH_DEFAULT_HEADER_TIMEOUT_MS */
	size_t max_inflight_bytes;  /* request bytes held at once; 0 = WH_DEFAULT_INFLIGHT_BYTES */
	size_t max_inflight_bytes_per_ip; /* of them, for one client address; 0 = a quarter (>= max_body) */
};

struct wh_server_stats {
	uint64_t requests, allowed, denied, errors; /* errors: 4xx/5xx replies on /validate-image-cache */
	uint64_t dropped;                           /* connections dropped for a slow body (seen as data came) */
	uint64_t expired;                           /* connections cut at a deadline (wh_guard) */
	uint64_t busy;                              /* 503s: the request did not fit max_inflight_bytes */
	size_t inflight_peak;                       /* most request bytes held at once */
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
