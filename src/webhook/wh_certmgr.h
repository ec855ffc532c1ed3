/* wh_certmgr.h - the webhook's certificates kept right through the Kubernetes API (the cure for upstream's
 * stale-caBundle defect, kube-fledged #76/#113/#200):
 *
 *   Secret <ns>/<secret> (type kubernetes.io/tls; keys ca.crt, ca.key, tls.crt, tls.key) is the single
 *   source of truth. Get-or-create: a replica that finds none creates it; a 409 AlreadyExists means
 *   another replica won, so it re-reads and uses that one, and all replicas share one CA. Renewal before
 *   expiry (wh_pki_reconcile) is an update with the read resourceVersion; a 409 means re-read and decide
 *   again, so concurrent replicas converge instead of fighting.
 *
 *   ValidatingWebhookConfiguration <vwc>: every webhooks[*].clientConfig.caBundle is made equal to the
 *   Secret's ca.crt with a guarded JSON Patch (wh_cabundle.h), on start and whenever the object changes
 *   (an informer watches it by name), so `kubectl apply` of the manifests or `helm upgrade`, which put a
 *   placeholder back, is repaired within about a second.
 *
 *   Serving: when a wh_tls is given, the Secret's tls.crt/tls.key are installed into it and re-installed
 *   whenever the Secret changes (renewal by any replica), without a restart.
 *
 * The continuous mode runs one worker thread; informer events and a periodic resync only mark the state
 * dirty, the worker reconciles level-triggered (reads the Secret and the VWC fresh from the API) and backs
 * off 1 s doubling to 30 s on errors. */
#ifndef WH_CERTMGR_H
#define WH_CERTMGR_H

#include <stdint.h>

#include "kube/kube_client.h"
#include "util/strbuf.h"
#include "wh_certs.h"
#include "wh_tls.h"

struct wh_certmgr_opts {
	struct kube_client *client; /* borrowed, must outlive the manager */
	const char *ns;             /* namespace of the Secret and of the Service */
	const char *secret;         /* Secret name */
	const char *service;        /* Service name, for the certificate's DNS names */
	const char *vwc;            /* ValidatingWebhookConfiguration name; NULL or "" = leave it alone */
	int64_t ca_validity_s, cert_validity_s; /* 0 = defaults (wh_certs.h) */
	struct wh_tls *tls;         /* NULL = do not serve from the Secret (file mode) */
	int64_t resync_ms;          /* continuous mode: re-check expiry and the VWC this often; 0 = 10 min */
};

/* One pass: get-or-create the Secret and renew what is due. Fills *pki (caller frees with wh_pki_free).
 * 0, or -1 with err. */
int wh_certmgr_ensure_secret(const struct wh_certmgr_opts *o, struct wh_pki *pki, struct strbuf *err);
/* One pass: make the VWC's caBundle equal to ca_pem. *patched = number of webhooks changed (0 = already
 * right). -1 with err (err_code = HTTP status, 404 when the configuration does not exist). */
int wh_certmgr_sync_vwc(const struct wh_certmgr_opts *o, const char *ca_pem, int *patched, long *err_code,
			struct strbuf *err);

struct wh_certmgr;
/* Starts the informers and the worker. The manager copies the strings of o. */
struct wh_certmgr *wh_certmgr_start(const struct wh_certmgr_opts *o, struct strbuf *err);
/* Blocks until a reconcile succeeded (Secret ensured, serving pair installed if any), or timeout_ms, or
 * *stop becomes nonzero. 0 = ready. */
int wh_certmgr_wait_ready(struct wh_certmgr *m, int64_t timeout_ms, const volatile int *stop);
/* Counters for tests and logs. */
struct wh_certmgr_stats { uint64_t reconciles, vwc_patches, errors; };
void wh_certmgr_stats(struct wh_certmgr *m, struct wh_certmgr_stats *out);
/* Stops the informers and the worker; frees m. */
void wh_certmgr_stop(struct wh_certmgr *m);

#endif
