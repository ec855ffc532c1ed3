/* ic_nodeplan.h - per-node planning across ImageCaches: which images each node must hold and which caches
 * want each one. Shared by both modes:
 *   - job mode asks it before deleting an image from a node (another ImageCache may still list it there:
 *     the delete becomes a KEPT task, issue 10 item 12);
 *   - agent mode writes each node's NodeImageCache spec from it (the union over every cache whose lists
 *     select the node, owners counted).
 * Pure: the caller passes the ImageCache objects and the nodes' labels; nothing here talks to the API.
 *
 * A cache wants the images of its lists on the nodes the lists select unless it is purged (status reason
 * ImageCachePurge) or about to be (purge annotation), or being deleted. */
#ifndef IC_NODEPLAN_H
#define IC_NODEPLAN_H

#include <jansson.h>
#include <stddef.h>

#include "ic_types.h"

/* An index of what a set of ImageCaches wants: canonical image -> the lists that name it. */
struct ic_wantindex;

/* Builds the index over caches (a JSON array of ImageCache objects, borrowed), leaving out the cache with
 * uid skip_uid (may be NULL). */
struct ic_wantindex *ic_wantindex_new(json_t *caches, const char *skip_uid);
void ic_wantindex_free(struct ic_wantindex *w);
/* 1 when some cache of the index wants canonical_image on a node with these labels (a JSON object or NULL). */
int ic_wantindex_wants(const struct ic_wantindex *w, json_t *node_labels, const char *canonical_image);
/* How many caches of the index want it there (owners counted). */
size_t ic_wantindex_owners(const struct ic_wantindex *w, json_t *node_labels, const char *canonical_image);
/* 1 when the cache object wants its images (not purged, not being purged, not being deleted). */
int ic_cache_wants_images(json_t *cache);

#endif
