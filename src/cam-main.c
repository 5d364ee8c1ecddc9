// SPDX-License-Identifier: MIT
/*
 * tbstream-cam: "tbstream cam", a program of its own so that the tbstream
 * command does not depend on GStreamer.  tbstream runs it with the system
 * root first: tbstream-cam --sysroot DIR cam ARGS...
 */
#include <stdlib.h>
#include <string.h>

#include "cam.h"

int main(int argc, char **argv)
{
	struct cli cli = { .root = getenv("TBSTREAM_SYSROOT") };
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--sysroot")) {
		cli.root = argv[2];
		i = 3;
	}
	if (!cli.root || !cli.root[0])
		cli.root = "/";
	if (i >= argc || strcmp(argv[i], "cam")) {
		cli_msg("tbstream-cam is run as 'tbstream cam' (see 'tbstream cam --help')");
		return EXIT_USAGE;
	}
	return cmd_cam(&cli, argc - i, argv + i);
}
