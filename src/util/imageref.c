/* imageref.c - image reference parsing and normalisation; see imageref.h for the rules.
 *
 * The grammar, from distribution/reference:
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ["/" path-component]*      (total <= 255, also in full:
 *                                                                          docker.io/library/... counted)
 *   domain     := host [":" port]   host := domain-component ("." domain-component)* | "[" ipv6 "]"
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | "__" | "-"+
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := algorithm ":" hex   algorithm := [A-Za-z][A-Za-z0-9]* ([+._-][A-Za-z][A-Za-z0-9]*)*
 *                 hex >= 32 chars; sha256 exactly 64, sha384 96, sha512 128, lowercase */
#include "imageref.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* One path component: [a-z0-9]+ (sep [a-z0-9]+)*; sep = "." | "_" | "__" | "-"+ */
static int valid_path_component(const char *s, size_t n, struct strbuf *err)
{
	if (n == 0) {
		sb_adds(err, "empty path component");
		return -1;
	}
	size_t i = 0;
	while (i < n) {
		if (!is_lower_alnum(s[i])) {
			if (isupper((unsigned char)s[i]))
				sb_adds(err, "repository name must be lowercase");
			else
				sb_addf(err, "invalid character '%c' in repository name", s[i]);
			return -1;
		}
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			break;
		size_t sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			if (isupper((unsigned char)s[i]))
				sb_adds(err, "repository name must be lowercase");
			else
				sb_addf(err, "invalid character '%c' in repository name", s[i]);
			return -1;
		}
		if (i == n || !is_lower_alnum(s[i])) {
			sb_addf(err, "repository name component \"%.*s\" must not end in or repeat a separator", (int)n,
				s);
			(void)sep;
			return -1;
		}
	}
	return 0;
}

static int valid_domain(const char *s, size_t n, struct strbuf *err)
{
	size_t i = 0;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close) {
			sb_adds(err, "invalid registry host: unterminated IPv6 address");
			return -1;
		}
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':') {
				sb_adds(err, "invalid registry host: bad IPv6 address");
				return -1;
			}
		i = (size_t)(close - s) + 1;
	} else {
		for (;;) {
			size_t st = i;
			while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-'))
				i++;
			if (i == st || s[st] == '-' || s[i - 1] == '-') {
				sb_addf(err, "invalid registry host \"%.*s\"", (int)n, s);
				return -1;
			}
			if (i < n && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i < n && s[i] == ':') {
		size_t st = ++i;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
		if (i == st || i - st > 5) {
			sb_addf(err, "invalid registry port in \"%.*s\"", (int)n, s);
			return -1;
		}
	}
	if (i != n) {
		sb_addf(err, "invalid registry host \"%.*s\"", (int)n, s);
		return -1;
	}
	return 0;
}

static int valid_digest(const char *d, struct strbuf *err)
{
	const char *colon = strchr(d, ':');
	if (!colon || colon == d) {
		sb_addf(err, "invalid digest \"%s\": want algorithm:hex", d);
		return -1;
	}
	/* algorithm */
	for (const char *p = d; p < colon;) {
		if (!isalpha((unsigned char)*p))
			goto bad_alg;
		while (p < colon && isalnum((unsigned char)*p))
			p++;
		if (p < colon) {
			if (!strchr("+._-", *p))
				goto bad_alg;
			p++;
			if (p == colon)
				goto bad_alg;
		}
	}
	const char *hex = colon + 1;
	size_t n = strlen(hex), want = 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)hex[i])) {
			sb_addf(err, "invalid digest \"%s\": '%c' is not a hex digit", d, hex[i]);
			return -1;
		}
	size_t alen = (size_t)(colon - d);
	if (alen == 6 && !strncmp(d, "sha256", 6))
		want = 64;
	else if (alen == 6 && !strncmp(d, "sha384", 6))
		want = 96;
	else if (alen == 6 && !strncmp(d, "sha512", 6))
		want = 128;
	if (want) {
		if (n != want) {
			sb_addf(err, "invalid digest: %.*s needs %zu hex characters, got %zu", (int)alen, d, want, n);
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (isupper((unsigned char)hex[i])) {
				sb_addf(err, "invalid digest: %.*s hex must be lowercase", (int)alen, d);
				return -1;
			}
	} else if (n < 32) {
		sb_addf(err, "invalid digest \"%s\": at least 32 hex characters needed", d);
		return -1;
	}
	return 0;
bad_alg:
	sb_addf(err, "invalid digest algorithm in \"%s\"", d);
	return -1;
}

/* An image ID, or a prefix of one, where a runtime expects a reference: 64 hex characters alone (what
 * distribution/reference refuses as a name), or "sha256:<hex>" (also "sha384:", "sha512:") without a
 * registry or path. By the grammar "sha256:<hex>" is the repository docker.io/library/sha256 with a hex
 * tag, but runtimes resolve both forms as image IDs (containerd's CRI even resolves a short hex prefix),
 * and removing an image by ID removes it with every tag. */
