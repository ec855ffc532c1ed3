/* main.c - `kubefledged <subcommand> [flags]`: dispatches to cmd_<subcommand>().
 *
 * Also answers to upstream kube-fledged's entry points: the image links /opt/bin/kubefledged-controller and
 * /opt/bin/kubefledged-webhook-server to this binary, and upstream's manifests start those paths with flags
 * only, so the name it was started under (argv[0]'s basename) selects the subcommand, with upstream's
 * defaults where ours differ (see cmds.h). Started as kubectl-fledged (a name kubectl finds on PATH as the
 * plugin `kubectl fledged`), it is the kubectl plugin (cmd_plugin.c). */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "util/version.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "controller", cmd_controller, "run the ImageCache controller" },
	{ "webhook-server", cmd_webhook_server, "run the ImageCache validating admission webhook" },
	{ "cri", cmd_cri, "image operations on a node's container runtime (pull, rmi, images, ...)" },
	{ "agent", cmd_agent, "run the node agent: cache this node's NodeImageCache through its runtime" },
	{ "agent-sim", cmd_agent_sim, "run the agents of many simulated nodes (scale tests)" },
	{ "kubectl-fledged", cmd_plugin, "the kubectl plugin `kubectl fledged` (status, plan, refresh, purge)" },
	{ "operator", cmd_operator, "run the operator: install kube-fledged from KubeFledged objects (render: offline)" },
	{ "version", cmd_version, "print the version" },
};

/* upstream's binaries, by the name they are started under */
static const struct {
	const char *name;
	int (*fn)(int, char **);
} entry_points[] = {
	{ "kubefledged-controller", cmd_upstream_controller },
	{ "kubefledged-webhook-server", cmd_upstream_webhook_server },
	{ "kubectl-fledged", cmd_plugin },
};

static int run(int (*fn)(int, char **), int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = fn(argc, argv);
	curl_global_cleanup();
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out, "kubefledged %s - caches container images on Kubernetes nodes (kube-fledged in C)\n\n"
		     "Usage: kubefledged <command> [flags]\n\nCommands:\n", kf_version());
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nRun 'kubefledged <command> --help' for the flags of a command.\n");
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	for (size_t i = 0; i < sizeof entry_points / sizeof entry_points[0]; i++)
		if (!strcmp(base, entry_points[i].name))
			return run(entry_points[i].fn, argc - 1, argv + 1);
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version"))
		argv[1] = "version";
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strcmp(argv[1], commands[i].name))
			return run(commands[i].fn, argc - 2, argv + 2);
	}
	fprintf(stderr, "kubefledged: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
