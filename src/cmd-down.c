// SPDX-License-Identifier: MIT
/*
 * tbstream down: remove a stream (or all), unless a process holds it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void down_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream down NAME|--all [OPTIONS]\n"
		"\n"
		"Removes stream NAME (and the peer's ConfigFS directory once "
		"it is\n"
		"empty).  Refuses while a process has the device open and "
		"names it.\n"
		"\n"
		"  -a, --all                 every stream, towards every peer\n"
		"  -p, --peer ID|NAME|ROUTE  the peer, when several have a "
		"stream NAME\n"
		"  -f, --force               remove even while in use\n"
		"  -h, --help                show this help\n");
}

static int down_one(const struct cli *cli, const struct tbs_stream *st,
		    bool force)
{
	struct tbs_error e = { 0 };

	if (tbs_stream_down(cli->root, st, force, &e))
		return cli_fail(&e);
	return EXIT_OK;
}

static int down_all(const struct cli *cli, bool force)
{
	struct tbs_stream *arr;
	struct tbs_error e = { 0 };
	int n, i, ret, status = EXIT_OK;

	n = tbs_streams_list(cli->root, &arr, &e);
	if (n < 0)
		return cli_fail(&e);
	for (i = 0; i < n; i++) {
		ret = down_one(cli, &arr[i], force);
		if (ret && status == EXIT_OK)
			status = ret;
	}
	tbs_streams_free(arr);
	return status;
}

int cmd_down(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "peer", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *peer = NULL;
	bool all = false, force = false;
	struct tbs_error e = { 0 };
	struct tbs_stream st;
	char uid[64];
	int c, ret;

	while ((c = getopt_long(argc, argv, "ap:fh", opts, NULL)) != -1) {
		if (c == 'a') {
			all = true;
		} else if (c == 'p') {
			peer = optarg;
		} else if (c == 'f') {
			force = true;
		} else if (c == 'h') {
			down_usage(stdout);
			return EXIT_OK;
		} else {
			return cli_bad_option("down", c, argv);
		}
	}
	if (all)
		return optind == argc
			       ? down_all(cli, force)
			       : cli_usage_error("down", "--all takes no NAME");
	if (optind + 1 != argc)
		return cli_usage_error("down", "give one stream NAME or --all");
	if (peer) {
		ret = cli_peer_uid(cli, peer, uid, sizeof(uid));
		if (ret)
			return ret;
	}
	if (tbs_stream_find(cli->root, peer ? uid : NULL, argv[optind], &st,
			    &e))
		return cli_fail(&e);
	return down_one(cli, &st, force);
}
