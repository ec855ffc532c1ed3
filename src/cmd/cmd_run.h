/* cmd_run.h - what the long-running subcommands share (controller, operator, agent): connecting to the API
 * server, graceful signals and becoming the leader, with the same reaction to a lost lease everywhere.
 *
 * Signals: SIGTERM or SIGINT set *stop (workers finish their sync, the lease is released); a second one
 * exits at once; SIGPIPE is ignored.
 * A lost lease: kube_leader has fenced the client already (no write goes out after it); *stop is set, and
 * if the process has not exited LOST_EXIT_MS (5 s) later, it exits 1 anyway. cmd_leadership_lost() then
 * tells main to exit 1 (the replica restarts as a follower). */
#ifndef KF_CMD_RUN_H
#define KF_CMD_RUN_H

#include <stdint.h>

#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "kube/kube_leader.h"

/* The value of environment variable name, or def when it is unset or empty. */
const char *cmd_env_or(const char *name, const char *def);

/* Loads the kubeconfig from the flags' values ("" = the default: in-cluster, then $KUBECONFIG...) into *cfg
 * and returns a client limited to qps/burst; NULL with the error logged (*cfg may then be set: free it). */
struct kube_client *cmd_connect(const char *kubeconfig, const char *context, const char *master, double qps,
				int burst, struct kube_config **cfg);

/* stop must stay valid for the life of the process (a static of the subcommand). */
void cmd_handle_signals(volatile int *stop);

/* Blocks until this replica holds the Lease ns/name (identity "<hostname>_<random>"), or *stop. Returns
 * the elector (release and free it with cmd_leader_done()), or NULL when stopped first. */
struct kube_leader *cmd_become_leader(struct kube_client *c, const char *ns, const char *name, int64_t lease_ms,
				      int64_t renew_ms, int64_t retry_ms, volatile int *stop);
void cmd_leader_done(struct kube_leader *l); /* releases (clears the holder) and frees; NULL is fine */
int cmd_leadership_lost(void);

#endif
