/* wh_initserver.h - upstream kube-fledged's `--init-server` contract, for upstream's own manifests (the
 * webhook Deployment's init container, started as /opt/bin/kubefledged-webhook-server):
 *
 *   env WEBHOOK_SERVER_SERVICE, KUBEFLEDGED_NAMESPACE, CERT_KEY_PATH (a directory, ending in "/"),
 *   VALIDATING_WEBHOOK_CONFIG; writes <CERT_KEY_PATH>tls.crt and tls.key (an emptyDir the server container
 *   mounts and serves with --cert-file/--key-file), then sets the caBundle of the configuration with a GET
 *   and an UPDATE, the only rights upstream's ClusterRole grants (no Secret, no patch). Any failure exits
 *   non-zero, and the kubelet retries the init container (the configuration may not exist yet).
 *
 * As upstream, a new CA is minted at every start (there is nowhere else to keep one with those rights). What
 * we fix within that contract: the keys are ECDSA P-256 (a millisecond; upstream's two RSA-4096 keys took
 * seconds of CPU per start), and the caBundle is not overwritten but merged: the new CA first, then the
 * still-valid CAs it held, up to WH_INIT_MAX_CAS. Upstream replaced it, so during a rolling update the old
 * pod, still in the Service's endpoints, served a certificate the API server no longer trusted, and with two
 * replicas the last one to start won and the other failed TLS for good. Expired CAs (upstream manifests ship
 * an expired placeholder) and anything that is not a CA certificate are dropped. */
#ifndef WH_INITSERVER_H
#define WH_INITSERVER_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "kube/kube_client.h"
#include "util/strbuf.h"

#define WH_INIT_MAX_CAS 4 /* CAs kept in the caBundle: one per replica start that may still be serving */

struct wh_initserver_opts {
	struct kube_client *client; /* borrowed */
	const char *dir;            /* CERT_KEY_PATH, must end with "/" */
	const char *service, *ns;   /* the webhook Service the certificate is for */
	const char *vwc;            /* ValidatingWebhookConfiguration name */
	int64_t ca_validity_s, cert_validity_s; /* 0 = wh_certs.h defaults */
};

/* Mints the pair, writes the files, updates the caBundle. 0, or -1 with err naming what failed. */
int wh_initserver_run(const struct wh_initserver_opts *o, struct strbuf *err);

/* The caBundle to write: new_ca_pem first, then the certificates of old_bundle_pem (may be NULL or not PEM)
 * that are CAs, unexpired at now and not new_ca_pem itself, in their order, max_cas in all. New string. */
char *wh_cabundle_merge(const char *new_ca_pem, const char *old_bundle_pem, time_t now, int max_cas);

/* The PEM bundle the configuration trusts now: the decoded caBundle of the first webhook that has one. New
 * string, or NULL. */
char *wh_vwc_cabundle(json_t *vwc);

/* Sets clientConfig.caBundle of every webhook of vwc (modified in place) to bundle_pem; returns how many
 * changed. Every webhook of the named configuration is kube-fledged's (upstream set only webhooks[0]). */
int wh_vwc_set_cabundle(json_t *vwc, const char *bundle_pem);

#endif
