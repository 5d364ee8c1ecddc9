// SPDX-License-Identifier: MIT
/*
 * tbstream up: make a stream usable towards the peer, on both hosts in
 * either order, and print its device.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void up_usage(FILE *out)
{
	fprintf(out, "Usage: tbstream up NAME [OPTIONS]\n"
		     "\n"
		     "Makes stream NAME usable towards the peer and prints its "
		     "device.\n"
		     "Run the same command on the other host, in either order, "
		     "up to\n"
		     "the time-out apart.  Running it again changes nothing.\n"
		     "\n"
		     "  -p, --peer ID|NAME|ROUTE  the peer, when several are "
		     "connected\n"
		     "  -t, --timeout S           how long to wait for the "
		     "peer (default 30)\n"
		     "      --ring-size N         DMA ring entries (32..4096)\n"
		     "      --throttling NS       interrupt throttling "
		     "(0..16776960)\n"
		     "      --profile P           latency or throughput\n"
		     "  -j, --json                machine-readable output\n"
		     "  -h, --help                show this help\n");
}

struct up_args {
	const char *name;
	const char *peer;
	bool json;
	struct tbs_up_opts opts;
};

static int num_opt(const char *arg, long max, int *out)
{
	long v = cli_parse_num(arg);

	if (v < 0 || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int up_parse(int argc, char **argv, struct up_args *a)
{
	static const struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ "throttling", required_argument, NULL, 'T' },
		{ "profile", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, t;

	while ((c = getopt_long(argc, argv, "p:t:jh", opts, NULL)) != -1) {
		if (c == 'h') {
			up_usage(stdout);
			return -1;
		} else if (c == 'p') {
			a->peer = optarg;
		} else if (c == 'j') {
			a->json = true;
		} else if (c == 't' && !num_opt(optarg, 86400, &t) && t > 0) {
			a->opts.timeout_ms = t * 1000;
		} else if (c == 'r' && !num_opt(optarg, 1 << 20, &t)) {
			a->opts.ring_size = t;
		} else if (c == 'T' && !num_opt(optarg, 1 << 30, &t)) {
			a->opts.throttling = t ? t : TBS_THROTTLING_OFF;
		} else if (c == 'P' && !tbs_up_opts_profile(&a->opts, optarg)) {
			continue;
		} else {
			return cli_usage_error("up", "bad option or value");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("up", "give exactly one stream NAME");
	a->name = argv[optind];
	if (!a->name[0] || strlen(a->name) > TBS_NAME_MAX ||
	    strchr(a->name, '/'))
		return cli_usage_error(
			"up", "a stream NAME has 1 to 8 bytes, no '/'");
	return 0;
}

static void up_json(const struct tbs_stream *st, int created)
{
	printf("{\"name\":");
	json_str(stdout, st->name);
	printf(",\"device\":");
	json_str(stdout, st->device);
	printf(",\"peer_unique_id\":");
	json_str(stdout, st->peer_uid);
	printf(",\"service\":");
	json_str(stdout, st->service);
	printf(",\"index\":%d,\"in_hopid\":%d,\"out_hopid\":%d,"
	       "\"ring_size\":%d,\"throttling\":%d,\"created\":%s}\n",
	       st->index, st->in_hopid, st->out_hopid, st->ring_size,
	       st->throttling, created ? "true" : "false");
}

int cmd_up(const struct cli *cli, int argc, char **argv)
{
	struct up_args a = {
		.opts = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = CLI_TIMEOUT_MS)
	};
	struct tbs_error e = { 0 };
	struct tbs_stream st;
	int ret;

	ret = up_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	ret = tbs_stream_up(cli->root, a.peer, a.name, &a.opts, &st, &e);
	if (ret < 0)
		return cli_fail(&e);
	if (a.json)
		up_json(&st, ret);
	else
		printf("%s\n", st.device);
	return EXIT_OK;
}
