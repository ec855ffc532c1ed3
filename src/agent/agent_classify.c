/* agent_classify.c - permanent or transient pull errors (see agent_classify.h). The message decides
 * first, because runtimes disagree on codes: containerd answers Unknown for a 401 and NotFound for a
 * platform mismatch; dockerd's HTTP statuses are mapped loosely. Order matters: a platform mismatch also
 * says "not found", a 503 page may say "denied" nowhere but "unavailable" everywhere. */
#include "agent_classify.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cri/cri.h"
#include "util/util.h"

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* A number standing alone ("HTTP 429 response", ": 429"), not inside a digest's hex. */
static int has_word(const char *hay, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = hay; (p = strstr(p, word)); p++) {
		int before = p > hay && isalnum((unsigned char)p[-1]);
		int after = isalnum((unsigned char)p[n]);
		if (!before && !after)
			return 1;
	}
	return 0;
}

/* "status code [manifests 1]: 503", "unexpected HTTP status: 503", "unexpected status: 503" */
static int has_5xx(const char *m)
{
	static const char *texts[] = { "500 internal server error", "502 bad gateway", "503 service unavailable",
				       "504 gateway timeout", "bad gateway", "service unavailable", "gateway timeout" };
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
		if (has(m, texts[i]))
			return 1;
	for (const char *p = m; (p = strstr(p, "status")); p++) {
		const char *q = p;
		while (*q && !isdigit((unsigned char)*q) && q - p < 40)
			q++;
		if (q[0] == '5' && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2]) &&
		    !isalnum((unsigned char)q[3]) && !isalnum((unsigned char)q[-1]))
			return 1;
	}
	return 0;
}

static void set(struct agent_pull_error *out, int permanent, const char *reason, const char *cause)
{
	out->permanent = permanent;
	out->reason = reason;
	out->cause = cause;
}

void agent_classify_pull_error(int code, const char *msg, struct agent_pull_error *out)
{
	size_t n = msg ? strlen(msg) : 0;
	char *m = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		m[i] = (char)tolower((unsigned char)msg[i]);
	m[n] = 0;

	if (code == CRI_EINVAL || has(m, "invalid reference format") || has(m, "invalid image reference"))
		set(out, 1, AGENT_REASON_INVALID_IMAGE, "InvalidImageName");
	else if (has(m, "no match for platform") || has(m, "no matching manifest for") ||
		 has(m, "does not match the specified platform"))
		set(out, 1, AGENT_REASON_ERR_IMAGE_PULL, "NoMatchingPlatform");
	else if (has_word(m, "429") || has(m, "too many requests") || has(m, "toomanyrequests"))
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "RateLimited");
	else if (has_5xx(m))
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "RegistryUnavailable");
	else if (has(m, "401 unauthorized") || has(m, "403 forbidden") || has(m, "unauthorized") ||
		 has(m, "authentication required") || has(m, "no basic auth credentials") || has(m, "denied") ||
		 has(m, "insufficient_scope") || code == CRI_UNAUTHENTICATED || code == CRI_PERMISSION_DENIED)
		set(out, 1, AGENT_REASON_ERR_IMAGE_PULL, "Unauthorized");
	else if (has(m, "manifest unknown") || has(m, "name unknown") || has(m, "404 not found") ||
		 has(m, ": not found") || has(m, "not found:") || (code == CRI_NOT_FOUND && has(m, "not found")))
		set(out, 1, AGENT_REASON_ERR_IMAGE_PULL, "ImageNotFound");
	else if (has(m, "x509:") || has(m, "server gave http response to https client") ||
		 has(m, "tls: failed to verify") || has(m, "certificate signed by unknown authority"))
		set(out, 1, AGENT_REASON_ERR_IMAGE_PULL, "RegistryTLSError");
	else if (has(m, "i/o timeout") || has(m, "deadline exceeded") || has(m, "timeout") || has(m, "timed out") ||
		 code == CRI_DEADLINE_EXCEEDED)
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "Timeout");
	else if (code == CRI_ETRANSPORT)
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "RuntimeUnavailable");
	else if (has(m, "connection refused") || has(m, "connection reset") || has(m, "no such host") ||
		 has(m, "network is unreachable") || has(m, "no route to host") || has(m, "broken pipe") ||
		 has(m, "unexpected eof") || has(m, ": eof") || has(m, "temporary failure") || code == CRI_UNAVAILABLE || code == CRI_ABORTED ||
		 code == CRI_RESOURCE_EXHAUSTED)
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "RegistryUnavailable");
	else
		set(out, 0, AGENT_REASON_ERR_IMAGE_PULL, "Unknown");
	free(m);
}
