/* test_operator.c - the operator's pure parts: Helm's value merge, the Go-template semantics the renderer
 * relies on, rendering (what each switch renders, errors that name the value), ownership decoration,
 * readiness and status; and how it reads a cluster without a CRD's kind (ServiceMonitor), against the
 * scripted responder of http_script.h. Equality with `helm template` over many value files is
 * operator-parity.sh's job; the sync against a real API server is the e2e case 43-operator's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_script.h"
#include "kube/kube_yaml.h"
#include "operator/op_apply.h"
#include "operator/op_chart.h"
#include "operator/op_render.h"
#include "operator/op_status.h"
#include "operator/op_values.h"
#include "util/strbuf.h"
#include "util/util.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
	if (!v)
		fail_msg("bad test JSON %s: %s", text, e.text);
	return v;
}

static void assert_json(json_t *got, const char *want_text)
{
	json_t *want = J(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
		fail_msg("got  %s\nwant %s", g, want_text);
	}
	json_decref(want);
}

static void test_merge_is_helms_coalesce(void **state)
{
	(void)state;
	json_t *d = J("{\"a\": 1, \"m\": {\"x\": 1, \"y\": [1, 2], \"z\": {\"deep\": true}}, \"l\": [1], \"gone\": 5, "
		      "\"t\": {\"k\": 1}}");
	json_t *u = J("{\"a\": 2, \"m\": {\"y\": [3], \"z\": {\"other\": 1}}, \"gone\": null, \"t\": \"scalar\", "
		      "\"new\": {\"n\": 1}}");
	json_t *before = json_deep_copy(d), *ubefore = json_deep_copy(u);
	json_t *m = op_values_merge(d, u);
	/* user wins; maps merge; lists are replaced; null deletes; a scalar over a map wins; user-only keys stay */
	assert_json(m, "{\"a\": 2, \"m\": {\"x\": 1, \"y\": [3], \"z\": {\"deep\": true, \"other\": 1}}, \"l\": [1], "
		       "\"t\": \"scalar\", \"new\": {\"n\": 1}}");
	assert_true(json_equal(d, before));
	assert_true(json_equal(u, ubefore));
	json_t *only = op_values_merge(d, NULL);
	assert_true(json_equal(only, d));
	json_decref(only);
	json_decref(m);
	json_decref(d);
	json_decref(u);
	json_decref(before);
	json_decref(ubefore);
}

