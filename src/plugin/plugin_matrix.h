/* plugin_matrix.h - `kubectl fledged status`: the node x image matrix of an ImageCache, with the state of
 * each pair, and the cache's status and progress. Pure: computed from the objects (plugin_view.h).
 *
 * Columns are the cache's images: the spec's, then those only the applied spec still names (removals not
 * done yet). Rows are the nodes that some list selects (spec or applied spec); other nodes are only counted.
 * A pair's state:
 *
 *   Present   the node holds the image
 *   Pulling   being pulled or queued (agent mode: the agent's state, with the last transient error and
 *             attempts when it retries; job mode: the cache is Processing and the node does not report it)
 *   Failed    the pull (or the removal) failed: reason and message as in status.failures (agent mode:
 *             the agent's own; job mode: status.failures, where a "+N more nodes" entry stands for the
 *             nodes it does not name)
 *   Missing   the node should hold it and does not, and nothing is under way (a refresh would pull it)
 *   Unknown   job mode: the node does not report it, but it reports the most images the kubelet lists (50)
 *   Deleting  a removal is under way
 *   Kept      a removal was not done on purpose: a container uses the image, the runtime pins it, or
 *             another ImageCache wants it on that node
 *   Leftover  no list wants it on that node any more but it is still there (a failed removal, retried by
 *             the next refresh)
 *   Removed   no list wants it on that node any more and it is gone
 * A pair no list selects has no state. Job mode reads Node.status.images, which lags a pull by up to
 * ~10 s (the kubelet's status period); agent mode reads the agents' own reports. */
#ifndef PLUGIN_MATRIX_H
#define PLUGIN_MATRIX_H

#include <jansson.h>

#include "plugin_view.h"
#include "util/strbuf.h"

/* The matrix of one ImageCache object (borrowed) as a new JSON object:
 *   {namespace, name, mode: "jobs"|"agent", wantsImages: false when purged (or being purged or deleted: its
 *    images are then removals, not pulls), status, reason, message, progress: {total, done, failed} | null,
 *    images: [{image, inSpec}], nodes: [{name, images: {IMAGE: {state, reason?, message?}}}],
 *    otherNodes: count of nodes no list selects, counts: {STATE: n}}
 * A spec that cannot be read gives {namespace, name, error}. */
json_t *plugin_matrix(json_t *cache, const struct plugin_nodes *nodes);

/* Appends the text form of a matrix (as plugin_matrix made it) to out: header, numbered images, one row per
 * node, then the pairs with a reason (failures first) and a legend of the marks used. */
void plugin_matrix_text(json_t *matrix, struct strbuf *out);

#endif
