/* kube_client_it.h - shared by the parts of the client-layer integration test (kube_client_it*.c): the
 * CHECK macro that prints TAP-like "ok"/"not ok" lines, the client and namespace under test, helpers. */
#ifndef KUBE_CLIENT_IT_H
#define KUBE_CLIENT_IT_H

#include <stdint.h>
#include <stdio.h>

#include "kube/kube_client.h"
#include "kube/kube_config.h"

extern int it_failures, it_checks;
extern struct kube_client *kc;             /* the client under test (from --kubeconfig) */
extern const char *ns;                     /* the test namespace */
extern const struct kube_config *main_cfg; /* its configuration */
extern const struct kube_client_opts *main_opts; /* and options (for more clients like it) */
extern const struct kube_resource KUBE_CONFIGMAPS;

#define CHECK(cond, ...)                         \
	do {                                     \
		it_checks++;                     \
		if (cond) {                      \
			printf("ok - ");         \
		} else {                         \
			it_failures++;           \
			printf("not ok - ");     \
		}                                \
		printf(__VA_ARGS__);             \
		printf("\n");                    \
		fflush(stdout);                  \
	} while (0)

char *path_cm(const char *name); /* malloc'd path of a ConfigMap in ns (the collection if name is NULL) */

/* kube_client_it_watch.c */
void test_informer(void);
void test_informer_resync_and_rewatch(void);
void test_watch_410_and_relist(void);
void test_informer_relist_after_compaction(void);
/* kube_client_it_leader.c */
void test_leader_election(void);
void test_leader_clock_skew(void);
void test_events(void);
void test_leader_takeover_fences(void);
/* kube_client_it_stress.c */
void test_threads_stress(void);

#endif
