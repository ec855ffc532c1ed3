/* wh_guard.h - what keeps slow or hostile clients from starving the webhook's HTTPS server, apart from the
 * HTTP library: deadlines per connection, and a budget of request bytes held in memory.
 *
 * Deadlines. libmicrohttpd only has an inactivity timeout, which a client defeats by sending a byte now
 * and then (a TLS handshake or request headers trickled for minutes), and no hook at all during the TLS
 * handshake. Here every connection has an absolute deadline, moved by the server as the connection
 * progresses (accepted -> handshake and headers due; headers in -> body and reply due; reply sent -> the
 * next request's headers due). A reaper thread looks every WH_GUARD_TICK_MS and shuts down (shutdown(2))
 * the socket of a connection past its deadline; the server then reads EOF and closes the connection in its
 * own thread, as for any client that went away. The socket stays the server's to close: a connection is
 * forgotten (wh_guard_close) before the server closes its descriptor, under the same lock the reaper
 * holds, so the reaper never touches a descriptor number that was reused.
 *
 * Budget. Request bodies are buffered before they are reviewed. wh_guard_reserve() accounts the bytes a
 * request may hold against one budget for the whole server, and against a share of it for the client
 * address of its connection, so that one client cannot take the whole budget and starve the others (the
 * API server); a request that does not fit is answered at once (503) instead of growing memory. Many
 * addresses together can still fill the budget: keeping them away is the NetworkPolicy's job
 * (docs/webhook.md). All functions are thread-safe. */
#ifndef WH_GUARD_H
#define WH_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define WH_GUARD_TICK_MS 100

struct wh_guard;
struct wh_guard_conn;

/* budget_bytes: most request bytes held at once (> 0); per_addr_bytes: most of them held for one client
 * address. Starts the reaper thread. NULL if it cannot. */
struct wh_guard *wh_guard_new(size_t budget_bytes, size_t per_addr_bytes);
/* Stops the reaper. Every connection must have been closed (wh_guard_close) before. */
void wh_guard_free(struct wh_guard *g);

/* Tracks a new connection on fd from the client address addr (any string naming it, e.g. "127.0.0.2"; the
 * share is per distinct string), due by deadline_ms (kf_now_ms() clock; 0 = none). Never fails. */
struct wh_guard_conn *wh_guard_open(struct wh_guard *g, int fd, const char *addr, int64_t deadline_ms);
/* The client address c was opened with (borrowed, valid until wh_guard_close); "" for NULL. */
const char *wh_guard_addr(const struct wh_guard_conn *c);
/* Moves c's deadline (0 = none). */
void wh_guard_set_deadline(struct wh_guard *g, struct wh_guard_conn *c, int64_t deadline_ms);
/* Forgets c and frees it; call before the descriptor is closed. NULL is fine. */
void wh_guard_close(struct wh_guard *g, struct wh_guard_conn *c);

/* Takes n bytes of the budget for a request on connection c: 0, or -1 (nothing taken) when they do not
 * fit the budget or c's address share. Give them back with wh_guard_release before c is closed. */
int wh_guard_reserve(struct wh_guard *g, struct wh_guard_conn *c, size_t n);
void wh_guard_release(struct wh_guard *g, struct wh_guard_conn *c, size_t n);

struct wh_guard_stats {
	uint64_t expired;  /* connections shut down at their deadline */
	size_t open;       /* connections tracked now */
	size_t in_use;     /* budget bytes taken now */
	size_t peak;       /* most budget bytes ever taken at once */
};
void wh_guard_stats(struct wh_guard *g, struct wh_guard_stats *out);

#endif
