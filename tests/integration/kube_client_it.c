/* kube_client_it.c - the Kubernetes client layer against a REAL API server (main, REST, CRD, tokens).
 *
 *   kube_client_it --kubeconfig PATH [--context C] [--namespace NS] [--v N] [--only TEST]
 *
 * --only runs the one test function of that name (e.g. test_threads_stress, for helgrind).
 * Uses NS (which must exist; the e2e harness passes its fresh $E2E_NS) or creates and finally deletes a
 * namespace kf-it-<random>. Prints one "ok - ..." / "not ok - ..." line per check (TAP-like) with the
 * figures, and exits 0 when all passed. Checks, by file:
 *   here: GET /version; latency (sequential, 4 threads) and connections used; ConfigMap create, get, list
 *     by label, update, stale update (409 Conflict), create again (409 AlreadyExists), merge/JSON/strategic
 *     patch, delete, 404s, 422; a CRD with a status subresource created here (PUT /status, PUT of the main
 *     resource leaves status, merge patch of /status); bearer token files (TokenRequest tokens): a wrong
 *     token is 401, an unnoticed rotation is recovered by the forced re-read and one retry, a rotation by
 *     rename is picked up before the request
 *   kube_client_it_watch.c: informer add/update/delete and label selector; resync with watch resumption
 *     (no relist); watch from resourceVersion 1 → 410 → relist → watch again; the informer's own relist
 *     after 410 (when KF_IT_ETCD_ENDPOINT names the etcd of an API server run with --watch-cache=false)
 *   kube_client_it_leader.c: two contenders on one Lease (exactly one leads, release hands over fast,
 *     leaseTransitions + 1); clock skew of +/- 1 hour; a takeover fences the old leader's client before
 *     on_lost (its writes are refused unsent); Event aggregation (count 2)
 *   kube_client_it_stress.c: many threads on one client at once (the ThreadSanitizer/helgrind target) */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "kube/kube_internal.h"
#include "kube_client_it.h"
#include "util/log.h"
#include "util/util.h"

int it_failures, it_checks;
struct kube_client *kc;
const char *ns;
const struct kube_config *main_cfg;
const struct kube_client_opts *main_opts;

char *path_cm(const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	static const struct kube_resource cm = { "", "v1", "configmaps", "ConfigMap", 1 };
	kube_path(&sb, &cm, ns, name, NULL);
	return sb_detach(&sb);
}

const struct kube_resource KUBE_CONFIGMAPS = { "", "v1", "configmaps", "ConfigMap", 1 };

static long rss_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n))
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

/* 1 if the socket inode appears in /proc/self/net/tcp or tcp6 (a TCP connection, not the socketpair a
 * curl multi handle keeps for its wakeups). */
static int is_tcp_inode(const char *inode)
{
	static const char *const tabs[] = { "/proc/self/net/tcp", "/proc/self/net/tcp6" };
	char line[512];
	for (size_t t = 0; t < 2; t++) {
		FILE *f = fopen(tabs[t], "r");
		while (f && fgets(line, sizeof line, f)) {
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ... */
			char *tok, *save = NULL;
			int col = 0;
			for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
				if (++col == 10 && !strcmp(tok, inode)) {
					fclose(f);
					return 1;
				}
		}
		if (f)
			fclose(f);
	}
	return 0;
}

/* TCP connections this process holds open: its connections to the API server (and nothing else here). */
static int open_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	char p[300], t[300];
	while (d && (e = readdir(d))) {
		snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(p, t, sizeof t - 1);
		if (l > 9 && !strncmp(t, "socket:[", 8)) {
			t[l - 1] = '\0'; /* the closing ] */
			n += is_tcp_inode(t + 8);
		}
	}
	if (d)
		closedir(d);
	return n;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}
/* ---- latency and connection reuse --------------------------------------------------------------- */

#define LAT_N 100
static void *lat_thread(void *arg)
{
	char *p = arg;
	for (int i = 0; i < LAT_N / 4; i++) {
		struct kube_err e;
		json_t *j = kube_get(kc, p, &e);
		json_decref(j);
	}
	return NULL;
}

