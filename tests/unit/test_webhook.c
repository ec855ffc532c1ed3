/* test_webhook.c - the admission webhook: AdmissionReview v1 and v1beta1 requests recorded from a real
 * kube-apiserver v1.20.2 (tests/unit/data/webhook/, captured at -v=5 while running upstream's denial
 * walkthrough) and hand-made malformed ones through wh_review(); then the real HTTPS server on 127.0.0.1
 * driven by libcurl with TLS verified against the generated CA: routes, 413/415/405/404, slow bodies,
 * concurrent clients, and certificate rotation without a restart (in memory and from files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/strbuf.h"
#include "util/util.h"
#include "test_slow.h"
#include "webhook/wh_admission.h"
#include "webhook/wh_certs.h"
#include "webhook/wh_server.h"
#include "webhook/wh_tls.h"

#define DATA TEST_DATA_DIR "/webhook/"
#define JSON "application/json"

static char *load(const char *name, size_t *len)
{
	struct strbuf err = STRBUF_INIT;
	char *path = xasprintf(DATA "%s", name);
	char *s = kf_read_file(path, len, &err);
	if (!s)
		fail_msg("%s", err.buf);
	free(path);
	sb_release(&err);
	return s;
}

static char *uid_of(const char *body)
{
	json_t *j = json_loads(body, 0, NULL);
	assert_non_null(j);
	char *u = xstrdup(kf_jstr(j, "request", "uid", NULL));
	json_decref(j);
	return u;
}

/* ---- wh_review on recorded requests ---- */

struct recorded {
	const char *file;
	const char *api_version;
	const char *denial; /* NULL = allowed */
};

static const struct recorded RECORDED[] = {
	{ "v1beta1-create-allowed.json", "admission.k8s.io/v1beta1", NULL },
	{ "v1beta1-create-empty-list.json", "admission.k8s.io/v1beta1", "No images specified within image list" },
	{ "v1beta1-create-duplicate.json", "admission.k8s.io/v1beta1",
	  "Duplicate image names within image list: 127.0.0.1:5001/kftest/app1:1" },
	{ "v1beta1-update-fewer-lists.json", "admission.k8s.io/v1beta1", "Mismatch in no. of image lists" },
	{ "v1beta1-update-node-selector.json", "admission.k8s.io/v1beta1", "Mismatch in node selector" },
	{ "v1beta1-update-patch-empty-list.json", "admission.k8s.io/v1beta1", "No images specified within image list" },
	{ "v1beta1-update-remove-image.json", "admission.k8s.io/v1beta1", NULL },
	{ "v1beta1-update-annotation-only.json", "admission.k8s.io/v1beta1", NULL },
	{ "v1beta1-create-bad-image.json", "admission.k8s.io/v1beta1",
	  "spec.cacheSpec[0].images[0]: invalid image reference \"nginx;reboot\": invalid character ';' in repository "
	  "name" },
	{ "v1-create-allowed.json", "admission.k8s.io/v1", NULL },
	{ "v1-create-duplicate.json", "admission.k8s.io/v1",
	  "Duplicate image names within image list: 127.0.0.1:5001/kftest/app1:1" },
	{ "v1-update-node-selector.json", "admission.k8s.io/v1", "Mismatch in node selector" },
	{ "v1-update-remove-image.json", "admission.k8s.io/v1", NULL },
};

static char *expected_reply(const char *api_version, const char *uid, const char *denial)
{
	if (!denial)
		return xasprintf("{\"kind\":\"AdmissionReview\",\"apiVersion\":\"%s\",\"response\":{\"uid\":\"%s\","
				 "\"allowed\":true}}",
				 api_version, uid);
	json_t *m = json_string(denial);
	char *mj = json_dumps(m, JSON_ENCODE_ANY);
	char *s = xasprintf("{\"kind\":\"AdmissionReview\",\"apiVersion\":\"%s\",\"response\":{\"uid\":\"%s\","
			    "\"allowed\":false,\"status\":{\"metadata\":{},\"message\":%s}}}",
			    api_version, uid, mj);
	free(mj);
	json_decref(m);
	return s;
}

