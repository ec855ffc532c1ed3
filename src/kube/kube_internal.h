/* kube_internal.h - what the kube_*.c files share with each other and with their unit tests: the client
 * structure, error classification, the token bucket, the watch stream decoder and the informer's store
 * reconciliation. These are pure functions (no I/O) so that tests can feed them recorded API responses.
 * Not part of the contract for the layers above (they include the public kube_*.h headers only). */
#ifndef KUBE_INTERNAL_H
#define KUBE_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "kube_client.h"
#include "kube_informer.h"
#include "util/map.h"
#include "util/strbuf.h"

/* ---- stop flags ------------------------------------------------------------------------------------ */
/* The public API takes stop flags as `const volatile int *`, set by another thread (or a signal handler).
 * Both sides use relaxed atomic accesses on that int, so that a stop is a defined, race-free handoff
 * (ThreadSanitizer checks it); callers in other threads set theirs with kube_stop_set(). */
static inline int kube_stop_get(const volatile int *f)
{
	return f && __atomic_load_n(f, __ATOMIC_RELAXED);
}
static inline void kube_stop_set(volatile int *f)
{
	__atomic_store_n(f, 1, __ATOMIC_RELAXED);
}

/* ---- token bucket (client-go's flowcontrol.NewTokenBucketRateLimiter) ---------------------------- */
struct kube_limiter {
	pthread_mutex_t mu;
	double qps, burst; /* qps <= 0: unlimited */
	double tokens;     /* may go negative: reservations not yet due */
	int64_t last_ns;   /* when tokens was computed */
};
void kube_limiter_init(struct kube_limiter *l, double qps, int burst, int64_t now_ns);
void kube_limiter_destroy(struct kube_limiter *l);
/* Takes one token at now_ns; returns how long (ns) the caller must wait before using it (0 = now). */
int64_t kube_limiter_reserve(struct kube_limiter *l, int64_t now_ns);
int64_t kube_now_ns(void); /* CLOCK_MONOTONIC */
struct kube_client;
void kube_limiter_wait(struct kube_client *c); /* reserves a token of c's bucket and sleeps until it is due */

/* ---- the client ------------------------------------------------------------------------------------ */
struct kube_conn;
struct kube_client {
	uint64_t id;                   /* unique in the process, never reused (per-thread conns find theirs by it) */
	char *base;                    /* server URL used in requests (host = tls_server_name, see kube_client.c) */
	struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO for the tls_server_name override, or NULL */
	char *ca_pem, *cert_pem, *key_pem;
	int insecure;
	char *namespace, *user_agent;
	long timeout_ms, connect_timeout_ms;
	int max_retries;               /* 429 / 5xx-with-Retry-After retries (KUBE_MAX_RETRIES) */
	int64_t retry_wait_cap_ms;     /* longest single Retry-After wait (KUBE_RETRY_WAIT_CAP_MS; tests lower it) */

	pthread_mutex_t tok_mu; /* guards token and the token file's identity */
	char *token, *token_file;
	dev_t tok_dev;
	ino_t tok_ino;
	int64_t tok_mtime_ns;
	off_t tok_size;

	CURLSH *share; /* TLS sessions and DNS only: connections are per thread (kube_conn.c) */
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	struct kube_conn *conns; /* every thread's conn for this client (kube_conn.c's conns_mu) */
	struct kube_limiter lim;

	pthread_mutex_t fence_mu; /* serializes kube_client_fence() */
	_Atomic int fenced;
	char fence_reason[256];   /* written once, before fenced is set */

	_Atomic uint64_t n_requests, n_watches, n_err_transport, n_err_4xx, n_err_5xx, n_retries, n_fenced;
	_Atomic uint64_t n_verb[KUBE_VERB_N];
	_Atomic uint64_t n_code[KUBE_STATS_CODES];
};

#define KUBE_MAX_RETRIES 10               /* client-go's default for 429 / Retry-After */
#define KUBE_RETRY_WAIT_CAP_MS 10000      /* a Retry-After above 10 s is cut to 10 s */
#define KUBE_RETRY_DEFAULT_MS 1000        /* a 429 without Retry-After waits 1 s */

/* A configured easy handle for METHOD base+path (share, TLS, timeouts, User-Agent, HTTP/2 over TLS).
 * *hdrs gets Accept, Authorization (the token copy is wiped from the list by kube_headers_free) and
 * content_type if given. errbuf must hold CURL_ERROR_SIZE bytes. token_used (optional) receives a
 * malloc'd copy of the token sent (or NULL). kube_easy_setup resets and configures an existing handle
 * (a thread's reused one) the same way; kube_easy_new makes a new one (caller cleans it up). */
CURL *kube_easy_new(struct kube_client *c, const char *method, const char *url, const char *content_type,
		    struct curl_slist **hdrs, char *errbuf, char **token_used);
void kube_easy_setup(struct kube_client *c, CURL *h, const char *method, const char *url, const char *content_type,
		     struct curl_slist **hdrs, char *errbuf, char **token_used);
void kube_headers_free(struct curl_slist *hdrs);
/* After a 401: re-reads the token file. Returns 1 if the token now differs from token_used (worth one
 * retry), else 0. */
int kube_token_refresh(struct kube_client *c, const char *token_used);
char *kube_url(struct kube_client *c, const char *path); /* malloc'd base + path */
void kube_wipe_free(char *s); /* zeroes a secret (token) string, then frees it; NULL is fine */
/* Counts a request about to be sent, and a finished response (code 0 = transport error), in the stats. */
void kube_count_request(struct kube_client *c, enum kube_verb v);
void kube_count_response(struct kube_client *c, long code);
/* The verb a request counts as: GET of a collection is LIST, watch=1 is WATCH (pure, on the path). */
enum kube_verb kube_verb_of(const char *method, const char *path);
/* Fills err for a write refused by the fence (reason "Fenced") and counts it; returns 1 if fenced. */
int kube_fence_check(struct kube_client *c, const char *method, const char *path, struct kube_err *err);
/* How long to wait before retrying a response with this code and Retry-After (seconds, 0 = none) after
 * `retries` earlier retries: -1 = do not retry (not 429 / 5xx-with-Retry-After, or retries used up). */
