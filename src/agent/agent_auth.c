/* agent_auth.c - docker config credentials and the kubelet's matching rules (see agent_auth.h). */
#include "agent_auth.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/util.h"

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void cred_clear(struct agent_cred *c)
{
	free(c->key);
	wipe_free(c->username);
	wipe_free(c->password);
	wipe_free(c->identity_token);
	wipe_free(c->registry_token);
	memset(c, 0, sizeof *c);
}

void agent_creds_free(struct agent_creds *creds)
{
	for (size_t i = 0; i < creds->n; i++)
		cred_clear(&creds->items[i]);
	free(creds->items);
	creds->items = NULL;
	creds->n = 0;
}

void agent_json_wipe(json_t *j)
{
	if (json_is_string(j)) {
		explicit_bzero((char *)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v)
			agent_json_wipe(v);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			agent_json_wipe(v);
	}
}

/* A key split into lowercase host, port ("" if none) and path ("" or "/..."), malloc'd. */
struct key_parts {
	char *host, *port, *path;
};

static void key_split(const char *key, struct key_parts *kp)
{
	const char *s = key;
	if (!strncmp(s, "https://", 8))
		s += 8;
	else if (!strncmp(s, "http://", 7))
		s += 7;
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	char *hostport = xstrndup(s, hl);
	for (char *p = hostport; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	const char *path = slash ? slash : "";
	if (!strncmp(path, "/v1/", 4) || !strncmp(path, "/v2/", 4))
		path += 3;
	if (!strcmp(path, "/"))
		path = "";
	kp->path = xstrdup(path);
	size_t pl = strlen(kp->path);
	while (pl > 1 && kp->path[pl - 1] == '/')
		kp->path[--pl] = 0;
	char *colon = strrchr(hostport, ':');
	char *bracket = strrchr(hostport, ']');
	if (colon && (!bracket || colon > bracket)) {
		kp->port = xstrdup(colon + 1);
		*colon = 0;
	} else {
		kp->port = xstrdup("");
	}
	kp->host = hostport;
	if (!strcmp(kp->host, "index.docker.io") || !strcmp(kp->host, "registry-1.docker.io")) {
		free(kp->host);
		kp->host = xstrdup("docker.io");
	}
}

static void key_parts_free(struct key_parts *kp)
{
	free(kp->host);
	free(kp->port);
	free(kp->path);
}

/* Hosts match part by part; each part of the key may be a glob. */
static int host_matches(const char *glob, const char *host)
{
	const char *g = glob, *h = host;
	for (;;) {
		const char *gd = strchr(g, '.'), *hd = strchr(h, '.');
		size_t gl = gd ? (size_t)(gd - g) : strlen(g), hl = hd ? (size_t)(hd - h) : strlen(h);
		char *gp = xstrndup(g, gl), *hp = xstrndup(h, hl);
		int ok = fnmatch(gp, hp, 0) == 0;
		free(gp);
		free(hp);
		if (!ok || !gd != !hd)
			return 0;
		if (!gd)
			return 1;
		g = gd + 1;
		h = hd + 1;
	}
}

int agent_auth_key_matches(const char *key, const struct imageref *ref)
{
	struct key_parts k, im;
	key_split(key, &k);
	char *target = xasprintf("%s/%s", ref->domain, ref->path);
	key_split(target, &im);
	free(target);
	int ok = host_matches(k.host, im.host) && !strcmp(k.port, im.port) &&
		 !strncmp(im.path, k.path, strlen(k.path));
	key_parts_free(&k);
	key_parts_free(&im);
	return ok;
}

/* The normalised key, for ordering: host[:port]path. */
static char *norm_key(const char *key)
{
	struct key_parts k;
	key_split(key, &k);
	char *r = xasprintf("%s%s%s%s", k.host, *k.port ? ":" : "", k.port, k.path);
	key_parts_free(&k);
	return r;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_cred(const struct agent_cred *a, const struct agent_cred *b)
{
	return same_str(a->key, b->key) && same_str(a->username, b->username) && same_str(a->password, b->password) &&
	       same_str(a->identity_token, b->identity_token) && same_str(a->registry_token, b->registry_token);
}

size_t agent_auth_select(const struct agent_creds *creds, const struct imageref *ref, size_t *idx, size_t max)
{
	size_t n = 0;
	char **keys = xcalloc(creds->n + 1, sizeof *keys);
	for (size_t i = 0; i < creds->n && n < max; i++) {
		if (!agent_auth_key_matches(creds->items[i].key, ref))
			continue;
		int dup = 0; /* the same credential from two Secrets is tried once */
		for (size_t k = 0; k < n && !dup; k++)
			dup = same_cred(&creds->items[idx[k]], &creds->items[i]);
		if (dup)
			continue;
		keys[n] = norm_key(creds->items[i].key);
		idx[n++] = i;
	}
	/* insertion sort, reverse lexicographic, stable */
	for (size_t i = 1; i < n; i++) {
		char *k = keys[i];
		size_t v = idx[i], j = i;
		while (j > 0 && strcmp(keys[j - 1], k) < 0) {
			keys[j] = keys[j - 1];
			idx[j] = idx[j - 1];
			j--;
		}
		keys[j] = k;
		idx[j] = v;
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return n;
}

static char *dup_field(json_t *o, const char *name)
{
	const char *v = json_string_value(json_object_get(o, name));
	return v && *v ? xstrdup(v) : NULL;
}

int agent_dockercfg_parse(const char *text, size_t len, int legacy, struct agent_creds *out, struct strbuf *err)
{
	json_error_t je;
	int rc = -1;
	json_t *root = json_loadb(text, len, 0, &je);
	if (!root) {
		/* je.text may quote the input: say only where */
		sb_addf(err, "not valid JSON (line %d, column %d)", je.line, je.column);
		return -1;
	}
	json_t *auths = legacy ? root : json_object_get(root, "auths");
	if (!json_is_object(auths)) {
		sb_adds(err, legacy ? "not a JSON object" : "no \"auths\" object");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(auths, key, v) {
		if (!json_is_object(v)) {
			sb_addf(err, "entry \"%s\" is not an object", key);
			goto out;
		}
		struct agent_cred c = { 0 };
		c.username = dup_field(v, "username");
		c.password = dup_field(v, "password");
		c.identity_token = dup_field(v, "identitytoken");
		c.registry_token = dup_field(v, "registrytoken");
		const char *auth = json_string_value(json_object_get(v, "auth"));
		if (auth && *auth) {
			size_t n = 0;
			unsigned char *dec = kf_base64_decode(auth, strlen(auth), &n, NULL);
			char *colon = dec ? memchr(dec, ':', n) : NULL;
			if (!dec || !colon) {
				if (dec) {
					explicit_bzero(dec, n);
					free(dec);
				}
				cred_clear(&c);
				sb_addf(err, "entry \"%s\": \"auth\" is not base64 of user:password", key);
				goto out;
			}
			if (!c.username) {
				c.username = xstrndup((char *)dec, (size_t)(colon - (char *)dec));
				wipe_free(c.password);
				c.password = xstrndup(colon + 1, n - (size_t)(colon + 1 - (char *)dec));
			}
			explicit_bzero(dec, n);
			free(dec);
		}
		c.key = xstrdup(key);
		out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
		out->items[out->n++] = c;
	}
	rc = 0;
out:
	agent_json_wipe(root);
	json_decref(root);
	return rc;
}