static void test_value_at_truthy_text(void **state)
{
	(void)state;
	json_t *v = J("{\"a\": {\"b\": 0, \"c\": \"\", \"d\": \"false\", \"n\": null, \"e\": [], \"f\": {}, \"g\": 0.0, "
		      "\"h\": [0]}}");
	assert_null(op_value_at(v, "a.n"));
	assert_null(op_value_at(v, "a.missing.x"));
	assert_null(op_value_at(v, "a.b.x"));
	assert_false(op_truthy(op_value_at(v, "a.b")));
	assert_false(op_truthy(op_value_at(v, "a.c")));
	assert_true(op_truthy(op_value_at(v, "a.d"))); /* Go: any non-empty string is true */
	assert_false(op_truthy(op_value_at(v, "a.e")));
	assert_false(op_truthy(op_value_at(v, "a.f")));
	assert_false(op_truthy(op_value_at(v, "a.g")));
	assert_true(op_truthy(op_value_at(v, "a.h")));
	assert_false(op_truthy(NULL));
	json_decref(v);

	struct {
		const char *json, *text;
	} cases[] = {
		{ "3", "3" }, { "-7", "-7" }, { "0.5", "0.5" }, { "1000000.0", "1e+06" }, { "100000.0", "100000" },
		{ "1.5e-05", "1.5e-05" }, { "0.0001", "0.0001" }, { "123456.7", "123456.7" }, { "2.0", "2" },
		{ "true", "true" }, { "false", "false" }, { "null", "" }, { "\"5m\"", "5m" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *x = J(cases[i].json);
		struct strbuf sb = STRBUF_INIT;
		assert_int_equal(op_value_text(x, &sb), 0);
		if (strcmp(sb.buf, cases[i].text))
			fail_msg("%s prints \"%s\", want \"%s\"", cases[i].json, sb.buf, cases[i].text);
		sb_release(&sb);
		json_decref(x);
	}
	json_t *arr = J("[1]");
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(op_value_text(arr, &sb), -1);
	sb_release(&sb);
	json_decref(arr);
}

static void test_yaml_scalar_reads_back_like_the_manifest(void **state)
{
	(void)state;
	struct {
		const char *text, *json; /* json NULL: not one scalar */
	} cases[] = {
		{ "3", "3" }, { "true", "true" }, { "", "null" }, { "10%", "\"10%\"" }, { "kube-fledged", "\"kube-fledged\"" },
		{ "v0.1.0", "\"v0.1.0\"" }, { "registry:5000/a/b:dev", "\"registry:5000/a/b:dev\"" },
		{ "\"quoted\"", "\"quoted\"" }, { "x # comment", "\"x\"" }, { "a: b", NULL }, { "x\ny", NULL },
		{ "[a]", NULL }, { "{a: 1}", NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = op_yaml_scalar(cases[i].text);
		if (!cases[i].json) {
			if (v)
				fail_msg("\"%s\" read back as one scalar", cases[i].text);
			continue;
		}
		if (!v)
			fail_msg("\"%s\" did not read back", cases[i].text);
		assert_json(v, cases[i].json);
		json_decref(v);
	}
}

/* renders values (a JSON object over the chart's defaults) as release kf-test in ns; NULL + err on failure */
static json_t *render(const char *user_json, const char *name, int crds, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct op_chart *chart = op_chart_load(&e);
	if (!chart)
		fail_msg("op_chart_load: %s", e.buf);
	json_t *u = user_json ? J(user_json) : NULL;
	json_t *values = op_values_merge(chart->defaults, u);
	struct op_release rel = { name ? name : "kube-fledged", "kf-ns", "Helm" };
	json_t *out = op_render(chart, &rel, values, crds, err ? err : &e);
	if (!out && !err)
		fail_msg("op_render: %s", e.buf);
	json_decref(values);
	json_decref(u);
	op_chart_free(chart);
	sb_release(&e);
	return out;
}

static json_t *find(json_t *objs, const char *kind, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(objs, i, o)
		if (!strcmp(kf_jstr(o, "kind", NULL), kind) && !strcmp(kf_jstr(o, "metadata", "name", NULL), name))
			return o;
	return NULL;
}

static int count_kind(json_t *objs, const char *kind)
{
	size_t i;
	json_t *o;
	int n = 0;
	json_array_foreach(objs, i, o)
		n += !strcmp(kf_jstr(o, "kind", NULL), kind);
	return n;
}

static int has_arg(json_t *deploy, const char *arg)
{
	size_t i;
	json_t *a;
	json_t *c0 = json_array_get(kf_jget(deploy, "spec", "template", "spec", "containers", NULL), 0);
	json_array_foreach(json_object_get(c0, "args"), i, a)
		if (json_is_string(a) && !strcmp(json_string_value(a), arg))
			return 1;
	return 0;
}

static void test_chart_defaults_and_crds(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	struct op_chart *c = op_chart_load(&err);
	assert_non_null(c);
	assert_string_equal(c->name, "kube-fledged");
	assert_string_equal(kf_jstr(c->defaults, "mode", NULL), "agent");
	assert_int_equal(json_array_size(c->crds), 2);
	op_chart_free(c);
	sb_release(&err);
}

static void test_render_defaults(void **state)
{
	(void)state;
	json_t *objs = render(NULL, NULL, 1, NULL);
	/* CRDs first, the ValidatingWebhookConfiguration last */
	assert_string_equal(kf_jstr(json_array_get(objs, 0), "kind", NULL), "CustomResourceDefinition");
	assert_string_equal(kf_jstr(json_array_get(objs, json_array_size(objs) - 1), "kind", NULL),
			    "ValidatingWebhookConfiguration");
	json_t *ctl = find(objs, "Deployment", "kube-fledged-controller");
	assert_non_null(ctl);
	assert_true(has_arg(ctl, "--mode=agent"));
	assert_true(has_arg(ctl, "--agent-service-account=kube-fledged-agent"));
	assert_true(has_arg(ctl, "--leader-elect-resource-name=kube-fledged-controller"));
	assert_json(kf_jget(ctl, "spec", "replicas", NULL), "1");
	assert_json(kf_jget(ctl, "metadata", "labels", NULL),
		    "{\"helm.sh/chart\": \"kube-fledged-0.1.0\", \"app.kubernetes.io/name\": \"kube-fledged\","
		    " \"app.kubernetes.io/instance\": \"kube-fledged\", \"app.kubernetes.io/part-of\":"
		    " \"kube-fledged-controller\", \"app.kubernetes.io/version\": \"v0.1.0\","
		    " \"app.kubernetes.io/managed-by\": \"Helm\"}");
	assert_non_null(find(objs, "DaemonSet", "kube-fledged-agent"));
	assert_non_null(find(objs, "Lease", "kube-fledged-controller"));
	assert_non_null(find(objs, "Secret", "kube-fledged-webhook-server-cert"));
	assert_string_equal(kf_jstr(find(objs, "Secret", "kube-fledged-webhook-server-cert"), "metadata", "namespace",
				    NULL), "kf-ns");
	assert_int_equal(count_kind(objs, "ClusterRole"), 4);
	json_decref(objs);
}

static void test_render_switches(void **state)
{
	(void)state;
	json_t *objs = render("{\"webhookServer\": {\"enable\": false}, \"mode\": \"jobs\"}", NULL, 0, NULL);
	assert_int_equal(count_kind(objs, "ValidatingWebhookConfiguration"), 0);
	assert_int_equal(count_kind(objs, "Service"), 1); /* the controller's metrics; no agents, no webhook */
	assert_non_null(find(objs, "Service", "kube-fledged-controller-metrics"));
	assert_int_equal(count_kind(objs, "Secret"), 0);
	assert_int_equal(count_kind(objs, "DaemonSet"), 0);
	assert_int_equal(count_kind(objs, "Deployment"), 1);
	assert_null(find(objs, "ClusterRole", "kubefledged-agent-pull-secrets"));
	assert_true(has_arg(find(objs, "Deployment", "kube-fledged-controller"), "--mode=jobs"));
	json_decref(objs);

	objs = render("{\"controllerReplicaCount\": \"3\", \"controller\": {\"hostNetwork\": true}, "
		      "\"args\": {\"controllerLeaderElect\": false, \"controllerExtraArgs\": [\"-v=2\", 7]}}", "kf", 0, NULL);
	json_t *ctl = find(objs, "Deployment", "kf-kube-fledged-controller");
	assert_non_null(ctl);
	assert_json(kf_jget(ctl, "spec", "replicas", NULL), "3"); /* a string value renders as the number */
	assert_json(kf_jget(ctl, "spec", "template", "spec", "hostNetwork", NULL), "true");
	assert_string_equal(kf_jstr(ctl, "spec", "template", "spec", "dnsPolicy", NULL), "ClusterFirstWithHostNet");
	assert_true(has_arg(ctl, "-v=2"));
	assert_true(has_arg(ctl, "7")); /* quote: the number as a string */
	assert_true(has_arg(ctl, "--leader-elect=false"));
	assert_int_equal(count_kind(objs, "Lease"), 0);
	json_decref(objs);

	/* metrics: the controller's server off, the agents' Service kept, the ServiceMonitor with its labels */
	objs = render("{\"controller\": {\"metricsPort\": 0}, \"serviceMonitor\": {\"enabled\": true, "
		      "\"labels\": {\"release\": \"prometheus\"}}}", NULL, 0, NULL);
	ctl = find(objs, "Deployment", "kube-fledged-controller");
	assert_true(has_arg(ctl, "--metrics-bind-address=0"));
	assert_null(json_object_get(json_array_get(kf_jget(ctl, "spec", "template", "spec", "containers", NULL), 0), "ports"));
	assert_null(find(objs, "Service", "kube-fledged-controller-metrics"));
	json_t *agents = find(objs, "Service", "kube-fledged-agent-metrics");
	assert_string_equal(kf_jstr(agents, "spec", "clusterIP", NULL), "None");
	assert_string_equal(kf_jstr(agents, "metadata", "annotations", "prometheus.io/port", NULL), "8080");
	json_t *sm = find(objs, "ServiceMonitor", "kube-fledged");
	assert_non_null(sm);
	assert_string_equal(kf_jstr(sm, "metadata", "labels", "release", NULL), "prometheus");
	/* after the Lease and before the ValidatingWebhookConfiguration, as Helm orders kinds it does not know */
	assert_string_equal(kf_jstr(json_array_get(objs, json_array_size(objs) - 2), "kind", NULL), "ServiceMonitor");
	json_decref(objs);
}

static void expect_error(const char *user_json, const char *name, const char *want)
{
	struct strbuf err = STRBUF_INIT;
	json_t *objs = render(user_json, name, 0, &err);
	if (objs)
		fail_msg("rendered %s", user_json);
	if (!strstr(err.buf, want))
		fail_msg("error \"%s\" lacks \"%s\"", err.buf, want);
	sb_release(&err);
}

static void test_render_errors_name_the_value(void **state)
{
	(void)state;
	expect_error("{\"mode\": \"both\"}", NULL, "mode: \"both\" is neither agent nor jobs");
	expect_error("{\"mode\": null}", NULL, "mode: \"\" is neither agent nor jobs");
	expect_error("{\"tolerations\": \"abc\"}", NULL, "tolerations: must be a list, not string \"abc\"");
	expect_error("{\"nodeSelector\": [1]}", NULL, "nodeSelector: must be a map, not array [1]");
	expect_error("{\"args\": {\"controllerExtraArgs\": {\"a\": 1}}}", NULL,
		     "args.controllerExtraArgs: must be a list, not object");
	expect_error("{\"args\": {\"controllerExtraArgs\": [[1]]}}", NULL, "args.controllerExtraArgs[0]: must be a single value");
	expect_error("{\"controller\": {\"priorityClassName\": \"a: b\"}}", NULL,
		     "controller.priorityClassName: \"a: b\" does not read back as one YAML value");
	expect_error("{\"controllerReplicaCount\": [2]}", NULL, "controllerReplicaCount: must be a single value, not a list");
	expect_error("{\"image\": {\"tag\": 5}}", NULL, "image.tag: must be a string, not number 5");
	expect_error("{\"agent\": {\"extraHostPaths\": \"/srv\"}}", NULL, "agent.extraHostPaths: must be a list");
	expect_error("{\"metricsService\": {\"annotations\": [\"a\"]}}", NULL,
		     "metricsService.annotations: must be a map, not array");
	expect_error("{\"serviceMonitor\": {\"enabled\": true, \"labels\": \"release=prometheus\"}}", NULL,
		     "serviceMonitor.labels: must be a map, not string");
	expect_error("{\"controller\": {\"metricsPort\": {\"a\": 1}}}", NULL,
		     "controller.metricsPort: must be a single value, not a map");
	expect_error(NULL, "Upper", "release name \"Upper\"");
	expect_error(NULL, "a-release-name-of-fifty-four-characters-is-one-too-man", "at most 53 characters");
	expect_error(NULL, "-x", "release name \"-x\"");
}

static void test_decorate_owner(void **state)
{
	(void)state;
	json_t *objs = render(NULL, NULL, 1, NULL);
	json_t *kf = J("{\"apiVersion\": \"charts.helm.kubefledged.io/v1alpha2\", \"kind\": \"KubeFledged\", "
		       "\"metadata\": {\"name\": \"kube-fledged\", \"namespace\": \"kf-ns\", \"uid\": \"u-1\"}}");
	op_decorate(objs, kf);
	size_t i;
	json_t *o;
	json_array_foreach(objs, i, o) {
		const char *kind = kf_jstr(o, "kind", NULL);
		int crd = !strcmp(kind, "CustomResourceDefinition");
		const char *uid = kf_jstr(o, "metadata", "labels", OP_OWNER_LABEL, NULL);
		json_t *refs = kf_jget(o, "metadata", "ownerReferences", NULL);
		if (crd) {
			assert_null(uid);
			assert_null(refs);
			continue;
		}
		assert_non_null(uid);
		assert_string_equal(uid, "u-1");
		assert_string_equal(kf_jstr(o, "metadata", "annotations", OP_OWNER_ANNOTATION, NULL), "kf-ns/kube-fledged");
		if (kf_jstr(o, "metadata", "namespace", NULL)) {
			assert_int_equal(json_array_size(refs), 1);
			assert_string_equal(kf_jstr(json_array_get(refs, 0), "uid", NULL), "u-1");
			assert_true(json_is_true(json_object_get(json_array_get(refs, 0), "controller")));
		} else {
			assert_null(refs); /* a namespaced owner would make the garbage collector delete it */
		}
		assert_non_null(op_resource_of(kf_jstr(o, "apiVersion", NULL), kind));
	}
	char buf[200];
	assert_string_equal(op_object_name(find(objs, "Deployment", "kube-fledged-controller"), buf, sizeof buf),
			    "Deployment kf-ns/kube-fledged-controller");
	json_decref(kf);
	json_decref(objs);
}

static void ready_is(const char *obj, int want, const char *why_part)
{
	json_t *o = J(obj);
	struct strbuf why = STRBUF_INIT;
	int got = op_object_ready(o, &why);
	if (got != want)
		fail_msg("%s: ready %d, want %d (%s)", obj, got, want, why.buf);
	if (why_part && !strstr(why.buf, why_part))
		fail_msg("%s: \"%s\" lacks \"%s\"", obj, why.buf, why_part);
	sb_release(&why);
	json_decref(o);
}

static void test_readiness(void **state)
{
	(void)state;
	ready_is("{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", \"generation\": 2}, \"spec\": {\"replicas\": 2},"
		 " \"status\": {\"observedGeneration\": 2, \"replicas\": 2, \"updatedReplicas\": 2, \"availableReplicas\": 2}}",
		 1, NULL);
	ready_is("{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", \"generation\": 3}, \"spec\": {\"replicas\": 2},"
		 " \"status\": {\"observedGeneration\": 2, \"replicas\": 2, \"updatedReplicas\": 2, \"availableReplicas\": 2}}",
		 0, "generation 3 not yet observed");
	ready_is("{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", \"generation\": 2}, \"spec\": {\"replicas\": 2},"
		 " \"status\": {\"observedGeneration\": 2, \"replicas\": 3, \"updatedReplicas\": 2, \"availableReplicas\": 2}}",
		 0, "old replicas still running");
	ready_is("{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", \"generation\": 1}, \"spec\": {\"replicas\": 3},"
		 " \"status\": {\"observedGeneration\": 1, \"replicas\": 3, \"updatedReplicas\": 3, \"availableReplicas\": 1}}",
		 0, "Deployment d: 3 of 3 replicas updated, 1 available");
	ready_is("{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", \"generation\": 1}, \"spec\": {\"replicas\": 0},"
		 " \"status\": {\"observedGeneration\": 1}}", 1, NULL);
	ready_is("{\"kind\": \"DaemonSet\", \"metadata\": {\"name\": \"a\", \"generation\": 1}, \"status\": "
		 "{\"observedGeneration\": 1, \"desiredNumberScheduled\": 2, \"updatedNumberScheduled\": 2, \"numberAvailable\": 1}}",
		 0, "DaemonSet a: 2 of 2 pods updated, 1 available");
	ready_is("{\"kind\": \"ValidatingWebhookConfiguration\", \"metadata\": {\"name\": \"v\"}, \"webhooks\": "
		 "[{\"clientConfig\": {}}]}", 0, "no caBundle yet");
	ready_is("{\"kind\": \"ValidatingWebhookConfiguration\", \"metadata\": {\"name\": \"v\"}, \"webhooks\": "
		 "[{\"clientConfig\": {\"caBundle\": \"Zm9v\"}}]}", 1, NULL);
	ready_is("{\"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}}", 1, NULL);
}

static void test_status_conditions(void **state)
{
	(void)state;
	json_t *objs = J("[{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\", "
			 "\"namespace\": \"n\", \"labels\": {\"x\": \"y\"}}, \"spec\": {}}]");
	struct op_outcome o = { 1, 1, "Applied", "1 objects applied", 0, "Progressing", "waiting", objs };
	json_t *s1 = op_status_build(NULL, &o, "2026-01-01T00:00:00Z");
	assert_json(s1, "{\"observedGeneration\": 1, \"conditions\": ["
			"{\"type\": \"Deployed\", \"status\": \"True\", \"reason\": \"Applied\", \"message\": \"1 objects applied\","
			" \"observedGeneration\": 1, \"lastTransitionTime\": \"2026-01-01T00:00:00Z\"},"
			"{\"type\": \"Ready\", \"status\": \"False\", \"reason\": \"Progressing\", \"message\": \"waiting\","
			" \"observedGeneration\": 1, \"lastTransitionTime\": \"2026-01-01T00:00:00Z\"}],"
			"\"objects\": [{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"namespace\": \"n\", \"name\": \"d\"}]}");
	/* Ready flips: its time changes, Deployed's does not */
	struct op_outcome o2 = { 2, 1, "Applied", "1 objects applied", 1, "Available", "ok", objs };
	json_t *s2 = op_status_build(s1, &o2, "2026-01-01T00:01:00Z");
	assert_string_equal(kf_jstr(op_condition(s2, "Deployed"), "lastTransitionTime", NULL), "2026-01-01T00:00:00Z");
	assert_string_equal(kf_jstr(op_condition(s2, "Ready"), "lastTransitionTime", NULL), "2026-01-01T00:01:00Z");
	/* a render failure keeps Ready and the objects as they were */
	struct op_outcome o3 = { 3, 0, "RenderFailed", "values: mode: \"x\" is neither agent nor jobs", -1, NULL, NULL, NULL };
	json_t *s3 = op_status_build(s2, &o3, "2026-01-01T00:02:00Z");
	assert_true(json_equal(op_condition(s3, "Ready"), op_condition(s2, "Ready")));
	assert_true(json_equal(json_object_get(s3, "objects"), json_object_get(s2, "objects")));
	assert_string_equal(kf_jstr(op_condition(s3, "Deployed"), "status", NULL), "False");
	assert_string_equal(kf_jstr(op_condition(s3, "Deployed"), "lastTransitionTime", NULL), "2026-01-01T00:02:00Z");
	json_t *s3b = op_status_build(s2, &o3, "2026-01-01T00:02:00Z");
	assert_true(json_equal(s3, s3b)); /* the same outcome builds the same status: no write */
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	json_decref(s3b);
	json_decref(objs);
}

/* kube-apiserver v1.20 answers a path no API group serves (a CRD's group that is not installed) with Go's
 * http.NotFound: 404 and this plain text, not a Status. */
#define PAGE_NOT_FOUND "404 page not found\n"
#define EMPTY_LIST "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[]}"

static struct kube_client *client_for(struct hs *s)
{
	char url[64];
	hs_url(s, url, sizeof url);
	struct kube_config cfg = { .server = url, .namespace = "ns" };
	struct kube_client_opts o = { .timeout_ms = 10000 };
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, &o, &err);
	assert_non_null(c);
	sb_release(&err);
	return c;
}

/* Listing what a KubeFledged owns lists every kind the chart can render; in a cluster without the Prometheus
 * Operator the ServiceMonitor list is a 404, which means none exist (else no KubeFledged could be applied or
 * uninstalled there); a 404 for a built-in kind is still an error. */
static void test_list_owned_without_a_crds_kind(void **state)
{
	(void)state;
	struct hs_step steps[13];
	for (size_t i = 0; i < 12; i++)
		steps[i] = (struct hs_step){ 200, NULL, EMPTY_LIST, 0, 0, 0, 0 };
	steps[12] = (struct hs_step){ 404, NULL, PAGE_NOT_FOUND, 0, 0, 0, 0 };
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s);
	struct kube_err err;
	json_t *owned = op_list_owned(c, "u1", "ns", &err);
	if (!owned)
		fail_msg("op_list_owned: %s", err.msg);
	assert_int_equal(json_array_size(owned), 0);
	assert_int_equal(hs_requests(&s), 13);
	assert_non_null(strstr(s.log[12], "GET /apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors?labelSelector="));
	json_decref(owned);
	kube_client_free(c);
	hs_stop(&s);

	const struct hs_step gone[] = { { 404, NULL, PAGE_NOT_FOUND, 0, 0, 0, 0 } };
	assert_int_equal(hs_start(&s, gone, ARRAY_SIZE(gone)), 0);
	c = client_for(&s);
	assert_null(op_list_owned(c, "u1", "ns", &err));
	assert_int_equal(err.code, 404);
	assert_true(!strncmp(err.msg, "listing serviceaccounts: ", 25));
	kube_client_free(c);
	hs_stop(&s);
}

