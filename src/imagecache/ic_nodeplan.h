/* ic_nodeplan.h - per-node planning across ImageCaches: which images each node must hold and which caches
 * want each one. Shared by both modes:
 *   - job mode asks it before deleting an image from a node (another ImageCache may still list it there:
 *     the delete becomes a KEPT task, issue 10 item 12);
 *   - agent mode writes each node's NodeImageCache spec from it (the union over every cache whose lists
 *     select the node, owners counted, pull secrets merged).
 * Pure: the caller passes the ImageCache objects and the nodes' labels; nothing here talks to the API.
 *
 * A cache wants the images of its lists on the nodes the lists select unless it is purged (status reason
 * ImageCachePurge) or about to be (purge annotation), or being deleted. References that do not parse are
 * left out (they are reported as failures by the cache's own operation, never sent to a node). */
#ifndef IC_NODEPLAN_H
#define IC_NODEPLAN_H

#include <jansson.h>
#include <stddef.h>

#include "ic_types.h"

/* Every ImageCache that wants images, parsed and normalised once. Immutable after ic_cacheset_new, so
 * several threads may read one; reference counted. */
struct ic_cacheset;

/* Builds the set from caches (a JSON array of ImageCache objects, borrowed), with one reference. */
struct ic_cacheset *ic_cacheset_new(json_t *caches);
struct ic_cacheset *ic_cacheset_ref(struct ic_cacheset *cs); /* another reference (thread safe) */
void ic_cacheset_free(struct ic_cacheset *cs);                /* drops a reference; the last frees */
size_t ic_cacheset_len(const struct ic_cacheset *cs);

/* How many caches of the set, other than the one with uid skip_uid (may be NULL), want canonical_image on a
 * node with these labels (a JSON object or NULL). */
size_t ic_cacheset_owners(const struct ic_cacheset *cs, json_t *node_labels, const char *canonical_image,
			  const char *skip_uid);

/* One cache's part of a node's desired set, given to the callback once per (cache, image), images of one
 * cache in the cache's order; ns, name and the pull secrets are the cache's (borrowed from the set). */
struct ic_want {
	const char *canonical;
	const char *ns, *name;
	const char *const *pull_secrets; /* names, in the cache's namespace */
	size_t n_pull_secrets;
};
void ic_cacheset_node_wants(const struct ic_cacheset *cs, json_t *node_labels,
			    void (*cb)(void *ud, const struct ic_want *w), void *ud);

/* What a running operation asks of one node (agent mode): a fresh pull of at least pull_gen, or, with
 * del_ns/del_name set, the removal of the image for that cache. Strings borrowed. */
struct ic_node_request {
	const char *image; /* canonical */
	int64_t pull_gen;
	const char *del_ns, *del_name;
};

/* The node's desired NodeImageCache spec {nodeName, images: [...]} (docs/agent.md): a Pull entry per image
 * some cache wants there, with its owners and the pull secrets (namespace/name) of those owners; requests
 * raise pullGeneration (never below spec_gen(image), the current spec's value) and add Delete entries for
 * images no cache wants there; size_hint gives sizeHint. Sorted by image. Callbacks may be NULL. New object. */
json_t *ic_nodeplan_spec(const struct ic_cacheset *cs, const char *node, json_t *labels,
			 const struct ic_node_request *reqs, size_t n_reqs,
			 int64_t (*spec_gen)(void *ud, const char *canonical),
			 int64_t (*size_hint)(void *ud, const char *canonical), void *ud);

/* 1 when the cache object wants its images (not purged, not being purged, not being deleted). */
int ic_cache_wants_images(json_t *cache);

#endif