static void recorded_reviews_get_upstreams_answers(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(RECORDED); i++) {
		size_t len;
		char *body = load(RECORDED[i].file, &len);
		char *uid = uid_of(body);
		struct wh_reply r;
		wh_review(JSON, body, len, &r);
		char *want = expected_reply(RECORDED[i].api_version, uid, RECORDED[i].denial);
		if (r.status != 200 || strcmp(r.body, want))
			fail_msg("%s:\n  got  %d %s\n  want 200 %s", RECORDED[i].file, r.status, r.body, want);
		assert_string_equal(r.content_type, "application/json");
		assert_int_equal(r.body_len, strlen(r.body));
		assert_int_equal(r.verdict, RECORDED[i].denial ? WH_DENIED : WH_ALLOWED);
		assert_string_equal(r.uid, uid);
		assert_string_equal(r.ns, "kube-fledged");
		assert_true(!strcmp(r.operation, "CREATE") || !strcmp(r.operation, "UPDATE"));
		wh_reply_free(&r);
		free(want);
		free(uid);
		free(body);
	}
}

static void exact_bytes_of_two_replies(void **state)
{
	(void)state;
	size_t len;
	char *body = load("v1-update-node-selector.json", &len);
	struct wh_reply r;
	wh_review(JSON, body, len, &r);
	assert_string_equal(r.body, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"response\":"
				    "{\"uid\":\"c7080b75-2025-4cad-8a2f-9549484df5fe\",\"allowed\":false,\"status\":"
				    "{\"metadata\":{},\"message\":\"Mismatch in node selector\"}}}");
	assert_string_equal(r.name, "imagecache2");
	assert_string_equal(r.operation, "UPDATE");
	assert_string_equal(r.message, "Mismatch in node selector");
	wh_reply_free(&r);
	free(body);
	body = load("v1beta1-create-allowed.json", &len);
	char *uid = uid_of(body);
	wh_review("application/json; charset=utf-8", body, len, &r);
	char *want = xasprintf("{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1beta1\",\"response\":"
			       "{\"uid\":\"%s\",\"allowed\":true}}",
			       uid);
	assert_string_equal(r.body, want);
	wh_reply_free(&r);
	free(want), free(uid), free(body);
}

/* Reviews text and checks status and the whole body. */
static void expect(const char *ct, const char *text, int status, const char *body)
{
	struct wh_reply r;
	wh_review(ct, text, text ? strlen(text) : 0, &r);
	if (r.status != status || strcmp(r.body, body))
		fail_msg("review of %.200s\n  got  %d %s\n  want %d %s", text ? text : "(null)", r.status, r.body,
			 status, body);
	if (status != 200)
		assert_string_equal(r.content_type, "text/plain; charset=utf-8");
	wh_reply_free(&r);
}

static void malformed_requests_get_400(void **state)
{
	(void)state;
	expect(JSON, "", 400, "Request could not be decoded: '[' or '{' expected near end of file (line 1, column 0)\n");
	expect(JSON, "{", 400, "Request could not be decoded: string or '}' expected near end of file (line 1, column 1)\n");
	expect(JSON, "[]", 400, "Request could not be decoded: want a JSON object, got array\n");
	expect(JSON, "{}", 400, "Request could not be decoded: Object 'Kind' is missing\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\"}", 400, "Request could not be decoded: Object 'apiVersion' is missing\n");
	expect(JSON, "{\"kind\":7,\"apiVersion\":\"admission.k8s.io/v1\"}", 400,
	       "Request could not be decoded: kind: must be a string\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\"}", 400,
	       "Request could not be decoded: request: required field is missing\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":[]}", 400,
	       "Request could not be decoded: request: must be an object, got array\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":5}}", 400,
	       "Request could not be decoded: request.uid: must be a string, got number\n");
	expect(JSON,
	       "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\","
	       "\"object\":\"x\"}}",
	       400, "Request could not be decoded: request.object: must be an object, got string\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"a\\u0000b\"}}",
	       400,
	       "Request could not be decoded: a string contains \\u0000, which is not supported (line 1, column 88)\n");
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"\xff\"}}", 400,
	       "Request could not be decoded: unable to decode byte 0xff near '\"' (line 1, column 79)\n");
}

