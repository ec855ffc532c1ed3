/* wh_cabundle.h - the pure half of caBundle reconciliation: given a ValidatingWebhookConfiguration as the
 * API server returns it and the CA bundle PEM from the certificate Secret, the JSON Patch that makes every
 * webhook of that configuration trust exactly that bundle, or nothing when it already does.
 *
 * Every webhook of the named configuration is ours (the configuration exists only for kube-fledged, and
 * RBAC limits us to it by resourceNames), so every entry is patched, not only webhooks[0] as upstream did.
 * A JSON merge patch cannot address list items, and a full update could overwrite a concurrent edit;
 * a JSON Patch (RFC 6902) sets exactly the caBundle fields, each guarded by a "test" of the webhook's name
 * so a concurrent reorder of the list makes the patch fail (and the caller re-read) instead of landing on
 * the wrong entry. */
#ifndef WH_CABUNDLE_H
#define WH_CABUNDLE_H

#include <jansson.h>

/* vwc and ca_pem borrowed. Returns a new JSON array (the patch) and the number of stale webhooks in
 * *n_stale, or NULL (with *n_stale = 0) when nothing is to be done (or vwc has no webhooks). */
json_t *wh_cabundle_patch(json_t *vwc, const char *ca_pem, int *n_stale);

#endif
