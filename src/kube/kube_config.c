/* kube_config.c - kubeconfig and in-cluster configuration; see kube_config.h.
 *
 * The kubeconfig is parsed with kube_yaml (JSON is tried first when the text starts with '{', for its
 * exact error positions). Lookups follow clientcmd: the context by name (current-context unless one is
 * given), then its cluster and user by name. Every error starts with "kubeconfig FILE:" and names the
 * context, the user or cluster and the field involved, because a broken kubeconfig is the most common
 * first-run failure and the message is all the operator sees. */
#include "kube_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube_yaml.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/util.h"

#define KUBE_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

void kube_config_free(struct kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->ca_pem);
	free(cfg->cert_pem);
	free(cfg->key_pem);
	if (cfg->token) /* do not leave credentials in freed memory */
		memset(cfg->token, 0, strlen(cfg->token));
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->tls_server_name);
	free(cfg->namespace);
	free(cfg->context);
	free(cfg);
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	return xstrndup(s, n);
}

static void strip_trailing_slashes(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
}

/* Scalars as text: YAML typing may have turned `name: 123` or `token: 0123` into numbers. Returns a
 * malloc'd string, or NULL when missing or null; *bad is set for mappings and lists. */
static char *scalar_text(json_t *v, int *bad)
{
	*bad = 0;
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING: return xstrdup(json_string_value(v));
	case JSON_INTEGER: return xasprintf("%lld", (long long)json_integer_value(v));
	case JSON_REAL: return xasprintf("%.17g", json_real_value(v));
	case JSON_TRUE: return xstrdup("true");
	case JSON_FALSE: return xstrdup("false");
	case JSON_NULL: return NULL;
	default: *bad = 1; return NULL;
	}
}

/* Error context: "kubeconfig FILE: context "c": user "u": " */
struct cfgctx {
	const char *origin, *base_dir;
	struct strbuf *err;
	struct strbuf where;
};

static void cerr(struct cfgctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cerr(struct cfgctx *x, const char *fmt, ...)
{
	va_list ap;
	sb_addf(x->err, "kubeconfig %s: %s", x->origin, x->where.buf);
	va_start(ap, fmt);
	sb_vaddf(x->err, fmt, ap);
	va_end(ap);
}

/* Field as text; returns 0 (value or NULL in *out) or -1 with the error set. */
static int field(struct cfgctx *x, json_t *obj, const char *key, char **out)
{
	int bad;
	*out = scalar_text(json_object_get(obj, key), &bad);
	if (bad) {
		cerr(x, "%s must be a string", key);
		return -1;
	}
	return 0;
}

/* Finds the entry `name` of a named list (clusters, users, contexts). Returns 1 if found, with its inner
 * object (borrowed; NULL when absent or not a mapping: lookups in it then find nothing), else 0. */
static int find_named(json_t *root, const char *list, const char *inner, const char *name, json_t **out)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;
	*out = NULL;
	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, e) {
		int bad;
		char *n = scalar_text(json_object_get(e, "name"), &bad);
		int hit = n && !strcmp(n, name);
		free(n);
		if (hit) {
			json_t *o = json_object_get(e, inner);
			*out = json_is_object(o) ? o : NULL;
			return 1;
		}
	}
	return 0;
}

static char *resolve_path(struct cfgctx *x, const char *p)
{
	if (p[0] == '/' || !x->base_dir || !*x->base_dir)
		return xstrdup(p);
	return xasprintf("%s/%s", x->base_dir, p);
}

static int looks_pem(const char *s)
{
	return strstr(s, "-----BEGIN ") != NULL;
}

/* Loads PEM from `KEY-data` (base64) or the file `KEY` (relative to the kubeconfig). *out stays NULL when
 * neither is set. */
