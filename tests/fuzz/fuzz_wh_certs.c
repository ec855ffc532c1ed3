/* fuzz_wh_certs.c - libFuzzer target: the webhook's certificate Secret, as read back from the API server,
 * given hostile content (the Secret lives in the webhook's namespace; whoever may write it there should
 * not get a crash out of the webhook).
 *   byte 0 odd   a Secret -> wh_pki_from_secret (base64 data of ca.crt, ca.key, tls.crt, tls.key), then one
 *                of the PEM readers the certificate manager and wh_tls use (OpenSSL and GnuTLS; byte 0 bits
 *                1-2 choose which), and wh_secret_wipe.
 *   byte 0 even  PEM text as it is (certificate or bundle, then a key after the first "\n--\n"): the same
 *                readers, without the JSON and base64 in the way.
 * Invariants beyond "no crash, no leak, no UB": certificate facts are well formed (a 64-hex fingerprint, a
 * bounded subject); a pair wh_tls accepts is served. OpenSSL 3 builds a decoder context for every key it
 * reads (also a certificate's public key), which makes this target slow: about a millisecond an input. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"
#include "webhook/wh_certs.h"
#include "webhook/wh_tls.h"

/* One reader per input (byte 0 >> 1, mod 4): each OpenSSL read costs about a millisecond here, and one at a
 * time lets the fuzzer explore each reader as fast. */
static void check_pems(const struct wh_pki *p, int op)
{
	struct strbuf err = STRBUF_INIT;
	struct wh_cert_info ci;
	const char *all[4] = { p->ca_crt, p->ca_key, p->tls_crt, p->tls_key };
	switch (op) {
	case 0: /* facts and bundle counts, as the certificate manager reads them */
		for (int i = 0; i < 4; i++) {
			if (!all[i])
				continue;
			if (wh_cert_info(all[i], &ci, &err) == 0 &&
			    (strlen(ci.subject) >= sizeof ci.subject || strlen(ci.sha256) != 64))
				abort();
			sb_reset(&err);
			if (wh_cert_count(all[i]) < 0)
				abort();
		}
		break;
	case 1: /* the serving pair's key against its certificate (OpenSSL) */
		if (p->tls_crt && p->tls_key)
			(void)wh_cert_key_matches(p->tls_crt, p->tls_key, &err);
		break;
	case 2: /* the serving pair as wh_tls loads it for the TLS handshakes (GnuTLS) */
		if (p->tls_crt && p->tls_key) {
			struct wh_tls *t = wh_tls_new();
			if (wh_tls_set(t, p->tls_crt, p->tls_key, &err) == 0 && !wh_tls_ready(t))
				abort();
			wh_tls_free(t);
		}
		break;
	default: /* the chain, as reconciliation checks it */
		if (p->tls_crt)
			(void)wh_cert_verify(p->ca_crt ? p->ca_crt : p->tls_crt, p->tls_crt,
					     "kubefledged-webhook-server.kube-fledged.svc", 1800000000, &err);
		break;
	}
	sb_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int secret = data[0] & 1, op = (data[0] >> 1) & 3;
	data++, size--;
	if (secret) {
		json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
		if (!j)
			return 0;
		struct wh_pki p;
		wh_pki_from_secret(j, &p);
		check_pems(&p, op);
		wh_pki_free(&p);
		wh_secret_wipe(j);
		json_decref(j);
		return 0;
	}
	char *text = xstrndup((const char *)data, size);
	char *sep = strstr(text, "\n--\n");
	struct wh_pki p = { 0 };
	if (sep) {
		*sep = 0;
		p.tls_key = xstrdup(sep + 4);
	}
	p.tls_crt = xstrdup(text); /* also the CA bundle it is verified against */
	check_pems(&p, op);
	wh_pki_free(&p);
	free(text);
	return 0;
}
