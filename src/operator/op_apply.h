/* op_apply.h - how the operator puts a KubeFledged's rendered objects into the cluster, and takes them out.
 *
 * Server-side apply (PATCH application/apply-patch+yaml, fieldManager=kubefledged-operator, force=true) of
 * every object, each time. Why apply and not get + compare + update:
 *  - the API server does the comparison, on its own defaulted and normalised form (a resource quantity
 *    written "0.5" is the same as "500m"), and writes nothing when nothing changed (measured on v1.20.2: a
 *    repeated apply keeps the resourceVersion), so re-applying is cheap and cannot loop;
 *  - a field the operator stops rendering (hostNetwork when controller.hostNetwork goes back to false) is
 *    removed, because the field manager owned it; no last-applied annotation to keep;
 *  - fields others own stay theirs: the caBundle the webhook server writes into the
 *    ValidatingWebhookConfiguration, the Lease's holder, the Secret's keys. An apply never drops them (checked
 *    on v1.20.2 for the caBundle: webhooks are a list keyed by name), while an update of the whole object
 *    would;
 *  - force=true takes a field back from whoever changed it by hand (kubectl scale, kubectl edit): the CR
 *    is the source of truth, as with helm-operator.
 * Creating through apply needs the verbs create and patch (the API server checks both).
 *
 * Ownership: namespaced objects get an ownerReference to their KubeFledged (controller: true), so the
 * garbage collector deletes them with it; cluster-scoped ones cannot have a namespaced owner (the garbage
 * collector would delete them at once), so every object also carries the label
 * charts.helm.kubefledged.io/owner-uid=<uid of the KubeFledged>, by which the operator finds what it applied
 * (to prune what a value change no longer renders, and to clean up behind its finalizer). An object of the
 * same name without that label, or with another owner's, is never taken over: that is a conflict, reported
 * before anything is applied. The CRDs of crds/ are the exception: shared by every installation, applied
 * (created or updated) without owner, and never deleted by the operator, as Helm never deletes them. */
#ifndef OP_APPLY_H
#define OP_APPLY_H

#include <jansson.h>

#include "kube/kube_client.h"
#include "util/strbuf.h"

#define OP_GROUP "charts.helm.kubefledged.io"
#define OP_VERSION "v1alpha2"
#define OP_API_VERSION OP_GROUP "/" OP_VERSION
#define OP_KIND "KubeFledged"
#define OP_OWNER_LABEL OP_GROUP "/owner-uid"
#define OP_OWNER_ANNOTATION OP_GROUP "/owner"
#define OP_FINALIZER OP_GROUP "/uninstall"
#define OP_FIELD_MANAGER "kubefledged-operator"

extern const struct kube_resource OP_KUBEFLEDGEDS;

/* The kinds the chart can render, in apply order. NULL when kind (with apiVersion) is not one of them. */
const struct kube_resource *op_resource_of(const char *api_version, const char *kind);

/* "Deployment kube-fledged/kube-fledged-controller" or "ClusterRole kube-fledged-controller", into buf. */
const char *op_object_name(json_t *obj, char *buf, size_t n);

/* Adds the owner label and annotation to every object of desired, and to namespaced ones the ownerReference
 * to kf (the KubeFledged, borrowed); CRDs are left as they are. */
void op_decorate(json_t *desired, json_t *kf);

/* Every object labelled with owner uid, of every kind the chart can render (namespaced ones in ns): a new
 * array, or NULL with err set. A CRD's kind the cluster does not serve (the list answers 404) has no
 * objects, so that a cluster without the Prometheus Operator can still install and uninstall. */
json_t *op_list_owned(struct kube_client *c, const char *uid, const char *ns, struct kube_err *err);

/* Whether the object may be applied for the owner uid: 1 (it does not exist, or carries our label), 0 (a
 * conflict: msg says who has it), -1 (the API failed: err). */
int op_may_apply(struct kube_client *c, json_t *obj, const char *uid, struct strbuf *msg, struct kube_err *err);

/* Whether the API server serves obj's kind: 1 (yes, or a built-in kind, not asked), 0 (a CRD's kind the
 * cluster has not installed, e.g. ServiceMonitor without the Prometheus Operator: msg says which and what
 * to do), -1 (the API failed: err). One discovery GET (/apis/<group>/<version>) per call for such kinds.
 * Asked before the first write, so that values needing a missing CRD change nothing, as with Helm ("no
 * matches for kind ... ensure CRDs are installed first"). */
int op_kind_served(struct kube_client *c, json_t *obj, struct strbuf *msg, struct kube_err *err);

/* Server-side apply of obj. Returns the object as stored (new reference), or NULL with err. A Deployment or
 * DaemonSet whose selector changed (immutable) is deleted and applied again. */
json_t *op_apply_one(struct kube_client *c, json_t *obj, struct kube_err *err);

/* Deletes the objects of owned that are not in desired (by kind, namespace and name), the
 * ValidatingWebhookConfiguration first (with failurePolicy Fail and no server it would refuse every
 * ImageCache write). desired may be NULL (delete everything: uninstall). Names of the deleted objects are
 * appended to done ("Deployment ns/name, ..."). Returns how many were deleted, or -1 with err (the first
 * failure; the others are still tried). */
int op_prune(struct kube_client *c, json_t *owned, json_t *desired, struct strbuf *done, struct kube_err *err);

/* Readiness of one applied object as stored: 1 ready, 0 not yet (why says why). Deployments: the current
 * generation rolled out and every replica available; DaemonSets: every scheduled pod updated and available;
 * a ValidatingWebhookConfiguration: its caBundle set. Other kinds are ready. */
int op_object_ready(json_t *obj, struct strbuf *why);

#endif
