/* log.c - klog-format logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_verbosity;
int log_stderr_threshold = LOG_LVL_INFO;

int log_set_threshold(const char *s)
{
	static const char *names[] = { "INFO", "WARNING", "ERROR", "FATAL" };
	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(s, names[i]) || (s[0] == '0' + i && s[1] == '\0')) {
			log_stderr_threshold = i;
			return 0;
		}
	}
	return -1;
}

void log_line(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	if ((int)lvl < log_stderr_threshold)
		return;
	char buf[4096];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	int n = snprintf(buf, sizeof buf, "%c%02d%02d %02d:%02d:%02d.%06ld %7ld %s:%d] ", "IWEF"[lvl],
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
			 (long)syscall(SYS_gettid), base, line);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof buf - 2)
		len = sizeof buf - 2;
	buf[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
}