static int load_pem(struct cfgctx *x, json_t *obj, const char *key, char **out)
{
	char dkey[64];
	char *data = NULL, *path = NULL, *full = NULL;
	int rc = -1;
	*out = NULL;
	snprintf(dkey, sizeof dkey, "%s-data", key);
	if (field(x, obj, dkey, &data) < 0 || field(x, obj, key, &path) < 0)
		goto out;
	if (data && *data) {
		size_t n, bad;
		unsigned char *bin = kf_base64_decode(data, strlen(data), &n, &bad);
		if (!bin) {
			cerr(x, "%s: invalid base64 at offset %zu", dkey, bad);
			goto out;
		}
		if (memchr(bin, '\0', n) || !looks_pem((char *)bin)) {
			free(bin);
			cerr(x, "%s: decoded value is not PEM (no \"-----BEGIN\" line)", dkey);
			goto out;
		}
		*out = (char *)bin;
	} else if (path && *path) {
		struct strbuf e = STRBUF_INIT;
		full = resolve_path(x, path);
		size_t n;
		char *text = kf_read_file(full, &n, &e);
		if (!text) {
			cerr(x, "%s \"%s\": %s", key, path, e.buf);
			sb_release(&e);
			goto out;
		}
		sb_release(&e);
		if (memchr(text, '\0', n) || !looks_pem(text)) {
			free(text);
			cerr(x, "%s \"%s\": %s is not PEM (no \"-----BEGIN\" line)", key, path, full);
			goto out;
		}
		*out = text;
	}
	rc = 0;
out:
	free(data);
	free(path);
	free(full);
	return rc;
}

static int read_token_file(const char *path, char **out, struct strbuf *err)
{
	size_t n;
	char *t = kf_read_file(path, &n, err);
	if (!t)
		return -1;
	*out = trim_dup(t, n);
	memset(t, 0, n);
	free(t);
	return 0;
}

static int parse_cluster(struct cfgctx *x, json_t *cl, struct kube_config *cfg)
{
	char *v = NULL;
	if (field(x, cl, "server", &cfg->server) < 0)
		return -1;
	if (!cfg->server || !*cfg->server) {
		cerr(x, "server is missing");
		return -1;
	}
	strip_trailing_slashes(cfg->server);
	if (strncmp(cfg->server, "https://", 8) && strncmp(cfg->server, "http://", 7)) {
		cerr(x, "server \"%s\" is not an http(s) URL", cfg->server);
		return -1;
	}
	if (load_pem(x, cl, "certificate-authority", &cfg->ca_pem) < 0)
		return -1;
	if (field(x, cl, "tls-server-name", &cfg->tls_server_name) < 0)
		return -1;
	json_t *ins = json_object_get(cl, "insecure-skip-tls-verify");
	if (ins && !json_is_boolean(ins)) {
		if (field(x, cl, "insecure-skip-tls-verify", &v) < 0)
			return -1;
		int ok = v && (!strcmp(v, "true") || !strcmp(v, "false"));
		cfg->insecure = v && !strcmp(v, "true");
		free(v);
		if (!ok) {
			cerr(x, "insecure-skip-tls-verify must be true or false");
			return -1;
		}
	} else {
		cfg->insecure = json_is_true(ins);
	}
	if (json_object_get(cl, "proxy-url"))
		LOG_WARN("kubeconfig %s: %sproxy-url is not supported and is ignored", x->origin, x->where.buf);
	return 0;
}

static int parse_user(struct cfgctx *x, json_t *u, struct kube_config *cfg)
{
	json_t *ap = json_object_get(u, "auth-provider");
	if (json_object_get(u, "exec")) {
		cerr(x, "exec credential plugins are not supported (use token, tokenFile or a client certificate)");
		return -1;
	}
	if (ap) {
		cerr(x, "auth-provider \"%s\" is not supported (use token, tokenFile or a client certificate)",
		     kf_jstr(ap, "name", NULL) ? kf_jstr(ap, "name", NULL) : "?");
		return -1;
	}
	if (json_object_get(u, "username") || json_object_get(u, "password")) {
		cerr(x, "basic authentication (username/password) is not supported");
		return -1;
	}
	if (load_pem(x, u, "client-certificate", &cfg->cert_pem) < 0 || load_pem(x, u, "client-key", &cfg->key_pem) < 0)
		return -1;
	if (!!cfg->cert_pem != !!cfg->key_pem) {
		cerr(x, "%s is set but %s is missing", cfg->cert_pem ? "client-certificate" : "client-key",
		     cfg->cert_pem ? "client-key" : "client-certificate");
		return -1;
	}
	if (field(x, u, "token", &cfg->token) < 0)
		return -1;
	char *tf = NULL;
	if (field(x, u, "tokenFile", &tf) < 0)
		return -1;
	if (tf && *tf) {
		struct strbuf e = STRBUF_INIT;
		cfg->token_file = resolve_path(x, tf);
		char *tok = NULL;
		if (read_token_file(cfg->token_file, &tok, &e) < 0) {
			cerr(x, "tokenFile \"%s\": %s", tf, e.buf);
			sb_release(&e);
			free(tf);
			return -1;
		}
		sb_release(&e);
		/* Like client-go: tokenFile, when set, is what is used (and re-read as it rotates). */
		free(cfg->token);
		cfg->token = tok;
	}
	free(tf);
	return 0;
}

