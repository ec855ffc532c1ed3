/* test_kube_workqueue.c - client-go work queue semantics: dedup, a key is never processed by two workers
 * at once (several threads), dirty re-add after done, delayed adds in deadline order (earlier deadline
 * wins), per-key exponential backoff with its cap, forget, shutdown waking blocked getters, and the
 * measurements behind the controller's metrics (adds, retries, depth, queue latency, work in progress).
 * Timing checks assert lower bounds strictly and upper bounds generously (valgrind is slow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_workqueue.h"
#include "util/util.h"

static void expect_get(struct kube_workqueue *q, const char *want)
{
	char *k = kube_wq_get(q);
	assert_non_null(k);
	assert_string_equal(k, want);
	kube_wq_done(q, k);
	free(k);
}

static void adds_are_deduplicated_fifo(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 5, 1000);
	kube_wq_add(q, "a");
	kube_wq_add(q, "b");
	kube_wq_add(q, "a");
	kube_wq_add(q, "a");
	kube_wq_add(q, "c");
	assert_int_equal(kube_wq_len(q), 3);
	expect_get(q, "a");
	expect_get(q, "b");
	expect_get(q, "c");
	assert_int_equal(kube_wq_len(q), 0);
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

static void key_added_while_processing_is_requeued_on_done(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 5, 1000);
	kube_wq_add(q, "a");
	char *k = kube_wq_get(q);
	assert_string_equal(k, "a");
	kube_wq_add(q, "a"); /* dirty, but not handed to another worker */
	kube_wq_add(q, "a");
	assert_int_equal(kube_wq_len(q), 0);
	kube_wq_add(q, "b");
	expect_get(q, "b");
	kube_wq_done(q, k); /* now it is queued again, once */
	free(k);
	assert_int_equal(kube_wq_len(q), 1);
	expect_get(q, "a");
	assert_int_equal(kube_wq_len(q), 0);
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

/* ---- many threads ----------------------------------------------------------------------------- */

#define NKEYS 8
#define NADDS 20000
struct stress {
	struct kube_workqueue *q;
	atomic_int busy[NKEYS];
	atomic_int gen[NKEYS];  /* bumped before every add */
	atomic_int seen[NKEYS]; /* gen observed when processing started */
	atomic_int violations, processed;
};

static int key_index(const char *k)
{
	return atoi(k + 1);
}

static void *worker(void *arg)
{
	struct stress *s = arg;
	char *k;
	while ((k = kube_wq_get(s->q))) {
		int i = key_index(k);
		if (atomic_fetch_add(&s->busy[i], 1) != 0)
			atomic_fetch_add(&s->violations, 1);
		atomic_store(&s->seen[i], atomic_load(&s->gen[i]));
		for (volatile int spin = 0; spin < 200; spin++)
			;
		atomic_fetch_sub(&s->busy[i], 1);
		atomic_fetch_add(&s->processed, 1);
		kube_wq_done(s->q, k);
		free(k);
	}
	return NULL;
}

static void *producer(void *arg)
{
	struct stress *s = arg;
	char k[16];
	for (int n = 0; n < NADDS; n++) {
		int i = n % NKEYS;
		snprintf(k, sizeof k, "k%d", i);
		atomic_fetch_add(&s->gen[i], 1);
		kube_wq_add(s->q, k);
	}
	return NULL;
}

static void many_workers_never_share_a_key_and_see_every_last_add(void **state)
{
	(void)state;
	struct stress *s = xcalloc(1, sizeof *s);
	s->q = kube_wq_new("stress", 5, 1000);
	pthread_t w[4], p[2];
	for (int i = 0; i < 4; i++)
		pthread_create(&w[i], NULL, worker, s);
	for (int i = 0; i < 2; i++)
		pthread_create(&p[i], NULL, producer, s);
	for (int i = 0; i < 2; i++)
		pthread_join(p[i], NULL);
	/* drain: wait until nothing is queued and nobody is busy on an outdated generation */
	for (int tries = 0; tries < 2000; tries++) {
		int done = kube_wq_len(s->q) == 0;
		for (int i = 0; i < NKEYS && done; i++)
			done = atomic_load(&s->seen[i]) == atomic_load(&s->gen[i]) && atomic_load(&s->busy[i]) == 0;
		if (done)
			break;
		kf_sleep_ms(5);
	}
	kube_wq_shutdown(s->q);
	for (int i = 0; i < 4; i++)
		pthread_join(w[i], NULL);
	assert_int_equal(atomic_load(&s->violations), 0);
	for (int i = 0; i < NKEYS; i++)
		assert_int_equal(atomic_load(&s->seen[i]), atomic_load(&s->gen[i]));
	/* dedup: far fewer syncs than adds */
	assert_true(atomic_load(&s->processed) >= NKEYS && atomic_load(&s->processed) <= 2 * NADDS);
	kube_wq_free(s->q);
	free(s);
}