static void unsupported_kinds_get_400(void **state)
{
	(void)state;
	expect(JSON, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v2\",\"request\":{}}", 400,
	       "Unsupported group version kind: admission.k8s.io/v2, Kind=AdmissionReview\n");
	expect(JSON, "{\"kind\":\"Pod\",\"apiVersion\":\"v1\"}", 400, "Unsupported group version kind: /v1, Kind=Pod\n");
	expect(JSON, "{\"kind\":\"ConversionReview\",\"apiVersion\":\"apiextensions.k8s.io/v1\"}", 400,
	       "Unsupported group version kind: apiextensions.k8s.io/v1, Kind=ConversionReview\n");
}

static void wrong_content_type_gets_415(void **state)
{
	(void)state;
	size_t len;
	char *body = load("v1-create-allowed.json", &len);
	expect(NULL, body, 415, "Content-Type \"\" is not supported: want application/json\n");
	expect("text/plain", body, 415, "Content-Type \"text/plain\" is not supported: want application/json\n");
	expect("application/jsonx", body, 415, "Content-Type \"application/jsonx\" is not supported: want application/json\n");
	struct wh_reply r;
	wh_review("Application/JSON", body, len, &r);
	assert_int_equal(r.status, 200);
	wh_reply_free(&r);
	free(body);
}

static void truncated_recordings_never_crash(void **state)
{
	(void)state;
	const char *files[] = { "v1-update-node-selector.json", "v1beta1-update-patch-empty-list.json" };
	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		size_t len;
		char *body = load(files[f], &len);
		/* drop the trailing newline, then cut everywhere */
		while (len && body[len - 1] == '\n')
			len--;
		for (size_t cut = 0; cut < len; cut++) {
			struct wh_reply r;
			wh_review(JSON, body, cut, &r);
			assert_int_equal(r.status, 400);
			assert_true(!strncmp(r.body, "Request could not be decoded: ", 30));
			wh_reply_free(&r);
		}
		free(body);
	}
}

#define REVIEW(req) "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":" req "}"
#define IC_RES "\"resource\":{\"group\":\"kubefledged.io\",\"version\":\"v1alpha2\",\"resource\":\"imagecaches\"}"

static void what_is_not_ours_is_allowed(void **state)
{
	(void)state;
	const char *ok = "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"response\":"
			 "{\"uid\":\"u1\",\"allowed\":true}}";
	/* another resource, even with an object we would deny */
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"CREATE\",\"resource\":{\"group\":\"\",\"version\":\"v1\","
			    "\"resource\":\"pods\"},\"object\":{\"spec\":{\"cacheSpec\":[{\"images\":[]}]}}}"),
	       200, ok);
	/* another version of ours */
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"CREATE\",\"resource\":{\"group\":\"kubefledged.io\","
			    "\"version\":\"v1alpha1\",\"resource\":\"imagecaches\"},\"object\":{}}"),
	       200, ok);
	/* DELETE and CONNECT */
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"DELETE\"," IC_RES ",\"object\":null,\"oldObject\":{}}"), 200, ok);
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"CONNECT\"," IC_RES "}"), 200, ok);
	/* the status subresource */
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"UPDATE\"," IC_RES ",\"subResource\":\"status\","
			    "\"object\":{\"spec\":{\"cacheSpec\":[{\"images\":[]}]}},\"oldObject\":{}}"),
	       200, ok);
	/* no resource at all */
	expect(JSON, REVIEW("{\"uid\":\"u1\",\"operation\":\"CREATE\"}"), 200, ok);
}

