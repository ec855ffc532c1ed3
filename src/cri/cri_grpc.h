/* cri_grpc.h - the gRPC wire layer under the CRI client: length-prefixed message frames, the
 * grpc-status / grpc-message headers, and one unary call over HTTP/2 (h2c, prior knowledge) on a unix
 * socket with libcurl. Kept apart from cri.c so it can be tested without a runtime, and so tests can
 * swap the transport (cri_client_set_transport) for canned replies.
 *
 * gRPC framing: each message is 1 byte compressed-flag, 4 bytes big-endian length, then the
 * protobuf bytes. A unary reply carries exactly one message; the status arrives in the trailers, or,
 * for errors, in the only header block ("trailers-only"). Both reach curl's header callback. */
#ifndef KF_CRI_GRPC_H
#define KF_CRI_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

struct cri_client;

/* Largest reply we accept (frame + body). A ListImages of thousands of images is a few MB. */
#define CRI_GRPC_MAX_MSG (64u * 1024 * 1024)

/* One unary request. All pointers are borrowed for the duration of the call. */
struct cri_grpc_call {
	const char *path;            /* "/runtime.v1.ImageService/ListImages" */
	const char *const *headers;  /* extra "name: value" lines (gRPC metadata), NULL-terminated; may be NULL */
	const uint8_t *msg;          /* serialized request message, unframed */
	size_t msg_len;
};

/* What came back, before interpretation. Owned by the caller: init with cri_grpc_reply_init, free
 * with cri_grpc_reply_release. */
struct cri_grpc_reply {
	int http_status;             /* 0 until a status line was seen */
	int grpc_status;             /* -1 when no grpc-status header/trailer arrived */
	int content_type_grpc;       /* content-type was application/grpc[+proto|;...] */
	struct strbuf grpc_message;  /* percent-decoded grpc-message */
	struct strbuf body;          /* raw DATA: frames, still framed */
	int body_too_large;          /* the body passed CRI_GRPC_MAX_MSG and was cut */
};

void cri_grpc_reply_init(struct cri_grpc_reply *r);
void cri_grpc_reply_release(struct cri_grpc_reply *r);

/* Appends one uncompressed frame (prefix + msg) to out. */
void cri_grpc_frame(struct strbuf *out, const uint8_t *msg, size_t len);

/* Finds the single message of a unary reply body. Rejects a compressed frame (we never ask for
 * compression), a length that runs past the body, a short prefix, trailing bytes and a second frame.
 * On success *msg points into body (borrowed) and returns 0; else -1 with err saying what was wrong.
 * An empty body (0 bytes) is an error: a successful unary call always carries one frame. */
int cri_grpc_unframe(const uint8_t *body, size_t n, const uint8_t **msg, size_t *msg_len, struct strbuf *err);

/* Feeds one raw header line (as curl's header callback gets it: "name: value\r\n", the status line
 * "HTTP/2 200", or the blank end-of-block line) into r. Header names are matched case-insensitively. */
void cri_grpc_parse_header(struct cri_grpc_reply *r, const char *line, size_t n);

/* Decodes gRPC's percent-encoding of grpc-message (%XX; malformed escapes are kept literally). */
void cri_grpc_percent_decode(struct strbuf *out, const char *s, size_t n);

/* gRPC's canonical code names ("OK", "NotFound", ...), as grpc-go prints them; "Code(N)" otherwise. */
const char *cri_grpc_code_name(int code);
/* The code a non-200 HTTP status maps to (gRPC's http-grpc-status-mapping.md). */
int cri_grpc_code_from_http(int http_status);

/* A transport performs one call against the socket. It fills reply and returns 0 when a reply
 * (of any status) was received, or returns CRI_ETRANSPORT / CRI_DEADLINE_EXCEEDED with err set when
 * none was. timeout_ms <= 0 means no limit. */
typedef int (*cri_transport_fn)(void *ctx, const char *socket_path, int64_t timeout_ms,
				const struct cri_grpc_call *call, struct cri_grpc_reply *reply, struct strbuf *err);

/* The real transport: libcurl, HTTP/2 prior knowledge, CURLOPT_UNIX_SOCKET_PATH, one connection per
 * call (CURLOPT_FORBID_REUSE: curl 7.88 fails the 2nd request on a reused h2c connection, curl #10634). */
int cri_grpc_curl_transport(void *ctx, const char *socket_path, int64_t timeout_ms,
			    const struct cri_grpc_call *call, struct cri_grpc_reply *reply, struct strbuf *err);

/* Replaces the transport of a client (tests). ctx is borrowed and passed back on every call. */
void cri_client_set_transport(struct cri_client *c, cri_transport_fn fn, void *ctx);

/* Performs a call and interprets the reply: 0 with msg and msg_len pointing into reply->body, or a gRPC
 * code (> 0) with err = "rpc error: code = X desc = MSG", or CRI_ETRANSPORT / CRI_EPROTO with err set.
 * Used by cri.c; exposed for tests. */
int cri_grpc_unary(struct cri_client *c, const struct cri_grpc_call *call, struct cri_grpc_reply *reply,
		   const uint8_t **msg, size_t *msg_len, struct strbuf *err);

#endif
