/* test_agent_sched.c - the pull scheduler's limits: at most per_node pulls of a node and per_registry
 * pulls of a node from one registry run at once, nodes are served round robin, a job blocked by its
 * registry's limit lets later jobs of other registries go ahead; and with real worker threads the limits
 * hold and are reached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_sched.h"
#include "util/util.h"

struct tjob {
	struct agent_job base;
	int node, reg, id;
};

static struct tjob *mk(struct agent_sched_node *sn, int node, const char *reg, int id)
{
	struct tjob *j = xcalloc(1, sizeof *j);
	j->base.sn = sn;
	j->base.registry = xstrdup(reg);
	j->node = node;
	j->reg = reg[3] - '0';
	j->id = id;
	return j;
}

static void tfree(struct tjob *j)
{
	free(j->base.registry);
	free(j);
}

static void never(void *ud, struct agent_job *j)
{
	(void)ud;
	(void)j;
	fail_msg("no worker thread in this test");
}

static void limits_without_threads(void **state)
{
	(void)state;
	struct agent_sched_opts o = { 1, 3, 2 };
	struct agent_sched *s = agent_sched_new(&o, never, NULL);
	struct agent_sched_node a = { 0 }, b = { 0 };
	for (int i = 0; i < 6; i++)
		agent_sched_submit(s, &mk(&a, 0, "reg1", i)->base);
	for (int i = 6; i < 10; i++)
		agent_sched_submit(s, &mk(&a, 0, "reg2", i)->base);
	for (int i = 0; i < 3; i++)
		agent_sched_submit(s, &mk(&b, 1, "reg1", 100 + i)->base);

	struct tjob *taken[16];
	int n = 0, per_node[2] = { 0 }, a_reg[3] = { 0 };
	struct agent_job *j;
	while ((j = agent_sched_take(s))) {
		struct tjob *t = (struct tjob *)j;
		taken[n++] = t;
		per_node[t->node]++;
		if (t->node == 0)
			a_reg[t->reg]++;
	}
	/* A: 3 (its limit), 2 from reg1 (the registry limit) and so one from reg2 although queued later;
	 * B: 2 (reg1's limit). Round robin: the second job taken is B's. */
	assert_int_equal(n, 5);
	assert_int_equal(per_node[0], 3);
	assert_int_equal(per_node[1], 2);
	assert_int_equal(a_reg[1], 2);
	assert_int_equal(a_reg[2], 1);
	assert_int_equal(taken[0]->node, 0);
	assert_int_equal(taken[1]->node, 1);
	size_t waiting, running;
	agent_sched_counts(s, &waiting, &running);
	assert_int_equal(waiting, 8);
	assert_int_equal(running, 5);
	/* a finished reg1 pull of A frees a slot for A's next reg1 job, in order */
	for (int i = 0; i < n; i++) {
		if (taken[i]->node == 0 && taken[i]->reg == 1) {
			agent_sched_finish(s, &taken[i]->base);
			tfree(taken[i]);
			taken[i] = NULL;
			break;
		}
	}
	j = agent_sched_take(s);
	assert_non_null(j);
	assert_int_equal(((struct tjob *)j)->node, 0);
	assert_int_equal(((struct tjob *)j)->id, 2);
	assert_null(agent_sched_take(s));
	agent_sched_finish(s, j);
	tfree((struct tjob *)j);
	for (int i = 0; i < n; i++) {
		if (taken[i]) {
			agent_sched_finish(s, &taken[i]->base);
			tfree(taken[i]);
		}
	}
	agent_sched_stop(s, NULL);
	agent_sched_counts(s, &waiting, &running);
	assert_int_equal(waiting + running, 0);
	agent_sched_node_release(&a);
	agent_sched_node_release(&b);
	agent_sched_free(s);
}

/* ---- with threads ---- */

struct watch {
	pthread_mutex_t mu;
	int now_node[3], max_node[3];
	int now_reg[3][3], max_reg[3][3];
	int done;
};

static void run(void *ud, struct agent_job *job)
{
	struct watch *w = ud;
	struct tjob *j = (struct tjob *)job;
	pthread_mutex_lock(&w->mu);
	if (++w->now_node[j->node] > w->max_node[j->node])
		w->max_node[j->node] = w->now_node[j->node];
	if (++w->now_reg[j->node][j->reg] > w->max_reg[j->node][j->reg])
		w->max_reg[j->node][j->reg] = w->now_reg[j->node][j->reg];
	pthread_mutex_unlock(&w->mu);
	kf_sleep_ms(15);
	pthread_mutex_lock(&w->mu);
	w->now_node[j->node]--;
	w->now_reg[j->node][j->reg]--;
	w->done++;
	pthread_mutex_unlock(&w->mu);
	tfree(j);
}

static void limits_hold_with_threads(void **state)
{
	(void)state;
	struct watch w;
	memset(&w, 0, sizeof w);
	pthread_mutex_init(&w.mu, NULL);
	struct agent_sched_opts o = { 8, 3, 2 };
	struct agent_sched *s = agent_sched_new(&o, run, &w);
	struct agent_sched_node sn[3];
	memset(sn, 0, sizeof sn);
	assert_int_equal(agent_sched_start(s), 0);
	int total = 0;
	for (int node = 0; node < 3; node++)
		for (int i = 0; i < 12; i++, total++)
			agent_sched_submit(s, &mk(&sn[node], node, i % 2 ? "reg1" : "reg2", i)->base);
	for (int t = 0; t < 500; t++) {
		pthread_mutex_lock(&w.mu);
		int done = w.done;
		pthread_mutex_unlock(&w.mu);
		if (done == total)
			break;
		kf_sleep_ms(10);
	}
	agent_sched_stop(s, NULL);
	assert_int_equal(w.done, total);
	for (int node = 0; node < 3; node++) {
		assert_true(w.max_node[node] <= 3);
		assert_true(w.max_reg[node][1] <= 2);
		assert_true(w.max_reg[node][2] <= 2);
		/* and the limits are used, not just respected */
		assert_int_equal(w.max_node[node], 3);
		agent_sched_node_release(&sn[node]);
	}
	agent_sched_free(s);
	pthread_mutex_destroy(&w.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(limits_without_threads),
		cmocka_unit_test(limits_hold_with_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
