/* metrics.c - Prometheus text-format metrics (see metrics.h). A family keeps its series in a hash map
 * keyed by the label values joined with \x1f (a byte no sane label value holds; values containing it
 * still work, only two distinct tuples could share a series). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "util.h"

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct series {
	char **values;     /* n_labels label values */
	double v;          /* counter / gauge value */
	uint64_t *buckets; /* histogram: per-bucket (non-cumulative) counts, n_buckets + 1 (+Inf) */
	double sum;
	uint64_t count;
};

struct metric {
	char *name, *help;
	enum metric_type type;
	char **labels;
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	pthread_mutex_t mu;
	struct map series; /* key -> struct series * */
	struct metric *next;
};

struct metrics {
	pthread_mutex_t mu; /* the family list */
	struct metric *head, *tail;
	void (*on_collect[8])(void *ud);
	void *collect_ud[8];
	int n_collect;
};

struct metrics *metrics_new(void)
{
	struct metrics *r = xcalloc(1, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void metrics_free(struct metrics *r)
{
	if (!r)
		return;
	struct metric *m = r->head;
	while (m) {
		struct metric *next = m->next;
		const char *k;
		void *v;
		for (size_t it = 0; map_next(&m->series, &it, &k, &v);) {
			struct series *s = v;
			for (size_t i = 0; i < m->n_labels; i++)
				free(s->values[i]);
			free(s->values);
			free(s->buckets);
			free(s);
		}
		map_free(&m->series, NULL);
		for (size_t i = 0; i < m->n_labels; i++)
			free(m->labels[i]);
		free(m->labels);
		free(m->bounds);
		free(m->name);
		free(m->help);
		pthread_mutex_destroy(&m->mu);
		free(m);
		m = next;
	}
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static int valid_name(const char *s, int label)
{
	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (!label && *p == ':') ||
			 (p > s && *p >= '0' && *p <= '9');
		if (!ok)
			return 0;
	}
	return 1;
}

static struct metric *add_family(struct metrics *r, const char *name, const char *help, const char *labels,
				 enum metric_type type)
{
	if (!valid_name(name, 0)) {
		fprintf(stderr, "metrics: invalid metric name \"%s\"\n", name ? name : "");
		abort();
	}
	struct metric *m = xcalloc(1, sizeof *m);
	m->name = xstrdup(name);
	m->help = xstrdup(help ? help : "");
	m->type = type;
	pthread_mutex_init(&m->mu, NULL);
	if (labels && *labels) {
		const char *p = labels;
		while (p) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			char *l = xstrndup(p, n);
			if (!valid_name(l, 1) || !strncmp(l, "__", 2) || (type == M_HISTOGRAM && !strcmp(l, "le"))) {
				fprintf(stderr, "metrics: %s: invalid label name \"%s\"\n", name, l);
				abort();
			}
			m->labels = xrealloc(m->labels, (m->n_labels + 1) * sizeof *m->labels);
			m->labels[m->n_labels++] = l;
			p = comma ? comma + 1 : NULL;
		}
	}
	pthread_mutex_lock(&r->mu);
	for (struct metric *o = r->head; o; o = o->next) {
		if (!strcmp(o->name, name)) {
			fprintf(stderr, "metrics: %s registered twice\n", name);
			abort();
		}
	}
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	pthread_mutex_unlock(&r->mu);
	return m;
}

struct metric *metrics_counter(struct metrics *r, const char *name, const char *help, const char *labels)
{
	return add_family(r, name, help, labels, M_COUNTER);
}

struct metric *metrics_gauge(struct metrics *r, const char *name, const char *help, const char *labels)
{
	return add_family(r, name, help, labels, M_GAUGE);
}

struct metric *metrics_histogram(struct metrics *r, const char *name, const char *help, const char *labels,
				 const double *buckets, size_t n_buckets)
{
	struct metric *m = add_family(r, name, help, labels, M_HISTOGRAM);
	m->bounds = xcalloc(n_buckets ? n_buckets : 1, sizeof *m->bounds);
	memcpy(m->bounds, buckets, n_buckets * sizeof *buckets);
	m->n_bounds = n_buckets;
	return m;
}

void metrics_on_collect(struct metrics *r, void (*fn)(void *ud), void *ud)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_collect == 8) {
		fprintf(stderr, "metrics: more than 8 collect hooks\n");
		abort();
	}
	r->on_collect[r->n_collect] = fn;
	r->collect_ud[r->n_collect++] = ud;
	pthread_mutex_unlock(&r->mu);
}

/* The series for the label values in ap; created when create is set. Call with m->mu held. */
static struct series *lookup(struct metric *m, va_list ap, int create)
{
	const char *vals[16];
	struct strbuf key = STRBUF_INIT;
	size_t n = m->n_labels < 16 ? m->n_labels : 16;
	for (size_t i = 0; i < n; i++) {
		const char *v = va_arg(ap, const char *);
		vals[i] = v ? v : "";
		if (i)
			sb_addc(&key, '\x1f');
		sb_adds(&key, vals[i]);
	}
	struct series *s = map_get(&m->series, key.buf);
	if (!s && create) {
		s = xcalloc(1, sizeof *s);
		s->values = xcalloc(n ? n : 1, sizeof *s->values);
		for (size_t i = 0; i < n; i++)
			s->values[i] = xstrdup(vals[i]);
		if (m->type == M_HISTOGRAM)
			s->buckets = xcalloc(m->n_bounds + 1, sizeof *s->buckets);
		map_put(&m->series, key.buf, s);
	}
	sb_release(&key);
	return s;
}

