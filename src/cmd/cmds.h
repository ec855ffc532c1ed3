/* cmds.h - the subcommands of the `kubefledged` binary (git-style: `kubefledged foo` runs cmd_foo()).
 * Each gets argv after the subcommand name and returns the process exit code. */
#ifndef KF_CMDS_H
#define KF_CMDS_H

int cmd_version(int argc, char **argv);

#endif
