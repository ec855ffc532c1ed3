/* cmd_plugin.c - `kubectl fledged`, the kubectl plugin: the binary started as kubectl-fledged (main.c
 * dispatches on argv[0]; `make install-plugin` puts that name on PATH, where kubectl finds plugins), or as
 * `kubefledged kubectl-fledged`. docs/plugin.md.
 *
 *   kubectl fledged status [NAME] [-n NS | -A] [-o json]     node x image matrix, status, progress
 *   kubectl fledged plan -f FILE [-n NS] [-o json]           what applying FILE would pull and delete, where
 *   kubectl fledged refresh NAME [--wait] [--timeout=10m]    ask for a refresh (the annotation)
 *   kubectl fledged purge NAME [--wait] [--timeout=10m]      ask for a purge
 *   kubectl fledged version
 * Common flags: --kubeconfig, --context, -n/--namespace, --mode=auto|jobs|agent. Exit status: 0 done, 1 a
 * failure (cluster, object, a plan the webhook would deny, an operation that ended Failed), 2 bad usage.
 *
 * The work is in src/plugin/ (plugin_cluster.h talks to the cluster, plugin_matrix.h and plugin_plan.h
 * compute, plugin_registry.h asks registries for sizes); this file parses flags and prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "imagecache/ic_status.h"
#include "imagecache/ic_types.h"
#include "kube/kube_yaml.h"
#include "plugin/plugin_cluster.h"
#include "plugin/plugin_matrix.h"
#include "plugin/plugin_plan.h"
#include "plugin/plugin_registry.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#define PROG "kubectl fledged"

static const char usage_text[] =
	"kubectl fledged - kube-fledged's image caches, node by node\n"
	"\n"
	"Usage:\n"
	"  kubectl fledged status [NAME] [-n NS | -A] [-o json]   the node x image matrix of ImageCaches\n"
	"  kubectl fledged plan -f FILE [-n NS] [-o json]         what applying FILE would pull and delete, where\n"
	"  kubectl fledged refresh NAME [--wait]                  refresh now (kubefledged.io/refresh-imagecache)\n"
	"  kubectl fledged purge NAME [--wait]                    remove the images from the nodes\n"
	"                                                         (kubefledged.io/purge-imagecache)\n"
	"  kubectl fledged version\n"
	"\n"
	"Common flags: --kubeconfig=FILE, --context=NAME, -n/--namespace=NS, --mode=auto|jobs|agent.\n"
	"Run 'kubectl fledged COMMAND --help' for a command's flags; docs/plugin.md for more.\n";

/* Flags every command takes, followed by its own. */
struct common {
	char *kubeconfig, *context, *ns, *ns_long, *mode, *out, *out_long;
	int help;
};

#define COMMON_FLAGS(c)                                                                                          \
	{ "kubeconfig", FLAG_STRING, &(c)->kubeconfig, "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)" }, \
	{ "context", FLAG_STRING, &(c)->context, "", "kubeconfig context (default: current-context)" },             \
	{ "n", FLAG_STRING, &(c)->ns, "", "namespace (default: the context's)" },                                    \
	{ "namespace", FLAG_STRING, &(c)->ns_long, "", "same as -n" },                                               \
	{ "mode", FLAG_STRING, &(c)->mode, "auto",                                                                   \
	  "the controller's mode: auto (agent when NodeImageCaches exist), jobs or agent" },                         \
	{ "help", FLAG_BOOL, &(c)->help, "false", "show this help" }

#define OUTPUT_FLAGS(c)                                                              \
	{ "o", FLAG_STRING, &(c)->out, "", "output format: json (default: text)" }, \
	{ "output", FLAG_STRING, &(c)->out_long, "", "same as -o" }

static const char *pick(const char *a, const char *b)
{
	return a && *a ? a : b;
}

