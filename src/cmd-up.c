// SPDX-License-Identifier: MIT
/*
 * tbstream up: make a stream usable towards the peer, on both hosts in
 * either order, and print its device.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "job.h"

static void up_usage(FILE *out)
{
	fprintf(out, "Usage: tbstream up NAME [OPTIONS]\n"
		     "\n"
		     "Makes stream NAME usable towards the peer and prints its "
		     "device.\n"
		     "Run the same command on the other host, in either order, "
		     "up to\n"
		     "the time-out apart.  Running it again changes nothing.\n"
		     "\n" JOB_PEER_HELP JOB_UP_HELP
		     "  -j, --json                machine-readable output\n"
		     "  -h, --help                show this help\n");
}

struct up_args {
	struct job job;
	bool json;
};

static int up_parse(int argc, char **argv, struct up_args *a)
{
	static const struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		JOB_UP_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:t:jh", opts, NULL)) != -1) {
		if (c == 'h') {
			up_usage(stdout);
			return -1;
		} else if (c == 'j') {
			a->json = true;
		} else if (job_opt(&a->job, c, optarg) <= 0) {
			return cli_bad_option("up", c, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("up", "give exactly one stream NAME");
	a->job.name = argv[optind];
	return job_check_name(&a->job, "up");
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
	struct up_args a = { .json = false };
	int ret;

	job_init(&a.job, cli, NULL);
	/* The stream stays up: that is what the command is for. */
	a.job.keep = true;
	a.job.no_open = true;
	ret = up_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	ret = job_run(&a.job, NULL, NULL);
	if (ret < 0)
		return cli_fail(&a.job.err);
	if (a.json)
		up_json(&a.job.st, a.job.created);
	else
		printf("%s\n", a.job.st.device);
	return EXIT_OK;
}
