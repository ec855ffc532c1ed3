/* plugin_registry.c - image download sizes from registries' manifests (see plugin_registry.h). */
#include "plugin_registry.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent_auth.h"
#include "util/base64.h"
#include "util/imageref.h"
#include "util/map.h"
#include "util/util.h"

#define MAX_BODY (4 << 20)
#define ACCEPT                                                                                                    \
	"Accept: application/vnd.oci.image.index.v1+json, "                                                       \
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, " \
	"application/vnd.docker.distribution.manifest.v2+json"

struct plugin_registry {
	struct agent_creds creds;
	char *plain_http; /* ",host1,host2," */
	long timeout_ms;
	struct map results;     /* "image\nplatform" -> struct result * */
	struct map unreachable; /* host -> malloc'd reason */
	struct map tokens;      /* "host\nrepository" -> malloc'd Authorization header line */
};

struct result {
	int ok;
	int64_t bytes;
	json_t *layers;
	char *why;
};

static void result_free(void *p)
{
	struct result *r = p;
	json_decref(r->layers);
	free(r->why);
	free(r);
}

static void wipe_free(void *p)
{
	if (p)
		explicit_bzero(p, strlen(p));
	free(p);
}

struct plugin_registry *plugin_registry_new(const struct plugin_registry_opts *o, struct strbuf *warn)
{
	struct plugin_registry *r = xcalloc(1, sizeof *r);
	r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	r->plain_http = xasprintf(",%s,", o->plain_http ? o->plain_http : "");
	r->results = r->unreachable = r->tokens = (struct map)MAP_INIT;
	char *path = NULL;
	if (o->docker_config && *o->docker_config)
		path = xstrdup(o->docker_config);
	else if (getenv("DOCKER_CONFIG") && *getenv("DOCKER_CONFIG"))
		path = xasprintf("%s/config.json", getenv("DOCKER_CONFIG"));
	else if (getenv("HOME"))
		path = xasprintf("%s/.docker/config.json", getenv("HOME"));
	size_t len = 0;
	struct strbuf err = STRBUF_INIT;
	char *text = path ? kf_read_file(path, &len, &err) : NULL;
	if (text) {
		json_t *root = json_loadb(text, len, 0, NULL);
		int has_auths = json_is_object(json_object_get(root, "auths"));
		if (json_object_get(root, "credsStore") || json_object_get(root, "credHelpers"))
			sb_addf(warn, "%s names credential helpers (credsStore, credHelpers): they are not run; only "
				      "its auths entries are used", path);
		agent_json_wipe(root);
		json_decref(root);
		sb_reset(&err);
		if (has_auths && agent_dockercfg_parse(text, len, 0, &r->creds, &err) < 0)
			sb_addf(warn, "%sdocker config %s: %s: ignored", warn->len ? "; " : "", path, err.buf);
		explicit_bzero(text, len);
		free(text);
	} else if (o->docker_config && *o->docker_config) {
		sb_addf(warn, "%s", err.buf); /* only an explicit file must exist */
	}
	sb_release(&err);
	free(path);
	return r;
}

void plugin_registry_free(struct plugin_registry *r)
{
	if (!r)
		return;
	agent_creds_free(&r->creds);
	map_free(&r->results, result_free);
	map_free(&r->unreachable, free);
	map_free(&r->tokens, wipe_free);
	free(r->plain_http);
	free(r);
}

/* ---- manifests (pure) ---- */

json_t *plugin_index_pick(json_t *index, const char *platform)
{
	char os[64] = "", arch[64] = "", variant[64] = "";
	sscanf(platform, "%63[^/]/%63[^/]/%63s", os, arch, variant);
	json_t *best = NULL;
	int best_score = -1;
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(index, "manifests"), i, m) {
		const char *mos = kf_jstr(m, "platform", "os", NULL), *march = kf_jstr(m, "platform", "architecture", NULL);
		const char *mvar = kf_jstr(m, "platform", "variant", NULL);
		if (!mos || !march || strcmp(mos, os) || strcmp(march, arch))
			continue;
		int score;
		if (*variant)
			score = mvar && !strcmp(mvar, variant) ? 3 : !mvar ? 1 : -1;
		else if (!strcmp(arch, "arm"))
			score = mvar && !strcmp(mvar, "v7") ? 3 : !mvar ? 2 : 1;
		else
			score = !mvar || !strcmp(mvar, "v8") ? 3 : 1;
		if (score > best_score) {
			best = m;
			best_score = score;
		}
	}
	return best;
}