static void undecodable_objects_are_denied(void **state)
{
	(void)state;
	const char *head = "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"response\":"
			   "{\"uid\":\"u2\",\"allowed\":false,\"status\":{\"metadata\":{},\"message\":";
	char *want = xasprintf("%s\"spec.cacheSpec[0].images: must be an array, got string \\\"x\\\"\"}}}", head);
	expect(JSON, REVIEW("{\"uid\":\"u2\",\"operation\":\"CREATE\"," IC_RES ",\"object\":{\"spec\":{\"cacheSpec\":"
			    "[{\"images\":\"x\"}]}}}"),
	       200, want);
	free(want);
	want = xasprintf("%s\"spec: required field is missing\"}}}", head);
	expect(JSON, REVIEW("{\"uid\":\"u2\",\"operation\":\"CREATE\"," IC_RES "}"), 200, want);
	free(want);
	want = xasprintf("%s\"oldObject: spec.cacheSpec: required field is missing\"}}}", head);
	expect(JSON, REVIEW("{\"uid\":\"u2\",\"operation\":\"UPDATE\"," IC_RES ",\"object\":{\"spec\":{\"cacheSpec\":[]}},"
			    "\"oldObject\":{\"spec\":{}}}"),
	       200, want);
	free(want);
	/* a long non-ASCII value cut inside a character: the reply is still valid JSON */
	struct strbuf req = STRBUF_INIT;
	sb_adds(&req, "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u2\","
		      "\"operation\":\"CREATE\"," IC_RES ",\"object\":{\"spec\":{\"cacheSpec\":[{\"images\":\"");
	for (int i = 0; i < 40; i++)
		sb_adds(&req, "\xc3\xa4"); /* U+00E4 */
	sb_adds(&req, "\"}]}}}}");
	struct wh_reply r;
	wh_review(JSON, req.buf, req.len, &r);
	assert_int_equal(r.status, 200);
	json_error_t je;
	json_t *j = json_loads(r.body, 0, &je);
	if (!j)
		fail_msg("reply is not JSON: %s: %s", je.text, r.body);
	assert_false(json_is_true(kf_jget(j, "response", "allowed", NULL)));
	json_decref(j);
	wh_reply_free(&r);
	sb_release(&req);
}

/* Image IDs look like references to the grammar ("sha256:<hex>" = repository sha256, tag <hex>), but a
 * runtime resolves them as the whole image: denied with the field and the value. */