/* ---- delays -------------------------------------------------------------------------------------- */

static void delayed_adds_come_out_in_deadline_order(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 5, 1000);
	int64_t t0 = kf_now_ms();
	kube_wq_add_after(q, "c", 300);
	kube_wq_add_after(q, "a", 100);
	kube_wq_add_after(q, "b", 200);
	kube_wq_add_after(q, "now", 0);
	assert_int_equal(kube_wq_len(q), 1);
	expect_get(q, "now");
	assert_int_equal(kube_wq_len(q), 0); /* the others are not due yet */
	expect_get(q, "a");
	int64_t ta = kf_now_ms() - t0;
	expect_get(q, "b");
	int64_t tb = kf_now_ms() - t0;
	expect_get(q, "c");
	int64_t tc = kf_now_ms() - t0;
	assert_true(ta >= 100 && tb >= 200 && tc >= 300);
	assert_true(tc < 1500);
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

static void earlier_deadline_wins_and_due_keys_queue_before_later_adds(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 5, 1000);
	int64_t t0 = kf_now_ms();
	kube_wq_add_after(q, "x", 5000);
	kube_wq_add_after(q, "x", 50); /* earlier: wins */
	kube_wq_add_after(q, "y", 80);
	kube_wq_add_after(q, "y", 5000); /* later: ignored */
	expect_get(q, "x");
	expect_get(q, "y");
	int64_t t = kf_now_ms() - t0;
	assert_true(t >= 80 && t < 2000);
	/* a key that became due before a direct add is queued first, as a timer thread would have done */
	kube_wq_add_after(q, "due", 30);
	kf_sleep_ms(60);
	kube_wq_add(q, "direct");
	expect_get(q, "due");
	expect_get(q, "direct");
	/* a key already queued is not queued again when its delay expires */
	kube_wq_add(q, "z");
	kube_wq_add_after(q, "z", 20);
	kf_sleep_ms(40);
	assert_int_equal(kube_wq_len(q), 1);
	expect_get(q, "z");
	assert_int_equal(kube_wq_len(q), 0);
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

static void rate_limited_backoff_grows_and_is_capped_until_forget(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 20, 100);
	static const int64_t want[] = { 20, 40, 80, 100, 100 };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_int_equal(kube_wq_num_requeues(q, "k"), (int)i);
		int64_t t0 = kf_now_ms();
		kube_wq_add_rate_limited(q, "k");
		expect_get(q, "k");
		int64_t dt = kf_now_ms() - t0;
		if (dt < want[i] || dt > want[i] + 400)
			fail_msg("requeue %zu: waited %lld ms, want %lld", i, (long long)dt, (long long)want[i]);
	}
	assert_int_equal(kube_wq_num_requeues(q, "k"), 5);
	assert_int_equal(kube_wq_num_requeues(q, "other"), 0);
	kube_wq_forget(q, "k");
	assert_int_equal(kube_wq_num_requeues(q, "k"), 0);
	int64_t t0 = kf_now_ms();
	kube_wq_add_rate_limited(q, "k");
	expect_get(q, "k");
	assert_true(kf_now_ms() - t0 < 20 + 400);
	kube_wq_forget(q, "k");
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

/* ---- shutdown ------------------------------------------------------------------------------------ */

static atomic_int got_null;
static void *blocked_getter(void *arg)
{
	char *k = kube_wq_get(arg);
	if (!k)
		atomic_fetch_add(&got_null, 1);
	free(k);
	return NULL;
}

