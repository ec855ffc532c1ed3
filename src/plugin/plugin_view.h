/* plugin_view.h - what `kubectl fledged` reads from a cluster's objects, shared by `status` (the node x
 * image matrix) and `plan` (the dry run): the images of a cache as columns (one per distinct normalised
 * reference), which of a cache's lists select a node, and what each node holds.
 *
 * What a node holds comes from where the controller itself looks:
 *   job mode    Node.status.images (names matched as the planner matches them: the digest when the
 *               reference names one, else the tag). The kubelet reports at most nodeStatusMaxImages (50 by
 *               default) images, the largest first, so an image missing from a full list is "not reported",
 *               not "absent";
 *   agent mode  the node's NodeImageCache: its spec (what the controller asked) and status (what the agent
 *               reports, per image: Present, Pulling, Failed, Deleting, Absent). Exact.
 *
 * Pure: the caller fetched the JSON (plugin_cluster.h). Everything here borrows from that JSON, which must
 * outlive the structures, unless said otherwise. */
#ifndef PLUGIN_VIEW_H
#define PLUGIN_VIEW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "imagecache/ic_types.h"
#include "util/map.h"
#include "util/strbuf.h"

enum plugin_mode { PLUGIN_MODE_JOBS = 0, PLUGIN_MODE_AGENT };

#define PLUGIN_KUBELET_MAX_IMAGES 50 /* the kubelet's default nodeStatusMaxImages */
#define PLUGIN_ANNOTATION_STATUS "kubefledged.io/status" /* the controller's status fields where upstream's
							    * CRD prunes them (as the controller writes them) */

/* The normalised reference of image into out (registry/repository:tag, @digest; the text itself when it does
 * not parse); returns 1 when it parsed. *floating (may be NULL): :latest or untagged. */
int plugin_canonical(const char *image, struct strbuf *out, int *floating);

/* ---- nodes ---- */

struct plugin_node {
	const char *name, *hostname; /* hostname: the kubernetes.io/hostname label (failures name it), else name */
	json_t *labels;              /* borrowed; NULL when none */
	const char *os, *arch, *variant; /* the platform images are pulled for (labels, else status.nodeInfo) */
	size_t n_reported;           /* job mode: how many images the node reports */
	struct map reported;         /* job mode: match keys of the reported names */
	json_t *nic;                 /* agent mode: the node's NodeImageCache, or NULL */
	struct map nic_spec, nic_status; /* agent mode: canonical image -> its spec / status entry */
};

struct plugin_nodes {
	enum plugin_mode mode;
	struct plugin_node *v; /* sorted by name */
	size_t n;
};

/* nodes: a JSON array of Node objects; nics: of NodeImageCache objects (agent mode; NULL in job mode). */
void plugin_nodes_build(json_t *nodes, json_t *nics, enum plugin_mode mode, struct plugin_nodes *out);
void plugin_nodes_free(struct plugin_nodes *ns);

/* The controller's mode as the objects show it, for --mode=auto. nics: every NodeImageCache (NULL when
 * their CRD is not installed); caches: every ImageCache (complete = 0: only some namespaces'). In order:
 *   - no NodeImageCache: job mode;
 *   - a NodeImageCache names a live ImageCache (not being deleted) as an owner of an image: agent mode (the
 *     controller in agent mode keeps them so);
 *   - one names an ImageCache that no longer exists (complete lists only): job mode, these are leftovers of
 *     an earlier agent-mode controller (a running one removes a deleted cache from the owners);
 *   - some ImageCache has a status and is not purged (a controller processed it without it in any
 *     NodeImageCache): job mode;
 *   - else (NodeImageCaches without owners, no cache processed yet: a fresh agent-mode install): agent. */
enum plugin_mode plugin_mode_guess(json_t *nics, json_t *caches, int complete);
/* A cache's status.failures keyed by canonical image: {canonical: [entries]} (a new object; the arrays are
 * borrowed from status). */
json_t *plugin_failures_by_image(json_t *status);
/* The entry of entries (borrowed) naming hostname, or NULL; *more: a "+N more nodes" entry is there (reason
 * MoreFailures), which may stand for hostname. */
json_t *plugin_failure_for(json_t *entries, const char *hostname, int *more);

/* The node whose kubernetes.io/hostname (or name) is hostname, or NULL. */
const struct plugin_node *plugin_node_by_hostname(const struct plugin_nodes *ns, const char *hostname);
/* Job mode: 1 when the node reports the image (see above). */
int plugin_node_reports(const struct plugin_node *n, const char *image);
/* Agent mode: the node's NodeImageCache spec / status entry for a canonical image, or NULL. Borrowed. */
json_t *plugin_nic_spec(const struct plugin_node *n, const char *canonical);
json_t *plugin_nic_status(const struct plugin_node *n, const char *canonical);

/* ---- caches ---- */

/* An ImageCache as the controller reads it: its spec, its status (with the fields the annotation keeps
 * where upstream's CRD prunes them) and the applied spec (what the nodes hold after the last operation). */
struct plugin_cache {
	json_t *obj;            /* a reference */
	json_t *status;         /* a new object (empty when none) */
	struct ic_spec spec;    /* parsed when spec_ok */
	int spec_ok;
	struct ic_spec applied; /* parsed when has_applied */
	int has_applied;
};
/* Returns 0, or -1 with err naming the field when the spec cannot be read (the object is kept either way:
 * free with plugin_cache_free). */
int plugin_cache_load(json_t *obj, struct plugin_cache *c, struct strbuf *err);
void plugin_cache_free(struct plugin_cache *c);
/* 1 when the cache wants its images on the nodes (not purged or being purged, not being deleted): the
 * controller's rule (ic_nodeplan.h). */
int plugin_cache_wants(json_t *obj);

/* ---- image columns ---- */

struct plugin_image {
	char *image;     /* as written (the first spelling met) */
	char *canonical;
	int valid, floating;
	int in_spec;     /* listed by the spec (else only by the applied spec) */
};
struct plugin_images {
	struct plugin_image *v;
	size_t n;
	struct map ix; /* canonical -> index + 1 */
};
void plugin_images_init(struct plugin_images *im);
void plugin_images_free(struct plugin_images *im);
/* Adds the images of s (in_spec: they are the spec's); returns nothing, duplicates by canonical merged. */
void plugin_images_add(struct plugin_images *im, const struct ic_spec *s, int in_spec);
/* Index of a canonical image, or -1. */
long plugin_images_find(const struct plugin_images *im, const char *canonical);
/* Sets flags[i] = 1 for every column i that a list of s selecting a node with these labels names. flags has
 * im->n entries (the caller clears it). */
void plugin_images_mark(const struct plugin_images *im, const struct ic_spec *s, json_t *labels, uint8_t *flags);

#endif
