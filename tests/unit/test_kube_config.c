/* test_kube_config.c - kubeconfig parsing for every auth kind, the error messages of broken kubeconfigs
 * (file, context, user/cluster and field named), relative paths, the $KUBECONFIG/HOME search order,
 * --master, and in-cluster config from a temporary service-account directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kube_config.h"
#include "util/base64.h"
#include "util/util.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeCert\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIIBfakeKey\n-----END PRIVATE KEY-----\n"

static char dir[256];

static void put(const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/kf-test-kubeconfig-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char p[512];
	snprintf(p, sizeof p, "%s/pki", dir);
	mkdir(p, 0700);
	put("pki/ca.crt", CA_PEM);
	put("pki/admin.crt", CERT_PEM);
	put("pki/admin.key", KEY_PEM);
	put("pki/token", "  file-token-123\n");
	put("pki/not-pem.crt", "hello\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct kube_config *parse(const char *text, const char *context, struct strbuf *err)
{
	return kube_config_parse(text, strlen(text), dir, "/k/config", context, err);
}

static struct kube_config *parse_ok(const char *text, const char *context)
{
	struct strbuf err = STRBUF_INIT;
	struct kube_config *c = parse(text, context, &err);
	if (!c)
		fail_msg("unexpected error: %s", err.buf);
	sb_release(&err);
	return c;
}

static void expect_error(const char *text, const char *context, const char *want)
{
	struct strbuf err = STRBUF_INIT;
	struct kube_config *c = parse(text, context, &err);
	if (c || strcmp(err.buf, want))
		fail_msg("\n  want error: %s\n  got:        %s", want, c ? "(no error)" : err.buf);
	kube_config_free(c);
	sb_release(&err);
}

static void client_certificate_data_and_ca_data(void **state)
{
	(void)state;
	char *ca = kf_base64_encode(CA_PEM, strlen(CA_PEM)), *crt = kf_base64_encode(CERT_PEM, strlen(CERT_PEM)),
	     *key = kf_base64_encode(KEY_PEM, strlen(KEY_PEM));
	char *y = xasprintf("apiVersion: v1\nkind: Config\ncurrent-context: admin@kf\nclusters:\n- name: kf\n  cluster:\n"
			    "    server: https://127.0.0.1:6443/\n    certificate-authority-data: %s\nusers:\n"
			    "- name: admin\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n"
			    "contexts:\n- name: admin@kf\n  context:\n    cluster: kf\n    user: admin\n    namespace: kube-fledged\n",
			    ca, crt, key);
	struct kube_config *c = parse_ok(y, NULL);
	assert_string_equal(c->server, "https://127.0.0.1:6443");
	assert_string_equal(c->ca_pem, CA_PEM);
	assert_string_equal(c->cert_pem, CERT_PEM);
	assert_string_equal(c->key_pem, KEY_PEM);
	assert_null(c->token);
	assert_null(c->token_file);
	assert_null(c->tls_server_name);
	assert_int_equal(c->insecure, 0);
	assert_string_equal(c->namespace, "kube-fledged");
	assert_string_equal(c->context, "admin@kf");
	kube_config_free(c);
	free(ca);
	free(crt);
	free(key);
	free(y);
}

static const char *two_contexts =
	"current-context: tok\n"
	"clusters:\n"
	"- name: a\n  cluster: {server: \"https://api.example:443\", certificate-authority: pki/ca.crt, tls-server-name: kubernetes}\n"
	"- name: b\n  cluster: {server: \"http://127.0.0.1:8080\", insecure-skip-tls-verify: true}\n"
	"users:\n"
	"- name: tok\n  user: {token: abc.def}\n"
	"- name: tf\n  user: {tokenFile: pki/token}\n"
	"- name: files\n  user: {client-certificate: pki/admin.crt, client-key: pki/admin.key}\n"
	"contexts:\n"
	"- name: tok\n  context: {cluster: a, user: tok}\n"
	"- name: tf\n  context: {cluster: a, user: tf, namespace: ns1}\n"
	"- name: files\n  context: {cluster: a, user: files}\n"
	"- name: nouser\n  context: {cluster: b}\n";

static void token_ca_file_and_tls_server_name(void **state)
{
	(void)state;
	struct kube_config *c = parse_ok(two_contexts, NULL);
	assert_string_equal(c->server, "https://api.example:443");
	assert_string_equal(c->ca_pem, CA_PEM); /* relative to the kubeconfig's directory */
	assert_string_equal(c->token, "abc.def");
	assert_string_equal(c->tls_server_name, "kubernetes");
	assert_string_equal(c->namespace, "default");
	kube_config_free(c);
}

static void token_file_is_read_trimmed_and_remembered(void **state)
{
	(void)state;
	struct kube_config *c = parse_ok(two_contexts, "tf");
	char want[512];
	snprintf(want, sizeof want, "%s/pki/token", dir);
	assert_string_equal(c->token_file, want);
	assert_string_equal(c->token, "file-token-123");
	assert_string_equal(c->namespace, "ns1");
	assert_string_equal(c->context, "tf");
	kube_config_free(c);
}

