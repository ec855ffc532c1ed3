/* wh_certs.h - the webhook's PKI with OpenSSL: a private CA, a serving certificate for the webhook Service,
 * and the decision what a certificate Secret should hold (create, keep, renew), as pure functions of the
 * current material and the time, so every branch is unit-tested without an API server.
 *
 * Keys are ECDSA P-256 (about a millisecond to generate; upstream's RSA-4096 took seconds per start).
 *   CA:      CN=kubefledged-webhook-ca, O=kubefledged.io; CA:TRUE, pathlen 0; keyCertSign, cRLSign;
 *            default validity 10 years.
 *   serving: CN=<svc>.<ns>.svc, O=kubefledged.io; DNS <svc>.<ns>.svc, <svc>, <svc>.<ns>,
 *            <svc>.<ns>.svc.cluster.local; CA:FALSE; digitalSignature; EKU serverAuth; default 1 year,
 *            never past the CA's own end.
 * Both start in the past by an hour (clock skew between nodes; a tenth of the lifetime if that is shorter),
 * serials are 128 random bits.
 * A certificate is "due" when less than a third of its lifetime is left.
 *
 * All PEM strings returned are malloc'd and owned by the caller (free(); kf_free_secret() for keys, which
 * wipes them), as are the fields of struct wh_pki (wh_pki_free, which wipes the keys). Errors are appended
 * to err with OpenSSL's reason. */
#ifndef WH_CERTS_H
#define WH_CERTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/strbuf.h"

#define WH_CA_VALIDITY_S (10LL * 365 * 24 * 3600)
#define WH_CERT_VALIDITY_S (365LL * 24 * 3600)
#define WH_CERT_BACKDATE_S 3600
/* A renewed serving certificate that is merely due (not invalid) is issued only by a CA at least this old,
 * so the API server has long had the new CA in the caBundle when the certificate it signed is served. */
#define WH_CA_SETTLE_S 3600

struct wh_cert_info {
	int64_t not_before, not_after; /* seconds since the epoch; 64-bit also where time_t is 32 (armhf): past 2038 */
	int is_ca;
	char subject[256]; /* one line, e.g. "CN=svc.ns.svc, O=kubefledged.io" */
	char sha256[65];   /* fingerprint, lowercase hex */
};

/* A self-signed CA. now = 0 means time(NULL). */
int wh_cert_new_ca(const char *cn, int64_t validity_s, time_t now, char **cert_pem, char **key_pem,
		   struct strbuf *err);
/* A serving certificate signed by the CA (ca_cert_pem: the first certificate is used). names[0] is the CN;
 * every name becomes a SAN: IP when it parses as an IPv4/IPv6 address, else DNS. */
int wh_cert_new_serving(const char *ca_cert_pem, const char *ca_key_pem, const char *const *names, size_t n_names,
			int64_t validity_s, time_t now, char **cert_pem, char **key_pem, struct strbuf *err);
/* The four DNS names of a Service: <svc>, <svc>.<ns>, <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local (issue a
 * serving certificate with <svc>.<ns>.svc first, the CN); malloc'd strings the caller frees. Fails (err)
 * unless svc and ns are DNS-1123 labels. */
int wh_cert_service_names(const char *svc, const char *ns, char *out[4], struct strbuf *err);

/* Facts about the first certificate in pem. */
int wh_cert_info(const char *pem, struct wh_cert_info *out, struct strbuf *err);
/* Number of certificates in a PEM bundle (0 when none parse). */
int wh_cert_count(const char *pem);
/* 0 when key_pem is the private key of the first certificate in cert_pem. */
int wh_cert_key_matches(const char *cert_pem, const char *key_pem, struct strbuf *err);
/* 0 when the first certificate of leaf_pem chains to a CA of ca_bundle_pem at `now` (0 = time(NULL)), is
 * fit for TLS serverAuth and, when host != NULL, is valid for host (DNS name or IP address). */
int wh_cert_verify(const char *ca_bundle_pem, const char *leaf_pem, const char *host, time_t now,
		   struct strbuf *err);
/* 1 when less than a third of the certificate's lifetime is left at now (or it has expired). */
int wh_cert_due(const struct wh_cert_info *ci, time_t now);

/* The content of the certificate Secret (kubernetes.io/tls): keys ca.crt, ca.key, tls.crt, tls.key.
 * ca_crt may hold several CAs, the signing one (ca_key's) first: after a CA renewal the previous CA stays
 * trusted until it expires, so certificates it signed keep working everywhere during the switch. */
struct wh_pki {
	char *ca_crt, *ca_key, *tls_crt, *tls_key; /* PEM, malloc'd; NULL = missing */
};
void wh_pki_free(struct wh_pki *p); /* wipes ca_key and tls_key before freeing */

/* The four keys of a Secret object's data (base64), decoded into out (all fields malloc'd or NULL: a key
 * that is missing, not a string, not base64 or holds a NUL byte is NULL). secret may be NULL or any JSON;
 * it is only read. */
void wh_pki_from_secret(json_t *secret, struct wh_pki *out);
/* Sets the four keys in secret's data (created when missing; other keys kept). Every field must be set. */
void wh_pki_to_secret(const struct wh_pki *p, json_t *secret);
/* Overwrites every string value of secret's data in place with zeros, so that freeing the object leaves
 * no key material behind. NULL or a Secret without data is fine. */
void wh_secret_wipe(json_t *secret);

struct wh_pki_opts {
	const char *service, *ns;        /* the webhook Service */
	int64_t ca_validity_s, cert_validity_s; /* 0 = the defaults above */
	time_t now;                      /* 0 = time(NULL) */
};

/* Decides what the Secret should hold given what it holds now (cur; NULL or NULL fields when missing):
 *   - CA missing, unparsable, not matching ca.key, or expired: a new CA (and a new serving certificate);
 *   - CA due: a new CA goes first in the bundle, still-valid old CAs stay after it;
 *   - serving certificate missing, not matching its key, not chaining to the bundle, lacking a Service
 *     name, or expired: a new one from the signing CA at once; merely due: a new one once the signing CA
 *     is older than WH_CA_SETTLE_S.
 * Expired CAs are dropped from the bundle. Returns 0 with *changed = 0 (next untouched) when cur is fine,
 * or *changed = 1 and next filled (all four fields) with the reasons in why ("CA created; serving
 * certificate issued"). -1 on failure (err). */
int wh_pki_reconcile(const struct wh_pki *cur, const struct wh_pki_opts *o, struct wh_pki *next, int *changed,
		     struct strbuf *why, struct strbuf *err);

#endif
