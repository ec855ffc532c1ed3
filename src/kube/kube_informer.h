/* kube_informer.h - list + watch into a local cache, with event handlers (client-go's SharedInformer,
 * small).
 *
 * A thread lists the resource (paginated, limit=500), fills the store keyed "namespace/name" (or "name" for
 * cluster-scoped objects), then watches from the list's resourceVersion with allowWatchBookmarks=true and
 * a random timeoutSeconds (5-10 min), resuming from the last seen resourceVersion. Only when that
 * resourceVersion has expired (410 Gone, reason Expired or Gone) it relists and reconciles the store
 * against the fresh list, firing add/update/delete for the differences, so handlers see every change even
 * across gaps. Any other watch error (transport, 5xx, 429, a dead stream) backs off 0.5 s doubling to
 * 30 s, at least the server's Retry-After, and watches again from the last resourceVersion.
 *
 * Objects in the store are immutable: handlers and readers get borrowed (handlers) or new (getters)
 * references and must never modify them. An optional transform trims objects before they are stored
 * (e.g. drop managedFields), which is most of a controller's memory. */
#ifndef KUBE_INFORMER_H
#define KUBE_INFORMER_H

#include <jansson.h>
#include <stdint.h>

#include "kube_client.h"

struct kube_informer_handlers {
	/* All optional. Called on the informer's thread, objects borrowed for the duration of the call. Keep
	 * them short (enqueue a key): they block the watch. update is also called on resync with old == new. */
	void (*on_add)(void *ud, json_t *obj);
	void (*on_update)(void *ud, json_t *old_obj, json_t *new_obj);
	void (*on_delete)(void *ud, json_t *obj);
	void *ud;
};

struct kube_informer_opts {
	const struct kube_resource *res;
	const char *ns;             /* NULL or "" = all namespaces */
	const char *label_selector; /* NULL = none */
	const char *field_selector; /* NULL = none */
	/* Takes ownership of obj and returns the object to store (may return obj itself after deleting
	 * fields, or a new object after decref'ing obj). NULL = store as received minus
	 * metadata.managedFields. transform_ud is passed along (e.g. to index what the trimmed object drops). */
	json_t *(*transform)(void *ud, json_t *obj);
	void *transform_ud;
	int64_t resync_ms;          /* 0 = never; else on_update(obj, obj) for every object each period */
	/* objects per LIST page (0 = 500, as client-go). A page is read and parsed whole before the transform
	 * trims it: for large objects a smaller page bounds the memory a (re)list takes. */
	int page_limit;
};

struct kube_informer;

/* Does not start anything. The client is borrowed and must outlive the informer. */
struct kube_informer *kube_informer_new(struct kube_client *c, const struct kube_informer_opts *opts,
					const struct kube_informer_handlers *h);
int kube_informer_start(struct kube_informer *inf);            /* starts the thread; 0 or -1 */
/* Blocks until the first list has been stored and its add handlers ran. 0 = synced, -1 = timeout or stop. */
int kube_informer_wait_synced(struct kube_informer *inf, int64_t timeout_ms);
int kube_informer_has_synced(struct kube_informer *inf);
/* Stops the thread and joins it: an in-flight watch or list page returns within ~0.25 s, a backoff at
 * once. Idempotent. */
void kube_informer_stop(struct kube_informer *inf);
void kube_informer_free(struct kube_informer *inf);            /* stops first if needed */

/* Store reads; safe from any thread. */
json_t *kube_informer_get(struct kube_informer *inf, const char *key); /* new reference or NULL */
/* A snapshot: new JSON array holding references to every stored object (order unspecified). */
json_t *kube_informer_list(struct kube_informer *inf);
size_t kube_informer_len(struct kube_informer *inf);
/* Last resourceVersion seen (list, event or bookmark), copied into buf. */
void kube_informer_resource_version(struct kube_informer *inf, char *buf, size_t n);

/* "namespace/name" or "name" of an object, into buf; returns buf ("" if metadata.name is missing). */
char *kube_object_key(json_t *obj, char *buf, size_t n);

#endif
