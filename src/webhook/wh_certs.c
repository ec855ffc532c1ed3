/* wh_certs.c - CA and serving certificates with OpenSSL 3, and the Secret renewal decision; see wh_certs.h.
 *
 * Everything here works on PEM text in and PEM text out, because that is what Secrets, files and the
 * caBundle carry; OpenSSL objects never leave this file. */
#include "wh_certs.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"

#define ORG "kubefledged.io"

static void ssl_err(struct strbuf *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	if (e) {
		ERR_error_string_n(e, buf, sizeof buf);
		sb_addf(err, "%s: %s", what, buf);
	} else {
		sb_adds(err, what);
	}
	ERR_clear_error();
}

static char *bio_text(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	return xstrndup(data, n > 0 ? (size_t)n : 0);
}

static X509 *read_cert(const char *pem)
{
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static EVP_PKEY *read_key(const char *pem)
{
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return k;
}

/* Every certificate of a PEM bundle; *n set. The array and certificates are the caller's. */
static X509 **read_bundle(const char *pem, size_t *n)
{
	X509 **v = NULL;
	*n = 0;
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		v = xrealloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = x;
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the bundle reads as "no start line" */
	return v;
}

static void free_bundle(X509 **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(v[i]);
	free(v);
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && PEM_write_bio_X509(b, x))
		s = bio_text(b);
	BIO_free(b);
	return s;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		s = bio_text(b);
	BIO_free(b);
	return s;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct strbuf *err)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (!e || !X509_add_ext(x, e, -1)) {
		X509_EXTENSION_free(e);
		ssl_err(err, OBJ_nid2sn(nid));
		return -1;
	}
	X509_EXTENSION_free(e);
	return 0;
}

/* A certificate with subject CN=cn (omitted when longer than X.509's 64), O=kubefledged.io, the key's
 * public half, a random serial and validity [now - backdate, now + validity_s). */
static X509 *new_cert(EVP_PKEY *key, const char *cn, time_t now, int64_t validity_s, struct strbuf *err)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	if (!x || !bn || !X509_set_version(x, 2) || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	X509_NAME *name = X509_get_subject_name(x);
	if (cn && strlen(cn) <= 64 &&
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		goto fail;
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)ORG, -1, -1, 0))
		goto fail;
	/* backdated for clock skew, by at most a tenth of the lifetime (short test validities stay usable) */
	long back = validity_s / 10 < WH_CERT_BACKDATE_S ? (long)(validity_s / 10) : WH_CERT_BACKDATE_S;
	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -back, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)(validity_s / 86400), (long)(validity_s % 86400), &now) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	BN_free(bn);
	return x;
fail:
	ssl_err(err, "cannot build certificate");
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/* Not timegm(): with a 32-bit time_t (Debian armhf) it overflows for certificates that end after 2038, such
 * as a 10-year CA made after 2028 or a user's long-lived CA, which then look unusable. */
static int64_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return kf_timegm64(&tm);
}

int wh_cert_new_ca(const char *cn, int64_t validity_s, time_t now, char **cert_out, char **key_out,
		   struct strbuf *err)
{
	int rc = -1;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	*cert_out = *key_out = NULL;
	if (!now)
		now = time(NULL);
	ERR_clear_error();
	if (!(k = EVP_EC_gen("P-256"))) {
		ssl_err(err, "cannot generate CA key");
		goto out;
	}
	if (!(x = new_cert(k, cn, now, validity_s, err)))
		goto out;
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature", err) ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash", err))
		goto out;
	if (!X509_sign(x, k, EVP_sha256())) {
		ssl_err(err, "cannot sign CA certificate");
		goto out;
	}
	*cert_out = cert_pem(x);
	*key_out = key_pem(k);
	if (!*cert_out || !*key_out) {
		ssl_err(err, "cannot encode CA");
		free(*cert_out), kf_free_secret(*key_out);
		*cert_out = *key_out = NULL;
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static int is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int wh_cert_new_serving(const char *ca_cert_pem, const char *ca_key_pem, const char *const *names, size_t n_names,
			int64_t validity_s, time_t now, char **cert_out, char **key_out, struct strbuf *err)
{
	int rc = -1;
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *cak = NULL, *k = NULL;
	struct strbuf san = STRBUF_INIT;
	*cert_out = *key_out = NULL;
	if (!now)
		now = time(NULL);
	ERR_clear_error();
	if (n_names == 0) {
		sb_adds(err, "a serving certificate needs at least one name");
		goto out;
	}
	for (size_t i = 0; i < n_names; i++)
		if (!*names[i] || (strpbrk(names[i], ",: \t\r\n") && !is_ip(names[i]))) {
			sb_addf(err, "invalid certificate name \"%s\"", names[i]);
			goto out;
		}
	if (!(ca = read_cert(ca_cert_pem)) || !(cak = read_key(ca_key_pem))) {
		ssl_err(err, "cannot read the CA certificate or key");
		goto out;
	}
	if (!(k = EVP_EC_gen("P-256"))) {
		ssl_err(err, "cannot generate serving key");
		goto out;
	}
	/* never outlive the CA */
	int64_t ca_end = asn1_time(X509_get0_notAfter(ca));
	if (ca_end && now + validity_s > ca_end)
		validity_s = ca_end > now ? ca_end - now : 0;
	if (!(x = new_cert(k, names[0], now, validity_s, err)))
		goto out;
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	for (size_t i = 0; i < n_names; i++)
		sb_addf(&san, "%s%s:%s", i ? "," : "", is_ip(names[i]) ? "IP" : "DNS", names[i]);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature", err) ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth", err) ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash", err) ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err) ||
	    add_ext(x, &ctx, NID_subject_alt_name, san.buf, err))
		goto out;
	if (!X509_sign(x, cak, EVP_sha256())) {
		ssl_err(err, "cannot sign serving certificate");
		goto out;
	}
	*cert_out = cert_pem(x);
	*key_out = key_pem(k);
	if (!*cert_out || !*key_out) {
		ssl_err(err, "cannot encode serving certificate");
		free(*cert_out), kf_free_secret(*key_out);
		*cert_out = *key_out = NULL;
		goto out;
	}
	rc = 0;
