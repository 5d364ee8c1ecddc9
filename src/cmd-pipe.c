// SPDX-License-Identifier: MIT
/*
 * tbstream pipe: standard input to the peer, the peer's data to standard
 * output, both at once.  Brings the stream up when needed and down again
 * afterwards if it brought it up.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "pipe.h"

static void pipe_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream pipe [NAME] [OPTIONS]\n"
		"\n"
		"Sends standard input to the peer and writes what the peer "
		"sends\n"
		"to standard output, both at once (NAME defaults to 'pipe').  "
		"Run\n"
		"it on both hosts, in either order.  Without --raw the data "
		"is\n"
		"checked and the command exits 0 only when the peer confirmed\n"
		"every byte.\n"
		"\n"
		"  -r, --raw                 plain bytes, for dd or cat on the "
		"other\n"
		"                            host: receives until that host "
		"closes\n"
		"      --send-only           (raw) do not read; close when "
		"standard\n"
		"                            input ends\n"
		"      --receive-only        (raw) do not read standard input\n"
		JOB_PEER_HELP
		JOB_UP_HELP
		JOB_TRANSPORT_HELP
		"  -k, --keep                leave the stream up afterwards\n"
		"  -v, --verbose             print the session's counters at "
		"the end\n"
		"  -q, --quiet               no messages but errors\n"
		"  -h, --help                show this help\n");
}

static int pipe_parse(int argc, char **argv, struct pipe_args *a)
{
	static const struct option opts[] = {
		{ "raw", no_argument, NULL, 'r' },
		{ "send-only", no_argument, NULL, 'S' },
		{ "receive-only", no_argument, NULL, 'R' },
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		JOB_UP_LONGOPTS,
		{ "transport", required_argument, NULL, JOB_OPT_TRANSPORT },
		{ "keep", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long t;
	int c;

	while ((c = getopt_long(argc, argv, "rp:t:kvqh", opts, NULL)) != -1) {
		if (c == 'h') {
			pipe_usage(stdout);
			return -1;
		} else if (c == 'r') {
			a->raw = true;
		} else if (c == 'S') {
			a->send_only = true;
		} else if (c == 'R') {
			a->recv_only = true;
		} else if (c == 'p') {
			a->peer = optarg;
		} else if (c == 'k') {
			a->keep = true;
		} else if (c == 'v') {
			a->verbose = true;
		} else if (c == 'q') {
			a->quiet = true;
		} else if (c == JOB_OPT_TRANSPORT &&
			   (a->transport = job_parse_transport(optarg)) >= 0) {
			continue;
		} else if (c == 't' && (t = cli_parse_num(optarg)) > 0 &&
			   t <= 86400) {
			a->opts.timeout_ms = t * 1000;
		} else if (job_up_opt(&a->opts, c, optarg) > 0) {
			continue;
		} else {
			return cli_bad_option("pipe", c, argv);
		}
	}
	if (optind + 1 < argc)
		return cli_usage_error("pipe", "at most one stream NAME");
	if (a->send_only && a->recv_only)
		return cli_usage_error(
			"pipe",
			"--send-only and --receive-only exclude each other");
	if ((a->send_only || a->recv_only) && !a->raw)
		return cli_usage_error(
			"pipe", "--send-only and --receive-only need --raw");
	a->name = optind < argc ? argv[optind] : "pipe";
	if (!a->name[0] || strlen(a->name) > TBS_NAME_MAX ||
	    strchr(a->name, '/'))
		return cli_usage_error(
			"pipe", "a stream NAME has 1 to 8 bytes, no '/'");
	return 0;
}

struct pipe_run {
	const struct pipe_args *a;
	int status; /* the exit status of the data movers */
};

/* The job's body: the data movers, which report their own failures. */
static int pipe_body(struct job *j, void *arg)
{
	struct pipe_run *r = arg;

	r->status =
		r->a->raw ? pipe_raw(r->a, &j->ep) : pipe_session(r->a, &j->ep);
	return r->status ? -EIO : 0;
}

int cmd_pipe(const struct cli *cli, int argc, char **argv)
{
	struct pipe_args a = {
		.opts = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = CLI_TIMEOUT_MS)
	};
	struct pipe_run r = { .a = &a };
	struct job j;
	int ret;

	ret = pipe_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	job_init(&j, cli, a.name);
	j.peer = a.peer;
	j.up = a.opts;
	j.keep = a.keep;
	j.transport = a.transport;
	j.quiet = a.quiet;
	ret = job_run(&j, pipe_body, &r);
	if (!j.ran)
		return cli_fail(&j.err);
	return r.status;
}