static void image_ids_are_denied(void **state)
{
	(void)state;
	const char *head = "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"response\":"
			   "{\"uid\":\"u3\",\"allowed\":false,\"status\":{\"metadata\":{},\"message\":";
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	static const struct { const char *image; int index; } ids[] = {
		{ "sha256:" HEX64, 1 }, { HEX64, 1 }, { "sha256:0123abcd", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		char *req = xasprintf(REVIEW("{\"uid\":\"u3\",\"operation\":\"CREATE\"," IC_RES ",\"object\":{\"spec\":"
					     "{\"cacheSpec\":[{\"images\":[\"busybox:1.36\",\"%s\"]}]}}}"),
				      ids[i].image);
		char *want = xasprintf("%s\"spec.cacheSpec[0].images[%d]: invalid image reference \\\"%s\\\": an image "
				       "ID is not an image reference: name the image by repository and tag or digest "
				       "(e.g. registry.example.com/app:1.2 or app@sha256:...)\"}}}",
				       head, ids[i].index, ids[i].image);
		expect(JSON, req, 200, want);
		free(req);
		free(want);
	}
#undef HEX64
}

static void log_fields_are_sanitised(void **state)
{
	(void)state;
	const char *text = REVIEW("{\"uid\":\"a\\nI0101 forged\",\"operation\":\"CREATE\",\"namespace\":\"n\\r\","
				  "\"object\":{\"metadata\":{\"generateName\":\"gen-\"}}}");
	struct wh_reply r;
	wh_review(JSON, text, strlen(text), &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.uid, "a?I0101 forged");
	assert_string_equal(r.ns, "n?");
	assert_string_equal(r.name, "gen-");
	assert_non_null(strstr(r.body, "\"uid\":\"a\\nI0101 forged\"")); /* echoed exactly */
	wh_reply_free(&r);
}

/* ---- the HTTPS server ---- */

struct pki2 {
	char *ca, *cak, *crt, *key;
};

static void make_pki(struct pki2 *p)
{
	struct strbuf err = STRBUF_INIT;
	const char *names[] = { "localhost", "127.0.0.1" };
	if (wh_cert_new_ca("test-ca", 3600 * 24, 0, &p->ca, &p->cak, &err) < 0 ||
	    wh_cert_new_serving(p->ca, p->cak, names, 2, 3600 * 24, 0, &p->crt, &p->key, &err) < 0)
		fail_msg("%s", err.buf);
	sb_release(&err);
}

static void free_pki(struct pki2 *p)
{
	free(p->ca), free(p->cak), free(p->crt), free(p->key);
}

struct resp {
	long status;
	CURLcode rc;
	struct strbuf body;
	char ctype[128];
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	sb_add(&((struct resp *)ud)->body, p, sz * n);
	return sz * n;
}

struct slow_body {
	const char *data;
	size_t len, off;
	int sleep_ms;
};

static size_t slow_read(char *buf, size_t sz, size_t n, void *ud)
{
	struct slow_body *b = ud;
	if (b->off >= b->len)
		return 0;
	if (b->off > 0)
		kf_sleep_ms(b->sleep_ms);
	size_t step = b->sleep_ms ? 10 : 16384, k = b->len - b->off < step ? b->len - b->off : step;
	if (k > sz * n)
		k = sz * n;
	memcpy(buf, b->data + b->off, k);
	b->off += k;
	return k;
}

enum body_mode { PLAIN, CHUNKED, SLOW };

/* One request on a fresh connection, TLS verified against ca. */
static void http(int port, const char *ca, const char *method, const char *path, const char *ctype, const char *body,
		 size_t len, enum body_mode mode, struct resp *out)
{
	memset(out, 0, sizeof *out);
	sb_init(&out->body);
	CURL *c = curl_easy_init();
	char url[128];
	snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	struct curl_blob blob = { (void *)ca, strlen(ca), CURL_BLOB_COPY };
	curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(10000 * test_slowdown()));
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	struct curl_slist *h = NULL;
	char hdr[160];
	if (ctype) {
		snprintf(hdr, sizeof hdr, "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	h = curl_slist_append(h, "Expect:");
	struct slow_body sb = { body, len, 0, 4000 };
	if (body && mode == PLAIN) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, slow_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &sb);
		if (mode == CHUNKED) {
			sb.sleep_ms = 0;
			h = curl_slist_append(h, "Transfer-Encoding: chunked");
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		}
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	out->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(out->ctype, sizeof out->ctype, "%s", ct ? ct : "");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}

static struct wh_server *start(struct wh_tls *tls)
{
	/* generous idle and header timeouts: under valgrind on a loaded machine a TLS handshake alone can take
	 * seconds; the request timeout is short, for the slow-body check below */
	struct wh_server_opts o = { .bind_address = "127.0.0.1", .threads = 2, .max_connections = 64,
				    .idle_timeout_s = 30, .request_timeout_ms = 3000, .max_body = 64 * 1024, .tls = tls,
				    .header_timeout_ms = 30000 };
	struct strbuf err = STRBUF_INIT;
	struct wh_server *s = wh_server_start(&o, &err);
	if (!s)
		fail_msg("wh_server_start: %s", err.buf);
	assert_true(wh_server_port(s) > 0);
	sb_release(&err);
	return s;
}

static void https_routes_and_errors(void **state)
{
	(void)state;
	struct pki2 p;
	make_pki(&p);
	struct wh_tls *tls = wh_tls_new();
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_tls_set(tls, p.crt, p.key, &err), 0);
	struct wh_server *s = start(tls);
	int port = wh_server_port(s);
	struct resp r;

	size_t len;
	char *body = load("v1-update-node-selector.json", &len);
	http(port, p.ca, "POST", "/validate-image-cache", JSON, body, len, PLAIN, &r);
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body.buf,
			    "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"response\":"
			    "{\"uid\":\"c7080b75-2025-4cad-8a2f-9549484df5fe\",\"allowed\":false,\"status\":"
			    "{\"metadata\":{},\"message\":\"Mismatch in node selector\"}}}");
	sb_release(&r.body);
	/* the same body sent chunked */
	http(port, p.ca, "POST", "/validate-image-cache", JSON, body, len, CHUNKED, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.buf, "Mismatch in node selector"));
	sb_release(&r.body);
	free(body);

	http(port, p.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.buf, "ok");
	sb_release(&r.body);
	http(port, p.ca, "GET", "/readyz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.buf, "ok");
	sb_release(&r.body);
	http(port, p.ca, "POST", "/mutate-image-cache", JSON, "{}", 2, PLAIN, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.buf, "");
	sb_release(&r.body);
	http(port, p.ca, "GET", "/validate-image-cache", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 405);
	sb_release(&r.body);
	http(port, p.ca, "GET", "/nope", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body.buf, "404 page not found\n");
	sb_release(&r.body);
	http(port, p.ca, "POST", "/validate-image-cache", "text/plain", "{}", 2, PLAIN, &r);
	assert_int_equal(r.status, 415);
	sb_release(&r.body);
	http(port, p.ca, "POST", "/validate-image-cache", JSON, "{\"kind\":", 8, PLAIN, &r);
	assert_int_equal(r.status, 400);
	assert_true(!strncmp(r.body.buf, "Request could not be decoded: ", 30));
	sb_release(&r.body);

	/* oversized: announced by Content-Length (answered before the body is read), or chunked */
	size_t big = 100 * 1024;
	char *junk = xmalloc(big);
	memset(junk, ' ', big);
	http(port, p.ca, "POST", "/validate-image-cache", JSON, junk, big, PLAIN, &r);
	if (r.status != 413)
		fail_msg("curl %d (%s), status %ld", r.rc, curl_easy_strerror(r.rc), r.status);
	assert_string_equal(r.body.buf, "Request body is larger than 65536 bytes, the limit of this webhook\n");
	sb_release(&r.body);
	http(port, p.ca, "POST", "/validate-image-cache", JSON, junk, big, CHUNKED, &r);
	assert_int_equal(r.status, 413);
	sb_release(&r.body);
	free(junk);

	/* a body trickling slower than the request timeout (3 s) is cut off */
	const char *trickle = "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\"}";
	http(port, p.ca, "POST", "/validate-image-cache", JSON, trickle, strlen(trickle), SLOW, &r);
	assert_int_not_equal(r.rc, CURLE_OK);
	sb_release(&r.body);
	struct wh_server_stats st;
	wh_server_stats(s, &st);
	assert_int_equal(st.dropped + st.expired, 1); /* cut at its deadline, or when the late bytes came */
	assert_int_equal(st.denied, 2);

	/* the server is still fine */
	http(port, p.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	/* and refuses a client that trusts another CA */
	struct pki2 other;
	make_pki(&other);
	http(port, other.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.rc, CURLE_PEER_FAILED_VERIFICATION);
	sb_release(&r.body);

	wh_server_stop(s, 1000);
	http(port, p.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
	sb_release(&r.body);
	wh_tls_free(tls);
	free_pki(&p);
	free_pki(&other);
	sb_release(&err);
}

struct load_arg {
	int port;
	const char *ca, *body;
	size_t len;
	int ok;
};

static void *load_thread(void *ud)
{
	struct load_arg *a = ud;
	CURL *c = curl_easy_init();
	char url[128];
	snprintf(url, sizeof url, "https://127.0.0.1:%d/validate-image-cache", a->port);
	struct curl_blob blob = { (void *)a->ca, strlen(a->ca), CURL_BLOB_COPY };
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)a->len);
	for (int i = 0; i < 50; i++) { /* one keep-alive connection per thread */
		struct resp r;
		memset(&r, 0, sizeof r);
		sb_init(&r.body);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
		if (curl_easy_perform(c) == CURLE_OK) {
			long st = 0;
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
			a->ok += st == 200 && strstr(r.body.buf, "\"allowed\":true") != NULL;
		}
		sb_release(&r.body);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static void https_concurrent_clients(void **state)
{
	(void)state;
	struct pki2 p;
	make_pki(&p);
	struct wh_tls *tls = wh_tls_new();
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_tls_set(tls, p.crt, p.key, &err), 0);
	struct wh_server *s = start(tls);
	size_t len;
	char *body = load("v1-create-allowed.json", &len);
	pthread_t th[4];
	struct load_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct load_arg){ wh_server_port(s), p.ca, body, len, 0 };
		pthread_create(&th[i], NULL, load_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].ok, 50);
	}
	struct wh_server_stats st;
	wh_server_stats(s, &st);
	assert_int_equal(st.allowed, 200);
	wh_server_stop(s, 1000);
	wh_tls_free(tls);
	free(body);
	free_pki(&p);
	sb_release(&err);
}