struct kube_config *kube_config_parse(const char *text, size_t len, const char *base_dir, const char *origin,
				      const char *context, struct strbuf *err)
{
	struct cfgctx x = { .origin = origin ? origin : "(inline)", .base_dir = base_dir, .err = err,
			    .where = STRBUF_INIT };
	struct kube_config *cfg = xcalloc(1, sizeof *cfg);
	json_t *root = NULL;
	char *ctxname = NULL, *clname = NULL, *uname = NULL, *ns = NULL;
	struct strbuf ye = STRBUF_INIT;

	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
		i++;
	if (i < len && text[i] == '{')
		root = json_loadb(text, len, 0, NULL);
	if (!root)
		root = kube_yaml_load(text, len, &ye);
	if (!root) {
		cerr(&x, "not valid YAML: %s", ye.buf);
		goto fail;
	}
	if (!json_is_object(root)) {
		cerr(&x, "not a kubeconfig (the top level is not a mapping)");
		goto fail;
	}
	if (context && *context) {
		ctxname = xstrdup(context);
	} else {
		if (field(&x, root, "current-context", &ctxname) < 0)
			goto fail;
		if (!ctxname || !*ctxname) {
			cerr(&x, "current-context is not set and no context was given");
			goto fail;
		}
	}
	cfg->context = xstrdup(ctxname);
	json_t *ctx, *cl, *u;
	if (!find_named(root, "contexts", "context", ctxname, &ctx)) {
		cerr(&x, "context \"%s\" not found in contexts", ctxname);
		goto fail;
	}
	sb_addf(&x.where, "context \"%s\": ", ctxname);
	if (field(&x, ctx, "cluster", &clname) < 0 || field(&x, ctx, "user", &uname) < 0 ||
	    field(&x, ctx, "namespace", &ns) < 0)
		goto fail;
	if (!clname || !*clname) {
		cerr(&x, "cluster is not set");
		goto fail;
	}
	if (!find_named(root, "clusters", "cluster", clname, &cl)) {
		cerr(&x, "cluster \"%s\" not found in clusters", clname);
		goto fail;
	}
	size_t mark = x.where.len;
	sb_addf(&x.where, "cluster \"%s\": ", clname);
	if (parse_cluster(&x, cl, cfg) < 0)
		goto fail;
	x.where.len = mark;
	x.where.buf[mark] = '\0';
	if (uname && *uname) {
		if (!find_named(root, "users", "user", uname, &u)) {
			cerr(&x, "user \"%s\" not found in users", uname);
			goto fail;
		}
		sb_addf(&x.where, "user \"%s\": ", uname);
		if (parse_user(&x, u, cfg) < 0)
			goto fail;
	}
	cfg->namespace = xstrdup(ns && *ns ? ns : "default");
	goto out;
fail:
	kube_config_free(cfg);
	cfg = NULL;
out:
	free(ctxname);
	free(clname);
	free(uname);
	free(ns);
	json_decref(root);
	sb_release(&ye);
	sb_release(&x.where);
	return cfg;
}