static int is_image_id(const char *s, size_t len)
{
	size_t i = 0;
	if (len > 7 && (!strncmp(s, "sha256:", 7) || !strncmp(s, "sha384:", 7) || !strncmp(s, "sha512:", 7)))
		i = 7;
	else if (len != 64)
		return 0;
	for (; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int imageref_parse(const char *s, struct imageref *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	if (!s || !*s) {
		sb_adds(err, "image reference is empty");
		return -1;
	}
	size_t len = strlen(s);
	if (len > IMAGEREF_MAX) {
		sb_addf(err, "image reference is %zu characters long, the limit is %d", len, IMAGEREF_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f) {
			sb_addf(err, "image reference contains %s at position %zu",
				c == ' ' ? "a space" : c == '\t' ? "a tab" : c == '\n' ? "a newline" :
				c >= 0x7f ? "a non-ASCII byte" : "a control character", i);
			return -1;
		}
	}

	if (is_image_id(s, len)) {
		sb_adds(err, "an image ID is not an image reference: name the image by repository and tag or digest "
			     "(e.g. registry.example.com/app:1.2 or app@sha256:...)");
		return -1;
	}

	/* digest */
	const char *at = strchr(s, '@');
	size_t name_end = len;
	if (at) {
		if (strchr(at + 1, '@')) {
			sb_adds(err, "more than one '@'");
			return -1;
		}
		if (strlen(at + 1) >= sizeof out->digest) {
			sb_adds(err, "digest too long");
			return -1;
		}
		if (valid_digest(at + 1, err) < 0)
			return -1;
		strcpy(out->digest, at + 1);
		name_end = (size_t)(at - s);
	}
	/* tag: a ':' after the last '/' */
	const char *slash = NULL;
	for (size_t i = 0; i < name_end; i++)
		if (s[i] == '/')
			slash = s + i;
	const char *colon = NULL;
	for (const char *p = slash ? slash : s; p < s + name_end; p++)
		if (*p == ':')
			colon = p;
	/* "[::1]:5000" without a path has ':' in the host only; a bare host with no path is not a name */
	if (colon && !(s[0] == '[' && !slash)) {
		const char *tag = colon + 1;
		size_t tlen = (size_t)(s + name_end - tag);
		if (tlen == 0) {
			sb_adds(err, "empty tag after ':'");
			return -1;
		}
		if (tlen > 128) {
			sb_addf(err, "tag is %zu characters long, the limit is 128", tlen);
			return -1;
		}
		if (!is_word(tag[0])) {
			sb_addf(err, "invalid tag \"%.*s\": must start with a letter, digit or '_'", (int)tlen, tag);
			return -1;
		}
		for (size_t i = 0; i < tlen; i++)
			if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-') {
				sb_addf(err, "invalid tag \"%.*s\": '%c' is not allowed", (int)tlen, tag, tag[i]);
				return -1;
			}
		memcpy(out->tag, tag, tlen);
		name_end = (size_t)(colon - s);
	}
	if (name_end == 0) {
		sb_adds(err, "repository name is empty");
		return -1;
	}
	if (name_end > 255) {
		sb_addf(err, "repository name is %zu characters long, the limit is 255", name_end);
		return -1;
	}

	/* domain: first component if it has '.' or ':' or is "localhost" or has uppercase (docker's rule) */
	const char *first_slash = memchr(s, '/', name_end);
	const char *path = s;
	size_t plen = name_end;
	if (first_slash) {
		size_t dlen = (size_t)(first_slash - s);
		int is_domain = dlen == 9 && !strncmp(s, "localhost", 9);
		for (size_t i = 0; i < dlen && !is_domain; i++)
			if (s[i] == '.' || s[i] == ':' || s[i] == '[' || isupper((unsigned char)s[i]))
				is_domain = 1;
		if (is_domain) {
			if (valid_domain(s, dlen, err) < 0)
				return -1;
			memcpy(out->domain, s, dlen);
			path = first_slash + 1;
			plen = name_end - dlen - 1;
		}
	}
	if (!out->domain[0])
		strcpy(out->domain, "docker.io");
	else if (!strcmp(out->domain, "index.docker.io"))
		strcpy(out->domain, "docker.io");
	/* path components */
	for (size_t i = 0; i <= plen;) {
		size_t j = i;
		while (j < plen && path[j] != '/')
			j++;
		if (valid_path_component(path + i, j - i, err) < 0)
			return -1;
		i = j + 1;
	}
	int add_library = !strcmp(out->domain, "docker.io") && !memchr(path, '/', plen);
	if (plen + (add_library ? 8 : 0) >= sizeof out->path) {
		sb_adds(err, "repository name too long");
		return -1;
	}
	snprintf(out->path, sizeof out->path, "%s%.*s", add_library ? "library/" : "", (int)plen, path);
	/* the limit is on the name in full, as Docker normalises it before checking */
	size_t full = strlen(out->domain) + 1 + strlen(out->path);
	if (full > 255) {
		sb_addf(err, "repository name %s/%.20s... is %zu characters long in full, the limit is 255", out->domain,
			out->path, full);
		return -1;
	}
	return 0;
}

void imageref_name(const struct imageref *r, struct strbuf *out)
{
	sb_addf(out, "%s/%s", r->domain, r->path);
}

void imageref_canonical(const struct imageref *r, struct strbuf *out)
{
	imageref_name(r, out);
	if (r->tag[0])
		sb_addf(out, ":%s", r->tag);
	else if (!r->digest[0])
		sb_adds(out, ":latest");
	if (r->digest[0])
		sb_addf(out, "@%s", r->digest);
}

int imageref_is_floating(const struct imageref *r)
{
	return !r->digest[0] && (!r->tag[0] || !strcmp(r->tag, "latest"));
}

int imageref_matches(const struct imageref *want, const char *have)
{
	struct imageref h;
	struct strbuf ignored = STRBUF_INIT;
	int ok = imageref_parse(have, &h, &ignored) == 0;
	sb_release(&ignored);
	if (!ok || strcmp(want->domain, h.domain) || strcmp(want->path, h.path))
		return 0;
	if (want->digest[0])
		return !strcmp(want->digest, h.digest);
	if (h.digest[0] && !h.tag[0])
		return 0;
	return !strcmp(want->tag[0] ? want->tag : "latest", h.tag);
}