out:
	sb_release(&san);
	X509_free(ca);
	X509_free(x);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(k);
	return rc;
}

static int dns1123_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

int wh_cert_service_names(const char *svc, const char *ns, char *out[4], struct strbuf *err)
{
	if (!svc || !dns1123_label(svc) || !ns || !dns1123_label(ns)) {
		sb_addf(err, "webhook service \"%s\" in namespace \"%s\": both must be DNS-1123 labels (lowercase "
			     "alphanumerics and '-', at most 63)", svc ? svc : "", ns ? ns : "");
		return -1;
	}
	out[0] = xstrdup(svc);
	out[1] = xasprintf("%s.%s", svc, ns);
	out[2] = xasprintf("%s.%s.svc", svc, ns);
	out[3] = xasprintf("%s.%s.svc.cluster.local", svc, ns);
	return 0;
}

static void info_of(X509 *x, struct wh_cert_info *out)
{
	memset(out, 0, sizeof *out);
	out->not_before = asn1_time(X509_get0_notBefore(x));
	out->not_after = asn1_time(X509_get0_notAfter(x));
	out->is_ca = X509_check_ca(x) == 1;
	BIO *b = BIO_new(BIO_s_mem());
	if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_SEP_CPLUS_SPC | ASN1_STRFLGS_RFC2253) >= 0) {
		char *s = bio_text(b);
		snprintf(out->subject, sizeof out->subject, "%s", s);
		free(s);
	}
	BIO_free(b);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (X509_digest(x, EVP_sha256(), md, &n))
		for (unsigned int i = 0; i < n && i < 32; i++)
			snprintf(out->sha256 + 2 * i, 3, "%02x", md[i]);
}

int wh_cert_info(const char *pem, struct wh_cert_info *out, struct strbuf *err)
{
	X509 *x = read_cert(pem);
	if (!x) {
		ssl_err(err, "cannot read certificate");
		return -1;
	}
	info_of(x, out);
	X509_free(x);
	return 0;
}

int wh_cert_count(const char *pem)
{
	size_t n;
	X509 **v = read_bundle(pem, &n);
	free_bundle(v, n);
	return (int)n;
}