static void shutdown_wakes_getters_and_ignores_adds(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 5, 1000);
	pthread_t th[3];
	atomic_store(&got_null, 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, blocked_getter, q);
	kube_wq_add_after(q, "later", 60000); /* a getter waits on a deadline, not forever */
	kf_sleep_ms(50);
	assert_false(kube_wq_shutting_down(q));
	kube_wq_shutdown(q);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&got_null), 3);
	assert_true(kube_wq_shutting_down(q));
	kube_wq_add(q, "x");
	kube_wq_add_after(q, "y", 1);
	kube_wq_add_rate_limited(q, "z");
	assert_int_equal(kube_wq_len(q), 0);
	assert_null(kube_wq_get(q));
	kube_wq_free(q);

	/* what was already queued at shutdown is still handed out (client-go drains), then NULL */
	q = kube_wq_new("t", 5, 1000);
	kube_wq_add(q, "a");
	kube_wq_shutdown(q);
	expect_get(q, "a");
	assert_null(kube_wq_get(q));
	kube_wq_free(q);
}

/* ---- measurements ---------------------------------------------------------------------------- */

static void stats_count_adds_retries_and_time_the_queue(void **state)
{
	(void)state;
	struct kube_workqueue *q = kube_wq_new("t", 20, 1000);
	struct kube_wq_stats s;
	kube_wq_stats(q, &s);
	assert_int_equal(s.adds, 0);
	assert_int_equal(s.depth + s.delayed + s.processing, 0);

	kube_wq_add(q, "a");
	kube_wq_add(q, "a"); /* already queued: not an add */
	kube_wq_add(q, "b");
	kf_sleep_ms(60);
	int64_t waited = -1;
	char *k = kube_wq_get_timed(q, &waited);
	assert_string_equal(k, "a");
	assert_true(waited >= 60);
	assert_true(waited < 5000);
	kube_wq_stats(q, &s);
	assert_int_equal(s.adds, 2);
	assert_int_equal(s.depth, 1);
	assert_int_equal(s.processing, 1);
	kf_sleep_ms(30);
	kube_wq_stats(q, &s);
	assert_true(s.longest_processing_ms >= 30);
	assert_true(s.unfinished_ms >= s.longest_processing_ms);

	/* added while processing: one add, and its wait runs from that add, not from done() */
	kube_wq_add(q, "a");
	kube_wq_add(q, "a");
	kf_sleep_ms(50);
	kube_wq_done(q, k);
	free(k);
	kube_wq_stats(q, &s);
	assert_int_equal(s.adds, 3);
	assert_int_equal(s.depth, 2);
	assert_int_equal(s.processing, 0);
	assert_int_equal(s.longest_processing_ms, 0);
	k = kube_wq_get_timed(q, &waited); /* b, queued 140 ms ago */
	assert_string_equal(k, "b");
	assert_true(waited >= 140);
	kube_wq_done(q, k);
	free(k);
	k = kube_wq_get_timed(q, &waited);
	assert_string_equal(k, "a");
	assert_true(waited >= 50);
	kube_wq_done(q, k);
	free(k);

	/* rate-limited adds are retries; a delayed key counts as an add when due, its wait from then */
	kube_wq_add_rate_limited(q, "c");
	kube_wq_stats(q, &s);
	assert_int_equal(s.retries, 1);
	assert_int_equal(s.delayed, 1);
	assert_int_equal(s.adds, 3);
	k = kube_wq_get_timed(q, &waited);
	assert_string_equal(k, "c");
	assert_true(waited < 1000);
	kube_wq_stats(q, &s);
	assert_int_equal(s.adds, 4);
	assert_int_equal(s.delayed, 0);
	kube_wq_done(q, k);
	free(k);
	kube_wq_shutdown(q);
	kube_wq_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(adds_are_deduplicated_fifo),
		cmocka_unit_test(key_added_while_processing_is_requeued_on_done),
		cmocka_unit_test(many_workers_never_share_a_key_and_see_every_last_add),
		cmocka_unit_test(delayed_adds_come_out_in_deadline_order),
		cmocka_unit_test(earlier_deadline_wins_and_due_keys_queue_before_later_adds),
		cmocka_unit_test(rate_limited_backoff_grows_and_is_capped_until_forget),
		cmocka_unit_test(shutdown_wakes_getters_and_ignores_adds),
		cmocka_unit_test(stats_count_adds_retries_and_time_the_queue),
	};
	return cmocka_run_group_tests_name("kube_workqueue", tests, NULL, NULL);
}