static void test_version_and_latency(void)
{
	struct kube_err e;
	char *v = kube_request_raw(kc, "GET", "/version", NULL, NULL, &e);
	json_t *j = v ? json_loads(v, 0, NULL) : NULL;
	CHECK(j && kf_jstr(j, "gitVersion", NULL), "GET /version: %s", j ? kf_jstr(j, "gitVersion", NULL) : e.msg);
	json_decref(j);
	free(v);

	char *p = path_cm("kf-it-latency"), *coll = path_cm(NULL);
	json_t *cm = json_pack("{s:{s:s}, s:{s:s}}", "metadata", "name", "kf-it-latency", "data", "k", "v");
	json_t *made = kube_create(kc, coll, cm, &e);
	CHECK(made != NULL, "create configmap kf-it-latency%s%s", made ? "" : ": ", made ? "" : e.msg);
	json_decref(made);
	json_decref(cm);
	free(coll);
	struct kube_client_stats s0, s1;
	kube_client_stats(kc, &s0);
	int64_t lat[LAT_N];
	for (int i = 0; i < LAT_N; i++) {
		int64_t t0 = kube_now_ns();
		json_t *r = kube_get(kc, p, &e);
		lat[i] = kube_now_ns() - t0;
		json_decref(r);
	}
	qsort(lat, LAT_N, sizeof lat[0], cmp_i64);
	int sockets_seq = open_sockets();
	int64_t t0 = kube_now_ns();
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, lat_thread, p);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	double par_ms = (double)(kube_now_ns() - t0) / 1e6;
	int sockets_par = open_sockets();
	kube_client_stats(kc, &s1);
	CHECK(sockets_seq <= 1 && sockets_par <= 5 && s1.errors_4xx == s0.errors_4xx && s1.requests - s0.requests == 2 * LAT_N,
	      "connection reuse: %d GETs p50 %.2f ms p90 %.2f ms p99 %.2f ms on %d connection(s); %d GETs from 4 threads "
	      "in %.1f ms (%.0f/s), %d connection(s) open after",
	      LAT_N, (double)lat[LAT_N / 2] / 1e6, (double)lat[LAT_N * 9 / 10] / 1e6, (double)lat[LAT_N * 99 / 100] / 1e6,
	      sockets_seq, LAT_N, par_ms, LAT_N / (par_ms / 1000), sockets_par);
	kube_delete(kc, p, NULL, &e);
	free(p);
	/* one request logged at -v=6 shows the negotiated protocol */
	int v6 = log_verbosity;
	log_verbosity = 6;
	json_decref(kube_get(kc, "/api/v1/namespaces/default", &e));
	log_verbosity = v6;
}

/* ---- CRUD ------------------------------------------------------------------------------------------ */

