/* wh_admission.h - one AdmissionReview in, one HTTP reply out: the whole admission logic of the webhook
 * without any I/O, so the unit tests and the fuzzer drive it directly and the HTTPS server only moves bytes.
 *
 * Accepted: admission.k8s.io/v1 and admission.k8s.io/v1beta1 AdmissionReview (same wire shape for the parts
 * we read). CREATE and UPDATE of kubefledged.io/v1alpha2 imagecaches are validated with ic_validate();
 * anything else (other resources, subresources, DELETE/CONNECT) is allowed, since the webhook
 * configuration never sends it and denying would only break a misconfigured cluster.
 *
 * Replies, upstream's shape (a Go encoding/json of the k8s.io/api types):
 *   200 application/json  {"kind":"AdmissionReview","apiVersion":"<request's>","response":
 *                            {"uid":"<request.uid>","allowed":true}}
 *                         denial: ...,"allowed":false,"status":{"metadata":{},"message":"<why>"}}}
 *                         (no code, no reason; the API server prints `admission webhook
 *                          "validate-image-cache.kubefledged.io" denied the request: <why>`)
 *   400 text/plain        "Request could not be decoded: <reason>\n"   (bad JSON, truncated, wrong shape)
 *                         "Unsupported group version kind: <group>/<version>, Kind=<kind>\n"
 *   415 text/plain        wrong or missing Content-Type (upstream answered an empty 200, which the API
 *                         server also counts as a failed call; a status that says why is kinder)
 * The 413 for an oversized body is the server's (it never buffers such a body). */
#ifndef WH_ADMISSION_H
#define WH_ADMISSION_H

#include <stddef.h>

enum wh_verdict { WH_ALLOWED, WH_DENIED, WH_ERROR };

struct wh_reply {
	int status;               /* HTTP status */
	const char *content_type; /* static string */
	char *body;               /* malloc'd, owned by the reply; body_len bytes, NUL-terminated */
	size_t body_len;
	enum wh_verdict verdict;
	/* For the request log (values cut to fit, "" when unknown). */
	char uid[64];
	char operation[16];
	char ns[64];
	char name[256];
	char message[256];        /* the denial or error, cut */
};

/* Reviews body[0..len) sent with content_type (NULL when absent). Fills *out; never fails (a bad request
 * is a 4xx reply). Free with wh_reply_free(). */
void wh_review(const char *content_type, const char *body, size_t len, struct wh_reply *out);
void wh_reply_free(struct wh_reply *r);

/* Sets out to the plain-text reply used for errors: status, "<msg>\n" (as Go's http.Error writes it). */
void wh_reply_text(struct wh_reply *out, int status, const char *msg);

#endif
