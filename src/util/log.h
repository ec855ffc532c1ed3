/* log.h - leveled logging to stderr in klog's line format, so kube-fledged logs read like any other
 * Kubernetes component's:  I1122 04:42:07.123456   1234 controller.c:88] message
 *
 * Thread safe (one write(2) per line). Verbosity follows glog: LOG_V(n, ...) prints when -v >= n.
 * Nothing here ever exits the process. */
#ifndef KF_LOG_H
#define KF_LOG_H

enum log_level { LOG_LVL_INFO = 0, LOG_LVL_WARNING = 1, LOG_LVL_ERROR = 2, LOG_LVL_FATAL = 3 };

extern int log_verbosity;        /* -v / --v */
extern int log_stderr_threshold; /* --stderrthreshold: lines below it are dropped (glog semantics) */

void log_line(enum log_level lvl, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Parses INFO/WARNING/ERROR/FATAL or 0..3 into log_stderr_threshold; returns -1 on bad input. */
int log_set_threshold(const char *s);

#define LOG_INFO(...) log_line(LOG_LVL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define LOG_WARN(...) log_line(LOG_LVL_WARNING, __FILE__, __LINE__, __VA_ARGS__)
#define LOG_ERROR(...) log_line(LOG_LVL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define LOG_V(n, ...)                                                          \
	do {                                                                   \
		if (log_verbosity >= (n))                                      \
			log_line(LOG_LVL_INFO, __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#endif
