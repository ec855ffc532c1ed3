/* test_wh_initserver.c - upstream's --init-server contract as we keep it (wh_initserver.h): the caBundle a
 * new pod start writes (its new CA first, the still-valid CAs before it kept, expired ones, placeholders and
 * non-CA certificates dropped, at most WH_INIT_MAX_CAS), so that during a rolling update or with several
 * replicas every serving certificate still in use verifies; and the caBundle read from and written into a
 * ValidatingWebhookConfiguration (every webhook, only when it differs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"
#include "webhook/wh_certs.h"
#include "webhook/wh_initserver.h"

#define DAY (24 * 3600LL)
static const time_t T0 = 1800000000; /* 2027-01-15, a fixed "now" */

/* One pod start: a CA (validity 0 = the default) and a serving certificate for svc.ns, as wh_initserver_run
 * mints them. */
struct start {
	char *ca, *ca_key, *leaf, *leaf_key;
};

static void mint(struct start *s, int64_t ca_validity_s, time_t now)
{
	struct strbuf err = STRBUF_INIT;
	if (!ca_validity_s)
		ca_validity_s = WH_CA_VALIDITY_S;
	assert_int_equal(wh_cert_new_ca("kubefledged-webhook-ca", ca_validity_s, now, &s->ca, &s->ca_key, &err), 0);
	const char *names[] = { "svc.ns.svc", "svc", "svc.ns" };
	assert_int_equal(wh_cert_new_serving(s->ca, s->ca_key, names, 3, WH_CERT_VALIDITY_S, now, &s->leaf, &s->leaf_key, &err), 0);
	sb_release(&err);
}

static void unmint(struct start *s)
{
	free(s->ca), free(s->ca_key), free(s->leaf), free(s->leaf_key);
}

static int verifies(const char *bundle, const char *leaf, time_t now)
{
	struct strbuf err = STRBUF_INIT;
	int ok = wh_cert_verify(bundle, leaf, "svc.ns.svc", now, &err) == 0;
	sb_release(&err);
	return ok;
}

static void merge_starts_fresh_from_nothing_or_junk(void **state)
{
	(void)state;
	struct start a;
	mint(&a, 0, T0);
	/* no bundle, a bundle that is not PEM (upstream's e2e placeholder "foo"), and an expired CA (upstream's
	 * manifests ship one valid 2021-07-22..2022-07-22): only the new CA remains */
	struct start old;
	mint(&old, 30 * DAY, T0 - 60 * DAY);
	const char *olds[] = { NULL, "", "foo\n", old.ca, old.leaf };
	for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
		char *b = wh_cabundle_merge(a.ca, olds[i], T0, WH_INIT_MAX_CAS);
		assert_string_equal(b, a.ca);
		assert_int_equal(wh_cert_count(b), 1);
		free(b);
	}
	/* the same CA again is not doubled */
	char *b = wh_cabundle_merge(a.ca, a.ca, T0, WH_INIT_MAX_CAS);
	assert_int_equal(wh_cert_count(b), 1);
	free(b);
	unmint(&old);
	unmint(&a);
}

/* Upstream replaced the bundle at every start: the pod still serving with the previous CA failed TLS. */
static void rolling_update_keeps_the_old_pod_trusted(void **state)
{
	(void)state;
	struct start s[6];
	char *bundle = NULL;
	for (int i = 0; i < 6; i++) {
		time_t now = T0 + i * 60;
		mint(&s[i], 0, now);
		char *next = wh_cabundle_merge(s[i].ca, bundle, now, WH_INIT_MAX_CAS);
		free(bundle);
		bundle = next;
		/* the new pod and the one before it (still in the Service's endpoints) are both trusted */
		assert_true(verifies(bundle, s[i].leaf, now));
		if (i > 0)
			assert_true(verifies(bundle, s[i - 1].leaf, now));
		assert_int_equal(wh_cert_count(bundle), i + 1 < WH_INIT_MAX_CAS ? i + 1 : WH_INIT_MAX_CAS);
	}
	/* newest first; the oldest starts fell out */
	struct wh_cert_info first, want;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_cert_info(bundle, &first, &err), 0);
	assert_int_equal(wh_cert_info(s[5].ca, &want, &err), 0);
	assert_string_equal(first.sha256, want.sha256);
	assert_false(verifies(bundle, s[0].leaf, T0 + 600));
	assert_false(verifies(bundle, s[1].leaf, T0 + 600));
	assert_true(verifies(bundle, s[2].leaf, T0 + 600));
	sb_release(&err);
	free(bundle);
	for (int i = 0; i < 6; i++)
		unmint(&s[i]);
}