int wh_cert_key_matches(const char *cert, const char *key, struct strbuf *err)
{
	int rc = -1;
	X509 *x = read_cert(cert);
	EVP_PKEY *k = read_key(key);
	if (!x || !k)
		ssl_err(err, x ? "cannot read private key" : "cannot read certificate");
	else if (X509_check_private_key(x, k) != 1)
		ssl_err(err, "the private key does not belong to the certificate");
	else
		rc = 0;
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static int verify_x(X509 **cas, size_t n_cas, X509 *leaf, const char *host, time_t now, struct strbuf *err)
{
	int rc = -1;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!st || !ctx)
		goto oom;
	for (size_t i = 0; i < n_cas; i++)
		if (!X509_STORE_add_cert(st, cas[i]))
			goto oom;
	if (!X509_STORE_CTX_init(ctx, st, leaf, NULL))
		goto oom;
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(p, now ? now : time(NULL));
	X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
	if (host && !(is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(p, host) : X509_VERIFY_PARAM_set1_host(p, host, 0)))
		goto oom;
	if (X509_verify_cert(ctx) != 1) {
		sb_addf(err, "certificate verification failed: %s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		ERR_clear_error();
		goto out;
	}
	rc = 0;
	goto out;
oom:
	ssl_err(err, "cannot set up certificate verification");
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

int wh_cert_verify(const char *ca_bundle_pem, const char *leaf_pem, const char *host, time_t now,
		   struct strbuf *err)
{
	size_t n;
	X509 **cas = read_bundle(ca_bundle_pem, &n);
	X509 *leaf = read_cert(leaf_pem);
	int rc = -1;
	if (!n)
		sb_adds(err, "no CA certificate in the bundle");
	else if (!leaf)
		ssl_err(err, "cannot read certificate");
	else
		rc = verify_x(cas, n, leaf, host, now, err);
	X509_free(leaf);
	free_bundle(cas, n);
	return rc;
}

int wh_cert_due(const struct wh_cert_info *ci, time_t now)
{
	if (!now)
		now = time(NULL);
	int64_t life = ci->not_after - ci->not_before;
	return now >= ci->not_after || (ci->not_after - now) * 3 < life;
}

void wh_pki_free(struct wh_pki *p)
{
	free(p->ca_crt);
	kf_free_secret(p->ca_key);
	free(p->tls_crt);
	kf_free_secret(p->tls_key);
	memset(p, 0, sizeof *p);
}

static const char *const SECRET_KEYS[4] = { "ca.crt", "ca.key", "tls.crt", "tls.key" };

static char **pki_field(struct wh_pki *p, int i)
{
	char **f[4] = { &p->ca_crt, &p->ca_key, &p->tls_crt, &p->tls_key };
	return f[i];
}

void wh_pki_from_secret(json_t *secret, struct wh_pki *out)
{
	memset(out, 0, sizeof *out);
	json_t *data = json_object_get(secret, "data");
	for (int i = 0; i < 4; i++) {
		const char *b64 = json_string_value(json_object_get(data, SECRET_KEYS[i]));
		if (!b64)
			continue;
		size_t n = 0;
		char *v = (char *)kf_base64_decode(b64, strlen(b64), &n, NULL);
		if (v && strlen(v) != n) { /* embedded NUL: not PEM */
			kf_wipe(v, n);
			free(v);
			v = NULL;
		}
		*pki_field(out, i) = v;
	}
}

void wh_pki_to_secret(const struct wh_pki *p, json_t *secret)
{
	json_t *data = json_object_get(secret, "data");
	if (!json_is_object(data)) {
		data = json_object();
		json_object_set_new(secret, "data", data);
	}
	for (int i = 0; i < 4; i++) {
		const char *v = *pki_field((struct wh_pki *)p, i);
		char *b64 = kf_base64_encode(v, strlen(v));
		json_object_set_new(data, SECRET_KEYS[i], json_string(b64));
		kf_free_secret(b64);
	}
}

void wh_secret_wipe(json_t *secret)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(secret, "data"), k, v)
		if (json_is_string(v)) /* jansson's own buffer: overwritten in place, then freed by it */
			kf_wipe((char *)json_string_value(v), json_string_length(v));
	json_object_foreach(json_object_get(secret, "stringData"), k, v)
		if (json_is_string(v))
			kf_wipe((char *)json_string_value(v), json_string_length(v));
}

/* Is the serving pair usable as is: parses, key matches, chains to the bundle at now, names every
 * Service name. why gets the first problem. */
static int serving_ok(X509 **cas, size_t n_cas, const char *crt, const char *key, char *const names[4], time_t now,
		      struct wh_cert_info *info, struct strbuf *why)
{
	int ok = 0;
	X509 *x = read_cert(crt);
	EVP_PKEY *k = read_key(key);
	struct strbuf e = STRBUF_INIT;
	if (!x || !k) {
		sb_adds(why, !crt || !key ? "serving certificate missing" : "serving certificate unreadable");
		goto out;
	}
	info_of(x, info);
	if (X509_check_private_key(x, k) != 1) {
		sb_adds(why, "serving key does not match its certificate");
		goto out;
	}
	if (verify_x(cas, n_cas, x, NULL, now, &e) < 0) {
		sb_addf(why, "serving %s", e.buf);
		goto out;
	}
	for (int i = 0; i < 4; i++)
		if (X509_check_host(x, names[i], 0, 0, NULL) != 1) {
			sb_addf(why, "serving certificate lacks the name %s", names[i]);
			goto out;
		}
	ok = 1;
out:
	ERR_clear_error();
	sb_release(&e);
	X509_free(x);
	EVP_PKEY_free(k);
	return ok;
}

