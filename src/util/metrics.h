/* metrics.h - Prometheus metrics in the text exposition format (version 0.0.4): counters, gauges and
 * histograms, each a family with a fixed list of label names and one series per distinct tuple of label
 * values. Small and generic, for every kubefledged command that serves /metrics (metrics_http.h).
 *
 *   struct metrics *m = metrics_new();
 *   struct metric *pulls = metrics_counter(m, "kubefledged_agent_pulls_total", "Image pulls.", "result,reason");
 *   metric_add(pulls, 1, "success", "");
 *   struct metric *dur = metrics_histogram(m, "kubefledged_agent_pull_duration_seconds", "...", "",
 *                                          buckets, n_buckets);
 *   metric_observe(dur, 1.7);
 *   metrics_render(m, &sb);                  -> "# HELP ...\n# TYPE ...\nname{labels} value\n..."
 *
 * Thread safe: every family has its own mutex, taken for the few instructions of an update; rendering
 * takes them one family at a time. Label values are given as varargs, exactly as many as the family has
 * label names (const char *, NULL counts as ""). Families are rendered in registration order, series
 * sorted by label values, so the output is stable.
 *
 * Ownership: the registry owns its families (metrics_free frees them); a struct metric * stays valid
 * until then. Names and label names are copied. */
#ifndef KF_METRICS_H
#define KF_METRICS_H

#include <stddef.h>

#include "strbuf.h"

struct metrics;
struct metric;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *r);

/* labels: comma-separated label names ("result,reason"), or NULL / "" for none. The name must be a valid
 * metric name and each label name a valid label name (not "le" for histograms); an invalid one, or a name
 * registered twice, aborts (a programming error, caught by the first test run). */
struct metric *metrics_counter(struct metrics *r, const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(struct metrics *r, const char *name, const char *help, const char *labels);
/* buckets: upper bounds in increasing order (the +Inf bucket is implicit); copied. */
struct metric *metrics_histogram(struct metrics *r, const char *name, const char *help, const char *labels,
				 const double *buckets, size_t n_buckets);

/* Counters: add v >= 0 (negative values are ignored). Gauges: add any v. */
void metric_add(struct metric *m, double v, ...);
/* Gauges; also counters that mirror a count kept elsewhere (set from a collect hook). */
void metric_set(struct metric *m, double v, ...);
/* Histograms only. */
void metric_observe(struct metric *m, double v, ...);
/* The value of a counter or gauge series, or the count of a histogram series; 0 if the series does not
 * exist. For tests and for commands that print their own figures. */
double metric_value(struct metric *m, ...);

/* fn runs at the start of every metrics_render (e.g. to set gauges from live state), in the order they
 * were added; up to 8 per registry. */
void metrics_on_collect(struct metrics *r, void (*fn)(void *ud), void *ud);

/* Appends the whole registry in the text format to out. */
void metrics_render(struct metrics *r, struct strbuf *out);

#endif
