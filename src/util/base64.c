/* base64.c - see base64.h. A table-free decoder: four sextets at a time, whitespace skipped. */
#include "base64.h"

#include <stdlib.h>

#include "util.h"

static int sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

unsigned char *kf_base64_decode(const char *s, size_t len, size_t *out_len, size_t *bad_pos)
{
	unsigned char *out = xmalloc(len / 4 * 3 + 4);
	size_t n = 0, pads = 0, i;
	unsigned acc = 0, have = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v')
			continue;
		if (c == '=') {
			pads++;
			continue;
		}
		int v = sextet(c);
		if (v < 0 || pads) /* bad character, or data after padding */
			goto bad;
		acc = acc << 6 | (unsigned)v;
		if (++have == 4) {
			out[n++] = (unsigned char)(acc >> 16);
			out[n++] = (unsigned char)(acc >> 8);
			out[n++] = (unsigned char)acc;
			acc = have = 0;
		}
	}
	if (have == 1 || pads > 2 || (pads && have + pads != 4))
		goto bad;
	if (have == 2) {
		out[n++] = (unsigned char)(acc >> 4);
	} else if (have == 3) {
		out[n++] = (unsigned char)(acc >> 10);
		out[n++] = (unsigned char)(acc >> 2);
	}
	out[n] = '\0';
	if (out_len)
		*out_len = n;
	return out;
bad:
	if (bad_pos)
		*bad_pos = i < len ? i : len;
	free(out);
	return NULL;
}

char *kf_base64_encode(const void *data, size_t len)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*o++ = al[v >> 18];
		*o++ = al[(v >> 12) & 63];
		*o++ = al[(v >> 6) & 63];
		*o++ = al[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		*o++ = al[v >> 18];
		*o++ = al[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		*o++ = al[v >> 18];
		*o++ = al[(v >> 12) & 63];
		*o++ = al[(v >> 6) & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}