/* Parses; 0 go on, or the exit code (help printed: 0; bad flag: 2). npos: positional arguments. */
static int parse(struct flag *tab, struct common *c, int argc, char **argv, const char *cmd, const char *summary,
		 int *npos)
{
	struct strbuf err = STRBUF_INIT;
	*npos = flags_parse(tab, argc, argv, &err);
	/* the client's own log lines are for debugging (-v, --stderrthreshold): errors only unless asked */
	int asked = 0;
	for (int i = 0; i < argc; i++)
		asked |= strstr(argv[i], "stderrthreshold") != NULL;
	if (!asked)
		log_stderr_threshold = LOG_LVL_ERROR;
	if (*npos < 0) {
		fprintf(stderr, "%s %s: %s (see --help)\n", PROG, cmd, err.buf);
		sb_release(&err);
		return 2;
	}
	sb_release(&err);
	if (c->help) {
		flags_usage(stdout, cmd, summary, tab);
		return -1;
	}
	const char *out = pick(c->out, c->out_long);
	if (out && *out && strcmp(out, "json") && strcmp(out, "text")) {
		fprintf(stderr, "%s %s: invalid value \"%s\" for flag -o: want json or text\n", PROG, cmd, out);
		return 2;
	}
	if (strcmp(c->mode, "auto") && strcmp(c->mode, "jobs") && strcmp(c->mode, "agent")) {
		fprintf(stderr, "%s %s: invalid value \"%s\" for flag --mode: want auto, jobs or agent\n", PROG, cmd, c->mode);
		return 2;
	}
	return 0;
}

static int connect_or_say(struct common *c, const char *cmd, const char *ns, struct plugin_session *s)
{
	struct strbuf err = STRBUF_INIT;
	struct plugin_conn_opts o = { c->kubeconfig, c->context, ns ? ns : pick(c->ns, c->ns_long), c->mode };
	int rc = plugin_connect(&o, s, &err);
	if (rc < 0)
		fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
	sb_release(&err);
	return rc;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	puts(s);
	free(s);
}

/* The nodes (and the NodeImageCaches) as plugin_view reads them; the mode found from them and caches_all. */
static int load_nodes(struct plugin_session *s, const char *cmd, json_t *caches_all, int complete, json_t **nodes,
		      json_t **nics, struct plugin_nodes *out)
{
	struct strbuf err = STRBUF_INIT;
	if (plugin_load_nodes(s, caches_all, complete, nodes, nics, &err) < 0) {
		fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
		sb_release(&err);
		return -1;
	}
	sb_release(&err);
	plugin_nodes_build(*nodes, s->mode == PLUGIN_MODE_AGENT ? *nics : NULL, s->mode, out);
	return 0;
}

/* Every ImageCache (those of the session's namespace where the user may not list them all), for the mode
 * and the delete guard; NULL with the error said. */
static json_t *caches_all_or_say(struct plugin_session *s, const char *cmd, int *partial)
{
	struct strbuf err = STRBUF_INIT;
	json_t *all = plugin_list_caches_all(s, partial, &err);
	if (!all)
		fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
	sb_release(&err);
	return all;
}

/* ---- status ---- */

