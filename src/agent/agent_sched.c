/* agent_sched.c - the pull scheduler (see agent_sched.h). */
#include "agent_sched.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

struct agent_sched {
	struct agent_sched_opts o;
	void (*run)(void *ud, struct agent_job *job);
	void *ud;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct agent_sched_node *ring; /* a node with waiting jobs; walk from here */
	size_t waiting, running;
	int stopping;
	pthread_t *threads;
	int n_threads;
};

struct agent_sched *agent_sched_new(const struct agent_sched_opts *o, void (*run)(void *ud, struct agent_job *job),
				    void *ud)
{
	struct agent_sched *s = xcalloc(1, sizeof *s);
	s->o = *o;
	if (s->o.workers < 1)
		s->o.workers = 1;
	if (s->o.per_node < 1)
		s->o.per_node = 1;
	if (s->o.per_registry < 1)
		s->o.per_registry = 1;
	s->run = run;
	s->ud = ud;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	return s;
}

static struct agent_sched_reg *reg_of(struct agent_sched_node *sn, const char *registry, int create)
{
	for (size_t i = 0; i < sn->n_regs; i++)
		if (!strcmp(sn->regs[i].registry, registry))
			return &sn->regs[i];
	if (!create)
		return NULL;
	sn->regs = xrealloc(sn->regs, (sn->n_regs + 1) * sizeof *sn->regs);
	sn->regs[sn->n_regs].registry = xstrdup(registry);
	sn->regs[sn->n_regs].running = 0;
	return &sn->regs[sn->n_regs++];
}

static void ring_add(struct agent_sched *s, struct agent_sched_node *sn)
{
	if (sn->in_ring)
		return;
	sn->in_ring = 1;
	if (!s->ring) {
		sn->ring_next = sn->ring_prev = sn;
		s->ring = sn;
		return;
	}
	/* before the current head: it is visited last in this round */
	sn->ring_next = s->ring;
	sn->ring_prev = s->ring->ring_prev;
	s->ring->ring_prev->ring_next = sn;
	s->ring->ring_prev = sn;
}

static void ring_del(struct agent_sched *s, struct agent_sched_node *sn)
{
	if (!sn->in_ring)
		return;
	sn->in_ring = 0;
	if (sn->ring_next == sn) {
		s->ring = NULL;
	} else {
		sn->ring_prev->ring_next = sn->ring_next;
		sn->ring_next->ring_prev = sn->ring_prev;
		if (s->ring == sn)
			s->ring = sn->ring_next;
	}
	sn->ring_next = sn->ring_prev = NULL;
}

void agent_sched_submit(struct agent_sched *s, struct agent_job *job)
{
	pthread_mutex_lock(&s->mu);
	struct agent_sched_node *sn = job->sn;
	job->next = NULL;
	if (sn->tail)
		sn->tail->next = job;
	else
		sn->head = job;
	sn->tail = job;
	sn->waiting++;
	s->waiting++;
	ring_add(s, sn);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* The first runnable job of sn (unlinked), or NULL. Call locked. */
static struct agent_job *take_from(struct agent_sched *s, struct agent_sched_node *sn)
{
	if (sn->running >= s->o.per_node)
		return NULL;
	struct agent_job *prev = NULL;
	for (struct agent_job *j = sn->head; j; prev = j, j = j->next) {
		struct agent_sched_reg *r = reg_of(sn, j->registry ? j->registry : "", 1);
		if (r->running >= s->o.per_registry)
			continue;
		if (prev)
			prev->next = j->next;
		else
			sn->head = j->next;
		if (sn->tail == j)
			sn->tail = prev;
		j->next = NULL;
		sn->waiting--;
		s->waiting--;
		sn->running++;
		r->running++;
		s->running++;
		if (!sn->waiting)
			ring_del(s, sn);
		return j;
	}
	return NULL;
}

/* Walks the ring once from its head; the node served moves to the back. Call locked. */
static struct agent_job *take_locked(struct agent_sched *s)
{
	struct agent_sched_node *start = s->ring, *sn = start;
	if (!sn)
		return NULL;
	do {
		struct agent_sched_node *next = sn->ring_next;
		struct agent_job *j = take_from(s, sn);
		if (j) {
			/* round robin: the next search starts after this node (ring_del moved the head already
			 * when the node left the ring) */
			if (sn->in_ring)
				s->ring = sn->ring_next;
			return j;
		}
		sn = next;
	} while (sn != start);
	return NULL;
}

struct agent_job *agent_sched_take(struct agent_sched *s)
{
	pthread_mutex_lock(&s->mu);
	struct agent_job *j = take_locked(s);
	pthread_mutex_unlock(&s->mu);
	return j;
}

void agent_sched_finish(struct agent_sched *s, struct agent_job *job)
{
	pthread_mutex_lock(&s->mu);
	struct agent_sched_node *sn = job->sn;
	struct agent_sched_reg *r = reg_of(sn, job->registry ? job->registry : "", 0);
	if (r)
		r->running--;
	sn->running--;
	s->running--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg)
{
	struct agent_sched *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct agent_job *j = NULL;
		while (!s->stopping && !(j = take_locked(s)))
			pthread_cond_wait(&s->cv, &s->mu);
		if (!j)
			break;
		pthread_mutex_unlock(&s->mu);
		/* finish before run: run frees the job, and the slot must be released after the pull only */
		struct agent_job copy = *j;
		char *reg = xstrdup(j->registry ? j->registry : "");
		copy.registry = reg;
		s->run(s->ud, j);
		agent_sched_finish(s, &copy);
		free(reg);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int agent_sched_start(struct agent_sched *s)
{
	s->threads = xcalloc((size_t)s->o.workers, sizeof *s->threads);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < s->o.workers; i++) {
		if (pthread_create(&s->threads[i], &attr, worker, s)) {
			LOG_ERROR("cannot start pull worker %d", i);
			pthread_attr_destroy(&attr);
			return -1;
		}
		s->n_threads++;
	}
	pthread_attr_destroy(&attr);
	return 0;
}

void agent_sched_stop(struct agent_sched *s, void (*drop)(void *ud, struct agent_job *job))
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->n_threads; i++)
		pthread_join(s->threads[i], NULL);
	s->n_threads = 0;
	pthread_mutex_lock(&s->mu);
	while (s->ring) {
		struct agent_sched_node *sn = s->ring;
		while (sn->head) {
			struct agent_job *j = sn->head;
			sn->head = j->next;
			sn->waiting--;
			s->waiting--;
			if (drop) {
				drop(s->ud, j);
			} else {
				free(j->registry);
				free(j);
			}
		}
		sn->tail = NULL;
		ring_del(s, sn);
	}
	pthread_mutex_unlock(&s->mu);
}

void agent_sched_node_release(struct agent_sched_node *sn)
{
	for (size_t i = 0; i < sn->n_regs; i++)
		free(sn->regs[i].registry);
	free(sn->regs);
	sn->regs = NULL;
	sn->n_regs = 0;
}

void agent_sched_free(struct agent_sched *s)
{
	if (!s)
		return;
	free(s->threads);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

void agent_sched_counts(struct agent_sched *s, size_t *waiting, size_t *running)
{
	pthread_mutex_lock(&s->mu);
	*waiting = s->waiting;
	*running = s->running;
	pthread_mutex_unlock(&s->mu);
}
