/* test_wh_certs.c - the webhook's CA and serving certificates (names, usages, validity, chain), the
 * Secret renewal decision over simulated years, and the caBundle patch computation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"
#include "webhook/wh_cabundle.h"
#include "webhook/wh_certs.h"

#define DAY (24 * 3600LL)
#define YEAR (365 * DAY)
static const time_t T0 = 1800000000; /* 2027-01-15, a fixed "now" */

static X509 *parse(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(x);
	return x;
}

static void name_entry(X509 *x, int nid, char *out, size_t n)
{
	out[0] = 0;
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, out, (int)n);
}

static void ca_has_the_right_shape(void **state)
{
	(void)state;
	char *crt, *key;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_new_ca("kubefledged-webhook-ca", WH_CA_VALIDITY_S, T0, &crt, &key, &err), 0);
	assert_non_null(strstr(crt, "-----BEGIN CERTIFICATE-----"));
	assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
	X509 *x = parse(crt);
	char buf[128];
	name_entry(x, NID_commonName, buf, sizeof buf);
	assert_string_equal(buf, "kubefledged-webhook-ca");
	name_entry(x, NID_organizationName, buf, sizeof buf);
	assert_string_equal(buf, "kubefledged.io");
	assert_int_equal(X509_check_ca(x), 1);
	assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK); /* self-signed */
	EVP_PKEY *pk = X509_get0_pubkey(x);
	assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(pk), 256);
	struct wh_cert_info ci;
	assert_int_equal(wh_cert_info(crt, &ci, &err), 0);
	assert_true(ci.is_ca);
	assert_int_equal(ci.not_before, T0 - 3600);
	assert_int_equal(ci.not_after, T0 + WH_CA_VALIDITY_S);
	assert_string_equal(ci.subject, "CN=kubefledged-webhook-ca, O=kubefledged.io");
	/* a CA that ends after 2038 (T0 + 20 y = 2047) reads right also with a 32-bit time_t (armhf) */
	char *crt20, *key20;
	struct wh_cert_info ci20;
	assert_int_equal(wh_cert_new_ca("long-lived", 2 * WH_CA_VALIDITY_S, T0, &crt20, &key20, &err), 0);
	assert_int_equal(wh_cert_info(crt20, &ci20, &err), 0);
	assert_int_equal(ci20.not_after, T0 + 2 * WH_CA_VALIDITY_S);
	assert_int_equal(wh_cert_due(&ci20, T0), 0);
	free(crt20), free(key20);
	assert_int_equal(strlen(ci.sha256), 64);
	assert_int_equal(wh_cert_key_matches(crt, key, &err), 0);
	X509_free(x);
	free(crt), free(key);
	sb_release(&err);
}

