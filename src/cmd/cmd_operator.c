/* cmd_operator.c - `kubefledged operator`: installs, upgrades and removes kube-fledged from KubeFledged
 * objects (charts.helm.kubefledged.io/v1alpha2, upstream's operator's custom resource, whose spec is the Helm
 * chart's values), without Helm: the chart is built in (src/operator/). Leader election as the controller's.
 *
 * `kubefledged operator render [-f values.yaml|kubefledged.yaml]` prints, as a JSON List, the objects the
 * operator would apply for those values (a KubeFledged's spec or a Helm values file), as `helm template`
 * prints the chart's: nothing is contacted. tests/unit/operator-parity.sh compares the two.
 *
 * SIGTERM or SIGINT stop it gracefully; a second signal exits at once; a lost lease exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_run.h"
#include "cmds.h"
#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "kube/kube_yaml.h"
#include "operator/op_apply.h"
#include "operator/op_chart.h"
#include "operator/op_controller.h"
#include "operator/op_render.h"
#include "operator/op_values.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

static volatile int stop_flag;

/* Reads the values of -f: a KubeFledged (its spec, and its name and namespace unless given) or a values
 * file. "-" is stdin. Returns a new reference or NULL with err. */
static json_t *read_values(const char *file, char **name, char **ns, struct strbuf *err)
{
	char *text = NULL;
	size_t len = 0;
	if (!strcmp(file, "-")) {
		struct strbuf in = STRBUF_INIT;
		char buf[8192];
		size_t n;
		while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
			sb_add(&in, buf, n);
		len = in.len;
		text = sb_detach(&in);
	} else if (!(text = kf_read_file(file, &len, err))) {
		return NULL;
	}
	json_t *doc = kube_yaml_load(text, len, err);
	free(text);
	if (!doc) {
		sb_addf(err, " (%s)", file);
		return NULL;
	}
	if (json_is_null(doc)) {
		json_decref(doc);
		return json_object();
	}
	if (!json_is_object(doc)) {
		sb_addf(err, "%s: values must be a map, not %s", file, kf_json_type_name(doc));
		json_decref(doc);
		return NULL;
	}
	const char *kind = kf_jstr(doc, "kind", NULL), *api = kf_jstr(doc, "apiVersion", NULL);
	if (kind && !strcmp(kind, OP_KIND) && api && !strncmp(api, OP_GROUP "/", strlen(OP_GROUP) + 1)) {
		const char *n = kf_jstr(doc, "metadata", "name", NULL), *s = kf_jstr(doc, "metadata", "namespace", NULL);
		if (n && !*name)
			*name = xstrdup(n);
		if (s && !*ns)
			*ns = xstrdup(s);
		json_t *spec = json_incref(json_object_get(doc, "spec"));
		json_decref(doc);
		if (spec && !json_is_object(spec)) {
			sb_addf(err, "%s: spec must be a map of the chart's values, not %s", file, kf_json_type_name(spec));
			json_decref(spec);
			return NULL;
		}
		return spec ? spec : json_object();
	}
	return doc;
}

