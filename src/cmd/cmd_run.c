/* cmd_run.c - signals and leader election for the long-running subcommands (cmd_run.h). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd_run.h"
#include "util/log.h"
#include "util/util.h"

static volatile int *stop_ptr;
static volatile sig_atomic_t signals_seen;
static volatile int leadership_lost;

static void on_signal(int sig)
{
	(void)sig;
	if (signals_seen++)
		_exit(1);
	if (stop_ptr)
		*stop_ptr = 1;
}

void cmd_handle_signals(volatile int *stop)
{
	stop_ptr = stop;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

#define LOST_EXIT_MS 5000

static void *exit_soon(void *ud)
{
	(void)ud;
	kf_sleep_ms(LOST_EXIT_MS);
	LOG_ERROR("leader election lost: the workers did not stop within %d ms; exiting now", LOST_EXIT_MS);
	_exit(1);
	return NULL;
}

/* The elector has already fenced the client: no write can go out any more. Stop, and exit 1 (the
 * replica restarts as a follower); if the graceful stop takes longer than LOST_EXIT_MS, exit anyway. */
static void on_lost(void *ud)
{
	volatile int *stop = ud;
	LOG_ERROR("leader election lost: writes are fenced; stopping and exiting");
	leadership_lost = 1;
	__atomic_store_n(stop, 1, __ATOMIC_RELAXED); /* read by the workers' threads */
	pthread_t th;
	if (pthread_create(&th, NULL, exit_soon, NULL) == 0)
		pthread_detach(th);
	else
		_exit(1);
}

struct kube_leader *cmd_become_leader(struct kube_client *c, const char *ns, const char *name, int64_t lease_ms,
				      int64_t renew_ms, int64_t retry_ms, volatile int *stop)
{
	char host[128] = "";
	gethostname(host, sizeof host - 1);
	char suffix[8];
	kf_random_suffix(suffix, 5);
	char *identity = xasprintf("%s_%s", host, suffix);
	struct kube_leader_opts lo = { ns, name, identity, lease_ms, renew_ms, retry_ms, on_lost, (void *)stop };
	struct kube_leader *l = kube_leader_new(c, &lo);
	LOG_INFO("waiting to become leader (Lease %s/%s, identity %s)", ns, name, identity);
	int got = kube_leader_acquire(l, stop);
	free(identity);
	if (got < 0) {
		kube_leader_free(l);
		return NULL;
	}
	LOG_INFO("became leader");
	return l;
}

void cmd_leader_done(struct kube_leader *l)
{
	if (!l)
		return;
	kube_leader_release(l);
	kube_leader_free(l);
}

int cmd_leadership_lost(void)
{
	return leadership_lost;
}

const char *cmd_env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

struct kube_client *cmd_connect(const char *kubeconfig, const char *context, const char *master, double qps,
				int burst, struct kube_config **cfg)
{
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = NULL;
	*cfg = kube_config_load(*kubeconfig ? kubeconfig : NULL, *context ? context : NULL, *master ? master : NULL,
				&err);
	if (*cfg) {
		struct kube_client_opts copts = { qps, burst, 0, NULL };
		c = kube_client_new(*cfg, &copts, &err);
	}
	if (!c)
		LOG_ERROR("%s", err.buf);
	sb_release(&err);
	return c;
}
