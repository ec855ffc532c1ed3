/* cmd_cri.c - placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmds.h"

int cmd_cri(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kubefledged: not implemented yet\n");
	return 1;
}
