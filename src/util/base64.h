/* base64.h - RFC 4648 standard base64 (the alphabet Kubernetes uses for []byte fields: Secret data,
 * kubeconfig *-data, AdmissionReview patches). */
#ifndef KF_BASE64_H
#define KF_BASE64_H

#include <stddef.h>

/* Decodes s[0..len). ASCII whitespace (kubeconfigs wrap long values) is skipped; '=' padding is optional
 * but, when present, must be at the end. Returns a malloc'd buffer holding the bytes plus a terminating
 * NUL (so decoded PEM text can be used as a C string), length in *out_len; NULL on an invalid character
 * or a dangling single character, with the offending offset in *bad_pos (if bad_pos != NULL). */
unsigned char *kf_base64_decode(const char *s, size_t len, size_t *out_len, size_t *bad_pos);
/* Encodes data[0..len) with padding; returns a malloc'd NUL-terminated string. */
char *kf_base64_encode(const void *data, size_t len);

#endif