static void client_certificate_files_and_insecure_cluster(void **state)
{
	(void)state;
	struct kube_config *c = parse_ok(two_contexts, "files");
	assert_string_equal(c->cert_pem, CERT_PEM);
	assert_string_equal(c->key_pem, KEY_PEM);
	kube_config_free(c);
	c = parse_ok(two_contexts, "nouser");
	assert_string_equal(c->server, "http://127.0.0.1:8080");
	assert_int_equal(c->insecure, 1);
	assert_null(c->ca_pem);
	assert_null(c->token);
	assert_null(c->cert_pem);
	kube_config_free(c);
}

static void json_kubeconfig(void **state)
{
	(void)state;
	const char *j = "{\n\t\"kind\": \"Config\", \"current-context\": \"x\",\n"
			"\t\"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": \"https://10.0.0.1\"}}],\n"
			"\t\"users\": [{\"name\": \"u\", \"user\": {\"token\": \"t0k\"}}],\n"
			"\t\"contexts\": [{\"name\": \"x\", \"context\": {\"cluster\": \"c\", \"user\": \"u\"}}]\n}\n";
	struct kube_config *c = parse_ok(j, NULL);
	assert_string_equal(c->server, "https://10.0.0.1");
	assert_string_equal(c->token, "t0k");
	kube_config_free(c);
}

#define HEAD "clusters:\n- name: k\n  cluster:\n"
#define CTX "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"

static void broken_kubeconfigs_name_the_field(void **state)
{
	(void)state;
	char msg[1024];
	expect_error("clusters: []\n", NULL,
		     "kubeconfig /k/config: current-context is not set and no context was given");
	expect_error(two_contexts, "nope", "kubeconfig /k/config: context \"nope\" not found in contexts");
	expect_error("current-context: c\n" HEAD "    insecure-skip-tls-verify: true\nusers: []\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": cluster \"k\": server is missing");
	expect_error("current-context: c\n" HEAD "    server: https://x\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": user \"u\" not found in users");
	expect_error("current-context: c\nclusters: []\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": cluster \"k\" not found in clusters");
	expect_error("current-context: c\ncontexts:\n- name: c\n  context: {user: u}\n", NULL,
		     "kubeconfig /k/config: context \"c\": cluster is not set");
	snprintf(msg, sizeof msg,
		 "kubeconfig /k/config: context \"c\": user \"u\": client-certificate \"missing.crt\": cannot open "
		 "%s/missing.crt: No such file or directory", dir);
	expect_error("current-context: c\n" HEAD "    server: https://x\nusers:\n- name: u\n  user:\n"
		     "    client-certificate: missing.crt\n    client-key: pki/admin.key\n" CTX, NULL, msg);
	snprintf(msg, sizeof msg,
		 "kubeconfig /k/config: context \"c\": cluster \"k\": certificate-authority \"pki/not-pem.crt\": "
		 "%s/pki/not-pem.crt is not PEM (no \"-----BEGIN\" line)", dir);
	expect_error("current-context: c\n" HEAD "    server: https://x\n    certificate-authority: pki/not-pem.crt\n"
		     "users: [{name: u, user: {}}]\n" CTX, NULL, msg);
	expect_error("current-context: c\n" HEAD "    server: https://x\n    certificate-authority-data: LS0t!!!\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": cluster \"k\": certificate-authority-data: invalid base64 at offset 4");
	expect_error("current-context: c\n" HEAD "    server: https://x\n    certificate-authority-data: aGVsbG8=\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": cluster \"k\": certificate-authority-data: decoded value is not "
		     "PEM (no \"-----BEGIN\" line)");
	expect_error("current-context: c\n" HEAD "    server: https://x\nusers:\n- name: u\n  user:\n    exec:\n"
		     "      command: aws\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": user \"u\": exec credential plugins are not supported "
		     "(use token, tokenFile or a client certificate)");
	expect_error("current-context: c\n" HEAD "    server: https://x\nusers:\n- name: u\n  user:\n    auth-provider:\n"
		     "      name: gcp\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": user \"u\": auth-provider \"gcp\" is not supported "
		     "(use token, tokenFile or a client certificate)");
	expect_error("current-context: c\n" HEAD "    server: https://x\nusers:\n- name: u\n  user:\n"
		     "    client-certificate: pki/admin.crt\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": user \"u\": client-certificate is set but client-key is missing");
	snprintf(msg, sizeof msg,
		 "kubeconfig /k/config: context \"c\": user \"u\": tokenFile \"nope\": cannot open %s/nope: No such "
		 "file or directory", dir);
	expect_error("current-context: c\n" HEAD "    server: https://x\nusers:\n- name: u\n  user: {tokenFile: nope}\n" CTX,
		     NULL, msg);
	expect_error("current-context: c\n" HEAD "    server: 10.0.0.1:6443\n" CTX, NULL,
		     "kubeconfig /k/config: context \"c\": cluster \"k\": server \"10.0.0.1:6443\" is not an http(s) URL");
	expect_error("apiVersion: v1\nclusters:\n- name: a\n   cluster: {}\n", NULL,
		     "kubeconfig /k/config: not valid YAML: line 4 column 11: mapping values are not allowed in this "
		     "context");
	expect_error("just a string\n", NULL, "kubeconfig /k/config: not a kubeconfig (the top level is not a mapping)");
}