/* Before the first write, the operator asks discovery whether the cluster has a CRD's kind it is about to
 * apply: a missing group or version (404), or a version without the resource, is a clear refusal naming
 * the object and the way out; built-in kinds are not asked about. */
static void test_kind_served(void **state)
{
	(void)state;
	const struct hs_step steps[] = {
		{ 404, NULL, PAGE_NOT_FOUND, 0, 0, 0, 0 },
		{ 200, NULL, "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"monitoring.coreos.com/v1\","
			     "\"resources\":[{\"name\":\"podmonitors\",\"namespaced\":true,\"kind\":\"PodMonitor\"}]}", 0, 0, 0, 0 },
		{ 200, NULL, "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"monitoring.coreos.com/v1\","
			     "\"resources\":[{\"name\":\"servicemonitors\",\"namespaced\":true,\"kind\":\"ServiceMonitor\"}]}",
		  0, 0, 0, 0 },
		{ 403, NULL, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"forbidden\","
			     "\"reason\":\"Forbidden\",\"code\":403}", 0, 0, 0, 0 },
	};
	struct hs s;
	assert_int_equal(hs_start(&s, steps, ARRAY_SIZE(steps)), 0);
	struct kube_client *c = client_for(&s);
	struct kube_err err;
	struct strbuf msg = STRBUF_INIT;
	json_t *sm = J("{\"apiVersion\": \"monitoring.coreos.com/v1\", \"kind\": \"ServiceMonitor\", "
		       "\"metadata\": {\"name\": \"kube-fledged\", \"namespace\": \"ns\"}}");
	json_t *svc = J("{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\", \"namespace\": \"ns\"}}");
	assert_int_equal(op_kind_served(c, svc, &msg, &err), 1);
	assert_int_equal(hs_requests(&s), 0);
	assert_int_equal(op_kind_served(c, sm, &msg, &err), 0);
	assert_string_equal(msg.buf, "ServiceMonitor ns/kube-fledged: the cluster has no kind ServiceMonitor "
				     "(monitoring.coreos.com/v1 servicemonitors): install the Prometheus Operator's CRDs, "
				     "or set serviceMonitor.enabled: false");
	assert_string_equal(s.log[0], "GET /apis/monitoring.coreos.com/v1");
	sb_reset(&msg);
	assert_int_equal(op_kind_served(c, sm, &msg, &err), 0);
	assert_non_null(strstr(msg.buf, "the cluster has no kind ServiceMonitor"));
	sb_reset(&msg);
	assert_int_equal(op_kind_served(c, sm, &msg, &err), 1);
	assert_int_equal(msg.len, 0);
	assert_int_equal(op_kind_served(c, sm, &msg, &err), -1);
	assert_int_equal(err.code, 403);
	json_decref(sm);
	json_decref(svc);
	sb_release(&msg);
	kube_client_free(c);
	hs_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_is_helms_coalesce),
		cmocka_unit_test(test_value_at_truthy_text),
		cmocka_unit_test(test_yaml_scalar_reads_back_like_the_manifest),
		cmocka_unit_test(test_chart_defaults_and_crds),
		cmocka_unit_test(test_render_defaults),
		cmocka_unit_test(test_render_switches),
		cmocka_unit_test(test_render_errors_name_the_value),
		cmocka_unit_test(test_decorate_owner),
		cmocka_unit_test(test_readiness),
		cmocka_unit_test(test_status_conditions),
		cmocka_unit_test(test_list_owned_without_a_crds_kind),
		cmocka_unit_test(test_kind_served),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
