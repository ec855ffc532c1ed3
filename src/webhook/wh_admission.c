/* wh_admission.c - AdmissionReview decoding, ImageCache admission and the reply; see wh_admission.h.
 *
 * Decoding mirrors what upstream's universal deserializer accepted: a JSON object whose apiVersion/kind
 * name an AdmissionReview of admission.k8s.io/v1 or v1beta1, with a `request` object. Only the fields we
 * read are type-checked (uid, operation, name, namespace, subResource as strings; resource as an object;
 * object/oldObject as objects or null), so a review from a newer API server with extra fields still
 * decodes. Every message a client can make us print is made valid UTF-8 first: the reply is JSON. */
#include "wh_admission.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imagecache/ic_types.h"
#include "imagecache/ic_validate.h"
#include "util/strbuf.h"
#include "util/util.h"

static const char CT_JSON[] = "application/json";
static const char CT_TEXT[] = "text/plain; charset=utf-8";

/* Copies s into a field for the log: cut to n-1 bytes, control bytes replaced (no forged log lines). */
static void log_field(char *dst, size_t n, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < n; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	dst[i] = 0;
}

/* Appends s to sb keeping only well-formed UTF-8 (invalid bytes become '?'), so it can go into JSON. */
static void add_utf8(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = 0;
		unsigned int cp = 0;
		if (p[0] < 0x80)
			n = 1;
		else if ((p[0] & 0xe0) == 0xc0)
			n = 2, cp = p[0] & 0x1f;
		else if ((p[0] & 0xf0) == 0xe0)
			n = 3, cp = p[0] & 0x0f;
		else if ((p[0] & 0xf8) == 0xf0)
			n = 4, cp = p[0] & 0x07;
		int ok = n > 0;
		for (size_t i = 1; ok && i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				ok = 0;
			else
				cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (ok && n > 1) {
			static const unsigned int min[] = { 0, 0, 0x80, 0x800, 0x10000 };
			if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
				ok = 0;
		}
		if (!ok) {
			sb_addc(sb, '?');
			p++;
			continue;
		}
		sb_add(sb, p, n);
		p += n;
	}
}

void wh_reply_text(struct wh_reply *out, int status, const char *msg)
{
	struct strbuf sb = STRBUF_INIT;
	add_utf8(&sb, msg);
	log_field(out->message, sizeof out->message, sb.buf);
	sb_addc(&sb, '\n');
	free(out->body);
	out->status = status;
	out->content_type = CT_TEXT;
	out->body_len = sb.len;
	out->body = sb_detach(&sb);
	out->verdict = WH_ERROR;
}

