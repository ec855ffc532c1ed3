/* cmd_webhook.c - placeholder until the subcommand lands. */
#include <stdio.h>

#include "cmds.h"

int cmd_webhook_server(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kubefledged: not implemented yet\n");
	return 1;
}