static int cmd_status(int argc, char **argv)
{
	struct common c = { 0 };
	int all, npos, rc = 1;
	struct flag tab[] = { COMMON_FLAGS(&c), OUTPUT_FLAGS(&c),
			      { "A", FLAG_BOOL, &all, "false", "every namespace" },
			      { "all-namespaces", FLAG_BOOL, &all, "false", "same as -A" },
			      { NULL } };
	struct plugin_session s = { 0 };
	struct plugin_nodes pn = { 0 };
	json_t *nodes = NULL, *nics = NULL, *caches = NULL, *all_caches = NULL, *out = NULL;
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	int p = parse(tab, &c, argc, argv, "status",
		      "kubectl fledged status [NAME] [-n NS | -A] [-o json]\n"
		      "The node x image matrix of an ImageCache (or of every one in the namespace): the state of each\n"
		      "pair, the cache's status and progress.", &npos);
	if (p) {
		rc = p < 0 ? 0 : p;
		goto out;
	}
	if (npos > 1 || (npos == 1 && all)) {
		fprintf(stderr, "%s status: %s\n", PROG, npos > 1 ? "one NAME at most" : "a NAME and -A do not go together");
		rc = 2;
		goto out;
	}
	int json = !strcmp(pick(c.out, c.out_long), "json");
	if (connect_or_say(&c, "status", NULL, &s) < 0)
		goto out;
	int partial = 0;
	if (npos == 1) {
		int nf;
		json_t *one = plugin_get_cache(&s, s.ns, argv[0], &nf, &err);
		if (!one) {
			fprintf(stderr, "%s status: %s\n", PROG, err.buf);
			goto out;
		}
		caches = json_pack("[o]", one);
	} else if (all) {
		caches = plugin_list(&s, &IC_RESOURCE, NULL, &err);
		if (!caches) {
			fprintf(stderr, "%s status: %s\n", PROG, err.buf);
			goto out;
		}
	}
	all_caches = all ? json_incref(caches) : caches_all_or_say(&s, "status", &partial);
	if (!all_caches)
		goto out;
	if (!caches) { /* the namespace's */
		caches = json_array();
		size_t k;
		json_t *x;
		json_array_foreach(all_caches, k, x)
			if (!strcmp(kf_jstr(x, "metadata", "namespace", NULL) ? kf_jstr(x, "metadata", "namespace", NULL) : "", s.ns))
				json_array_append(caches, x);
	}
	if (!json_array_size(caches) && !json) {
		if (all)
			printf("No ImageCaches found.\n");
		else
			printf("No ImageCaches found in namespace %s.\n", s.ns);
		rc = 0;
		goto out;
	}
	if (load_nodes(&s, "status", all_caches, !partial, &nodes, &nics, &pn) < 0)
		goto out;
	out = json_array();
	size_t i;
	json_t *cache;
	json_array_foreach(caches, i, cache) {
		json_t *m = plugin_matrix(cache, &pn);
		if (!json) {
			if (i)
				sb_addc(&text, '\n');
			plugin_matrix_text(m, &text);
		}
		json_array_append_new(out, m);
	}
	if (json) {
		json_t *wrap = npos == 1 ? json_incref(json_array_get(out, 0)) : json_pack("{s:O}", "items", out);
		print_json(wrap);
		json_decref(wrap);
	} else {
		fputs(text.buf, stdout);
	}
	rc = 0;
out:
	json_decref(out);
	json_decref(caches);
	json_decref(all_caches);
	json_decref(nodes);
	json_decref(nics);
	plugin_nodes_free(&pn);
	plugin_disconnect(&s);
	flags_free(tab);
	sb_release(&err);
	sb_release(&text);
	return rc;
}

/* ---- plan ---- */

/* The one ImageCache of FILE ("-": stdin): a new reference, or NULL with err naming the problem. */
static json_t *read_cache_file(const char *file, struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT;
	json_t *docs = NULL, *found = NULL;
	if (!strcmp(file, "-")) {
		char buf[65536];
		size_t n;
		while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
			sb_add(&text, buf, n);
	} else {
		size_t len;
		char *t = kf_read_file(file, &len, err);
		if (!t)
			goto out;
		sb_add(&text, t, len);
		free(t);
	}
	struct strbuf yerr = STRBUF_INIT;
	docs = kube_yaml_load_all(text.buf, text.len, &yerr);
	if (!docs) {
		sb_addf(err, "%s: %s", file, yerr.buf);
		sb_release(&yerr);
		goto out;
	}
	sb_release(&yerr);
	/* a List's items count as documents */
	json_t *flat = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) {
		if (json_is_array(json_object_get(d, "items")))
			json_array_extend(flat, json_object_get(d, "items"));
		else
			json_array_append(flat, d);
	}
	size_t n = 0;
	json_array_foreach(flat, i, d) {
		const char *kind = kf_jstr(d, "kind", NULL);
		if (!kind || strcmp(kind, IC_KIND))
			continue;
		if (n++ == 0)
			found = json_incref(d);
	}
	json_decref(flat);
	if (n != 1) {
		sb_addf(err, "%s: %s", file, n ? "holds several ImageCaches: plan one at a time" : "holds no ImageCache (kind: ImageCache)");
		json_decref(found);
		found = NULL;
		goto out;
	}
	const char *api = kf_jstr(found, "apiVersion", NULL), *name = kf_jstr(found, "metadata", "name", NULL);
	if (!api || strcmp(api, IC_API_VERSION)) {
		sb_addf(err, "%s: apiVersion: \"%s\": want %s", file, api ? api : "", IC_API_VERSION);
		json_decref(found);
		found = NULL;
	} else if (!name || !*name) {
		sb_addf(err, "%s: metadata.name: missing", file);
		json_decref(found);
		found = NULL;
	}
