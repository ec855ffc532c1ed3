/* wh_initserver.c - upstream's `--init-server`: mint, write, merge the caBundle; see wh_initserver.h. */
#include "wh_initserver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/base64.h"
#include "util/log.h"
#include "util/util.h"
#include "wh_certs.h"

#define MAX_ATTEMPTS 5
#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"

/* The next certificate block of a PEM text at or after p: its start, and *end just past its END line (and
 * newline). NULL when there is none. */
static const char *next_cert(const char *p, const char **end)
{
	const char *b = p ? strstr(p, PEM_BEGIN) : NULL;
	const char *e = b ? strstr(b, PEM_END) : NULL;
	if (!e)
		return NULL;
	e += strlen(PEM_END);
	while (*e == '\r' || *e == '\n')
		e++;
	*end = e;
	return b;
}

char *wh_cabundle_merge(const char *new_ca_pem, const char *old_bundle_pem, time_t now, int max_cas)
{
	struct strbuf out = STRBUF_INIT;
	struct strbuf ignored = STRBUF_INIT;
	struct wh_cert_info fresh;
	int have_fresh = wh_cert_info(new_ca_pem, &fresh, &ignored) == 0;
	sb_adds(&out, new_ca_pem);
	if (out.len && out.buf[out.len - 1] != '\n')
		sb_addc(&out, '\n');
	int n = 1;
	const char *end;
	for (const char *b = next_cert(old_bundle_pem, &end); b && n < max_cas; b = next_cert(end, &end)) {
		char *one = xstrndup(b, (size_t)(end - b));
		struct wh_cert_info ci;
		sb_reset(&ignored);
		int keep = wh_cert_info(one, &ci, &ignored) == 0 && ci.is_ca && ci.not_after > now &&
			   !(have_fresh && !strcmp(ci.sha256, fresh.sha256));
		if (keep) {
			sb_adds(&out, one);
			if (out.buf[out.len - 1] != '\n')
				sb_addc(&out, '\n');
			n++;
		}
		free(one);
	}
	sb_release(&ignored);
	return sb_detach(&out);
}

char *wh_vwc_cabundle(json_t *vwc)
{
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(vwc, "webhooks"), i, h) {
		const char *b64 = kf_jstr(h, "clientConfig", "caBundle", NULL);
		if (!b64 || !*b64)
			continue;
		size_t n = 0;
		char *pem = (char *)kf_base64_decode(b64, strlen(b64), &n, NULL);
		if (pem && strlen(pem) == n)
			return pem;
		free(pem);
	}
	return NULL;
}

int wh_vwc_set_cabundle(json_t *vwc, const char *bundle_pem)
{
	char *b64 = kf_base64_encode(bundle_pem, strlen(bundle_pem));
	int changed = 0;
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(vwc, "webhooks"), i, h) {
		json_t *cc = json_object_get(h, "clientConfig");
		if (!json_is_object(cc)) {
			cc = json_object();
			json_object_set_new(h, "clientConfig", cc);
		}
		const char *cur = json_string_value(json_object_get(cc, "caBundle"));
		if (cur && !strcmp(cur, b64))
			continue;
		json_object_set_new(cc, "caBundle", json_string(b64));
		changed++;
	}
	free(b64);
	return changed;
}

/* GET + UPDATE of the configuration with the merged bundle, again on 409 (someone wrote in between). */
static int update_vwc(const struct wh_initserver_opts *o, const char *ca_pem, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	int rc = -1;
	kube_path(&path, &KUBE_VALIDATING_WEBHOOK_CONFIGURATIONS, NULL, o->vwc, NULL);
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct kube_err ke;
		json_t *vwc = kube_get(o->client, path.buf, &ke);
		if (!vwc) {
			sb_addf(err, "cannot read ValidatingWebhookConfiguration %s (VALIDATING_WEBHOOK_CONFIG): %s (HTTP %ld)%s",
				o->vwc, ke.msg[0] ? ke.msg : "no message", ke.code,
				kube_err_is_not_found(&ke) ? "; the kubelet retries this init container until it exists" : "");
			goto out;
		}
		char *old = wh_vwc_cabundle(vwc);
		char *bundle = wh_cabundle_merge(ca_pem, old, time(NULL), WH_INIT_MAX_CAS);
		int kept = wh_cert_count(bundle) - 1;
		int n = wh_vwc_set_cabundle(vwc, bundle);
		free(old);
		free(bundle);
		json_t *res = n ? kube_update(o->client, path.buf, vwc, &ke) : json_incref(vwc);
		json_decref(vwc);
		if (res) {
			json_decref(res);
			LOG_INFO("ValidatingWebhookConfiguration %s: caBundle set in %d webhook(s): the new CA and %d "
				 "still-valid CA(s) it trusted before", o->vwc, n, kept);
			rc = 0;
			goto out;
		}
		if (kube_err_is_conflict(&ke)) {
			LOG_V(1, "ValidatingWebhookConfiguration %s changed while updating it, retrying", o->vwc);
			continue;
		}
		sb_addf(err, "cannot update the caBundle of ValidatingWebhookConfiguration %s: %s (HTTP %ld)", o->vwc,
			ke.msg[0] ? ke.msg : "no message", ke.code);
		goto out;
	}
	sb_addf(err, "ValidatingWebhookConfiguration %s: gave up after %d conflicting updates", o->vwc, MAX_ATTEMPTS);
out:
	sb_release(&path);
	return rc;
}

int wh_initserver_run(const struct wh_initserver_opts *o, struct strbuf *err)
{
	struct wh_pki none = { 0 }, pki = { 0 };
	struct strbuf why = STRBUF_INIT;
	char *crt = NULL, *key = NULL;
	int rc = -1, changed = 0;
	size_t dl = o->dir ? strlen(o->dir) : 0;
	if (!dl || o->dir[dl - 1] != '/') {
		sb_addf(err, "environment variable CERT_KEY_PATH must name a directory and end with \"/\" (got \"%s\")",
			o->dir ? o->dir : "");
		goto out;
	}
	if (!o->vwc || !*o->vwc) {
		sb_adds(err, "environment variable VALIDATING_WEBHOOK_CONFIG is not set: no configuration to trust the CA");
		goto out;
	}
	struct wh_pki_opts po = { o->service, o->ns, o->ca_validity_s, o->cert_validity_s, 0 };
	if (wh_pki_reconcile(&none, &po, &pki, &changed, &why, err) < 0)
		goto out;
	if (mkdir(o->dir, 0755) < 0 && errno != EEXIST) {
		sb_addf(err, "cannot create CERT_KEY_PATH %s: %s", o->dir, strerror(errno));
		goto out;
	}
	crt = xasprintf("%stls.crt", o->dir);
	key = xasprintf("%stls.key", o->dir);
	if (kf_write_file_atomic(crt, pki.tls_crt, strlen(pki.tls_crt), 0644, err) < 0 ||
	    kf_write_file_atomic(key, pki.tls_key, strlen(pki.tls_key), 0600, err) < 0)
		goto out;
	struct wh_cert_info ci;
	char until[32] = "?";
	struct strbuf ignored = STRBUF_INIT;
	if (wh_cert_info(pki.tls_crt, &ci, &ignored) == 0)
		kf_rfc3339(ci.not_after, until);
	sb_release(&ignored);
	LOG_INFO("wrote %s and %s: a new CA and a certificate for Service %s/%s (valid until %s)", crt, key, o->ns,
		 o->service, until);
	rc = update_vwc(o, pki.ca_crt, err);
out:
	free(crt);
	free(key);
	wh_pki_free(&pki);
	sb_release(&why);
	return rc;
}