int plugin_manifest_size(json_t *manifest, int64_t *bytes, json_t **layers, struct strbuf *why)
{
	json_int_t sv = json_integer_value(json_object_get(manifest, "schemaVersion"));
	json_t *ls = json_object_get(manifest, "layers"), *cfg = json_object_get(manifest, "config");
	if (sv == 1 || json_object_get(manifest, "fsLayers")) {
		sb_adds(why, "a schema 1 manifest, which lists no sizes");
		return -1;
	}
	if (!json_is_array(ls) || !json_is_object(cfg)) {
		sb_adds(why, "the manifest lists no layers and config");
		return -1;
	}
	*layers = json_array();
	*bytes = 0;
	size_t i;
	json_t *l;
	json_t *all = json_array();
	json_array_append(all, cfg);
	json_array_extend(all, ls);
	json_array_foreach(all, i, l) {
		json_t *size = json_object_get(l, "size");
		const char *digest = kf_jstr(l, "digest", NULL);
		if (!json_is_integer(size) || json_integer_value(size) < 0 || !digest) {
			sb_addf(why, "the manifest's %s %zu has no size or digest", i ? "layer" : "config", i ? i - 1 : 0);
			json_decref(all);
			json_decref(*layers);
			*layers = NULL;
			return -1;
		}
		*bytes += json_integer_value(size);
		json_array_append_new(*layers, json_pack("{s:s, s:I}", "digest", digest, "size", json_integer_value(size)));
	}
	json_decref(all);
	return 0;
}

/* ---- HTTP ---- */

struct resp {
	long code;
	struct strbuf body, www_auth, ctype;
	int too_big;
};

static size_t on_body(char *p, size_t s, size_t n, void *ud)
{
	struct resp *r = ud;
	if (r->body.len + s * n > MAX_BODY) {
		r->too_big = 1;
		return 0;
	}
	sb_add(&r->body, p, s * n);
	return s * n;
}

static void header_value(struct strbuf *dst, const char *line, size_t n, const char *name)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl))
		return;
	const char *v = line + nl;
	size_t vl = n - nl;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	sb_reset(dst);
	sb_add(dst, v, vl);
}

static size_t on_header(char *p, size_t s, size_t n, void *ud)
{
	struct resp *r = ud;
	header_value(&r->www_auth, p, s * n, "WWW-Authenticate:");
	header_value(&r->ctype, p, s * n, "Content-Type:");
	return s * n;
}

static void resp_release(struct resp *r)
{
	sb_release(&r->body);
	sb_release(&r->www_auth);
	sb_release(&r->ctype);
}

/* GET url with optional Authorization line and Accept; 0 with resp filled (any HTTP status), or -1 with a
 * transport error in why. */
static int http_get(struct plugin_registry *reg, const char *url, const char *auth, int accept, struct resp *out,
		    struct strbuf *why)
{
	memset(out, 0, sizeof *out);
	out->body = out->www_auth = out->ctype = (struct strbuf)STRBUF_INIT;
	CURL *h = curl_easy_init();
	if (!h) {
		sb_adds(why, "cannot start an HTTP request");
		return -1;
	}
	struct curl_slist *hdr = NULL;
	if (accept)
		hdr = curl_slist_append(hdr, ACCEPT);
	if (auth)
		hdr = curl_slist_append(hdr, auth);
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms < 5000 ? reg->timeout_ms : 5000);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* redirects: blobs and tokens may live elsewhere; credentials are never sent along (curl drops the
	 * Authorization header on a redirect to another host) */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kubectl-fledged");
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->code);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && out->too_big)) {
		sb_addf(why, "%s", *ebuf ? ebuf : curl_easy_strerror(rc));
		resp_release(out);
		return -1;
	}
	if (out->too_big) {
		sb_adds(why, "the answer is larger than 4 MiB");
		resp_release(out);
		return -1;
	}
	return 0;
}

/* A parameter of a WWW-Authenticate challenge (realm="...") into out; 1 if found. */
static int challenge_param(const char *ch, const char *name, struct strbuf *out)
{
	size_t nl = strlen(name);
	for (const char *p = ch; (p = strcasestr(p, name)); p += nl) {
		if (p > ch && p[-1] != ' ' && p[-1] != ',')
			continue;
		const char *v = p + nl;
		if (*v != '=')
			continue;
		v++;
		sb_reset(out);
		if (*v == '"') {
			v++;
			while (*v && *v != '"')
				sb_addc(out, *v++);
		} else {
			while (*v && *v != ',' && *v != ' ')
				sb_addc(out, *v++);
		}
		return 1;
	}
	return 0;
}