out:
	json_decref(docs);
	sb_release(&text);
	return found;
}

static int cmd_plan(int argc, char **argv)
{
	struct common c = { 0 };
	char *file, *file_long, *docker_config, *plain_http, *pull_policy;
	int no_sizes, npos, rc = 1;
	int64_t reg_timeout;
	struct flag tab[] = { COMMON_FLAGS(&c), OUTPUT_FLAGS(&c),
			      { "f", FLAG_STRING, &file, "", "the ImageCache to plan (YAML or JSON; - = stdin)" },
			      { "filename", FLAG_STRING, &file_long, "", "same as -f" },
			      { "no-sizes", FLAG_BOOL, &no_sizes, "false", "do not ask the registries for image sizes" },
			      { "docker-config", FLAG_STRING, &docker_config, "",
				"registry credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)" },
			      { "plain-http-registries", FLAG_STRING, &plain_http, "",
				"registries (host:port, comma-separated) spoken to over plain HTTP, as the nodes' "
				"runtimes are configured to" },
			      { "registry-timeout", FLAG_DURATION, &reg_timeout, "10s", "per registry request" },
			      { "image-pull-policy", FLAG_STRING, &pull_policy, "IfNotPresent",
				"the controller's --image-pull-policy (Always: every image is pulled)" },
			      { NULL } };
	struct plugin_session s = { 0 };
	struct plugin_nodes pn = { 0 };
	struct plugin_registry *reg = NULL;
	json_t *cache = NULL, *live = NULL, *others = NULL, *nodes = NULL, *nics = NULL, *plan = NULL;
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	int p = parse(tab, &c, argc, argv, "plan",
		      "kubectl fledged plan -f FILE [-n NS] [-o json]\n"
		      "What applying FILE (an ImageCache) would make kube-fledged pull and delete on which nodes, with\n"
		      "the download sizes from the registries' manifests. Changes nothing.", &npos);
	if (p) {
		rc = p < 0 ? 0 : p;
		goto out;
	}
	const char *f = pick(file, file_long);
	if (!*f || npos) {
		fprintf(stderr, "%s plan: %s\n", PROG, npos ? "unexpected argument: give the file with -f" : "no file: give -f FILE");
		rc = 2;
		goto out;
	}
	if (strcmp(pull_policy, "IfNotPresent") && strcmp(pull_policy, "Always")) {
		fprintf(stderr, "%s plan: invalid value \"%s\" for flag --image-pull-policy: want IfNotPresent or Always\n",
			PROG, pull_policy);
		rc = 2;
		goto out;
	}
	cache = read_cache_file(f, &err);
	if (!cache) {
		fprintf(stderr, "%s plan: %s\n", PROG, err.buf);
		goto out;
	}
	const char *file_ns = kf_jstr(cache, "metadata", "namespace", NULL), *flag_ns = pick(c.ns, c.ns_long);
	if (file_ns && *flag_ns && strcmp(file_ns, flag_ns)) {
		fprintf(stderr, "%s plan: the namespace of %s (\"%s\") does not match the namespace -n \"%s\"\n", PROG, f,
			file_ns, flag_ns);
		goto out;
	}
	if (connect_or_say(&c, "plan", file_ns, &s) < 0)
		goto out;
	json_object_set_new(json_object_get(cache, "metadata"), "namespace", json_string(s.ns));
	const char *name = kf_jstr(cache, "metadata", "name", NULL);
	int nf;
	live = plugin_get_cache(&s, s.ns, name, &nf, &err);
	if (!live && !nf) {
		fprintf(stderr, "%s plan: %s\n", PROG, err.buf);
		goto out;
	}
	int partial;
	others = caches_all_or_say(&s, "plan", &partial);
	if (!others)
		goto out;
	if (partial)
		fprintf(stderr, "%s plan: warning: you may not list ImageCaches in every namespace: the delete guard "
				"sees only those of namespace %s\n", PROG, s.ns);
	if (load_nodes(&s, "plan", others, !partial, &nodes, &nics, &pn) < 0)
		goto out;
	struct plugin_plan_input in = { cache, live, others, &pn, pull_policy };
	sb_reset(&err);
	plan = plugin_plan(&in, &err);
	if (!plan) {
		fprintf(stderr, "%s plan: %s: %s\n", PROG, f, err.buf);
		goto out;
	}
	if (!no_sizes) {
		struct strbuf warn = STRBUF_INIT;
		struct plugin_registry_opts ro = { docker_config, plain_http, (long)reg_timeout };
		reg = plugin_registry_new(&ro, &warn);
		if (warn.len)
			fprintf(stderr, "%s plan: warning: %s\n", PROG, warn.buf);
		sb_release(&warn);
		plugin_plan_sizes(plan, plugin_registry_size, reg);
	}
	if (!strcmp(pick(c.out, c.out_long), "json")) {
		print_json(plan);
	} else {
		plugin_plan_text(plan, &text);
		fputs(text.buf, stdout);
	}
	rc = json_object_get(plan, "denied") ? 1 : 0;
out:
	plugin_registry_free(reg);
	json_decref(plan);
	json_decref(cache);
	json_decref(live);
	json_decref(others);
	json_decref(nodes);
	json_decref(nics);
	plugin_nodes_free(&pn);
	plugin_disconnect(&s);
	flags_free(tab);
	sb_release(&err);
	sb_release(&text);
	return rc;
}