static void test_configmap_crud(void)
{
	struct kube_err e;
	char *coll = path_cm(NULL), *p = path_cm("kf-it-crud");
	json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
			       "name", "kf-it-crud", "labels", "kf-it", "crud", "data", "a", "1");
	json_t *c = kube_create(kc, coll, cm, &e);
	CHECK(c && kf_jstr(c, "metadata", "uid", NULL), "create configmap: uid %s", c ? kf_jstr(c, "metadata", "uid", NULL) : e.msg);
	json_t *g = kube_get(kc, p, &e);
	CHECK(g && !strcmp(kf_jstr(g, "data", "a", NULL), "1"), "get configmap");

	char *lp = xasprintf("%s?labelSelector=kf-it%%3Dcrud", coll);
	json_t *l = kube_get(kc, lp, &e);
	CHECK(l && json_array_size(json_object_get(l, "items")) == 1, "list by label selector: %zu item(s)",
	      l ? json_array_size(json_object_get(l, "items")) : 0);
	json_decref(l);
	free(lp);

	json_t *dup = kube_create(kc, coll, cm, &e);
	CHECK(!dup && e.code == 409 && !strcmp(e.reason, "AlreadyExists"), "create again: %ld %s: %s", e.code, e.reason, e.msg);

	char *stale_rv = g ? xstrdup(kf_jstr(g, "metadata", "resourceVersion", NULL)) : xstrdup("1");
	json_object_set_new(json_object_get(g, "data"), "a", json_string("2"));
	json_t *u = kube_update(kc, p, g, &e);
	CHECK(u && !strcmp(kf_jstr(u, "data", "a", NULL), "2"), "update with the current resourceVersion: rv %s -> %s",
	      stale_rv, u ? kf_jstr(u, "metadata", "resourceVersion", NULL) : e.msg);
	json_object_set_new(json_object_get(g, "data"), "a", json_string("3"));
	json_t *u2 = kube_update(kc, p, g, &e); /* g still carries the old resourceVersion */
	CHECK(!u2 && kube_err_is_conflict(&e) && !strcmp(e.reason, "Conflict"), "update with a stale resourceVersion: %ld %s: %s",
	      e.code, e.reason, e.msg);

	json_t *mp = json_pack("{s:{s:s, s:n}}", "data", "b", "merged", "a");
	json_t *pm = kube_patch(kc, p, mp, "application/merge-patch+json", &e);
	CHECK(pm && !strcmp(kf_jstr(pm, "data", "b", NULL), "merged") && !kf_jget(pm, "data", "a", NULL),
	      "merge patch (add b, remove a)");
	json_t *jp = json_pack("[{s:s, s:s, s:s}]", "op", "add", "path", "/data/c", "value", "jsonpatch");
	json_t *pj = kube_patch(kc, p, jp, "application/json-patch+json", &e);
	CHECK(pj && !strcmp(kf_jstr(pj, "data", "c", NULL), "jsonpatch"), "JSON patch");
	json_t *sp = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "smp", "yes");
	json_t *ps = kube_patch(kc, p, sp, "application/strategic-merge-patch+json", &e);
	CHECK(ps && !strcmp(kf_jstr(ps, "metadata", "labels", "smp", NULL), "yes") &&
		      !strcmp(kf_jstr(ps, "metadata", "labels", "kf-it", NULL), "crud"),
	      "strategic merge patch keeps other labels");

	CHECK(kube_delete(kc, p, "Background", &e) == 0, "delete (propagationPolicy Background)");
	json_t *gone = kube_get(kc, p, &e);
	CHECK(!gone && kube_err_is_not_found(&e) && !strcmp(e.reason, "NotFound"), "get after delete: %ld %s: %s", e.code,
	      e.reason, e.msg);
	CHECK(kube_delete(kc, p, NULL, &e) == -1 && kube_err_is_not_found(&e), "delete again: 404");
	json_t *bad = json_pack("{s:{s:s}}", "metadata", "name", "Not_Valid");
	json_t *inv = kube_create(kc, coll, bad, &e);
	CHECK(!inv && e.code == 422 && !strcmp(e.reason, "Invalid"), "invalid name: %ld %s", e.code, e.reason);
	json_decref(bad);
	json_decref(dup);
	json_decref(cm);
	json_decref(c);
	json_decref(g);
	json_decref(u);
	json_decref(mp);
	json_decref(pm);
	json_decref(jp);
	json_decref(pj);
	json_decref(sp);
	json_decref(ps);
	free(stale_rv);
	free(coll);
	free(p);
}

/* ---- CRD with a status subresource ------------------------------------------------------------------- */

