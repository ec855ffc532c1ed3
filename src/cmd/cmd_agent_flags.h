/* cmd_agent_flags.h - the flags `kubefledged agent` and `kubefledged agent-sim` share (the Kubernetes
 * client, the pull limits and intervals, the disk threshold, the metrics address), in one table so both
 * commands document and check them the same way. */
#ifndef KF_CMD_AGENT_FLAGS_H
#define KF_CMD_AGENT_FLAGS_H

#include <stdint.h>

#include "agent/agent.h"
#include "agent/agent_kube.h"
#include "kube/kube_client.h"
#include "util/flags.h"
#include "util/strbuf.h"

struct agent_flags {
	char *kubeconfig, *master, *context, *host_root, *metrics_bind;
	int max_parallel, max_per_registry, fs_threshold, burst;
	int64_t deadline_ms, poll_ms, status_ms;
	double qps;
};

/* A new table (free it with flags_free, then free): the shared flags, with agent-sim's defaults when sim is
 * set, followed by own (a NULL-terminated table, copied). */
struct flag *agent_flags_table(struct agent_flags *f, const struct flag *own, int sim);
/* Checks the values; on a bad one returns -1 with err naming the flag and the value. */
int agent_flags_check(const struct agent_flags *f, const char *cmd, struct strbuf *err);
/* Fills the engine's options from the flags (api and metrics are left to the caller). */
void agent_flags_opts(const struct agent_flags *f, struct agent_opts *o);
/* Logs what the agent did and the API requests it made, by verb. */
void agent_flags_report(struct agent *a, struct agent_kube *k, struct kube_client *c, const char *cmd);

#endif