static void certificate_rotates_without_restart(void **state)
{
	(void)state;
	struct pki2 a, b;
	make_pki(&a);
	make_pki(&b);
	struct wh_tls *tls = wh_tls_new();
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_tls_set(tls, a.crt, a.key, &err), 0);
	struct wh_server *s = start(tls);
	int port = wh_server_port(s);
	struct resp r;
	http(port, a.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	/* a mismatched pair is refused and the current one stays */
	assert_int_equal(wh_tls_set(tls, b.crt, a.key, &err), -1);
	assert_string_equal(err.buf, "the private key does not belong to the certificate");
	assert_int_equal(wh_tls_set(tls, "garbage", b.key, &err), -1);
	http(port, a.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	/* rotate to b: the next handshake presents b */
	assert_int_equal(wh_tls_set(tls, b.crt, b.key, &err), 0);
	http(port, a.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.rc, CURLE_PEER_FAILED_VERIFICATION);
	sb_release(&r.body);
	http(port, b.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	wh_server_stop(s, 1000);
	wh_tls_free(tls);
	free_pki(&a);
	free_pki(&b);
	sb_release(&err);
}

static void write_pair(const char *dir, const char *crt, const char *key)
{
	struct strbuf err = STRBUF_INIT;
	char *c = xasprintf("%s/tls.crt", dir), *k = xasprintf("%s/tls.key", dir);
	if (kf_write_file_atomic(k, key, strlen(key), 0600, &err) < 0 ||
	    kf_write_file_atomic(c, crt, strlen(crt), 0644, &err) < 0)
		fail_msg("%s", err.buf);
	free(c), free(k);
	sb_release(&err);
}

static int wait_generation(struct wh_tls *t, uint64_t want, int64_t ms)
{
	int64_t end = kf_now_ms() + ms;
	while (wh_tls_generation(t) < want && kf_now_ms() < end)
		kf_sleep_ms(20);
	return wh_tls_generation(t) >= want;
}

static void certificate_files_are_watched(void **state)
{
	(void)state;
	char dir[] = "/tmp/kf-wh-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct pki2 a, b, c;
	make_pki(&a);
	make_pki(&b);
	make_pki(&c);
	write_pair(dir, a.crt, a.key);
	char *cf = xasprintf("%s/tls.crt", dir), *kf = xasprintf("%s/tls.key", dir);
	struct wh_tls *tls = wh_tls_new();
	struct strbuf err = STRBUF_INIT;
	/* missing files are an error at start */
	char *nope = xasprintf("%s/none.crt", dir);
	assert_int_equal(wh_tls_watch_files(tls, nope, kf, 50, &err), -1);
	assert_non_null(strstr(err.buf, "none.crt"));
	wh_tls_free(tls);
	tls = wh_tls_new();
	sb_reset(&err);
	assert_int_equal(wh_tls_watch_files(tls, cf, kf, 50, &err), 0);
	assert_int_equal(wh_tls_generation(tls), 1);
	struct wh_server *s = start(tls);
	int port = wh_server_port(s);
	struct resp r;
	http(port, a.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	/* rotated files are picked up */
	write_pair(dir, b.crt, b.key);
	assert_true(wait_generation(tls, 2, 5000));
	http(port, b.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	/* half-rotated (new certificate, old key): ignored, b still served; completing it switches to c */
	char *c_path = xasprintf("%s/tls.crt", dir);
	assert_int_equal(kf_write_file_atomic(c_path, c.crt, strlen(c.crt), 0644, &err), 0);
	kf_sleep_ms(300);
	assert_int_equal(wh_tls_generation(tls), 2);
	http(port, b.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	char *k_path = xasprintf("%s/tls.key", dir);
	assert_int_equal(kf_write_file_atomic(k_path, c.key, strlen(c.key), 0600, &err), 0);
	assert_true(wait_generation(tls, 3, 5000));
	http(port, c.ca, "GET", "/healthz", NULL, NULL, 0, PLAIN, &r);
	assert_int_equal(r.status, 200);
	sb_release(&r.body);
	wh_server_stop(s, 1000);
	wh_tls_free(tls);
	unlink(cf), unlink(kf), rmdir(dir);
	free(cf), free(kf), free(nope), free(c_path), free(k_path);
	free_pki(&a), free_pki(&b), free_pki(&c);
	sb_release(&err);
}

static void one_server_per_process(void **state)
{
	(void)state;
	struct pki2 p;
	make_pki(&p);
	struct wh_tls *t1 = wh_tls_new(), *t2 = wh_tls_new();
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(wh_tls_set(t1, p.crt, p.key, &err), 0);
	assert_int_equal(wh_tls_set(t2, p.crt, p.key, &err), 0);
	struct wh_server *s = start(t1);
	struct wh_server_opts o = { "127.0.0.1", 0, 1, 8, 5, 500, 1024, t2 };
	assert_null(wh_server_start(&o, &err));
	assert_non_null(strstr(err.buf, "another webhook server"));
	/* a port in use */
	sb_reset(&err);
	wh_server_stop(s, 0);
	struct wh_server_opts no_tls = { "127.0.0.1", 0, 1, 8, 5, 500, 1024, NULL };
	assert_null(wh_server_start(&no_tls, &err));
	assert_string_equal(err.buf, "no serving certificate loaded");
	wh_tls_free(t1);
	wh_tls_free(t2);
	free_pki(&p);
	sb_release(&err);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recorded_reviews_get_upstreams_answers),
		cmocka_unit_test(exact_bytes_of_two_replies),
		cmocka_unit_test(malformed_requests_get_400),
		cmocka_unit_test(unsupported_kinds_get_400),
		cmocka_unit_test(wrong_content_type_gets_415),
		cmocka_unit_test(truncated_recordings_never_crash),
		cmocka_unit_test(what_is_not_ours_is_allowed),
		cmocka_unit_test(undecodable_objects_are_denied),
		cmocka_unit_test(image_ids_are_denied),
		cmocka_unit_test(log_fields_are_sanitised),
		cmocka_unit_test(https_routes_and_errors),
		cmocka_unit_test(https_concurrent_clients),
		cmocka_unit_test(certificate_rotates_without_restart),
		cmocka_unit_test(certificate_files_are_watched),
		cmocka_unit_test(one_server_per_process),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