static void test_crd_status_subresource(void)
{
	struct kube_err e;
	char sfx[8], plural[32], kind[32], crdname[96];
	kf_random_suffix(sfx, 5);
	snprintf(plural, sizeof plural, "widget%ss", sfx);
	snprintf(kind, sizeof kind, "Widget%s", sfx);
	snprintf(crdname, sizeof crdname, "%s.it.kubefledged.io", plural);
	const char *schema = "{\"type\":\"object\",\"properties\":{"
			     "\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":\"integer\"}}},"
			     "\"status\":{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\"},"
			     "\"count\":{\"type\":\"integer\"}}}}}";
	json_t *crd = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:b, s:b, s:{s:o}, s:{s:{}}}]}}",
				"apiVersion", "apiextensions.k8s.io/v1", "kind", "CustomResourceDefinition", "metadata", "name",
				crdname, "spec", "group", "it.kubefledged.io", "scope", "Namespaced", "names", "plural", plural,
				"kind", kind, "versions", "name", "v1", "served", 1, "storage", 1, "schema", "openAPIV3Schema",
				json_loads(schema, 0, NULL), "subresources", "status");
	json_t *r = kube_create(kc, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd, &e);
	CHECK(r != NULL, "create CRD %s%s%s", crdname, r ? "" : ": ", r ? "" : e.msg);
	json_decref(r);
	json_decref(crd);
	char *cp = xasprintf("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s", crdname);
	int established = 0;
	int64_t t0 = kf_now_ms();
	while (!established && kf_now_ms() - t0 < 30000) {
		json_t *g = kube_get(kc, cp, &e), *cond;
		size_t i;
		json_array_foreach(kf_jget(g, "status", "conditions", NULL), i, cond)
			if (!strcmp(kf_jstr(cond, "type", NULL), "Established") && !strcmp(kf_jstr(cond, "status", NULL), "True"))
				established = 1;
		json_decref(g);
		if (!established)
			kf_sleep_ms(100);
	}
	CHECK(established, "CRD established after %lld ms", (long long)(kf_now_ms() - t0));

	struct kube_resource wr = { "it.kubefledged.io", "v1", plural, kind, 1 };
	struct strbuf coll = STRBUF_INIT, one = STRBUF_INIT, st = STRBUF_INIT;
	kube_path(&coll, &wr, ns, NULL, NULL);
	kube_path(&one, &wr, ns, "w1", NULL);
	kube_path(&st, &wr, ns, "w1", "status");
	char av[64];
	snprintf(av, sizeof av, "it.kubefledged.io/v1");
	json_t *w = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion", av, "kind", kind, "metadata", "name", "w1",
			      "spec", "size", 3);
	json_t *cw = NULL;
	/* the first create can race the discovery of a brand-new CRD: retry a few 404s */
	for (int i = 0; i < 50 && !cw; i++) {
		cw = kube_create(kc, coll.buf, w, &e);
		if (!cw && e.code == 404)
			kf_sleep_ms(100);
		else
			break;
	}
	CHECK(cw != NULL, "create custom resource%s%s", cw ? "" : ": ", cw ? "" : e.msg);
	if (cw) {
		json_object_set_new(cw, "status", json_pack("{s:s, s:i}", "phase", "Ready", "count", 1));
		json_t *s1 = kube_update(kc, st.buf, cw, &e);
		CHECK(s1 && !strcmp(kf_jstr(s1, "status", "phase", NULL), "Ready"), "PUT /status sets status.phase%s%s",
		      s1 ? "" : ": ", s1 ? "" : e.msg);
		/* a PUT of the main resource ignores status, and the PUT /status ignored spec */
		if (s1) {
			json_object_set_new(json_object_get(s1, "status"), "phase", json_string("Hacked"));
			json_object_set_new(json_object_get(s1, "spec"), "size", json_integer(5));
			json_t *m1 = kube_update(kc, one.buf, s1, &e);
			CHECK(m1 && !strcmp(kf_jstr(m1, "status", "phase", NULL), "Ready") &&
				      json_integer_value(kf_jget(m1, "spec", "size", NULL)) == 5,
			      "PUT of the main resource changes spec, not status");
			json_decref(m1);
		}
		json_t *mp = json_pack("{s:{s:s}}", "status", "phase", "Done");
		json_t *s2 = kube_patch(kc, st.buf, mp, "application/merge-patch+json", &e);
		CHECK(s2 && !strcmp(kf_jstr(s2, "status", "phase", NULL), "Done") &&
			      json_integer_value(kf_jget(s2, "status", "count", NULL)) == 1,
		      "merge patch of /status");
		json_decref(mp);
		json_decref(s2);
		json_decref(s1);
		CHECK(kube_delete(kc, one.buf, NULL, &e) == 0, "delete custom resource");
	}
	json_decref(cw);
	json_decref(w);
	CHECK(kube_delete(kc, cp, NULL, &e) == 0, "delete CRD");
	free(cp);
	sb_release(&coll);
	sb_release(&one);
	sb_release(&st);
}
/* ---- bearer token files: rotation and the 401 retry ------------------------------------------------ */