static void serving_certificate_names_usages_and_chain(void **state)
{
	(void)state;
	char *ca, *cak, *crt, *key, *names[4];
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_new_ca("kubefledged-webhook-ca", WH_CA_VALIDITY_S, T0, &ca, &cak, &err), 0);
	assert_int_equal(wh_cert_service_names("kubefledged-webhook-server", "kube-fledged", names, &err), 0);
	assert_string_equal(names[0], "kubefledged-webhook-server");
	assert_string_equal(names[1], "kubefledged-webhook-server.kube-fledged");
	assert_string_equal(names[2], "kubefledged-webhook-server.kube-fledged.svc");
	assert_string_equal(names[3], "kubefledged-webhook-server.kube-fledged.svc.cluster.local");
	const char *cn_first[4] = { names[2], names[0], names[1], names[3] };
	assert_int_equal(wh_cert_new_serving(ca, cak, cn_first, 4, WH_CERT_VALIDITY_S, T0, &crt, &key, &err), 0);
	X509 *x = parse(crt);
	char buf[128];
	name_entry(x, NID_commonName, buf, sizeof buf);
	assert_string_equal(buf, "kubefledged-webhook-server.kube-fledged.svc");
	name_entry(x, NID_organizationName, buf, sizeof buf);
	assert_string_equal(buf, "kubefledged.io");
	/* exactly the four DNS SANs */
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(sans);
	assert_int_equal(sk_GENERAL_NAME_num(sans), 4);
	for (int i = 0; i < 4; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		assert_int_equal(g->type, GEN_DNS);
		assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), cn_first[i]);
	}
	GENERAL_NAMES_free(sans);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	struct wh_cert_info ci;
	assert_int_equal(wh_cert_info(crt, &ci, &err), 0);
	assert_false(ci.is_ca);
	assert_int_equal(ci.not_after - T0, WH_CERT_VALIDITY_S);
	/* the CA verifies it, for every name, at T0 and just before expiry; not after, not for other names */
	for (int i = 0; i < 4; i++)
		assert_int_equal(wh_cert_verify(ca, crt, names[i], T0, &err), 0);
	assert_int_equal(wh_cert_verify(ca, crt, NULL, T0 + WH_CERT_VALIDITY_S - 60, &err), 0);
	assert_int_equal(wh_cert_verify(ca, crt, NULL, T0 + WH_CERT_VALIDITY_S + 60, &err), -1);
	assert_non_null(strstr(err.buf, "expired"));
	sb_reset(&err);
	assert_int_equal(wh_cert_verify(ca, crt, "evil.example.com", T0, &err), -1);
	assert_int_equal(wh_cert_verify(ca, crt, "127.0.0.1", T0, &err), -1);
	sb_reset(&err);
	/* another CA does not */
	char *ca2, *ca2k;
	assert_int_equal(wh_cert_new_ca("other", WH_CA_VALIDITY_S, T0, &ca2, &ca2k, &err), 0);
	assert_int_equal(wh_cert_verify(ca2, crt, NULL, T0, &err), -1);
	/* key pairing */
	sb_reset(&err);
	assert_int_equal(wh_cert_key_matches(crt, key, &err), 0);
	assert_int_equal(wh_cert_key_matches(crt, cak, &err), -1);
	assert_non_null(strstr(err.buf, "does not belong"));
	X509_free(x);
	for (int i = 0; i < 4; i++)
		free(names[i]);
	free(ca), free(cak), free(crt), free(key), free(ca2), free(ca2k);
	sb_release(&err);
}

static void serving_ip_names_and_ca_bound(void **state)
{
	(void)state;
	char *ca, *cak, *crt, *key;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_new_ca("ca", 30 * DAY, T0, &ca, &cak, &err), 0);
	const char *names[] = { "localhost", "127.0.0.1", "::1" };
	assert_int_equal(wh_cert_new_serving(ca, cak, names, 3, WH_CERT_VALIDITY_S, T0, &crt, &key, &err), 0);
	assert_int_equal(wh_cert_verify(ca, crt, "127.0.0.1", T0, &err), 0);
	assert_int_equal(wh_cert_verify(ca, crt, "::1", T0, &err), 0);
	assert_int_equal(wh_cert_verify(ca, crt, "localhost", T0, &err), 0);
	struct wh_cert_info ci, cai;
	wh_cert_info(crt, &ci, &err);
	wh_cert_info(ca, &cai, &err);
	assert_int_equal(ci.not_after, cai.not_after); /* clipped to the CA's end */
	free(crt), free(key);
	/* bad names */
	const char *bad[] = { "a,DNS:evil" };
	assert_int_equal(wh_cert_new_serving(ca, cak, bad, 1, YEAR, T0, &crt, &key, &err), -1);
	assert_null(crt);
	char *n4[4];
	sb_reset(&err);
	assert_int_equal(wh_cert_service_names("Svc", "ns", n4, &err), -1);
	assert_int_equal(wh_cert_service_names("svc", "ns.x", n4, &err), -1);
	assert_int_equal(wh_cert_service_names("svc", "", n4, &err), -1);
	assert_non_null(strstr(err.buf, "DNS-1123"));
	free(ca), free(cak);
	sb_release(&err);
}

