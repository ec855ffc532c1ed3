/* plugin_plan.h - `kubectl fledged plan -f FILE`: what applying an ImageCache would make the controller do,
 * node by node, without doing it. Pure: computed from the objects (plugin_view.h); the download sizes come
 * from a callback (plugin_registry.h asks the registries).
 *
 * The rules are the controller's planner's (src/imagecache/ic_plan.h), read from the same objects:
 *   - which operation: no live object (or one the controller has not processed: no status) -> create; a
 *     spec that differs from the live one -> update; the same spec -> nothing now, and the plan shows what
 *     the next refresh would do;
 *   - pulls: every image of every list onto every node the list selects, except where the node already
 *     holds it (job mode: Node.status.images; agent mode: the node's NodeImageCache status); :latest and
 *     untagged images are pulled again by a create or a refresh, and by an update only where they are new;
 *     --image-pull-policy=Always pulls everything; agent mode retries images that Failed;
 *   - deletes (update, refresh): what a node holds under status.appliedSpec that no list gives it any more;
 *     kept instead when another ImageCache (not purged) lists the image for that node; never for a reference
 *     that does not parse or is an image ID.
 * What it cannot know: the controller's memory of its own recent pulls (job mode trusts them for 45 s over
 * the kubelet's lagging list), and, in agent mode, which removals an agent will keep because a container uses
 * the image or the runtime pins it. */
#ifndef PLUGIN_PLAN_H
#define PLUGIN_PLAN_H

#include <jansson.h>
#include <stdint.h>

#include "plugin_view.h"
#include "util/strbuf.h"

struct plugin_plan_input {
	json_t *cache;            /* the ImageCache to apply (borrowed) */
	json_t *live;             /* the live object of the same namespace/name, or NULL (borrowed) */
	json_t *others;           /* every ImageCache of the cluster (array, borrowed; may be NULL): the delete guard */
	const struct plugin_nodes *nodes;
	const char *pull_policy;  /* the controller's --image-pull-policy: "IfNotPresent" (NULL) or "Always" */
};

/* The plan as a new JSON object:
 *   {namespace, name, mode, operation: "create"|"update"|"none", denied?: webhook message,
 *    nodes: [{name, platform, pull: [{image, why}], present: [image], delete: [{image, onNode: true|false|null}],
 *             keep: [{image, reason, message}]}],      (only nodes with something in a list)
 *    images: [{image, pullNodes, deleteNodes, keepNodes}],
 *    totals: {pulls, present, deletes, keeps}}
 * why: "absent", "floating" (:latest or untagged), "always" (--image-pull-policy=Always), "failed" (agent
 * mode: it failed before and is retried), "unreported" (job mode: the node lists the most images the kubelet
 * reports). Returns NULL with err naming the field when FILE's spec cannot be read. */
json_t *plugin_plan(const struct plugin_plan_input *in, struct strbuf *err);

/* The download size of an image for a platform ("linux/amd64", "linux/arm/v7"): 0 with *bytes (config plus
 * compressed layers) and *layers (a new array of {digest, size}) set, or -1 with why ("registry
 * unreachable: ..."). */
typedef int (*plugin_size_fn)(void *ud, const char *image, const char *platform, int64_t *bytes, json_t **layers,
			      struct strbuf *why);

/* Adds sizes to a plan: images[].sizes = {platform: bytes | null}, images[].sizeError when unknown; per node
 * `bytes`, what its pulls download: each layer once, and none of the layers of the cache's images the node
 * already holds (its `present` list; what else it holds is not known), and `unknown` (pulls of unknown
 * size); totals.bytes and totals.unknown. Each (image, platform) is asked once. */
void plugin_plan_sizes(json_t *plan, plugin_size_fn fn, void *ud);

/* Appends the text form of a plan to out. */
void plugin_plan_text(json_t *plan, struct strbuf *out);

/* "1.5 MiB", "312 KiB", "87 B" into buf. */
void plugin_human_bytes(int64_t n, char *buf, size_t len);

#endif