void metric_add(struct metric *m, double v, ...)
{
	if (m->type == M_HISTOGRAM || (m->type == M_COUNTER && !(v >= 0)))
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&m->mu);
	lookup(m, ap, 1)->v += v;
	pthread_mutex_unlock(&m->mu);
	va_end(ap);
}

void metric_set(struct metric *m, double v, ...)
{
	if (m->type == M_HISTOGRAM)
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&m->mu);
	lookup(m, ap, 1)->v = v;
	pthread_mutex_unlock(&m->mu);
	va_end(ap);
}

void metric_observe(struct metric *m, double v, ...)
{
	if (m->type != M_HISTOGRAM)
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&m->mu);
	struct series *s = lookup(m, ap, 1);
	size_t b = 0;
	while (b < m->n_bounds && v > m->bounds[b])
		b++;
	s->buckets[b]++;
	s->sum += v;
	s->count++;
	pthread_mutex_unlock(&m->mu);
	va_end(ap);
}

double metric_value(struct metric *m, ...)
{
	va_list ap;
	va_start(ap, m);
	pthread_mutex_lock(&m->mu);
	struct series *s = lookup(m, ap, 0);
	double v = !s ? 0 : m->type == M_HISTOGRAM ? (double)s->count : s->v;
	pthread_mutex_unlock(&m->mu);
	va_end(ap);
	return v;
}

/* Prometheus' float format: integers without a fraction, +Inf/-Inf/NaN spelled out. */
static void add_value(struct strbuf *out, double v)
{
	if (isnan(v))
		sb_adds(out, "NaN");
	else if (isinf(v))
		sb_adds(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		sb_addf(out, "%.0f", v);
	else
		sb_addf(out, "%.17g", v);
}

static void add_escaped(struct strbuf *out, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			sb_adds(out, "\\\\");
		else if (*s == '\n')
			sb_adds(out, "\\n");
		else if (quote && *s == '"')
			sb_adds(out, "\\\"");
		else
			sb_addc(out, *s);
	}
}

/* name{l1="v1",...[,le="x"]} */
static void add_series_name(struct strbuf *out, const struct metric *m, const char *suffix, const struct series *s,
			    const char *le)
{
	sb_adds(out, m->name);
	sb_adds(out, suffix);
	if (!m->n_labels && !le)
		return;
	sb_addc(out, '{');
	for (size_t i = 0; i < m->n_labels; i++) {
		sb_addf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
		add_escaped(out, s->values[i], 1);
		sb_addc(out, '"');
	}
	if (le)
		sb_addf(out, "%sle=\"%s\"", m->n_labels ? "," : "", le);
	sb_addc(out, '}');
}

static int cmp_series(const void *a, const void *b, void *ud)
{
	const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
	size_t n = *(const size_t *)ud;
	for (size_t i = 0; i < n; i++) {
		int c = strcmp(x->values[i], y->values[i]);
		if (c)
			return c;
	}
	return 0;
}

static void render_family(struct metric *m, struct strbuf *out)
{
	static const char *types[] = { "counter", "gauge", "histogram" };
	sb_addf(out, "# HELP %s ", m->name);
	add_escaped(out, m->help, 0);
	sb_addf(out, "\n# TYPE %s %s\n", m->name, types[m->type]);
	pthread_mutex_lock(&m->mu);
	size_t n = m->series.len, k = 0;
	struct series **v = xcalloc(n ? n : 1, sizeof *v);
	const char *key;
	void *val;
	for (size_t it = 0; map_next(&m->series, &it, &key, &val);)
		v[k++] = val;
	qsort_r(v, k, sizeof *v, cmp_series, &m->n_labels);
	for (size_t i = 0; i < k; i++) {
		struct series *s = v[i];
		if (m->type != M_HISTOGRAM) {
			add_series_name(out, m, "", s, NULL);
			sb_addc(out, ' ');
			add_value(out, s->v);
			sb_addc(out, '\n');
			continue;
		}
		uint64_t cum = 0;
		for (size_t b = 0; b <= m->n_bounds; b++) {
			char le[40];
			cum += s->buckets[b];
			if (b < m->n_bounds) {
				struct strbuf t = STRBUF_INIT;
				add_value(&t, m->bounds[b]);
				snprintf(le, sizeof le, "%s", t.buf);
				sb_release(&t);
			} else
				snprintf(le, sizeof le, "+Inf");
			add_series_name(out, m, "_bucket", s, le);
			sb_addf(out, " %llu\n", (unsigned long long)cum);
		}
		add_series_name(out, m, "_sum", s, NULL);
		sb_addc(out, ' ');
		add_value(out, s->sum);
		sb_addc(out, '\n');
		add_series_name(out, m, "_count", s, NULL);
		sb_addf(out, " %llu\n", (unsigned long long)s->count);
	}
	pthread_mutex_unlock(&m->mu);
	free(v);
}

void metrics_render(struct metrics *r, struct strbuf *out)
{
	pthread_mutex_lock(&r->mu);
	int n = r->n_collect;
	void (*fn[8])(void *);
	void *ud[8];
	memcpy(fn, r->on_collect, sizeof fn);
	memcpy(ud, r->collect_ud, sizeof ud);
	struct metric *head = r->head;
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < n; i++)
		fn[i](ud[i]);
	for (struct metric *m = head; m;) {
		render_family(m, out);
		pthread_mutex_lock(&r->mu);
		m = m->next;
		pthread_mutex_unlock(&r->mu);
	}
}
