/* cmd_controller.c - placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmds.h"

int cmd_controller(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kubefledged: not implemented yet\n");
	return 1;
}
