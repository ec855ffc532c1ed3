/* ic_compat.h - living with upstream kube-fledged's CRD, which users keep while they swap only the image
 * (the first step of a migration: README, "Migrating from upstream").
 *
 * That CRD has no status subresource, and its structural schema prunes every status field upstream did not
 * have. So, for the controller:
 *   - status is written through the main resource (each status write bumps metadata.generation there, so the
 *     generation no longer says whether the spec changed);
 *   - status.conditions, status.appliedSpec and status.progress vanish on write, and with them what the
 *     controller reads back: which generation its status speaks for, and what the nodes hold.
 * The fix, used only when the CRD lacks the subresource ("compat mode"):
 *   - the generation the controller compares is the spec's own: ic_generation() is a 48-bit digest of the
 *     spec (equal specs, equal generation; our status writes do not change it);
 *   - the pruned fields travel in one annotation, IC_ANNOTATION_STATUS (JSON {conditions, appliedSpec,
 *     progress}); ic_compat_view() puts them back into the status the sync reads, ic_compat_stash() takes
 *     them out of a status about to be written. Annotations are metadata: no generation bump, no pruning.
 * Once the CRD has its status subresource again (make deploy-using-yaml or the chart installed ours), a
 * status still missing those fields is read through the annotation once, its generation translated (the
 * same spec digest means the current metadata.generation, another one means an edit is still to apply),
 * and the controller removes the annotation with its next status write. */
#ifndef IC_COMPAT_H
#define IC_COMPAT_H

#include <jansson.h>

#include "kube/kube_client.h"

#define IC_ANNOTATION_STATUS "kubefledged.io/status"
/* an annotation bigger than this leaves appliedSpec out (the API server caps all annotations at 256 KiB) */
#define IC_STASH_MAX_BYTES (200 * 1024)

/* Asks API discovery (GET /apis/kubefledged.io/v1alpha2, readable by every authenticated user) whether
 * imagecaches have a status subresource: 1 yes, 0 no, -1 unknown (err filled; assume yes). */
int ic_compat_has_status_subresource(struct kube_client *c, struct kube_err *err);

/* The digest of obj's spec as a positive integer below 2^48 (borrowed obj). */
long long ic_spec_generation(json_t *obj);
/* The generation the sync compares with observedGeneration: metadata.generation, or in compat mode the spec
 * digest. */
long long ic_generation(int compat, json_t *obj);

/* obj (an informer object, reference consumed) as the sync should see it: itself, or a copy whose status
 * has the annotation's fields it lacks (and, outside compat mode, their observedGeneration translated). */
json_t *ic_compat_view(int compat, json_t *obj);

/* Moves conditions, appliedSpec and progress out of status (modified) into the annotation's value (a new
 * string); appliedSpec is left out, with a warning naming the cache, if the value would exceed
 * IC_STASH_MAX_BYTES. */
char *ic_compat_stash(json_t *status, const char *key);

/* 1 when obj carries the annotation. */
int ic_compat_has_stash(json_t *obj);

#endif
