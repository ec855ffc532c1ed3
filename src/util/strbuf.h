/* strbuf.h - growable NUL-terminated byte strings (after git's strbuf).
 *
 * A strbuf owns its buffer. `buf` is never NULL after sb_init() (it points at a static "" until the
 * first append), so it can always be printed. Free with sb_release(), or take the buffer with
 * sb_detach() (caller frees it with free()). Allocation failure aborts: these are small strings and
 * a controller that cannot allocate a few bytes cannot do anything useful either. */
#ifndef KF_STRBUF_H
#define KF_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};

#define STRBUF_INIT { sb_empty, 0, 0 }
extern char sb_empty[];

void sb_init(struct strbuf *sb);
void sb_release(struct strbuf *sb);
char *sb_detach(struct strbuf *sb);          /* returns a malloc'd string; sb is reset */
void sb_reset(struct strbuf *sb);            /* len = 0, keeps memory */
void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Appends s percent-encoded for a URL query value or path segment (RFC 3986 unreserved kept). */
void sb_add_urlencoded(struct strbuf *sb, const char *s);
/* Appends s in double quotes with '"' and '\\' escaped, and newline, tab, other control bytes and bytes
 * >= 0x7f written as \n, \t, \xNN: safe in a log line or an error message whatever a client sent. */
void sb_add_quoted(struct strbuf *sb, const char *s);
/* As sb_release, but overwrites the buffer first (key material, credentials). Copies left behind by
 * earlier growth are not reached: size the buffer first (sb_grow) when that matters. */
void sb_release_secret(struct strbuf *sb);

#endif
