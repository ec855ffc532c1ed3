/* test_agent_classify.c - permanent or transient: the agent's reading of real runtime errors. Every
 * message here was recorded on the test bed (2026-12-03) from containerd 1.6.20 (CRI PullImage through
 * `kubefledged cri pull`) and from Debian's dockerd 20.10.24 (POST /images/create), against the test bed's
 * registries: a missing repository and tag, the basic-auth registry without or with wrong credentials, a
 * port nobody listens on, a fake registry answering 503 and 429, and an index with an arm64 manifest
 * only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "agent/agent_classify.h"
#include "cri/cri.h"

struct rec {
	int code;
	const char *msg;
	int permanent;
	const char *cause;
};

static const struct rec containerd_16[] = {
	{ CRI_NOT_FOUND,
	  "rpc error: code = NotFound desc = failed to pull and unpack image \"10.240.4.1:5000/nope/missing:1\": failed "
	  "to resolve reference \"10.240.4.1:5000/nope/missing:1\": 10.240.4.1:5000/nope/missing:1: not found",
	  1, "ImageNotFound" },
	{ CRI_NOT_FOUND,
	  "rpc error: code = NotFound desc = failed to pull and unpack image \"10.240.4.1:5000/busybox:nosuchtag\": "
	  "failed to resolve reference \"10.240.4.1:5000/busybox:nosuchtag\": 10.240.4.1:5000/busybox:nosuchtag: not "
	  "found",
	  1, "ImageNotFound" },
	/* a digest that happens to contain 429 and 503 must not read as a rate limit or an outage */
	{ CRI_NOT_FOUND,
	  "rpc error: code = NotFound desc = failed to pull and unpack image "
	  "\"10.240.4.1:5000/busybox@sha256:4290000000000000000000000000000000000000000000000000000000000503\": failed "
	  "to resolve reference \"10.240.4.1:5000/busybox@sha256:4290000000000000000000000000000000000000000000000000"
	  "000000000503\": 10.240.4.1:5000/busybox@sha256:42900000000000000000000000000000000000000000000000000000000"
	  "00503: not found",
	  1, "ImageNotFound" },
	{ CRI_UNKNOWN,
	  "rpc error: code = Unknown desc = failed to pull and unpack image \"10.240.4.1:5001/private/app:1\": failed "
	  "to resolve reference \"10.240.4.1:5001/private/app:1\": pulling from host 10.240.4.1:5001 failed with status "
	  "code [manifests 1]: 401 Unauthorized",
	  1, "Unauthorized" },
	{ CRI_UNKNOWN,
	  "rpc error: code = Unknown desc = failed to pull and unpack image \"10.240.4.1:5999/x/y:1\": failed to resolve "
	  "reference \"10.240.4.1:5999/x/y:1\": failed to do request: Head "
	  "\"https://10.240.4.1:5999/v2/x/y/manifests/1\": dial tcp 10.240.4.1:5999: connect: connection refused",
	  0, "RegistryUnavailable" },
	{ CRI_UNKNOWN,
	  "rpc error: code = Unknown desc = failed to pull and unpack image \"10.240.4.1:5997/x/y:1\": failed to resolve "
	  "reference \"10.240.4.1:5997/x/y:1\": pulling from host 10.240.4.1:5997 failed with status code [manifests 1]: "
	  "503 Service Unavailable",
	  0, "RegistryUnavailable" },
	{ CRI_UNKNOWN,
	  "rpc error: code = Unknown desc = failed to pull and unpack image \"10.240.4.1:5998/x/y:1\": failed to resolve "
	  "reference \"10.240.4.1:5998/x/y:1\": pulling from host 10.240.4.1:5998 failed with status code [manifests 1]: "
	  "429 Too Many Requests",
	  0, "RateLimited" },
	{ CRI_NOT_FOUND,
	  "rpc error: code = NotFound desc = failed to pull and unpack image \"10.240.4.1:5000/busybox:arm64only\": no "
	  "match for platform in manifest: not found",
	  1, "NoMatchingPlatform" },
};