static void due_at_a_third_of_the_lifetime(void **state)
{
	(void)state;
	struct wh_cert_info ci = { .not_before = 0, .not_after = 300 };
	assert_false(wh_cert_due(&ci, 1));
	assert_false(wh_cert_due(&ci, 200));
	assert_true(wh_cert_due(&ci, 201));
	assert_true(wh_cert_due(&ci, 300));
	assert_true(wh_cert_due(&ci, 5000));
}

/* ---- the Secret's lifecycle ---- */

static const struct wh_pki_opts OPTS = { "kubefledged-webhook-server", "kube-fledged", 0, 0, 0 };

static int reconcile_at(struct wh_pki *cur, time_t now, struct wh_pki_opts o, char **why_out)
{
	struct wh_pki next;
	int changed = -1;
	struct strbuf why = STRBUF_INIT, err = STRBUF_INIT;
	o.now = now;
	if (wh_pki_reconcile(cur, &o, &next, &changed, &why, &err) < 0)
		fail_msg("wh_pki_reconcile: %s", err.buf);
	if (changed) {
		assert_non_null(next.ca_crt);
		assert_non_null(next.ca_key);
		assert_non_null(next.tls_crt);
		assert_non_null(next.tls_key);
		wh_pki_free(cur);
		*cur = next;
	}
	if (why_out)
		*why_out = sb_detach(&why);
	sb_release(&why);
	sb_release(&err);
	return changed;
}

static void check_consistent(const struct wh_pki *p, time_t now)
{
	struct strbuf err = STRBUF_INIT;
	if (wh_cert_key_matches(p->ca_crt, p->ca_key, &err) < 0 || wh_cert_key_matches(p->tls_crt, p->tls_key, &err) < 0 ||
	    wh_cert_verify(p->ca_crt, p->tls_crt, "kubefledged-webhook-server.kube-fledged.svc", now, &err) < 0)
		fail_msg("inconsistent PKI at %lld: %s", (long long)now, err.buf);
	sb_release(&err);
}

static char *issuer_of(const char *crt)
{
	X509 *x = parse(crt);
	char buf[256];
	X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof buf);
	X509_free(x);
	return xstrdup(buf);
}

static void pki_created_then_stable(void **state)
{
	(void)state;
	struct wh_pki p = { 0 };
	char *why;
	assert_int_equal(reconcile_at(&p, T0, OPTS, &why), 1);
	assert_string_equal(why, "CA created; serving certificate missing; serving certificate issued");
	free(why);
	check_consistent(&p, T0);
	assert_int_equal(wh_cert_count(p.ca_crt), 1);
	/* the CN is the name the API server calls, as wh_certs.h says (before: the bare Service name) */
	struct wh_cert_info ci;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_info(p.tls_crt, &ci, &err), 0);
	assert_string_equal(ci.subject, "CN=kubefledged-webhook-server.kube-fledged.svc, O=kubefledged.io");
	sb_release(&err);
	/* nothing due: no change, for months */
	assert_int_equal(reconcile_at(&p, T0, OPTS, NULL), 0);
	assert_int_equal(reconcile_at(&p, T0 + 200 * DAY, OPTS, NULL), 0);
	wh_pki_free(&p);
}

static void pki_renews_serving_certificate_before_expiry(void **state)
{
	(void)state;
	struct wh_pki p = { 0 };
	char *why;
	reconcile_at(&p, T0, OPTS, NULL);
	char *ca_before = xstrdup(p.ca_crt), *crt_before = xstrdup(p.tls_crt);
	/* 1 year + 1 h backdate: due when less than a third is left, i.e. after ~8 months */
	assert_int_equal(reconcile_at(&p, T0 + 250 * DAY, OPTS, &why), 1);
	assert_string_equal(why, "serving certificate renewed before expiry");
	free(why);
	assert_string_equal(p.ca_crt, ca_before); /* same CA: the caBundle does not change */
	assert_string_not_equal(p.tls_crt, crt_before);
	check_consistent(&p, T0 + 250 * DAY);
	free(ca_before), free(crt_before);
	wh_pki_free(&p);
}

