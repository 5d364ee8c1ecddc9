// SPDX-License-Identifier: MIT
/*
 * tbstream: one command per USB4STREAM job.  This file holds the global
 * options and the table of subcommands; each subcommand has its own file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_cmd commands[] = {
	{ "list", cmd_list, "show peers and their streams" },
	{ "up", cmd_up, "make a stream usable towards the peer" },
	{ "down", cmd_down, "remove a stream" },
	{ "pipe", cmd_pipe, "standard input to the peer, the peer's data out" },
	{ "send", cmd_send, "send files and directories to the peer" },
	{ "recv", cmd_recv, "receive files and directories from the peer" },
	{ "image", cmd_image, "back up or restore a whole disk, verified" },
	{ "bench", cmd_bench, "measure round trips and throughput, raw and session" },
	{ "cam", cmd_cam, "share a camera with the peer (GStreamer)" },
	{ "forward", cmd_forward, "carry socket connections to the peer" },
	{ "disk", cmd_disk, "share a disk with the peer, or attach the peer's" },
	{ "reconcile", cmd_reconcile, "bring the configured streams up" },
	{ "doctor", cmd_doctor, "check the driver, the peer and the streams" },
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "Usage: tbstream [--sysroot DIR] COMMAND [OPTIONS]\n"
		     "\n"
		     "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s  %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out,
		"\n"
		"Options:\n"
		"  --sysroot DIR  system root (default $TBSTREAM_SYSROOT or "
		"/)\n"
		"  -h, --help     show this help ('tbstream COMMAND --help' "
		"for a command)\n"
		"  -V, --version  show the version\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage, 3 no peer, driver "
		"or\n"
		"stream, 4 time-out, 5 busy or out of HopIDs or DMA rings.\n");
}

static const struct cli_cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Parses the options before the command; returns the command's index. */
static int global_opts(int argc, char **argv, struct cli *cli)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--sysroot") && i + 1 < argc)
			cli->root = argv[++i];
		else if (!strncmp(argv[i], "--sysroot=", 10))
			cli->root = argv[i] + 10;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return -1;
		else if (!strcmp(argv[i], "-V") ||
			 !strcmp(argv[i], "--version"))
			return -2;
		else
			return -3;
	}
	return i;
}

int main(int argc, char **argv)
{
	struct cli cli = { .root = getenv("TBSTREAM_SYSROOT") };
	const struct cli_cmd *cmd;
	int i;

	if (!cli.root || !cli.root[0])
		cli.root = "/";
	i = global_opts(argc, argv, &cli);
	if (i == -1) {
		usage(stdout);
		return EXIT_OK;
	}
	if (i == -2) {
		printf("tbstream %s\n", tbs_version());
		return EXIT_OK;
	}
	if (i < 0 || i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argv[i]);
	if (!cmd) {
		cli_msg("unknown command '%s' (see 'tbstream --help')",
			argv[i]);
		return EXIT_USAGE;
	}
	return cmd->run(&cli, argc - i, argv + i);
}