static char *request_token(const char *sa)
{
	struct kube_err e;
	char *p = xasprintf("/api/v1/namespaces/%s/serviceaccounts/%s/token", ns, sa);
	json_t *tr = json_pack("{s:s, s:s, s:{s:I}}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenRequest",
			       "spec", "expirationSeconds", (json_int_t)600);
	json_t *r = kube_create(kc, p, tr, &e);
	char *t = kf_jstr(r, "status", "token", NULL) ? xstrdup(kf_jstr(r, "status", "token", NULL)) : NULL;
	if (!t)
		printf("# TokenRequest failed: %s\n", e.msg);
	json_decref(r);
	json_decref(tr);
	free(p);
	return t;
}

static void write_in_place(const char *path, const char *text, const struct timespec *keep_mtime)
{
	FILE *f = fopen(path, "r+");
	if (!f)
		f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	if (keep_mtime) {
		struct timespec ts[2] = { *keep_mtime, *keep_mtime };
		utimensat(AT_FDCWD, path, ts, 0);
	}
}

static void test_token_file_rotation(void)
{
	struct kube_err e;
	json_t *sa = json_pack("{s:{s:s}}", "metadata", "name", "kf-it-sa");
	char *sp = xasprintf("/api/v1/namespaces/%s/serviceaccounts", ns);
	json_decref(kube_create(kc, sp, sa, &e));
	free(sp);
	json_decref(sa);
	char *t1 = request_token("kf-it-sa"), *t2 = request_token("kf-it-sa");
	CHECK(t1 && t2 && strlen(t1) > 100, "TokenRequest for service account kf-it-sa: %zu-byte tokens", t1 ? strlen(t1) : 0);
	if (!t1 || !t2)
		goto out;
	char path[] = "/tmp/kf-it-token-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	/* start with a wrong token of the same length */
	char *wrong = xstrdup(t1);
	memset(wrong, 'x', strlen(wrong));
	write_in_place(path, wrong, NULL);
	struct kube_config cfg = { .server = main_cfg->server, .ca_pem = main_cfg->ca_pem, .token_file = path,
				   .tls_server_name = main_cfg->tls_server_name, .insecure = main_cfg->insecure,
				   .namespace = (char *)ns };
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = kube_client_new(&cfg, NULL, &err);
	char *lp = xasprintf("/api/v1/namespaces/%s/configmaps", ns);
	json_t *r = kube_get(c, lp, &e);
	CHECK(!r && e.code == 401 && !strcmp(e.reason, "Unauthorized"), "wrong token: %ld %s", e.code, e.reason);

	/* the right token written in place with the old mtime: the file looks unchanged, so the request goes
	 * out with the old token, gets 401, and the forced re-read + one retry must succeed */
	struct stat st;
	stat(path, &st);
	write_in_place(path, t1, &st.st_mtim);
	struct kube_client_stats s0, s1;
	kube_client_stats(c, &s0);
	r = kube_get(c, lp, &e);
	kube_client_stats(c, &s1);
	int authn = !r && e.code == 403 && strstr(e.msg, "system:serviceaccount:") != NULL;
	CHECK(authn && s1.requests - s0.requests == 2, "401 with an unnoticed rotation: re-read, one retry, authenticated (%ld: %.90s...)",
	      e.code, e.msg);
	json_decref(r);

	/* a rotation by rename (what kubelet does for projected tokens) is noticed before the request */
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	write_in_place(tmp, t2, NULL);
	rename(tmp, path);
	kube_client_stats(c, &s0);
	r = kube_get(c, lp, &e);
	kube_client_stats(c, &s1);
	CHECK(!r && e.code == 403 && s1.requests - s0.requests == 1, "rotation by rename picked up without a 401 (%ld)", e.code);
	json_decref(r);
	kube_client_free(c);
	unlink(path);
	free(lp);
	free(wrong);
	sb_release(&err);
out:
	free(t1);
	free(t2);
}
int main(int argc, char **argv)
{
	const char *kubeconfig = NULL, *context = NULL, *given_ns = NULL, *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kubeconfig") && i + 1 < argc)
			kubeconfig = argv[++i];
		else if (!strcmp(argv[i], "--context") && i + 1 < argc)
			context = argv[++i];
		else if (!strcmp(argv[i], "--namespace") && i + 1 < argc)
			given_ns = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--v") && i + 1 < argc)
			log_verbosity = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s --kubeconfig PATH [--context C] [--namespace NS] [--v N] [--only TEST]\n", argv[0]);
			return 2;
		}
	}
	struct strbuf err = STRBUF_INIT;
	struct kube_config *cfg = kube_config_load(kubeconfig, context, NULL, &err);
	if (!cfg) {
		fprintf(stderr, "kube_client_it: %s\n", err.buf);
		return 2;
	}
	struct kube_client_opts opts = { .qps = 200, .burst = 400 };
	if (getenv("KF_IT_TIMEOUT_MS")) /* hack/helgrind-it.sh: everything runs 100 times slower */
		opts.timeout_ms = opts.connect_timeout_ms = atol(getenv("KF_IT_TIMEOUT_MS"));
	static struct kube_client_opts churn_opts;
	churn_opts = opts;
	main_opts = &churn_opts;
	main_cfg = cfg;
	kc = kube_client_new(cfg, &opts, &err);
	if (!kc) {
		fprintf(stderr, "kube_client_it: %s\n", err.buf);
		return 2;
	}
	printf("# API server %s, context %s, auth %s\n", cfg->server, cfg->context,
	       cfg->cert_pem ? "client certificate" : cfg->token_file ? "token file" : cfg->token ? "token" : "none");
	char made[32] = "";
	struct kube_err e;
	if (given_ns) {
		ns = given_ns;
	} else {
		char sfx[8];
		kf_random_suffix(sfx, 5);
		snprintf(made, sizeof made, "kf-it-%s", sfx);
		json_t *n = json_pack("{s:{s:s}}", "metadata", "name", made);
		json_t *r = kube_create(kc, "/api/v1/namespaces", n, &e);
		CHECK(r != NULL, "create namespace %s%s%s", made, r ? "" : ": ", r ? "" : e.msg);
		json_decref(r);
		json_decref(n);
		ns = made;
	}
	int64_t t0 = kf_now_ms();
