/* test_agent_auth.c - pull credentials: docker config parsing (dockerconfigjson and legacy dockercfg, the
 * "auth" field, errors that never quote a secret) and the kubelet's matching of config keys against an
 * image: Docker Hub aliases, host:port, schemes, path prefixes, globs, and most specific first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "agent/agent_auth.h"
#include "util/imageref.h"

static struct imageref ref(const char *s)
{
	struct imageref r;
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(imageref_parse(s, &r, &e), 0);
	sb_release(&e);
	return r;
}

static int matches(const char *key, const char *image)
{
	struct imageref r = ref(image);
	return agent_auth_key_matches(key, &r);
}

static void keys_match_like_the_kubelet(void **state)
{
	(void)state;
	/* Docker Hub under its many names */
	assert_true(matches("https://index.docker.io/v1/", "busybox:1.36"));
	assert_true(matches("index.docker.io", "library/busybox"));
	assert_true(matches("docker.io", "docker.io/org/app:1"));
	assert_true(matches("registry-1.docker.io", "org/app"));
	assert_false(matches("https://index.docker.io/v1/", "quay.io/org/app"));
	/* host:port: the ports must agree */
	assert_true(matches("10.240.4.1:5001", "10.240.4.1:5001/private/app:1"));
	assert_true(matches("http://10.240.4.1:5001", "10.240.4.1:5001/private/app:1"));
	assert_true(matches("https://10.240.4.1:5001/v2/", "10.240.4.1:5001/private/app:1"));
	assert_false(matches("10.240.4.1:5001", "10.240.4.1:5000/private/app:1"));
	assert_false(matches("10.240.4.1", "10.240.4.1:5001/private/app:1"));
	assert_false(matches("10.240.4.1:5001", "10.240.4.1/private/app:1"));
	/* path prefixes */
	assert_true(matches("reg.example.com/team", "reg.example.com/team/app:1"));
	assert_false(matches("reg.example.com/other", "reg.example.com/team/app:1"));
	/* hosts compare case-insensitively; globs per dot-separated part */
	assert_true(matches("REG.Example.com", "reg.example.com/a"));
	assert_true(matches("*.example.com", "reg.example.com/a"));
	assert_false(matches("*.example.com", "example.com/a"));
	assert_false(matches("*.example.com", "a.b.example.com/a"));
	assert_false(matches("example.com", "example.com.evil.net/a"));
}

static const char cfg_json[] =
	"{\"auths\": {"
	"  \"10.240.4.1:5001\": {\"auth\": \"a2Z0ZXN0OnMzY3JldDpwYXJ0\"},"
	"  \"https://10.240.4.1:5001/private\": {\"username\": \"kftest2\", \"password\": \"p2\"},"
	"  \"https://index.docker.io/v1/\": {\"username\": \"hub\", \"password\": \"hubpw\", \"identitytoken\": \"tok\"},"
	"  \"other.example.com\": {\"auth\": \"dXNlcjpwYXNz\"}"
	"}}";

static void docker_config_parses_and_selects(void **state)
{
	(void)state;
	struct agent_creds c = { 0 };
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(agent_dockercfg_parse(cfg_json, strlen(cfg_json), 0, &c, &err), 0);
	assert_int_equal(c.n, 4);
	/* "auth" is base64(user:password); a ':' in the password stays */
	size_t i;
	for (i = 0; i < c.n && strcmp(c.items[i].key, "10.240.4.1:5001"); i++)
		;
	assert_true(i < c.n);
	assert_string_equal(c.items[i].username, "kftest");
	assert_string_equal(c.items[i].password, "s3cret:part");

	size_t idx[8];
	struct imageref r = ref("10.240.4.1:5001/private/app:1");
	size_t n = agent_auth_select(&c, &r, idx, 8);
	assert_int_equal(n, 2);
	/* the more specific key (with a path) first */
	assert_string_equal(c.items[idx[0]].key, "https://10.240.4.1:5001/private");
	assert_string_equal(c.items[idx[1]].key, "10.240.4.1:5001");
	r = ref("10.240.4.1:5001/public/x:1");
	assert_int_equal(agent_auth_select(&c, &r, idx, 8), 1);
	assert_string_equal(c.items[idx[0]].username, "kftest");
	r = ref("nginx:1.25");
	assert_int_equal(agent_auth_select(&c, &r, idx, 8), 1);
	assert_string_equal(c.items[idx[0]].username, "hub");
	assert_string_equal(c.items[idx[0]].identity_token, "tok");
	r = ref("quay.io/x/y");
	assert_int_equal(agent_auth_select(&c, &r, idx, 8), 0);
	agent_creds_free(&c);
	assert_int_equal(c.n, 0);

	/* legacy .dockercfg: the same entries without "auths" */
	const char legacy[] = "{\"reg:5000\": {\"auth\": \"dXNlcjpwYXNz\", \"email\": \"a@b\"}}";
	assert_int_equal(agent_dockercfg_parse(legacy, strlen(legacy), 1, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.items[0].username, "user");
	assert_string_equal(c.items[0].password, "pass");
	agent_creds_free(&c);
	sb_release(&err);
}

static void bad_configs_never_quote_secrets(void **state)
{
	(void)state;
	struct agent_creds c = { 0 };
	struct strbuf err = STRBUF_INIT;
	const char *bad[] = {
		"{\"auths\": {\"reg\": {\"auth\": \"!!!notbase64-SECRETVALUE\"}}}",
		"{\"auths\": {\"reg\": {\"auth\": \"U0VDUkVUVkFMVUU=\"}}}", /* base64 of SECRETVALUE: no ':' */
		"{\"auths\": \"SECRETVALUE\"}",
		"{\"auths\": {\"reg\": \"SECRETVALUE\"}}",
		"SECRETVALUE{",
		"{\"SECRETVALUE\": 1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sb_reset(&err);
		assert_int_equal(agent_dockercfg_parse(bad[i], strlen(bad[i]), 0, &c, &err), -1);
		assert_true(err.len > 0);
		if (strstr(err.buf, "SECRETVALUE"))
			fail_msg("error quotes the secret: %s", err.buf);
		assert_int_equal(c.n, 0);
	}
	sb_release(&err);
}

static void json_wipe_zeroes_strings(void **state)
{
	(void)state;
	json_t *j = json_pack("{s:s, s:[s, {s:s}]}", "a", "secret-one", "b", "secret-two", "c", "secret-three");
	json_t *s1 = json_object_get(j, "a");
	const char *p = json_string_value(s1);
	agent_json_wipe(j);
	for (size_t i = 0; i < strlen("secret-one"); i++)
		assert_int_equal(p[i], 0);
	json_t *s3 = json_object_get(json_array_get(json_object_get(j, "b"), 1), "c");
	assert_int_equal(json_string_value(s3)[0], 0);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_match_like_the_kubelet),
		cmocka_unit_test(docker_config_parses_and_selects),
		cmocka_unit_test(bad_configs_never_quote_secrets),
		cmocka_unit_test(json_wipe_zeroes_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