int64_t kube_retry_wait_ms(const struct kube_client *c, long code, int retry_after_s, int retries);
/* GET with a stop flag checked every 250 ms, in the Retry-After waits too (the informer's paged list).
 * Stopped: NULL with err->code 0 and reason "Stopped". */
json_t *kube_get_stoppable(struct kube_client *c, const char *path, const volatile int *stop, struct kube_err *err);

/* ---- per-thread connections (kube_conn.c) ------------------------------------------------------------ */
enum { KUBE_XFER_DONE = 0, KUBE_XFER_STOPPED = 1, KUBE_XFER_IDLE = 2 };
uint64_t kube_conn_new_client_id(void);
/* The calling thread's conn for c (made on first use; a temporary one when the thread's conn is busy,
 * i.e. a request from inside a watch callback). NULL when curl cannot make handles. */
struct kube_conn *kube_conn_acquire(struct kube_client *c);
void kube_conn_release(struct kube_conn *k);
CURL *kube_conn_easy(struct kube_conn *k); /* the easy handle to configure (kube_easy_setup) */
/* Runs the configured transfer to its end: KUBE_XFER_DONE with *cc the transfer's result, or
 * KUBE_XFER_STOPPED (*stop became nonzero), KUBE_XFER_IDLE (now - *last_data_ms > idle_ms; idle_ms 0 =
 * never). The connection of an unfinished transfer is closed. */
int kube_conn_run(struct kube_conn *k, const volatile int *stop, const int64_t *last_data_ms, long idle_ms,
		  CURLcode *cc);
/* Closes every thread's connections to c (kube_client_free). */
void kube_conns_close_all(struct kube_client *c);

/* ---- errors ---------------------------------------------------------------------------------------- */
void kube_err_clear(struct kube_err *e);
/* The reason client-go gives a status code when the body is not a Status ("NotFound", "Conflict", ...). */
const char *kube_reason_for_code(long code);
/* Fills e from an error response: a metav1.Status body gives reason, message and code; any other body
 * gives a generic message with its first bytes. */
void kube_err_from_response(struct kube_err *e, long http_code, const char *body, size_t len);
/* Fills e from a decoded metav1.Status (http_code used when the Status has no code). */
void kube_err_from_status(struct kube_err *e, long http_code, json_t *status);
/* Retry-After header value in seconds (delta-seconds only; dates and junk give 0; capped at 1 hour). */
int kube_parse_retry_after(const char *v);
/* If the header line (as curl's header callback gets it) is Retry-After, sets *retry_after_s. */
void kube_header_retry_after(const char *line, size_t len, int *retry_after_s);

/* ---- watch stream decoding ---------------------------------------------------------------------- */
#define KUBE_WATCH_MAX_LINE (16u << 20)
struct kube_watch_decoder {
	struct strbuf line; /* the partial line carried between chunks */
	size_t max_line;
	kube_watch_cb cb;
	void *ud;
	uint64_t events;    /* events delivered (bookmarks included) */
};
void kube_watch_decoder_init(struct kube_watch_decoder *d, size_t max_line, kube_watch_cb cb, void *ud);
void kube_watch_decoder_release(struct kube_watch_decoder *d);
/* Feeds the next chunk of a newline-delimited stream of watch events. Returns 0 to continue, 1 when the
 * callback asked to stop, -1 on an ERROR event (err from its Status: 410 Expired/Gone relists), an
 * undecodable line or a line longer than max_line. */
int kube_watch_decoder_feed(struct kube_watch_decoder *d, const char *data, size_t len, struct kube_err *err);
/* At the end of the stream: decodes a last unterminated line. Returns like feed. */
int kube_watch_decoder_finish(struct kube_watch_decoder *d, struct kube_err *err);

/* ---- informer store --------------------------------------------------------------------------------- */
enum kube_delta_type { KUBE_DELTA_ADD, KUBE_DELTA_UPDATE, KUBE_DELTA_DELETE };
struct kube_delta {
	enum kube_delta_type type;
	json_t *old_obj, *new_obj; /* owned references; old_obj NULL for ADD, new_obj NULL for DELETE */
};
struct kube_deltas {
	struct kube_delta *v;
	size_t n, cap;
};
#define KUBE_DELTAS_INIT { NULL, 0, 0 }
/* The store maps "ns/name" to an owned json_t reference. */
/* Replaces the store's contents by items (a JSON array of objects; the store takes new references) and
 * appends to out what changed: DELETE for keys not in items, ADD for new keys, UPDATE for keys whose
 * metadata.resourceVersion differs. Deletes come first, then adds/updates in list order. */
void kube_store_replace(struct map *store, json_t *items, struct kube_deltas *out);
/* Applies one watch event (ADDED, MODIFIED, DELETED; obj referenced, not stolen) and appends the delta. */
void kube_store_apply(struct map *store, const char *type, json_t *obj, struct kube_deltas *out);
void kube_store_clear(struct map *store);
void kube_deltas_fire(const struct kube_deltas *d, const struct kube_informer_handlers *h);
void kube_deltas_release(struct kube_deltas *d);
/* metadata.managedFields removed; takes and returns the reference (the default transform). */
json_t *kube_drop_managed_fields(json_t *obj);

#endif
