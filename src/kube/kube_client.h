/* kube_client.h - a small REST client for the Kubernetes API (libcurl + jansson).
 *
 * One struct kube_client is shared by every thread of the process. Connections are per thread (libcurl
 * does not support sharing a connection between concurrent threads): each thread that uses the client
 * gets its own keep-alive connection on first use, reused by all its later requests (HTTP/2 over TLS when
 * the server offers it), and closed when the thread exits or the client is freed. TLS sessions and the
 * DNS cache are shared between threads, so a thread's first handshake is a resumption.
 * A client-side token bucket (qps, burst) paces every request except watches, like client-go's.
 *
 * Retries: a 429 (any verb; 1 s when it has no Retry-After) or a 5xx carrying Retry-After is retried
 * after the given delay (at most 10 s each) up to 10 times, like client-go; never a watch stream, which
 * reports err->retry_after_s to its caller (the informer backs off at least that long).
 *
 * Fence: kube_client_fence() makes every later write (POST, PUT, PATCH, DELETE) fail at once without
 * being sent (reason "Fenced"); reads and watches go on. The leader elector fences on losing its lease,
 * so an old leader's queued work cannot write. A request already on the wire when the fence goes up
 * completes; one waiting for the rate limiter or a Retry-After delay does not go out.
 *
 * Errors: every call fills a struct kube_err. `code` is the HTTP status (0 for a transport failure),
 * `reason` the Status reason (NotFound, Conflict, AlreadyExists, Invalid, Forbidden, Expired, ...)
 * and `msg` the Status message or the curl error, ready for a log line or an object's status.
 * kube_err_retryable() is true for transport errors, 429 and 5xx: the caller backs off and retries;
 * 409 means re-read and retry; 410 on a watch (kube_err_is_expired) means relist. */
#ifndef KUBE_CLIENT_H
#define KUBE_CLIENT_H

#include <jansson.h>
#include <stdint.h>

#include "kube_config.h"
#include "util/strbuf.h"

struct kube_err {
	long code;          /* HTTP status; 0 = transport error (connection refused, TLS, timeout) */
	char reason[64];    /* metav1.Status reason, "" if none */
	char msg[1024];     /* human-readable message, "" if none */
	int retry_after_s;  /* Retry-After header for 429/503, else 0 */
};

static inline int kube_err_is_not_found(const struct kube_err *e) { return e->code == 404; }
static inline int kube_err_is_conflict(const struct kube_err *e) { return e->code == 409; }
static inline int kube_err_is_gone(const struct kube_err *e) { return e->code == 410; }
/* The resourceVersion a watch or list continued from is too old: 410, or reason Expired / Gone. Only
 * this needs a relist; any other watch error is resumed from the last resourceVersion. */
int kube_err_is_expired(const struct kube_err *e);
int kube_err_is_fenced(const struct kube_err *e); /* refused by kube_client_fence(), never sent */
/* Transport errors, 429 and 5xx (not a fenced write: that one never succeeds). */
int kube_err_retryable(const struct kube_err *e);

/* A resource type, enough to build request paths. */
struct kube_resource {
	const char *group;   /* "" for the core group */
	const char *version; /* "v1" */
	const char *plural;  /* "jobs" */
	const char *kind;    /* "Job" */
	int namespaced;
};
extern const struct kube_resource KUBE_NODES, KUBE_PODS, KUBE_EVENTS, KUBE_SECRETS, KUBE_NAMESPACES,
	KUBE_JOBS, KUBE_LEASES, KUBE_VALIDATING_WEBHOOK_CONFIGURATIONS;

/* Appends "/api/v1/namespaces/NS/pods/NAME/SUB" (or /apis/GROUP/VERSION/...) to sb. ns may be NULL
 * (all namespaces, or cluster-scoped), name and sub may be NULL. Segments are URL-encoded. */
void kube_path(struct strbuf *sb, const struct kube_resource *r, const char *ns, const char *name,
	       const char *sub);

struct kube_client_opts {
	double qps;             /* sustained requests per second (watches excluded); <= 0: unlimited */
	int burst;              /* bucket size */
	long timeout_ms;        /* per non-watch request; 0 = 30 s */
	const char *user_agent; /* NULL = kf_user_agent() */
	long connect_timeout_ms; /* TCP connect + TLS handshake; 0 = 10 s (valgrind runs need more) */
};

struct kube_client *kube_client_new(const struct kube_config *cfg, const struct kube_client_opts *opts,
				    struct strbuf *err);