static void pki_repairs_bad_content(void **state)
{
	(void)state;
	struct wh_pki p = { 0 };
	char *why;
	reconcile_at(&p, T0, OPTS, NULL);
	char *ca_before = xstrdup(p.ca_crt);
	/* a serving key that is not the certificate's */
	free(p.tls_key);
	p.tls_key = xstrdup(p.ca_key);
	assert_int_equal(reconcile_at(&p, T0, OPTS, &why), 1);
	assert_string_equal(why, "serving key does not match its certificate; serving certificate issued");
	free(why);
	assert_string_equal(p.ca_crt, ca_before);
	check_consistent(&p, T0);
	/* a certificate issued for another Service */
	struct wh_pki_opts other = OPTS;
	other.service = "renamed";
	assert_int_equal(reconcile_at(&p, T0, other, &why), 1);
	assert_string_equal(why, "serving certificate lacks the name renamed; serving certificate issued");
	free(why);
	assert_int_equal(reconcile_at(&p, T0, other, NULL), 0);
	/* garbage CA: replaced, and with it the serving certificate */
	free(p.ca_crt);
	p.ca_crt = xstrdup("not a certificate");
	assert_int_equal(reconcile_at(&p, T0, OPTS, &why), 1);
	assert_string_equal(why, "CA unusable, replaced; serving certificate verification failed: unable to get local "
				 "issuer certificate; serving certificate issued");
	free(why);
	check_consistent(&p, T0);
	assert_int_equal(wh_cert_count(p.ca_crt), 1);
	free(ca_before);
	wh_pki_free(&p);
}

static void pki_rotates_the_ca_with_overlap(void **state)
{
	(void)state;
	struct wh_pki p = { 0 };
	char *why;
	reconcile_at(&p, T0, OPTS, NULL);
	/* serving renewals every ~8 months keep it fresh; walk to just before the CA falls due (10 y: ~6.67 y) */
	time_t t = T0;
	for (int i = 0; i < 9; i++) {
		t += 250 * DAY;
		assert_int_equal(reconcile_at(&p, t, OPTS, NULL), 1);
		check_consistent(&p, t);
		assert_int_equal(wh_cert_count(p.ca_crt), 1);
	}
	/* t = T0 + 2250 d (6.16 y); the serving certificate is fresh. At T0 + 2440 d the CA is due. */
	char *old_ca = xstrdup(p.ca_crt), *serving = xstrdup(p.tls_crt);
	time_t rot = T0 + 2440 * DAY;
	assert_int_equal(reconcile_at(&p, rot, OPTS, &why), 1);
	assert_string_equal(why, "CA renewed before expiry");
	free(why);
	assert_int_equal(wh_cert_count(p.ca_crt), 2); /* new CA first, the old one still trusted */
	assert_non_null(strstr(p.ca_crt, old_ca));
	assert_int_not_equal(strncmp(p.ca_crt, old_ca, strlen(old_ca)), 0);
	assert_string_equal(p.tls_crt, serving); /* kept: still valid under the old CA, which stays in the bundle */
	check_consistent(&p, rot);
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(wh_cert_key_matches(p.ca_crt, p.ca_key, &e), 0); /* ca.key is the new CA's */
	sb_release(&e);
	/* the next serving renewal is signed by the new CA */
	time_t t2 = rot + 100 * DAY; /* the serving certificate (from T0 + 2250 d) is due, not expired */
	assert_int_equal(reconcile_at(&p, t2, OPTS, &why), 1);
	assert_string_equal(why, "serving certificate renewed before expiry");
	free(why);
	char *iss = issuer_of(p.tls_crt);
	assert_string_equal(iss, "/CN=kubefledged-webhook-ca/O=kubefledged.io");
	free(iss);
	check_consistent(&p, t2);
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_verify(old_ca, p.tls_crt, NULL, t2, &err), -1); /* really the new CA's */
	sb_release(&err);
	/* once the old CA expires (T0 + 10 y) it leaves the bundle */
	time_t t3 = T0 + WH_CA_VALIDITY_S + DAY;
	assert_int_equal(reconcile_at(&p, t3, OPTS, &why), 1);
	assert_non_null(strstr(why, "expired or non-CA certificate dropped from the CA bundle"));
	free(why);
	assert_int_equal(wh_cert_count(p.ca_crt), 1);
	check_consistent(&p, t3);
	free(old_ca), free(serving);
	wh_pki_free(&p);
}