static struct kube_config *load_file(const char *path, const char *context, struct strbuf *err)
{
	size_t n;
	struct strbuf e = STRBUF_INIT;
	char *text = kf_read_file(path, &n, &e);
	if (!text) {
		sb_addf(err, "kubeconfig %s: %s", path, e.buf);
		sb_release(&e);
		return NULL;
	}
	sb_release(&e);
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
	struct kube_config *cfg = kube_config_parse(text, n, dir, path, context, err);
	free(dir);
	free(text);
	return cfg;
}

struct kube_config *kube_config_in_cluster(struct strbuf *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv("KUBE_SA_DIR");
	struct strbuf e = STRBUF_INIT;
	char *path = NULL;
	if (!host || !*host || !port || !*port) {
		sb_adds(err, "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
		return NULL;
	}
	if (!dir || !*dir)
		dir = KUBE_SA_DIR_DEFAULT;
	struct kube_config *cfg = xcalloc(1, sizeof *cfg);
	/* An IPv6 service IP ("fd00::1") must be bracketed in a URL. */
	if (strchr(host, ':') && host[0] != '[')
		cfg->server = xasprintf("https://[%s]:%s", host, port);
	else
		cfg->server = xasprintf("https://%s:%s", host, port);
	cfg->token_file = xasprintf("%s/token", dir);
	if (read_token_file(cfg->token_file, &cfg->token, &e) < 0) {
		sb_addf(err, "in-cluster config: service account token: %s", e.buf);
		goto fail;
	}
	path = xasprintf("%s/ca.crt", dir);
	sb_reset(&e);
	cfg->ca_pem = kf_read_file(path, NULL, &e);
	if (!cfg->ca_pem) /* as client-go: log and fall back to the system trust store */
		LOG_WARN("in-cluster config: %s; using the system trust store", e.buf);
	free(path);
	path = xasprintf("%s/namespace", dir);
	size_t n;
	sb_reset(&e);
	char *ns = kf_read_file(path, &n, &e);
	if (ns) {
		cfg->namespace = trim_dup(ns, n);
		free(ns);
	}
	if (!cfg->namespace || !*cfg->namespace) {
		free(cfg->namespace);
		cfg->namespace = xstrdup("default");
	}
	cfg->context = xstrdup("in-cluster");
	free(path);
	sb_release(&e);
	return cfg;
fail:
	free(path);
	sb_release(&e);
	kube_config_free(cfg);
	return NULL;
}

static void apply_master(struct kube_config *cfg, const char *master)
{
	if (!master || !*master)
		return;
	free(cfg->server);
	cfg->server = xstrdup(master);
	strip_trailing_slashes(cfg->server);
}

struct kube_config *kube_config_load(const char *kubeconfig, const char *context, const char *master,
				     struct strbuf *err)
{
	struct kube_config *cfg = NULL;
	if (kubeconfig && *kubeconfig) {
		cfg = load_file(kubeconfig, context, err);
		goto done;
	}
	const char *env = getenv("KUBECONFIG");
	if (env && *env) {
		char *list = xstrdup(env), *save = NULL;
		for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
			if (access(p, F_OK) == 0) {
				cfg = load_file(p, context, err);
				free(list);
				goto done;
			}
		}
		free(list);
	}
	if (getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST")) {
		cfg = kube_config_in_cluster(err);
		goto done;
	}
	const char *home = getenv("HOME");
	if (home && *home) {
		char *p = xasprintf("%s/.kube/config", home);
		if (access(p, F_OK) == 0) {
			cfg = load_file(p, context, err);
			free(p);
			goto done;
		}
		free(p);
	}
	if (master && *master) { /* like client-go: --master alone, without credentials */
		cfg = xcalloc(1, sizeof *cfg);
		cfg->namespace = xstrdup("default");
		cfg->context = xstrdup("");
		LOG_WARN("no kubeconfig found; using --master %s without credentials", master);
		goto done;
	}
	sb_adds(err, "no Kubernetes configuration found: give --kubeconfig, set $KUBECONFIG, run in a cluster, "
		     "or create ~/.kube/config");
	return NULL;
done:
	if (cfg)
		apply_master(cfg, master);
	return cfg;
}
