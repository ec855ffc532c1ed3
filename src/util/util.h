/* util.h - small helpers used everywhere: allocation that cannot fail, clocks, Go-style durations,
 * RFC 3339 times, whole-file reads and borrowed lookups into jansson trees. */
#ifndef KF_UTIL_H
#define KF_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failure aborts (see strbuf.h for why). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int64_t kf_now_ms(void);              /* CLOCK_MONOTONIC, milliseconds */
void kf_sleep_ms(int64_t ms);

/* Go time.Duration syntax ("300ms", "1.5h", "2h45m", "0s", "0"). Returns 0, or -1 on bad input.
 * Negative durations are rejected. */
int kf_parse_duration(const char *s, int64_t *out_ms);
/* Formats like Go's Duration.String() for whole milliseconds ("5m0s", "1h0m0s", "300ms"). */
void kf_format_duration(int64_t ms, char *buf, size_t n);

/* RFC 3339 in UTC with seconds precision, as Kubernetes metav1.Time serializes ("2026-11-22T02:35:27Z").
 * t is 64-bit whatever time_t is: on 32-bit ARM (Debian armhf, 32-bit time_t) certificates outlive 2038. */
void kf_rfc3339(int64_t t, char out[32]);
int kf_parse_rfc3339(const char *s, time_t *out);
/* timegm() in 64 bits: seconds since the epoch of a UTC broken-down time (fields in their normal ranges,
 * tm_year since 1900), right past 2038 also where time_t has 32 bits. */
int64_t kf_timegm64(const struct tm *tm);

/* Reads a whole file; returns a malloc'd NUL-terminated buffer (length in *len if len != NULL), or NULL
 * with a message in err naming the path. */
char *kf_read_file(const char *path, size_t *len, struct strbuf *err);
/* Writes data to path atomically: a new temp file beside it (random name, O_CREAT|O_EXCL|O_NOFOLLOW, so
 * nothing planted there is followed or reused), then rename. Returns 0 or -1 with err set. */
int kf_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct strbuf *err);

/* Borrowed lookups: kf_jget(obj, "metadata", "labels", "app", NULL) walks objects by key. Keys may
 * contain dots and slashes (label keys do). Returns NULL when any step is missing or not an object. */
json_t *kf_jget(json_t *obj, ...) __attribute__((sentinel));
/* As kf_jget, but returns the string value or NULL when missing or not a string. */
const char *kf_jstr(json_t *obj, ...) __attribute__((sentinel));
/* The JSON type of v in words for error messages: "object", "array", "string", "number", "boolean", "null". */
const char *kf_json_type_name(const json_t *v);

/* Overwrites n bytes at p with zeros; the compiler cannot drop it (explicit_bzero). */
void kf_wipe(void *p, size_t n);
/* Wipes the string s (strlen bytes) and frees it; NULL is fine. For key PEMs and credentials. */
void kf_free_secret(char *s);

/* A lowercase alphanumeric random suffix of n chars (n < 32), like Kubernetes generateName. */
void kf_random_suffix(char *out, size_t n);

#endif