static void pki_waits_for_a_new_ca_to_settle(void **state)
{
	(void)state;
	/* CA and serving certificate with the same 30-day life fall due together: the CA is renewed at once,
	 * the (still valid) serving certificate only once the new CA is an hour old */
	struct wh_pki_opts o = OPTS;
	o.ca_validity_s = 30 * DAY;
	o.cert_validity_s = 30 * DAY;
	struct wh_pki p = { 0 };
	char *why;
	reconcile_at(&p, T0, o, NULL);
	char *serving = xstrdup(p.tls_crt);
	time_t t = T0 + 21 * DAY;
	assert_int_equal(reconcile_at(&p, t, o, &why), 1);
	assert_string_equal(why, "CA renewed before expiry");
	free(why);
	assert_string_equal(p.tls_crt, serving);
	assert_int_equal(reconcile_at(&p, t + 1800, o, NULL), 0);
	assert_int_equal(reconcile_at(&p, t + 2 * 3600 + 60, o, &why), 1);
	assert_string_equal(why, "serving certificate renewed before expiry");
	free(why);
	check_consistent(&p, t + 7200);
	free(serving);
	wh_pki_free(&p);
}

/* ---- caBundle patch ---- */

static json_t *vwc_with(const char *b64_0, const char *b64_1)
{
	json_t *v = json_pack("{s:s, s:s, s:{s:s}, s:[]}", "apiVersion", "admissionregistration.k8s.io/v1", "kind",
			      "ValidatingWebhookConfiguration", "metadata", "name", "kubefledged-webhook-server",
			      "webhooks");
	const char *b[2] = { b64_0, b64_1 };
	for (int i = 0; i < 2; i++) {
		json_t *cc = json_pack("{s:{s:s, s:s, s:s, s:i}}", "service", "namespace", "kube-fledged", "name",
				       "kubefledged-webhook-server", "path", "/validate-image-cache", "port", 3443);
		if (b[i])
			json_object_set_new(cc, "caBundle", json_string(b[i]));
		char name[64];
		snprintf(name, sizeof name, "hook%d.kubefledged.io", i);
		json_array_append_new(json_object_get(v, "webhooks"),
				      json_pack("{s:s, s:o, s:[s,s]}", "name", name, "clientConfig", cc,
						"admissionReviewVersions", "v1beta1", "v1"));
	}
	return v;
}