static void load_from_file_search_order_and_master(void **state)
{
	(void)state;
	char path[512], list[1200], home[512];
	struct strbuf err = STRBUF_INIT;
	put("config", two_contexts);
	snprintf(path, sizeof path, "%s/config", dir);
	unsetenv("KUBERNETES_SERVICE_HOST");

	/* explicit path, with --master overriding the server */
	struct kube_config *c = kube_config_load(path, "tf", "https://override:8443/", &err);
	assert_non_null(c);
	assert_string_equal(c->server, "https://override:8443");
	assert_string_equal(c->token, "file-token-123");
	kube_config_free(c);

	/* $KUBECONFIG: the first existing file of the list */
	snprintf(list, sizeof list, "%s/absent:%s:/also/absent", dir, path);
	setenv("KUBECONFIG", list, 1);
	c = kube_config_load(NULL, NULL, NULL, &err);
	assert_non_null(c);
	assert_string_equal(c->context, "tok");
	kube_config_free(c);

	/* ~/.kube/config when $KUBECONFIG names nothing that exists */
	setenv("KUBECONFIG", "/nonexistent/kubeconfig", 1);
	snprintf(home, sizeof home, "%s/.kube", dir);
	mkdir(home, 0700);
	put(".kube/config", two_contexts);
	setenv("HOME", dir, 1);
	c = kube_config_load(NULL, "nouser", NULL, &err);
	if (!c)
		fail_msg("%s", err.buf);
	assert_string_equal(c->server, "http://127.0.0.1:8080");
	kube_config_free(c);
	/* paths are relative to that file's own directory (~/.kube), not to the first one's */
	c = kube_config_load(NULL, "files", NULL, &err);
	assert_null(c);
	assert_non_null(strstr(err.buf, "/.kube/config: context \"files\": cluster \"a\": certificate-authority "
				       "\"pki/ca.crt\": cannot open "));
	assert_non_null(strstr(err.buf, "/.kube/pki/ca.crt"));
	sb_reset(&err);
	kube_config_free(c);

	/* an unreadable explicit file names the path */
	assert_null(kube_config_load("/nonexistent/kc", NULL, NULL, &err));
	assert_string_equal(err.buf, "kubeconfig /nonexistent/kc: cannot open /nonexistent/kc: No such file or directory");
	unsetenv("KUBECONFIG");
	sb_release(&err);
}

static void in_cluster_from_service_account_dir(void **state)
{
	(void)state;
	char sa[512];
	struct strbuf err = STRBUF_INIT;
	snprintf(sa, sizeof sa, "%s/sa", dir);
	mkdir(sa, 0700);
	put("sa/token", "eyJhbGciOi.sa.token\n");
	put("sa/ca.crt", CA_PEM);
	put("sa/namespace", "kube-fledged");
	setenv("KUBE_SA_DIR", sa, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	unsetenv("KUBECONFIG");
	/* no kubeconfig given and none in $KUBECONFIG: in-cluster wins over ~/.kube/config */
	struct kube_config *c = kube_config_load(NULL, NULL, NULL, &err);
	assert_non_null(c);
	assert_string_equal(c->server, "https://10.96.0.1:443");
	assert_string_equal(c->token, "eyJhbGciOi.sa.token");
	assert_non_null(strstr(c->token_file, "/sa/token"));
	assert_string_equal(c->ca_pem, CA_PEM);
	assert_string_equal(c->namespace, "kube-fledged");
	assert_string_equal(c->context, "in-cluster");
	kube_config_free(c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	c = kube_config_in_cluster(&err);
	assert_non_null(c);
	assert_string_equal(c->server, "https://[fd00:10:96::1]:443");
	kube_config_free(c);

	char path[600];
	snprintf(path, sizeof path, "%s/token", sa);
	unlink(path);
	assert_null(kube_config_in_cluster(&err));
	assert_non_null(strstr(err.buf, "in-cluster config: service account token: cannot open"));
	sb_reset(&err);
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_null(kube_config_in_cluster(&err));
	assert_non_null(strstr(err.buf, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"));
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBE_SA_DIR");
	sb_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(client_certificate_data_and_ca_data),
		cmocka_unit_test(token_ca_file_and_tls_server_name),
		cmocka_unit_test(token_file_is_read_trimmed_and_remembered),
		cmocka_unit_test(client_certificate_files_and_insecure_cluster),
		cmocka_unit_test(json_kubeconfig),
		cmocka_unit_test(broken_kubeconfigs_name_the_field),
		cmocka_unit_test(load_from_file_search_order_and_master),
		cmocka_unit_test(in_cluster_from_service_account_dir),
	};
	return cmocka_run_group_tests_name("kube_config", tests, setup, teardown);
}