static int cmd_operator_render(int argc, char **argv)
{
	char *file, *f, *name, *ns, *service;
	int crds, help;
	struct flag tab[] = {
		{ "values", FLAG_STRING, &file, "", "values file (YAML), or a KubeFledged whose spec is the values; "
		  "- = stdin (default: the chart's defaults only)" },
		{ "f", FLAG_STRING, &f, "", "same as --values" },
		{ "name", FLAG_STRING, &name, "", "release name (default: the KubeFledged's name, else kube-fledged)" },
		{ "namespace", FLAG_STRING, &ns, "", "release namespace (default: the KubeFledged's, else kube-fledged)" },
		{ "include-crds", FLAG_BOOL, &crds, "false", "also print the chart's CRDs, which the operator applies "
		  "first (helm template --include-crds)" },
		{ "release-service", FLAG_STRING, &service, "Helm", "the label app.kubernetes.io/managed-by (the "
		  "operator applies \"" OP_FIELD_MANAGER "\")" },
		{ "help", FLAG_BOOL, &help, "false", "show this help" },
		{ NULL },
	};
	struct strbuf err = STRBUF_INIT;
	struct op_chart *chart = NULL;
	json_t *user = NULL, *values = NULL, *objs = NULL;
	char *rel_name = NULL, *rel_ns = NULL;
	int rc = 1;
	int npos = flags_parse(tab, argc, argv, &err);
	if (npos < 0 || npos > 0) {
		fprintf(stderr, "kubefledged operator render: %s (see --help)\n",
			npos < 0 ? err.buf : "unexpected argument");
		rc = 2;
		goto out;
	}
	if (help) {
		flags_usage(stdout, "operator render",
			    "Prints the objects the operator applies for a set of values, as a JSON List (like helm template;\n"
			    "nothing is contacted).", tab);
		rc = 0;
		goto out;
	}
	if (!(chart = op_chart_load(&err)))
		goto fail;
	const char *vf = *f ? f : file;
	if (*name)
		rel_name = xstrdup(name);
	if (*ns)
		rel_ns = xstrdup(ns);
	if (*vf && !(user = read_values(vf, &rel_name, &rel_ns, &err)))
		goto fail;
	values = op_values_merge(chart->defaults, user);
	struct op_release rel = { rel_name ? rel_name : "kube-fledged", rel_ns ? rel_ns : "kube-fledged", service };
	if (!(objs = op_render(chart, &rel, values, crds, &err)))
		goto fail;
	json_t *list = json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List", "items", objs);
	json_dumpf(list, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(list);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "kubefledged operator render: %s\n", err.buf);
out:
	json_decref(objs);
	json_decref(values);
	json_decref(user);
	op_chart_free(chart);
	free(rel_name);
	free(rel_ns);
	flags_free(tab);
	sb_release(&err);
	return rc;
}

