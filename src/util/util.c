/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		abort();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb_detach(&sb);
}

int64_t kf_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kf_sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int kf_parse_duration(const char *s, int64_t *out_ms)
{
	static const struct { const char *unit; double ms; } units[] = {
		{ "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
		{ "s", 1e3 },   { "m", 60e3 },  { "h", 3600e3 },
	};
	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0")) {
		*out_ms = 0;
		return 0;
	}
	double total = 0;
	const char *p = s;
	while (*p) {
		char *end;
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return -1;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno)
			return -1;
		p = end;
		size_t best = 0;
		double mult = -1;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t l = strlen(units[i].unit);
			/* "m" must not swallow the "m" of "ms": prefer the longest unit that matches */
			if (!strncmp(p, units[i].unit, l) && l > best) {
				best = l;
				mult = units[i].ms;
			}
		}
		if (mult < 0)
			return -1;
		p += best;
		total += v * mult;
	}
	if (total > 9.2e15)
		return -1;
	*out_ms = (int64_t)llround(total);
	return 0;
}

void kf_format_duration(int64_t ms, char *buf, size_t n)
{
	if (ms == 0) {
		snprintf(buf, n, "0s");
	} else if (ms < 1000) {
		snprintf(buf, n, "%lldms", (long long)ms);
	} else {
		long long h = ms / 3600000, m = (ms / 60000) % 60, sec = (ms / 1000) % 60, frac = ms % 1000;
		char s[32];
		if (frac)
			snprintf(s, sizeof s, "%lld.%03llds", sec, frac);
		else
			snprintf(s, sizeof s, "%llds", sec);
		if (h)
			snprintf(buf, n, "%lldh%lldm%s", h, m, s);
		else if (m)
			snprintf(buf, n, "%lldm%s", m, s);
		else
			snprintf(buf, n, "%s", s);
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date and back (H. Hinnant's algorithms): plain integer
 * arithmetic, so no dependency on the width of time_t. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

int64_t kf_timegm64(const struct tm *tm)
{
	return days_from_civil((int64_t)tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday) * 86400 +
	       tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
}

void kf_rfc3339(int64_t t, char out[32])
{
	int64_t days = t / 86400, secs = t % 86400, y;
	int m, d;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(secs / 3600),
		 (int)(secs / 60 % 60), (int)(secs % 60));
}

int kf_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return -1;
		off = (hh * 3600L + mm * 60L) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*out = timegm(&tm) - off;
	return 0;
}

char *kf_read_file(const char *path, size_t *len, struct strbuf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sb_addf(err, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct strbuf sb = STRBUF_INIT;
	for (;;) {
		sb_grow(&sb, 8192);
		ssize_t r = read(fd, sb.buf + sb.len, sb.alloc - sb.len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			sb_addf(err, "cannot read %s: %s", path, strerror(errno));
			close(fd);
			sb_release(&sb);
			return NULL;
		}
		if (r == 0)
			break;
		sb.len += (size_t)r;
		sb.buf[sb.len] = '\0';
	}
	close(fd);
	if (len)
		*len = sb.len;
	return sb_detach(&sb);
}

int kf_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct strbuf *err)
{
	char *tmp = NULL;
	int fd = -1, rc = -1;
	for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
		char sfx[9];
		kf_random_suffix(sfx, 8);
		free(tmp);
		tmp = xasprintf("%s.tmp.%s", path, sfx);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		sb_addf(err, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			sb_addf(err, "cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		p += w;
		left -= (size_t)w;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		sb_addf(err, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

void kf_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void kf_free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static json_t *jget_v(json_t *obj, va_list ap)
{
	const char *k;
	while (obj && (k = va_arg(ap, const char *)))
		obj = json_is_object(obj) ? json_object_get(obj, k) : NULL;
	return obj;
}

json_t *kf_jget(json_t *obj, ...)
{
	va_list ap;
	va_start(ap, obj);
	json_t *r = jget_v(obj, ap);
	va_end(ap);
	return r;
}

const char *kf_jstr(json_t *obj, ...)
{
	va_list ap;
	va_start(ap, obj);
	json_t *r = jget_v(obj, ap);
	va_end(ap);
	return json_is_string(r) ? json_string_value(r) : NULL;
}

void kf_random_suffix(char *out, size_t n)
{
	static const char al[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[32];
	if (n > 31)
		n = 31;
	if (getrandom(rnd, n, 0) != (ssize_t)n)
		for (size_t i = 0; i < n; i++)
			rnd[i] = (unsigned char)rand();
	for (size_t i = 0; i < n; i++)
		out[i] = al[rnd[i] % (sizeof al - 1)];
	out[n] = '\0';
}

const char *kf_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}