/* Every thread must be done with c (no request in flight). Closes every thread's connections to it. */
void kube_client_free(struct kube_client *c);
const char *kube_client_namespace(const struct kube_client *c); /* the config's namespace */

/* Request counters for metrics and benchmarks (lock-free: relaxed atomic increments; a snapshot is not
 * one instant across fields, only each field is exact).
 *   by_verb[v]   requests sent, by verb: a GET of a collection counts as LIST, a GET with watch=1 as
 *                WATCH; each retry (401 rotation, 429, Retry-After) is sent again and counts again.
 *   by_code[c]   responses by exact HTTP status c (100..599); by_code[0] counts transport errors (no
 *                response). A watch that ends with an ERROR event counts that event's code.
 *   requests     all requests sent (= the sum of by_verb), watches = by_verb[KUBE_VERB_WATCH].
 *   errors_*     the old summary: transport errors, 4xx and 5xx responses.
 *   retries      retries after 429 / Retry-After waits; fenced: writes refused by the fence (not sent). */
enum kube_verb { KUBE_VERB_GET, KUBE_VERB_LIST, KUBE_VERB_WATCH, KUBE_VERB_POST, KUBE_VERB_PUT, KUBE_VERB_PATCH,
		 KUBE_VERB_DELETE, KUBE_VERB_OTHER, KUBE_VERB_N };
#define KUBE_STATS_CODES 600
struct kube_client_stats {
	uint64_t requests, watches, errors_transport, errors_4xx, errors_5xx, retries, fenced;
	uint64_t by_verb[KUBE_VERB_N];
	uint64_t by_code[KUBE_STATS_CODES];
};
void kube_client_stats(struct kube_client *c, struct kube_client_stats *out);
/* "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE", "OTHER" (client-go's verb names, in capitals). */
const char *kube_verb_name(enum kube_verb v);

/* Write fence (see above). why is kept for the error message of every refused write ("leader election
 * lost: ..."); the first call wins. Safe from any thread; there is no unfence. */
void kube_client_fence(struct kube_client *c, const char *why);
int kube_client_fenced(struct kube_client *c);

/* The verbs. path is absolute ("/api/v1/nodes?labelSelector=..."). Each returns a new reference to the
 * decoded response body on 2xx (for DELETE: the returned object or Status), or NULL with *err filled.
 * body is borrowed. */
json_t *kube_get(struct kube_client *c, const char *path, struct kube_err *err);
json_t *kube_create(struct kube_client *c, const char *path, json_t *body, struct kube_err *err);
json_t *kube_update(struct kube_client *c, const char *path, json_t *body, struct kube_err *err);
/* patch_type: "application/merge-patch+json", "application/json-patch+json" or
 * "application/strategic-merge-patch+json". */
json_t *kube_patch(struct kube_client *c, const char *path, json_t *patch, const char *patch_type,
		   struct kube_err *err);
/* propagation: "Background", "Foreground", "Orphan" or NULL (server default). 404 is reported as an error:
 * callers that want idempotent deletes check kube_err_is_not_found(). Returns 0 or -1. */
int kube_delete(struct kube_client *c, const char *path, const char *propagation, struct kube_err *err);
/* The general form: method, path, optional body and content type. Returns the body as text (malloc'd,
 * caller frees) on 2xx, else NULL with err. For endpoints that are not JSON (/healthz, /metrics). */
char *kube_request_raw(struct kube_client *c, const char *method, const char *path, const char *body,
		       const char *content_type, struct kube_err *err);

/* Watch: GET path with watch=1 (the caller puts resourceVersion, allowWatchBookmarks, timeoutSeconds and
 * selectors into path). Calls cb for every event with type "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or
 * "ERROR" and the borrowed object. cb returns 0 to continue, nonzero to stop. The call returns when the
 * server ends the stream (0), cb asks to stop (0), *stop becomes nonzero (0; checked at least every
 * 500 ms), or on error (-1, err filled; an ERROR event with a Status of code 410 gives err->code 410).
 * A stream that delivers nothing (not even bookmarks) for idle_timeout_ms is treated as dead (-1, code 0). */
typedef int (*kube_watch_cb)(void *ud, const char *type, json_t *object);
int kube_watch(struct kube_client *c, const char *path, kube_watch_cb cb, void *ud, const volatile int *stop,
	       long idle_timeout_ms, struct kube_err *err);

#endif
