/* kube_client.h - a small REST client for the Kubernetes API (libcurl + jansson).
 *
 * One struct kube_client is shared by every thread of the process. Each request uses its own curl easy
 * handle; a curl share object keeps the connection cache, TLS sessions and DNS cache, so connections to
 * the API server are reused across requests and threads (HTTP/2 over TLS when the server offers it).
 * A client-side token bucket (qps, burst) paces every request except watches, like client-go's.
 *
 * Errors: every call fills a struct kube_err. `code` is the HTTP status (0 for a transport failure),
 * `reason` the Status reason (NotFound, Conflict, AlreadyExists, Invalid, Forbidden, Expired, ...)
 * and `msg` the Status message or the curl error, ready for a log line or an object's status.
 * kube_err_retryable() is true for transport errors, 429 and 5xx: the caller backs off and retries;
 * 409 means re-read and retry; 410 on a watch means relist. */
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
};

struct kube_client *kube_client_new(const struct kube_config *cfg, const struct kube_client_opts *opts,
				    struct strbuf *err);
void kube_client_free(struct kube_client *c);
const char *kube_client_namespace(const struct kube_client *c); /* the config's namespace */
/* Counters for metrics and benchmarks: requests sent (watches included) and responses by class. */
struct kube_client_stats { uint64_t requests, watches, errors_transport, errors_4xx, errors_5xx; };
void kube_client_stats(struct kube_client *c, struct kube_client_stats *out);

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