static const struct rec dockerd_20[] = {
	{ CRI_NOT_FOUND,
	  "Error response from daemon: manifest for 10.240.4.1:5000/nope/missing:1 not found: manifest unknown: manifest "
	  "unknown",
	  1, "ImageNotFound" },
	{ CRI_NOT_FOUND,
	  "Error response from daemon: manifest for 10.240.4.1:5000/busybox:nosuchtag not found: manifest unknown: "
	  "manifest unknown",
	  1, "ImageNotFound" },
	{ CRI_UNKNOWN,
	  "Error response from daemon: Head \"http://10.240.4.1:5001/v2/private/app/manifests/1\": no basic auth "
	  "credentials",
	  1, "Unauthorized" },
	{ CRI_UNKNOWN, "Error response from daemon: unauthorized: authentication required", 1, "Unauthorized" },
	{ CRI_UNKNOWN,
	  "Error response from daemon: Get \"https://10.240.4.1:5999/v2/\": dial tcp 10.240.4.1:5999: connect: "
	  "connection refused",
	  0, "RegistryUnavailable" },
	{ CRI_UNKNOWN, "Error response from daemon: received unexpected HTTP status: 503 Service Unavailable", 0,
	  "RegistryUnavailable" },
	{ CRI_UNKNOWN, "Error response from daemon: error parsing HTTP 429 response body: unexpected end of JSON input: \"\"",
	  0, "RateLimited" },
	{ CRI_UNKNOWN, "Error response from daemon: no matching manifest for linux/amd64 in the manifest list entries", 1,
	  "NoMatchingPlatform" },
};

static void check(const struct rec *r, size_t n, const char *runtime)
{
	for (size_t i = 0; i < n; i++) {
		struct agent_pull_error e;
		agent_classify_pull_error(r[i].code, r[i].msg, &e);
		if (e.permanent != r[i].permanent || strcmp(e.cause, r[i].cause))
			fail_msg("%s #%zu: got %s %s, want %s %s: %s", runtime, i, e.permanent ? "permanent" : "transient",
				 e.cause, r[i].permanent ? "permanent" : "transient", r[i].cause, r[i].msg);
		/* job mode's kubelet says ErrImagePull for every one of them */
		assert_string_equal(e.reason, "ErrImagePull");
	}
}

static void containerd_errors(void **state)
{
	(void)state;
	check(containerd_16, sizeof containerd_16 / sizeof containerd_16[0], "containerd");
}

static void dockerd_errors(void **state)
{
	(void)state;
	check(dockerd_20, sizeof dockerd_20 / sizeof dockerd_20[0], "dockerd");
}

static void codes_and_local_errors(void **state)
{
	(void)state;
	struct agent_pull_error e;
	/* our own reference check: the kubelet's word for it */
	agent_classify_pull_error(CRI_EINVAL, "invalid image reference \"A\": repository name must be lowercase", &e);
	assert_int_equal(e.permanent, 1);
	assert_string_equal(e.reason, "InvalidImageName");
	/* the runtime's socket is gone: retried */
	agent_classify_pull_error(CRI_ETRANSPORT, "connect to unix socket /run/containerd/containerd.sock: No such file",
				  &e);
	assert_int_equal(e.permanent, 0);
	assert_string_equal(e.cause, "RuntimeUnavailable");
	agent_classify_pull_error(CRI_DEADLINE_EXCEEDED, "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
				  &e);
	assert_int_equal(e.permanent, 0);
	assert_string_equal(e.cause, "Timeout");
	agent_classify_pull_error(CRI_UNKNOWN, "failed to do request: Head \"https://r/v2/a/manifests/1\": x509: "
					       "certificate signed by unknown authority", &e);
	assert_int_equal(e.permanent, 1);
	assert_string_equal(e.cause, "RegistryTLSError");
	/* an unknown error is retried: a corrupt download or a full disk may pass */
	agent_classify_pull_error(CRI_UNKNOWN, "rpc error: code = Unknown desc = failed commit on ref: unexpected size", &e);
	assert_int_equal(e.permanent, 0);
	assert_string_equal(e.cause, "Unknown");
	agent_classify_pull_error(CRI_UNKNOWN, NULL, &e);
	assert_int_equal(e.permanent, 0);
	/* Docker Hub's rate limit */
	agent_classify_pull_error(CRI_UNKNOWN, "toomanyrequests: You have reached your pull rate limit.", &e);
	assert_int_equal(e.permanent, 0);
	assert_string_equal(e.cause, "RateLimited");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(containerd_errors),
		cmocka_unit_test(dockerd_errors),
		cmocka_unit_test(codes_and_local_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
