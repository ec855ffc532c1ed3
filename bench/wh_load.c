/* wh_load.c - an open-loop HTTPS load generator for bench/webhook.sh: POSTs one body at a fixed rate and
 * reports latency percentiles. wrk measures throughput at a fixed number of connections but has no rate
 * control; this sends on a schedule (rate/threads per keep-alive connection) and measures each latency
 * from the request's scheduled start, so a stall shows up as latency instead of silently lowering the
 * offered load (no coordinated omission).
 *
 *   wh_load URL BODY_FILE RATE SECONDS [THREADS]    (TLS is not verified: loopback benchmark)
 * Output: one line, "rate=<achieved>/s n=<requests> errors=<n> p50=<ms> p90=<ms> p99=<ms> p999=<ms> max=<ms>" */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_url;
static char *g_body;
static long g_len;
static double g_rate, g_secs;

struct worker {
	pthread_t th;
	int id, n_threads;
	double *lat; /* ms */
	size_t n, cap;
	long errors;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, g_url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, g_body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, g_len);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	double interval = w->n_threads / g_rate;
	double start = now_s() + 0.2 + interval * w->id / w->n_threads; /* stagger the threads */
	long total = (long)(g_secs * g_rate / w->n_threads);
	/* warm-up: the TLS handshake is not part of the measurement */
	curl_easy_perform(c);
	for (long i = 0; i < total; i++) {
		double sched = start + i * interval;
		double t = now_s();
		if (t < sched) {
			struct timespec ts = { (time_t)(sched - t), (long)(((sched - t) - (time_t)(sched - t)) * 1e9) };
			nanosleep(&ts, NULL);
		}
		long st = 0;
		if (curl_easy_perform(c) != CURLE_OK || (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st), st != 200))
			w->errors++;
		double lat = (now_s() - sched) * 1000;
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
		}
		w->lat[w->n++] = lat;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s URL BODY_FILE RATE SECONDS [THREADS]\n", argv[0]);
		return 2;
	}
	g_url = argv[1];
	g_rate = atof(argv[3]);
	g_secs = atof(argv[4]);
	int nt = argc > 5 ? atoi(argv[5]) : 4;
	FILE *f = fopen(argv[2], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (g_len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(argv[2]);
		return 1;
	}
	g_body = malloc((size_t)g_len + 1);
	if (fread(g_body, 1, (size_t)g_len, f) != (size_t)g_len) {
		perror(argv[2]);
		return 1;
	}
	fclose(f);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct worker *w = calloc((size_t)nt, sizeof *w);
	double t0 = now_s();
	for (int i = 0; i < nt; i++) {
		w[i].id = i;
		w[i].n_threads = nt;
		pthread_create(&w[i].th, NULL, run, &w[i]);
	}
	size_t n = 0;
	long errors = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(w[i].th, NULL);
		n += w[i].n;
		errors += w[i].errors;
	}
	double elapsed = now_s() - t0 - 0.2;
	double *all = malloc((n ? n : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < nt; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
		k += w[i].n;
		free(w[i].lat);
	}
	qsort(all, n, sizeof *all, cmp);
#define PCT(p) (n ? all[(size_t)((double)(n - 1) * (p))] : 0)
	printf("rate=%.0f/s n=%zu errors=%ld p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f\n", n / elapsed, n, errors,
	       PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), n ? all[n - 1] : 0);
	free(all);
	free(w);
	free(g_body);
	curl_global_cleanup();
	return errors ? 1 : 0;
}