void wh_reply_free(struct wh_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* request.<key> as a string: "" when absent or null; NULL (with err) when of another type. */
static const char *req_string(json_t *req, const char *key, struct strbuf *err)
{
	json_t *v = json_object_get(req, key);
	if (!v || json_is_null(v))
		return "";
	if (!json_is_string(v)) {
		sb_addf(err, "request.%s: must be a string, got %s", key, kf_json_type_name(v));
		return NULL;
	}
	return json_string_value(v);
}

/* request.<key> as an object: NULL when absent or null; *bad set (with err) when of another type. */
static json_t *req_object(json_t *req, const char *key, int *bad, struct strbuf *err)
{
	json_t *v = json_object_get(req, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_object(v)) {
		sb_addf(err, "request.%s: must be an object, got %s", key, kf_json_type_name(v));
		*bad = 1;
		return NULL;
	}
	return v;
}

static int content_type_ok(const char *ct)
{
	if (!ct)
		return 0;
	size_t n = strlen(CT_JSON);
	if (strncasecmp(ct, CT_JSON, n))
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == 0 || *ct == ';'; /* parameters such as "; charset=utf-8" are fine */
}

/* The admission decision for a decoded request. Returns the verdict; a denial's text goes to why. */
static enum wh_verdict admit(json_t *req, const char *operation, struct strbuf *why)
{
	json_t *res = json_object_get(req, "resource");
	const char *group = json_string_value(json_object_get(res, "group"));
	const char *version = json_string_value(json_object_get(res, "version"));
	const char *plural = json_string_value(json_object_get(res, "resource"));
	const char *sub = json_string_value(json_object_get(req, "subResource"));
	if (!group || strcmp(group, IC_GROUP) || !version || strcmp(version, IC_VERSION) || !plural ||
	    strcmp(plural, IC_RESOURCE.plural) || (sub && *sub))
		return WH_ALLOWED; /* not ours to judge */
	int is_update = !strcmp(operation, "UPDATE");
	if (!is_update && strcmp(operation, "CREATE"))
		return WH_ALLOWED;

	enum wh_verdict v = WH_DENIED;
	struct ic_spec spec, old;
	int have_spec = 0, have_old = 0;
	if (ic_spec_parse(json_object_get(req, "object"), &spec, why) < 0)
		goto out;
	have_spec = 1;
	if (is_update) {
		struct strbuf e = STRBUF_INIT;
		if (ic_spec_parse(json_object_get(req, "oldObject"), &old, &e) < 0) {
			sb_addf(why, "oldObject: %s", e.buf);
			sb_release(&e);
			goto out;
		}
		sb_release(&e);
		have_old = 1;
	}
	if (ic_validate(&spec, have_old ? &old : NULL, why) == 0)
		v = WH_ALLOWED;
out:
	if (have_spec)
		ic_spec_free(&spec);
	if (have_old)
		ic_spec_free(&old);
	return v;
}

void wh_review(const char *content_type, const char *body, size_t len, struct wh_reply *out)
{
	memset(out, 0, sizeof *out);
	struct strbuf err = STRBUF_INIT, why = STRBUF_INIT;
	json_t *root = NULL, *reply = NULL;

	if (!content_type_ok(content_type)) {
		sb_addf(&err, "Content-Type \"%s\" is not supported: want application/json",
			content_type ? content_type : "");
		wh_reply_text(out, 415, err.buf);
		goto out;
	}

	json_error_t jerr;
	root = json_loadb(body ? body : "", len, 0, &jerr);
	if (!root) {
		sb_adds(&err, "Request could not be decoded: ");
		if (strstr(jerr.text, "JSON_ALLOW_NUL"))
			sb_adds(&err, "a string contains \\u0000, which is not supported");
		else
			sb_adds(&err, jerr.text);
		sb_addf(&err, " (line %d, column %d)", jerr.line, jerr.column);
		wh_reply_text(out, 400, err.buf);
		goto out;
	}
	if (!json_is_object(root)) {
		sb_addf(&err, "Request could not be decoded: want a JSON object, got %s", kf_json_type_name(root));
		wh_reply_text(out, 400, err.buf);
		goto out;
	}
	json_t *jav = json_object_get(root, "apiVersion"), *jkind = json_object_get(root, "kind");
	if ((jav && !json_is_string(jav)) || (jkind && !json_is_string(jkind))) {
		sb_addf(&err, "Request could not be decoded: %s: must be a string",
			jav && !json_is_string(jav) ? "apiVersion" : "kind");
		wh_reply_text(out, 400, err.buf);
		goto out;
	}
	const char *api_version = json_string_value(jav), *kind = json_string_value(jkind);
	if (!kind || !*kind) {
		wh_reply_text(out, 400, "Request could not be decoded: Object 'Kind' is missing");
		goto out;
	}
	if (!api_version || !*api_version) {
		wh_reply_text(out, 400, "Request could not be decoded: Object 'apiVersion' is missing");
		goto out;
	}
	if (strcmp(kind, "AdmissionReview") ||
	    (strcmp(api_version, "admission.k8s.io/v1") && strcmp(api_version, "admission.k8s.io/v1beta1"))) {
		const char *slash = strrchr(api_version, '/');
		sb_adds(&err, "Unsupported group version kind: ");
		if (slash)
			sb_addf(&err, "%.*s/%s", (int)(slash - api_version), api_version, slash + 1);
		else
			sb_addf(&err, "/%s", api_version);
		sb_addf(&err, ", Kind=%s", kind);
		wh_reply_text(out, 400, err.buf);
		goto out;
	}
	json_t *req = json_object_get(root, "request");
	if (!req || json_is_null(req)) {
		wh_reply_text(out, 400, "Request could not be decoded: request: required field is missing");
		goto out;
	}
	if (!json_is_object(req)) {
		sb_addf(&err, "Request could not be decoded: request: must be an object, got %s", kf_json_type_name(req));
		wh_reply_text(out, 400, err.buf);
		goto out;
	}
	const char *uid = req_string(req, "uid", &err), *op = NULL, *name = NULL, *ns = NULL;
	int bad = !uid;
	if (!bad)
		bad = !(op = req_string(req, "operation", &err)) || !(name = req_string(req, "name", &err)) ||
		      !(ns = req_string(req, "namespace", &err)) || !req_string(req, "subResource", &err);
	if (!bad)
		req_object(req, "resource", &bad, &err);
	json_t *obj = bad ? NULL : req_object(req, "object", &bad, &err);
	if (!bad)
		req_object(req, "oldObject", &bad, &err);
	if (bad) {
		struct strbuf m = STRBUF_INIT;
		sb_addf(&m, "Request could not be decoded: %s", err.buf);
		wh_reply_text(out, 400, m.buf);
		sb_release(&m);
		goto out;
	}
	if (!*name && obj) { /* a CREATE with generateName has no name yet */
		const char *n = kf_jstr(obj, "metadata", "name", NULL);
		if (!n)
			n = kf_jstr(obj, "metadata", "generateName", NULL);
		if (n)
			name = n;
	}
	log_field(out->uid, sizeof out->uid, uid);
	log_field(out->operation, sizeof out->operation, op);
	log_field(out->name, sizeof out->name, name);
	log_field(out->ns, sizeof out->ns, ns);

	out->verdict = admit(req, op, &why);
	json_t *resp;
	if (out->verdict == WH_ALLOWED) {
		resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", 1);
	} else {
		struct strbuf clean = STRBUF_INIT;
		add_utf8(&clean, why.buf);
		log_field(out->message, sizeof out->message, clean.buf);
		resp = json_pack("{s:s, s:b, s:{s:{}, s:s}}", "uid", uid, "allowed", 0, "status", "metadata", "message",
				 clean.buf);
		sb_release(&clean);
	}
	reply = json_pack("{s:s, s:s, s:o}", "kind", kind, "apiVersion", api_version, "response", resp);
	char *text = reply ? json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (!text) { /* cannot happen with valid UTF-8 inputs; never crash if it does */
		wh_reply_text(out, 500, "could not encode the AdmissionReview response");
		goto out;
	}
	out->status = 200;
	out->content_type = CT_JSON;
	out->body = text;
	out->body_len = strlen(text);
out:
	json_decref(reply);
	json_decref(root);
	sb_release(&err);
	sb_release(&why);
}