/* The Authorization line for Basic credentials of ref, or NULL. malloc'd. */
static char *basic_auth(struct plugin_registry *reg, const struct imageref *ref)
{
	size_t idx[1];
	if (!agent_auth_select(&reg->creds, ref, idx, 1))
		return NULL;
	const struct agent_cred *c = &reg->creds.items[idx[0]];
	if (c->registry_token)
		return xasprintf("Authorization: Bearer %s", c->registry_token);
	if (!c->username || !c->password)
		return NULL;
	char *up = xasprintf("%s:%s", c->username, c->password);
	char *b64 = kf_base64_encode(up, strlen(up));
	char *line = xasprintf("Authorization: Basic %s", b64);
	wipe_free(up);
	wipe_free(b64);
	return line;
}

/* Answers a 401 challenge: the Authorization line to retry with (malloc'd), or NULL with why. */
static char *authenticate(struct plugin_registry *reg, const struct imageref *ref, const char *challenge,
			  struct strbuf *why)
{
	char *basic = basic_auth(reg, ref);
	if (!strncasecmp(challenge, "Basic", 5)) {
		if (!basic)
			sb_adds(why, "the registry asks for credentials (Basic) and the docker config has none for it");
		return basic;
	}
	if (strncasecmp(challenge, "Bearer", 6)) {
		sb_addf(why, "unsupported authentication scheme in \"%s\"", challenge);
		wipe_free(basic);
		return NULL;
	}
	if (basic && !strncmp(basic, "Authorization: Bearer ", 22))
		return basic; /* a registry token from the docker config */
	struct strbuf realm = STRBUF_INIT, service = STRBUF_INIT, url = STRBUF_INIT;
	char *line = NULL;
	if (!challenge_param(challenge, "realm", &realm) ||
	    (strncmp(realm.buf, "https://", 8) && strncmp(realm.buf, "http://", 7))) {
		sb_addf(why, "the registry asks for a token without a usable realm: \"%s\"", challenge);
		goto out;
	}
	sb_adds(&url, realm.buf);
	sb_addc(&url, strchr(realm.buf, '?') ? '&' : '?');
	if (challenge_param(challenge, "service", &service)) {
		sb_adds(&url, "service=");
		sb_add_urlencoded(&url, service.buf);
		sb_addc(&url, '&');
	}
	sb_adds(&url, "scope=");
	char *scope = xasprintf("repository:%s:pull", ref->path);
	sb_add_urlencoded(&url, scope);
	free(scope);
	struct resp tr;
	struct strbuf terr = STRBUF_INIT;
	if (http_get(reg, url.buf, basic, 0, &tr, &terr) < 0) {
		sb_addf(why, "token endpoint %s: %s", realm.buf, terr.buf);
		sb_release(&terr);
		goto out;
	}
	sb_release(&terr);
	json_t *tok = tr.code == 200 ? json_loadb(tr.body.buf, tr.body.len, 0, NULL) : NULL;
	const char *t = kf_jstr(tok, "token", NULL);
	if (!t)
		t = kf_jstr(tok, "access_token", NULL);
	if (t)
		line = xasprintf("Authorization: Bearer %s", t);
	else if (tr.code == 200)
		sb_addf(why, "token endpoint %s: no token in its answer", realm.buf);
	else
		sb_addf(why, "token endpoint %s: HTTP %ld%s", realm.buf, tr.code,
			basic ? " (with the docker config's credentials)" : " (anonymous)");
	agent_json_wipe(tok);
	json_decref(tok);
	explicit_bzero(tr.body.buf, tr.body.len);
	resp_release(&tr);
out:
	wipe_free(basic);
	sb_release(&realm);
	sb_release(&service);
	sb_release(&url);
	return line;
}

static int is_loopback(const char *host)
{
	return !strncmp(host, "localhost", 9) || !strncmp(host, "127.", 4) || !strncmp(host, "[::1]", 5);
}

/* GET a manifest (tag or digest) of ref: 0 with a new JSON body, or -1 with why (*transport set when the
 * registry could not be reached at all). */