/* ---- refresh, purge ---- */

static void print_result(const char *ns, const char *name, json_t *obj, const char *op, long secs)
{
	json_t *st = json_object_get(obj, "status");
	const char *s = kf_jstr(st, "status", NULL), *r = kf_jstr(st, "reason", NULL), *m = kf_jstr(st, "message", NULL);
	printf("ImageCache %s/%s: %s finished after %lds: %s", ns, name, op, secs, s ? s : "?");
	if (r)
		printf(" (%s)", r);
	if (m)
		printf(": %s", m);
	json_t *p = json_object_get(st, "progress");
	if (json_is_object(p))
		printf("; %lld/%lld node-image pairs done, %lld failed", (long long)json_integer_value(json_object_get(p, "done")),
		       (long long)json_integer_value(json_object_get(p, "total")),
		       (long long)json_integer_value(json_object_get(p, "failed")));
	printf("\n");
	const char *img;
	json_t *list;
	json_object_foreach(json_object_get(st, "failures"), img, list) {
		size_t i;
		json_t *f;
		json_array_foreach(list, i, f)
			printf("  failed: %s on %s: %s: %s\n", img, kf_jstr(f, "node", NULL) ? kf_jstr(f, "node", NULL) : "?",
			       kf_jstr(f, "reason", NULL) ? kf_jstr(f, "reason", NULL) : "",
			       kf_jstr(f, "message", NULL) ? kf_jstr(f, "message", NULL) : "");
	}
}