static void merge_drops_expired_and_non_ca_certificates(void **state)
{
	(void)state;
	struct start a, short_lived, b;
	mint(&a, 0, T0);
	mint(&short_lived, 10 * DAY, T0 - 5 * DAY);
	mint(&b, 0, T0 - DAY);
	char *old = xasprintf("%s%s%s", short_lived.ca, b.leaf, b.ca);
	/* today: the short-lived CA is still valid, the serving certificate is never kept */
	char *m = wh_cabundle_merge(a.ca, old, T0, WH_INIT_MAX_CAS);
	char *want = xasprintf("%s%s%s", a.ca, short_lived.ca, b.ca);
	assert_string_equal(m, want);
	free(m), free(want);
	/* six days later it has expired */
	m = wh_cabundle_merge(a.ca, old, T0 + 6 * DAY, WH_INIT_MAX_CAS);
	want = xasprintf("%s%s", a.ca, b.ca);
	assert_string_equal(m, want);
	free(m), free(want);
	/* max 1: only the new CA */
	m = wh_cabundle_merge(a.ca, old, T0, 1);
	assert_string_equal(m, a.ca);
	free(m);
	/* an old bundle without its final newline */
	char *crlf = xasprintf("%.*s", (int)strlen(b.ca) - 1, b.ca);
	m = wh_cabundle_merge(a.ca, crlf, T0, WH_INIT_MAX_CAS);
	assert_int_equal(wh_cert_count(m), 2);
	assert_true(verifies(m, b.leaf, T0));
	free(m), free(crlf);
	free(old);
	unmint(&a), unmint(&short_lived), unmint(&b);
}

static json_t *vwc_with(const char *b64_0, const char *b64_1)
{
	json_t *v = json_pack("{s:s, s:s, s:{s:s}, s:[]}", "apiVersion", "admissionregistration.k8s.io/v1", "kind",
			      "ValidatingWebhookConfiguration", "metadata", "name", "kubefledged-webhook-server",
			      "webhooks");
	const char *b[2] = { b64_0, b64_1 };
	for (int i = 0; i < 2; i++) {
		json_t *cc = json_pack("{s:{s:s, s:s}}", "service", "namespace", "kube-fledged", "name", "svc");
		if (b[i])
			json_object_set_new(cc, "caBundle", json_string(b[i]));
		json_array_append_new(json_object_get(v, "webhooks"),
				      json_pack("{s:s, s:o}", "name", i ? "b.kubefledged.io" : "a.kubefledged.io",
						"clientConfig", cc));
	}
	return v;
}

static void vwc_bundle_read_and_written(void **state)
{
	(void)state;
	struct start a;
	mint(&a, 0, T0);
	char *b64 = kf_base64_encode(a.ca, strlen(a.ca));
	/* read: the first webhook that has a bundle; NULL when none has, or it is not text */
	json_t *v = vwc_with(NULL, b64);
	char *pem = wh_vwc_cabundle(v);
	assert_string_equal(pem, a.ca);
	free(pem);
	json_decref(v);
	v = vwc_with(NULL, "");
	assert_null(wh_vwc_cabundle(v));
	json_decref(v);
	char *bin = kf_base64_encode("a\0b", 3);
	v = vwc_with(bin, NULL);
	assert_null(wh_vwc_cabundle(v));
	json_decref(v);
	free(bin);
	/* written into every webhook; again: nothing changes */
	v = vwc_with("Zm9vCg==", NULL);
	assert_int_equal(wh_vwc_set_cabundle(v, a.ca), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(json_object_get(v, "webhooks"), 1), "clientConfig"),
				    "caBundle")),
			    b64);
	assert_int_equal(wh_vwc_set_cabundle(v, a.ca), 0);
	/* no clientConfig at all: created */
	json_object_del(json_array_get(json_object_get(v, "webhooks"), 0), "clientConfig");
	assert_int_equal(wh_vwc_set_cabundle(v, a.ca), 1);
	json_decref(v);
	free(b64);
	unmint(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(merge_starts_fresh_from_nothing_or_junk),
		cmocka_unit_test(rolling_update_keeps_the_old_pod_trusted),
		cmocka_unit_test(merge_drops_expired_and_non_ca_certificates),
		cmocka_unit_test(vwc_bundle_read_and_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