int cmd_operator(int argc, char **argv)
{
	if (argc > 0 && !strcmp(argv[0], "render"))
		return cmd_operator_render(argc - 1, argv + 1);
	char *watch_ns, *kubeconfig, *master, *context, *lease_name, *lease_ns;
	int64_t resync_ms, lease_ms, renew_ms, retry_ms;
	int workers, burst, leader_elect, help;
	double qps;
	struct flag tab[] = {
		{ "watch-namespace", FLAG_STRING, &watch_ns, "",
		  "namespace whose KubeFledged objects to act on (default: $WATCH_NAMESPACE, as upstream's operator; "
		  "empty: every namespace)" },
		{ "reconcile-period", FLAG_DURATION, &resync_ms, "1m",
		  "how often every KubeFledged is applied again in full, which also repairs objects changed or deleted "
		  "by hand (helm-operator's flag)" },
		{ "workers", FLAG_INT, &workers, "2", "KubeFledged objects synced in parallel" },
		{ "kube-api-qps", FLAG_DOUBLE, &qps, "20", "sustained requests per second to the API server" },
		{ "kube-api-burst", FLAG_INT, &burst, "40", "burst of requests to the API server" },
		{ "kubeconfig", FLAG_STRING, &kubeconfig, "", "kubeconfig file (default: in-cluster config, "
		  "$KUBECONFIG, ~/.kube/config)" },
		{ "master", FLAG_STRING, &master, "", "API server URL, overriding the kubeconfig's" },
		{ "context", FLAG_STRING, &context, "", "kubeconfig context (default: current-context)" },
		{ "leader-elect", FLAG_BOOL, &leader_elect, "true",
		  "elect a leader with a Lease, so that several replicas are safe" },
		{ "leader-elect-lease-duration", FLAG_DURATION, &lease_ms, "15s", "lease duration" },
		{ "leader-elect-renew-deadline", FLAG_DURATION, &renew_ms, "10s", "leader gives up after failing "
		  "to renew for this long" },
		{ "leader-elect-retry-period", FLAG_DURATION, &retry_ms, "2s", "retry/renew period" },
		{ "leader-elect-resource-name", FLAG_STRING, &lease_name, "kubefledged-operator", "Lease name" },
		{ "leader-elect-resource-namespace", FLAG_STRING, &lease_ns, "",
		  "Lease namespace (default: $POD_NAMESPACE, else $WATCH_NAMESPACE, else kube-fledged)" },
		{ "help", FLAG_BOOL, &help, "false", "show this help" },
		{ NULL },
	};
	struct strbuf err = STRBUF_INIT;
	struct kube_config *cfg = NULL;
	struct kube_client *client = NULL;
	struct kube_leader *leader = NULL;
	struct op_chart *chart = NULL;
	struct op_controller *oc = NULL;
	int rc = 1;
	int npos = flags_parse(tab, argc, argv, &err);
	if (npos < 0) {
		fprintf(stderr, "kubefledged operator: %s (see --help)\n", err.buf);
		rc = 2;
		goto out;
	}
	if (help) {
		flags_usage(stdout, "operator",
			    "Installs, upgrades and removes kube-fledged from KubeFledged objects (" OP_API_VERSION "):\n"
			    "the Helm chart's objects, rendered from the chart's defaults merged with each object's spec.\n"
			    "`kubefledged operator render --help`: the objects for a values file, offline.", tab);
		rc = 0;
		goto out;
	}
	if (npos > 0) {
		fprintf(stderr, "kubefledged operator: unexpected argument \"%s\"\n", argv[0]);
		rc = 2;
		goto out;
	}
	char bad[160] = "";
	if (workers < 1)
		snprintf(bad, sizeof bad, "--workers=%d: must be 1 or more", workers);
	else if (resync_ms < 1000)
		snprintf(bad, sizeof bad, "--reconcile-period=%lldms: must be 1s or more", (long long)resync_ms);
	else if (qps < 0)
		snprintf(bad, sizeof bad, "--kube-api-qps=%g: must be 0 (no limit) or more", qps);
	else if (burst < 1)
		snprintf(bad, sizeof bad, "--kube-api-burst=%d: must be 1 or more", burst);
	if (*bad) {
		fprintf(stderr, "kubefledged operator: invalid value %s\n", bad);
		rc = 2;
		goto out;
	}
	if (!(chart = op_chart_load(&err))) {
		LOG_ERROR("%s", err.buf);
		goto out;
	}
	const char *wns = flags_find(tab, "watch-namespace")->set ? watch_ns : cmd_env_or("WATCH_NAMESPACE", "");
	if (!(client = cmd_connect(kubeconfig, context, master, qps, burst, &cfg)))
		goto out;
	LOG_INFO("kubefledged operator %s (%s) starting: chart %s-%s, API server %s, watching %s", kf_version(),
		 kf_git_version(), chart->name, chart->version, cfg->server, *wns ? wns : "every namespace");
	cmd_handle_signals(&stop_flag);
	if (leader_elect) {
		const char *lns = *lease_ns ? lease_ns : cmd_env_or("POD_NAMESPACE", *wns ? wns : "kube-fledged");
		leader = cmd_become_leader(client, lns, lease_name, lease_ms, renew_ms, retry_ms, &stop_flag);
		if (!leader) {
			rc = 0;
			goto out;
		}
	}
	struct op_controller_opts o = { .watch_ns = wns, .workers = workers, .resync_ms = resync_ms };
	oc = op_controller_new(client, chart, &o);
	rc = op_controller_run(oc, &stop_flag) < 0 ? 1 : 0;
	if (cmd_leadership_lost())
		rc = 1;
	struct op_controller_stats s;
	op_controller_stats(oc, &s);
	LOG_INFO("stopped: %llu syncs, %llu applies, %llu deletes, %llu status writes, %llu errors",
		 (unsigned long long)s.syncs, (unsigned long long)s.applies, (unsigned long long)s.deletes,
		 (unsigned long long)s.status_writes, (unsigned long long)s.errors);
out:
	op_controller_free(oc);
	cmd_leader_done(leader);
	kube_client_free(client);
	kube_config_free(cfg);
	op_chart_free(chart);
	flags_free(tab);
	sb_release(&err);
	return rc;
}
