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

#endif
