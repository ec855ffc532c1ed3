/* ic_compat.h - living with upstream kube-fledged's CRD, which users keep while they swap only the image
 * (the first step of a migration: README, "Migrating from upstream"). That CRD has no status subresource
 * and its schema prunes our status fields; ic_write.c copes with both (status through the main resource,
 * our fields in the kubefledged.io/status annotation, edits found by a hash of the spec). This asks API
 * discovery at start, so that the first status write already goes the right way. */
#ifndef IC_COMPAT_H
#define IC_COMPAT_H

#include "kube/kube_client.h"

/* Asks API discovery (GET /apis/kubefledged.io/v1alpha2, readable by every authenticated user) whether
 * imagecaches have a status subresource: 1 yes, 0 no, -1 unknown (err filled; assume yes). */
int ic_compat_has_status_subresource(struct kube_client *c, struct kube_err *err);

#endif
