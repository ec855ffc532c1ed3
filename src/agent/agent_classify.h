/* agent_classify.h - is a failed pull worth retrying? The runtime's error (a gRPC code and message from
 * containerd or CRI-O, or dockerd's text) is sorted into:
 *
 *   permanent, fail at once      cause               message examples (recorded from the test bed)
 *     image or tag not found       ImageNotFound       containerd 1.6: "...: not found" (code NotFound)
 *                                                      dockerd: "manifest for X not found: manifest unknown"
 *     no credentials / refused     Unauthorized        "... failed with status code [manifests 1]: 401
 *                                                      Unauthorized", "no basic auth credentials",
 *                                                      "unauthorized: authentication required", "denied"
 *     no manifest for the node     NoMatchingPlatform  "no match for platform in manifest", "no matching
 *                                                      manifest for linux/amd64 in the manifest list entries"
 *     bad reference                InvalidImageName    "invalid reference format", a reference our own
 *                                                      parser refused (CRI_EINVAL)
 *     TLS / scheme mismatch        RegistryTLSError    "x509: ...", "server gave HTTP response to HTTPS
 *                                                      client" (a node's configuration, not a hiccup)
 *   transient, retried with backoff until the pull deadline
 *     429                          RateLimited         "429 Too Many Requests", "toomanyrequests"
 *     5xx, refused, reset, DNS     RegistryUnavailable "503 Service Unavailable", "connect: connection refused"
 *     timeouts                     Timeout             "i/o timeout", "context deadline exceeded", code
 *                                                      DeadlineExceeded
 *     the runtime itself is gone   RuntimeUnavailable  no reply from the socket (CRI_ETRANSPORT)
 *     anything else                Unknown             retried: a corrupt download or a full disk may pass
 *
 * The status reason is what job mode's kubelet says for the same failure, so the controller can fold it
 * into the ImageCache's failures unchanged: ErrImagePull for every pull error, InvalidImageName for a bad
 * reference. The finer cause goes into the status entry's `cause`. */
#ifndef AGENT_CLASSIFY_H
#define AGENT_CLASSIFY_H

#define AGENT_REASON_ERR_IMAGE_PULL "ErrImagePull"
#define AGENT_REASON_INVALID_IMAGE "InvalidImageName"

struct agent_pull_error {
	int permanent;      /* 1: fail now; 0: retry until the deadline */
	const char *reason; /* static: ErrImagePull or InvalidImageName */
	const char *cause;  /* static: one of the causes above */
};

/* code: the cri_code the runtime call returned (cri.h); msg: its error text (may be NULL). */
void agent_classify_pull_error(int code, const char *msg, struct agent_pull_error *out);

#endif