static int cmd_annotate(int argc, char **argv, const char *cmd)
{
	struct common c = { 0 };
	int wait, npos, rc = 1;
	int64_t timeout_ms;
	struct flag tab[] = { COMMON_FLAGS(&c),
			      { "wait", FLAG_BOOL, &wait, "false", "wait for the operation's end and print its result" },
			      { "timeout", FLAG_DURATION, &timeout_ms, "10m", "with --wait: how long to wait" },
			      { NULL } };
	int purge = !strcmp(cmd, "purge");
	const char *key = purge ? IC_ANNOTATION_PURGE : IC_ANNOTATION_REFRESH;
	struct plugin_session s = { 0 };
	json_t *obj = NULL;
	struct strbuf err = STRBUF_INIT;
	char *summary = xasprintf("kubectl fledged %s NAME [-n NS] [--wait]\n%s", cmd,
				  purge ? "Removes the ImageCache's images from its nodes (annotation "
					  "kubefledged.io/purge-imagecache); no periodic refresh afterwards."
					: "Refreshes the ImageCache now (annotation kubefledged.io/refresh-imagecache): pulls "
					  "what is missing,\nagain :latest and untagged images.");
	int p = parse(tab, &c, argc, argv, cmd, summary, &npos);
	free(summary);
	if (p) {
		rc = p < 0 ? 0 : p;
		goto out;
	}
	if (npos != 1) {
		fprintf(stderr, "%s %s: %s\n", PROG, cmd, npos ? "one NAME only" : "no NAME given");
		rc = 2;
		goto out;
	}
	const char *name = argv[0];
	if (connect_or_say(&c, cmd, NULL, &s) < 0)
		goto out;
	int nf;
	obj = plugin_get_cache(&s, s.ns, name, &nf, &err);
	if (!obj) {
		fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
		goto out;
	}
	if (kf_jget(obj, "metadata", "annotations", key, NULL)) {
		printf("ImageCache %s/%s: a %s is already requested\n", s.ns, name, cmd);
	} else {
		if (plugin_annotate(&s, s.ns, name, key, &err) < 0) {
			fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
			goto out;
		}
		printf("ImageCache %s/%s: %s requested\n", s.ns, name, cmd);
	}
	fflush(stdout);
	if (!wait) {
		rc = 0;
		goto out;
	}
	/* the controller removes the annotation once the operation has finished and its status is written */
	int64_t t0 = kf_now_ms();
	long long last_done = -1;
	for (;;) {
		json_decref(obj);
		sb_reset(&err);
		obj = plugin_get_cache(&s, s.ns, name, &nf, &err);
		if (!obj) {
			fprintf(stderr, "%s %s: %s\n", PROG, cmd, err.buf);
			goto out;
		}
		const char *status = kf_jstr(obj, "status", "status", NULL);
		int processing = status && !strcmp(status, IC_STATUS_PROCESSING);
		if (!kf_jget(obj, "metadata", "annotations", key, NULL) && !processing)
			break;
		json_t *pr = kf_jget(obj, "status", "progress", NULL);
		long long done = json_integer_value(json_object_get(pr, "done"));
		if (processing && done != last_done) {
			fprintf(stderr, "%s/%s: Processing (%s): %lld/%lld done, %lld failed\n", s.ns, name,
				kf_jstr(obj, "status", "reason", NULL) ? kf_jstr(obj, "status", "reason", NULL) : "",
				done, (long long)json_integer_value(json_object_get(pr, "total")),
				(long long)json_integer_value(json_object_get(pr, "failed")));
			last_done = done;
		}
		if (kf_now_ms() - t0 >= timeout_ms) {
			char d[32];
			kf_format_duration(timeout_ms, d, sizeof d);
			fprintf(stderr, "%s %s: timed out after %s: %s (is the kube-fledged controller running?)\n", PROG, cmd,
				d, processing ? "the operation is still Processing" : "the annotation is still there");
			goto out;
		}
		kf_sleep_ms(1000);
	}
	print_result(s.ns, name, obj, cmd, (long)((kf_now_ms() - t0 + 500) / 1000));
	const char *status = kf_jstr(obj, "status", "status", NULL);
	rc = status && !strcmp(status, IC_STATUS_FAILED) ? 1 : 0;
out:
	json_decref(obj);
	plugin_disconnect(&s);
	flags_free(tab);
	sb_release(&err);
	return rc;
}

int cmd_plugin(int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
		fputs(usage_text, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	const char *cmd = argv[0];
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "plan"))
		return cmd_plan(argc - 1, argv + 1);
	if (!strcmp(cmd, "refresh") || !strcmp(cmd, "purge"))
		return cmd_annotate(argc - 1, argv + 1, cmd);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("kubectl-fledged %s (%s)\n", kf_version(), kf_git_version());
		return 0;
	}
	fprintf(stderr, "%s: unknown command \"%s\"\n\n%s", PROG, cmd, usage_text);
	return 2;
}
