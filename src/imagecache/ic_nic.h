/* ic_nic.h - the controller's view of the NodeImageCache objects (agent mode, docs/agent.md): one per node,
 * spec written by the controller, status by the node's agent.
 *
 * At 1,000 nodes x 100 images the objects hold 100,000 entries, so the controller does not keep them as
 * JSON: the informer's transform (ic_nic_transform) folds each object into this compact index and stores
 * only a stub. Per node the index keeps, sorted by image: the spec's action and pullGeneration, and the
 * status's state, observedPullGeneration, digest, size and (for failures and kept deletes) reason and
 * message; plus the object's generation, the status's observedGeneration and the hash of the spec, so the
 * controller writes a spec only when it differs.
 *
 * Thread safe (one mutex); readers copy what they need under it (ic_nic_lookup). */
#ifndef IC_NIC_H
#define IC_NIC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/kube_client.h"

#define NIC_GROUP "kubefledged.io"
#define NIC_VERSION "v1alpha1"
#define NIC_API_VERSION "kubefledged.io/v1alpha1"
#define NIC_KIND "NodeImageCache"
extern const struct kube_resource NIC_RESOURCE; /* nodeimagecaches.kubefledged.io/v1alpha1, cluster-scoped */

/* status.images[].state */
enum nic_state {
	NIC_NONE = 0, /* no status entry */
	NIC_PRESENT,
	NIC_PULLING,
	NIC_FAILED,
	NIC_DELETING,
	NIC_ABSENT,
};
enum nic_state nic_state_parse(const char *s);

/* What the index says about one (node, image), copied out. Strings malloc'd (ic_nic_info_clear frees). */
struct ic_nic_info {
	int in_spec;            /* the spec lists it */
	int spec_delete;        /* ... with action Delete */
	int64_t spec_gen;       /* spec pullGeneration */
	int64_t delete_since;   /* the object's generation when the Delete entry appeared (0: not a delete) */
	enum nic_state state;   /* status */
	int64_t observed_gen;   /* status observedPullGeneration */
	int64_t size;           /* status sizeBytes */
	char *digest, *reason, *message;
	char *owners;           /* the spec's owners of a Pull entry, "ns/name\n" each, or NULL */
	/* the node's object */
	int exists;             /* the object exists */
	int has_status;         /* an agent wrote its status */
	int64_t generation;     /* metadata.generation */
	int64_t observed_generation; /* status.observedGeneration */
};
void ic_nic_info_clear(struct ic_nic_info *i);

struct ic_nic_index;

struct ic_nic_index *ic_nic_index_new(void);
void ic_nic_index_free(struct ic_nic_index *x);
/* The informer transform: indexes obj (a NodeImageCache, owned) and returns the stub to store
 * ({metadata: {name, uid, resourceVersion, generation}}). ud is the index. */
json_t *ic_nic_transform(void *ud, json_t *obj);
/* Forgets a node (its object was deleted). */
void ic_nic_forget(struct ic_nic_index *x, const char *node);
/* 0 and *out filled (zeroed when nothing is known), whatever the node or image. */
void ic_nic_lookup(struct ic_nic_index *x, const char *node, const char *canonical, struct ic_nic_info *out);
/* The hash of the node's current spec (ic_nic_spec_hash of it), copied into buf; "" when no object. */
void ic_nic_spec_hash_of(struct ic_nic_index *x, const char *node, char *buf, size_t n);
/* The largest size any node reported for the image (a hint for the disk check), or 0. */
int64_t ic_nic_size_hint(struct ic_nic_index *x, const char *canonical);
/* A number that changes whenever the node's object changes (0: no object), to skip unchanged nodes. */
uint64_t ic_nic_version(struct ic_nic_index *x, const char *node);
/* The digests nodes report for the image (Present only): a new JSON object
 * digest -> {nodes: [node, ...], lastPull: the latest lastPullTime among them, epoch seconds}. */
json_t *ic_nic_digests(struct ic_nic_index *x, const char *canonical);
/* Hash of a spec object (hex, 32 chars + NUL into buf). */
void ic_nic_spec_hash(json_t *spec, char buf[33]);

#endif
