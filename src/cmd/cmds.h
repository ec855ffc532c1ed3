/* cmds.h - the subcommands of the `kubefledged` binary (git-style: `kubefledged foo` runs cmd_foo()).
 * Each gets argv after the subcommand name and returns the process exit code. */
#ifndef KF_CMDS_H
#define KF_CMDS_H

int cmd_version(int argc, char **argv);
int cmd_controller(int argc, char **argv);     /* cmd_controller.c: the ImageCache controller */
int cmd_webhook_server(int argc, char **argv); /* cmd_webhook.c: the validating admission webhook */
int cmd_cri(int argc, char **argv);            /* cmd_cri.c: CRI/Docker image operations on a node */
int cmd_agent(int argc, char **argv);          /* cmd_agent.c: the node agent */
int cmd_agent_sim(int argc, char **argv);      /* cmd_agent_sim.c: many simulated nodes' agents in one process */
int cmd_plugin(int argc, char **argv);         /* cmd_plugin.c: `kubectl fledged` (started as kubectl-fledged) */
int cmd_operator(int argc, char **argv);       /* cmd_operator.c: installs kube-fledged from KubeFledged objects */

/* Upstream's entry points (main.c dispatches on argv[0]): the same commands with upstream's defaults.
 * kubefledged-controller: --leader-elect defaults to false (upstream had no leader election, and its
 * ClusterRole grants no Lease rights). kubefledged-webhook-server: --init-server keeps upstream's contract
 * with upstream's RBAC: a CA and serving pair minted into CERT_KEY_PATH, the caBundle set with get + update
 * of the ValidatingWebhookConfiguration, no Secret (wh_initserver.h). */
int cmd_upstream_controller(int argc, char **argv);
int cmd_upstream_webhook_server(int argc, char **argv);

#endif