#define IT_TEST(f) { #f, f }
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		IT_TEST(test_version_and_latency), IT_TEST(test_configmap_crud), IT_TEST(test_crd_status_subresource),
		IT_TEST(test_informer), IT_TEST(test_informer_resync_and_rewatch), IT_TEST(test_watch_410_and_relist),
		IT_TEST(test_informer_relist_after_compaction), IT_TEST(test_leader_election),
		IT_TEST(test_leader_clock_skew), IT_TEST(test_leader_takeover_fences), IT_TEST(test_events), IT_TEST(test_token_file_rotation),
		IT_TEST(test_threads_stress),
	};
	int ran = 0;
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
		struct kube_client_stats s0, s1;
		if (only && strcmp(only, tests[i].name))
			continue;
		ran++;
		kube_client_stats(kc, &s0);
		tests[i].fn();
		kube_client_stats(kc, &s1);
		printf("#   requests %llu, 4xx %llu\n", (unsigned long long)(s1.requests - s0.requests),
		       (unsigned long long)(s1.errors_4xx - s0.errors_4xx));
	}
	CHECK(ran > 0, "ran %d test function(s)%s%s", ran, only ? " named " : "", only ? only : "");
	if (*made) {
		char *p = xasprintf("/api/v1/namespaces/%s", made);
		CHECK(kube_delete(kc, p, NULL, &e) == 0, "delete namespace %s", made);
		free(p);
	}
	struct kube_client_stats st;
	kube_client_stats(kc, &st);
	printf("# %d checks, %d failed, %.1f s; requests %llu (watches %llu), errors: transport %llu, 4xx %llu, 5xx %llu; "
	       "RSS %ld KiB (anonymous %ld KiB), peak %ld KiB\n",
	       it_checks, it_failures, (double)(kf_now_ms() - t0) / 1000, (unsigned long long)st.requests,
	       (unsigned long long)st.watches, (unsigned long long)st.errors_transport, (unsigned long long)st.errors_4xx,
	       (unsigned long long)st.errors_5xx, rss_kib("VmRSS:"), rss_kib("RssAnon:"), rss_kib("VmHWM:"));
	kube_client_free(kc);
	kube_config_free(cfg);
	sb_release(&err);
	return it_failures ? 1 : 0;
}