static void cabundle_patch_only_when_stale(void **state)
{
	(void)state;
	const char *ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	char *good = kf_base64_encode(ca, strlen(ca));
	int n = -1;
	/* both right: nothing to do */
	json_t *v = vwc_with(good, good);
	assert_null(wh_cabundle_patch(v, ca, &n));
	assert_int_equal(n, 0);
	json_decref(v);
	/* upstream's placeholder in [0], missing in [1]: both patched, each guarded by a test of the name */
	v = vwc_with("Zm9vCg==", NULL);
	json_t *p = wh_cabundle_patch(v, ca, &n);
	assert_int_equal(n, 2);
	char *s = json_dumps(p, JSON_COMPACT);
	char *want = xasprintf("[{\"op\":\"test\",\"path\":\"/webhooks/0/name\",\"value\":\"hook0.kubefledged.io\"},"
			       "{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"%s\"},"
			       "{\"op\":\"test\",\"path\":\"/webhooks/1/name\",\"value\":\"hook1.kubefledged.io\"},"
			       "{\"op\":\"add\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"%s\"}]",
			       good, good);
	assert_string_equal(s, want);
	free(s), free(want);
	json_decref(p);
	json_decref(v);
	/* only the stale one */
	v = vwc_with(good, "");
	p = wh_cabundle_patch(v, ca, &n);
	assert_int_equal(n, 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(p, 1), "path")),
			    "/webhooks/1/clientConfig/caBundle");
	json_decref(p);
	json_decref(v);
	/* a bundle that is a prefix or superset of ours is stale too (exact match required) */
	char *longer = xasprintf("%s%s", ca, ca), *lb = kf_base64_encode(longer, strlen(longer));
	v = vwc_with(lb, good);
	p = wh_cabundle_patch(v, ca, &n);
	assert_int_equal(n, 1);
	json_decref(p);
	json_decref(v);
	free(longer), free(lb);
	/* no webhooks, or not an object at all: nothing */
	v = json_pack("{s:[]}", "webhooks");
	assert_null(wh_cabundle_patch(v, ca, &n));
	json_decref(v);
	assert_null(wh_cabundle_patch(NULL, ca, &n));
	free(good);
}

/* The Secret's data <-> struct wh_pki, and wiping a Secret object before it is freed. */
static void secret_data_round_trip_and_wipe(void **state)
{
	(void)state;
	struct wh_pki p = { xstrdup("CA CRT\n"), xstrdup("CA KEY\n"), xstrdup("TLS CRT\n"), xstrdup("TLS KEY\n") }, q;
	json_t *sec = json_pack("{s:s, s:{s:s}}", "kind", "Secret", "data", "other", "a2VlcA==");
	wh_pki_to_secret(&p, sec);
	assert_string_equal(json_string_value(kf_jget(sec, "data", "other", NULL)), "a2VlcA=="); /* kept */
	wh_pki_from_secret(sec, &q);
	assert_string_equal(q.ca_key, "CA KEY\n");
	assert_string_equal(q.tls_crt, "TLS CRT\n");
	wh_pki_free(&q);
	json_t *keep = json_deep_copy(sec);
	const char *v = json_string_value(kf_jget(sec, "data", "tls.key", NULL));
	size_t n = strlen(v);
	wh_secret_wipe(sec);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i], 0);
	/* missing, not a string, not base64, with a NUL: NULL fields */
	json_object_set_new(json_object_get(keep, "data"), "ca.crt", json_integer(1));
	json_object_set_new(json_object_get(keep, "data"), "ca.key", json_string("!!!"));
	json_object_set_new(json_object_get(keep, "data"), "tls.crt", json_string("AEE=")); /* "\0A" */
	json_object_del(json_object_get(keep, "data"), "tls.key");
	wh_pki_from_secret(keep, &q);
	assert_null(q.ca_crt);
	assert_null(q.ca_key);
	assert_null(q.tls_crt);
	assert_null(q.tls_key);
	wh_pki_from_secret(NULL, &q);
	assert_null(q.ca_crt);
	json_decref(keep);
	json_decref(sec);
	wh_pki_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ca_has_the_right_shape),
		cmocka_unit_test(serving_certificate_names_usages_and_chain),
		cmocka_unit_test(serving_ip_names_and_ca_bound),
		cmocka_unit_test(due_at_a_third_of_the_lifetime),
		cmocka_unit_test(pki_created_then_stable),
		cmocka_unit_test(pki_renews_serving_certificate_before_expiry),
		cmocka_unit_test(pki_repairs_bad_content),
		cmocka_unit_test(pki_rotates_the_ca_with_overlap),
		cmocka_unit_test(pki_waits_for_a_new_ca_to_settle),
		cmocka_unit_test(cabundle_patch_only_when_stale),
		cmocka_unit_test(secret_data_round_trip_and_wipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