int wh_pki_reconcile(const struct wh_pki *cur, const struct wh_pki_opts *o, struct wh_pki *next, int *changed,
		     struct strbuf *why, struct strbuf *err)
{
	static const struct wh_pki none;
	if (!cur)
		cur = &none;
	time_t now = o->now ? o->now : time(NULL);
	int64_t ca_valid = o->ca_validity_s > 0 ? o->ca_validity_s : WH_CA_VALIDITY_S;
	int64_t cert_valid = o->cert_validity_s > 0 ? o->cert_validity_s : WH_CERT_VALIDITY_S;
	char *names[4] = { 0 };
	size_t n_old = 0;
	X509 **old = NULL, **cas = NULL;
	size_t n_cas = 0;
	char *new_ca_crt = NULL, *new_ca_key = NULL, *new_crt = NULL, *new_key = NULL;
	struct strbuf bundle = STRBUF_INIT;
	int rc = -1, bundle_changed = 0;

	*changed = 0;
	memset(next, 0, sizeof *next);
	ERR_clear_error();
	if (wh_cert_service_names(o->service, o->ns, names, err) < 0)
		goto out;

	/* 1. the CA bundle: the signing CA first, then still-valid older CAs */
	old = read_bundle(cur->ca_crt, &n_old);
	EVP_PKEY *cak = read_key(cur->ca_key);
	int signer_ok = n_old && cak && X509_check_ca(old[0]) == 1 && X509_check_private_key(old[0], cak) == 1 &&
			asn1_time(X509_get0_notAfter(old[0])) > now;
	EVP_PKEY_free(cak);
	ERR_clear_error();
	struct wh_cert_info ca_info;
	if (n_old)
		info_of(old[0], &ca_info);
	if (!signer_ok || wh_cert_due(&ca_info, now)) {
		sb_addf(why, "%s%s", why->len ? "; " : "",
			!cur->ca_crt ? "CA created" : !signer_ok ? "CA unusable, replaced" : "CA renewed before expiry");
		if (wh_cert_new_ca("kubefledged-webhook-ca", ca_valid, now, &new_ca_crt, &new_ca_key, err) < 0)
			goto out;
		bundle_changed = 1;
		cas = xcalloc(n_old + 1, sizeof *cas);
		cas[n_cas++] = read_cert(new_ca_crt);
	} else {
		cas = xcalloc(n_old + 1, sizeof *cas);
	}
	for (size_t i = 0; i < n_old; i++) {
		if (X509_check_ca(old[i]) == 1 && asn1_time(X509_get0_notAfter(old[i])) > now) {
			X509_up_ref(old[i]);
			cas[n_cas++] = old[i];
		} else {
			bundle_changed = 1;
			if (signer_ok)
				sb_addf(why, "%sexpired or non-CA certificate dropped from the CA bundle",
					why->len ? "; " : "");
		}
	}
	for (size_t i = 0; i < n_cas; i++) {
		char *p = cert_pem(cas[i]);
		sb_adds(&bundle, p ? p : "");
		free(p);
	}

	/* 2. the serving certificate */
	struct wh_cert_info leaf;
	struct strbuf problem = STRBUF_INIT;
	int issue = 0;
	if (!serving_ok(cas, n_cas, cur->tls_crt, cur->tls_key, names, now, &leaf, &problem)) {
		issue = 1;
		sb_addf(why, "%s%s; serving certificate issued", why->len ? "; " : "", problem.buf);
	} else if (wh_cert_due(&leaf, now)) {
		struct wh_cert_info signer;
		info_of(cas[0], &signer);
		if (now - (signer.not_before + WH_CERT_BACKDATE_S) >= WH_CA_SETTLE_S) {
			issue = 1;
			sb_addf(why, "%sserving certificate renewed before expiry", why->len ? "; " : "");
		}
	}
	sb_release(&problem);
	if (issue) {
		const char *ca_key = new_ca_key ? new_ca_key : cur->ca_key;
		/* the CN is <svc>.<ns>.svc, the name the API server calls (wh_certs.h) */
		const char *cn_first[4] = { names[2], names[0], names[1], names[3] };
		if (wh_cert_new_serving(bundle.buf, ca_key, cn_first, 4, cert_valid, now, &new_crt, &new_key, err) < 0)
			goto out;
	}

	if (bundle_changed || issue) {
		*changed = 1;
		next->ca_crt = sb_detach(&bundle);
		next->ca_key = new_ca_key ? new_ca_key : xstrdup(cur->ca_key);
		new_ca_key = NULL;
		next->tls_crt = new_crt ? new_crt : xstrdup(cur->tls_crt);
		next->tls_key = new_key ? new_key : xstrdup(cur->tls_key);
		new_crt = new_key = NULL;
	}
	rc = 0;
out:
	for (int i = 0; i < 4; i++)
		free(names[i]);
	free_bundle(old, n_old);
	free_bundle(cas, n_cas);
	free(new_ca_crt);
	kf_free_secret(new_ca_key);
	free(new_crt);
	kf_free_secret(new_key);
	sb_release(&bundle);
	return rc;
}