static int get_manifest(struct plugin_registry *reg, const struct imageref *ref, const char *api_host,
			const char *scheme, const char *what, json_t **out, int *transport, struct strbuf *why)
{
	char *url = xasprintf("%s://%s/v2/%s/manifests/%s", scheme, api_host, ref->path, what);
	char *tkey = xasprintf("%s\n%s", api_host, ref->path);
	const char *auth = map_get(&reg->tokens, tkey);
	struct resp r;
	int rc = -1;
	*out = NULL;
	*transport = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (http_get(reg, url, auth, 1, &r, why) < 0) {
			*transport = 1;
			goto out;
		}
		if (r.code != 401 || attempt)
			break;
		char *line = authenticate(reg, ref, r.www_auth.len ? r.www_auth.buf : "Basic", why);
		resp_release(&r);
		if (!line)
			goto out;
		wipe_free(map_put(&reg->tokens, tkey, line));
		auth = line;
	}
	if (r.code == 200) {
		*out = json_loadb(r.body.buf, r.body.len, 0, NULL);
		if (*out)
			rc = 0;
		else
			sb_addf(why, "the registry's manifest is not JSON (%s)", r.ctype.len ? r.ctype.buf : "no type");
	} else if (r.code == 401 || r.code == 403) {
		sb_addf(why, "the registry refused access (HTTP %ld)%s", r.code,
			auth ? "" : ": no credentials for it in the docker config");
	} else if (r.code == 404) {
		sb_addf(why, "not found in the registry (HTTP 404)");
	} else {
		sb_addf(why, "the registry answered HTTP %ld", r.code);
	}
	resp_release(&r);
out:
	free(url);
	free(tkey);
	return rc;
}

static int size_of(struct plugin_registry *reg, const char *image, const char *platform, struct result *res)
{
	struct imageref ref;
	struct strbuf why = STRBUF_INIT;
	if (imageref_parse(image, &ref, &why) < 0) {
		res->why = xasprintf("not a valid image reference: %s", why.buf);
		sb_release(&why);
		return -1;
	}
	const char *api = ref.domain;
	if (!strcmp(api, "docker.io") || !strcmp(api, "index.docker.io"))
		api = "registry-1.docker.io";
	char *key = xasprintf(",%s,", ref.domain);
	int plain = strstr(reg->plain_http, key) != NULL;
	free(key);
	const char *down = map_get(&reg->unreachable, ref.domain);
	if (down) {
		res->why = xstrdup(down);
		return -1;
	}
	json_t *m = NULL;
	const char *scheme = plain ? "http" : "https";
	const char *what = ref.digest[0] ? ref.digest : ref.tag[0] ? ref.tag : "latest";
	int transport = 0;
	int rc = get_manifest(reg, &ref, api, scheme, what, &m, &transport, &why);
	if (rc < 0 && transport && !plain && is_loopback(ref.domain)) {
		sb_reset(&why);
		scheme = "http";
		rc = get_manifest(reg, &ref, api, scheme, what, &m, &transport, &why);
	}
	if (rc == 0 && json_is_array(json_object_get(m, "manifests"))) {
		json_t *d = plugin_index_pick(m, platform);
		const char *digest = kf_jstr(d, "digest", NULL);
		json_t *pm = NULL;
		if (!digest)
			sb_addf(&why, "the image has no %s manifest", platform);
		else if (get_manifest(reg, &ref, api, scheme, digest, &pm, &transport, &why) == 0) {
			json_decref(m);
			m = pm;
		}
		if (!digest || !pm)
			rc = -1;
	}
	if (rc == 0)
		rc = plugin_manifest_size(m, &res->bytes, &res->layers, &why);
	json_decref(m);
	if (rc < 0) {
		res->why = sb_detach(&why);
		/* a transport error: do not ask that registry again */
		if (transport) {
			char *r = xasprintf("registry %s unreachable: %s", ref.domain, res->why);
			free(res->why);
			res->why = r;
			map_put(&reg->unreachable, ref.domain, xstrdup(r));
		}
	}
	sb_release(&why);
	return rc;
}

int plugin_registry_size(void *ud, const char *image, const char *platform, int64_t *bytes, json_t **layers,
			 struct strbuf *why)
{
	struct plugin_registry *reg = ud;
	char *key = xasprintf("%s\n%s", image, platform);
	struct result *r = map_get(&reg->results, key);
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->ok = size_of(reg, image, platform, r) == 0;
		map_put(&reg->results, key, r);
	}
	free(key);
	if (!r->ok) {
		sb_adds(why, r->why ? r->why : "unknown");
		return -1;
	}
	*bytes = r->bytes;
	*layers = json_incref(r->layers);
	return 0;
}
