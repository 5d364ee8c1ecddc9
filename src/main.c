// SPDX-License-Identifier: MIT
/*
 * tbstream: one command per USB4STREAM job.
 */
#include <stdio.h>
#include <string.h>

#include "tbstream.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream [--sysroot DIR] COMMAND [OPTIONS]\n"
		"\n"
		"Options:\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 &&
	    (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("tbstream %s\n", tbs_version());
		return 0;
	}
	usage(stderr);
	return 2;
}
