/* SPDX-License-Identifier: MIT */
/*
 * The life of every tbstream command that uses a stream, in one place:
 *
 *	job_init()	defaults: the stream name, a 30 s time-out
 *	job_opt()	the options every such command takes (JOB_LONGOPTS)
 *	job_run()	guard SIGINT, SIGTERM and SIGHUP; choose the
 *			transport; bring the stream up; open its device for
 *			this process alone; run the command's body on it;
 *			close it; take the stream down again if this job
 *			brought it up (unless --keep)
 *
 * The transport (--transport, default auto): a USB4STREAM stream when both
 * hosts have the stream driver, else TCP over IP over Thunderbolt
 * (tbs_net_up(), tbs_net_open()); the automatic choice is announced in one
 * line on standard error (unless @quiet).  Over the network, "bring up"
 * is making the Thunderbolt interface usable (up, if it was down: said
 * and undone) and "open" is meeting the peer by the stream name; the body
 * gets its descriptors in j->ep either way and cannot tell the difference.
 *
 * On a signal while the stream is being brought up, the bring-up is
 * cancelled and undoes what it created; later, the stream is taken down
 * (if this job brought it up) before the command exits with 128 + the
 * signal's number.  A long-running job (a service: tbstream forward)
 * sets @stoppable instead: its body is told through @stop_fd and ends in
 * order, and job_run() returns as after success; a second signal exits
 * at once.  On every error path the stream is taken down as after
 * success.  A command must start no thread before job_run(): the signals
 * are blocked in every thread and taken by one thread of the skeleton.
 *
 * A new command, in short:
 *
 *	static int cam_body(struct job *j, void *arg)
 *	{
 *		// the work, on j->ep.rfd and j->ep.wfd; 0 or a negative errno
 *	}
 *
 *	int cmd_cam(const struct cli *cli, int argc, char **argv)
 *	{
 *		static const struct option opts[] = { JOB_LONGOPTS, ... };
 *		struct job j;
 *		int c, ret;
 *
 *		job_init(&j, cli, "cam");	// the default stream name
 *		while ((c = getopt_long(argc, argv, JOB_SHORTOPTS "...",
 *					opts, NULL)) != -1)
 *			if (job_opt(&j, c, optarg) <= 0)
 *				...		// the command's own options
 *		ret = job_check_name(&j, "cam");
 *		if (ret)
 *			return ret;
 *		ret = job_run(&j, cam_body, &args);
 *		if (ret && !j.ran)
 *			return cli_fail(&j.err);	// bring-up or open
 *		return cli_exit_status(ret);
 *	}
 */
#ifndef TBS_JOB_H
#define TBS_JOB_H

#include <getopt.h>
#include <stdbool.h>

#include "cli.h"

struct job;

/*
 * The command's own work, on j->ep (j->st names the stream).  Returns 0 or
 * a negative errno; job_run() passes it through unchanged.
 */
typedef int (*job_body_fn)(struct job *j, void *arg);

struct job {
	/* Set by job_init() and the options; the command may change them. */
	const struct cli *cli;
	const char *name; /* the stream */
	const char *peer; /* --peer, NULL for the only peer */
	struct tbs_up_opts up; /* --timeout, JOB_UP_LONGOPTS */
	bool keep; /* --keep: leave a stream this job brought up */
	bool no_open; /* bring up only: tbstream up, or a body that opens */
	bool stoppable; /* a signal while the body runs asks it to end */
	int transport; /* --transport: an enum tbs_transport */
	bool quiet; /* no line that names the transport chosen */
	/* Where those lines go when not to standard error (a JSON log). */
	void (*say)(void *arg, const char *line);
	void *say_arg;

	/*
	 * Set by job_run().  Over the network, @st has the name, the peer,
	 * its network service and the connection as @device (no HopIDs, ring
	 * or index).
	 */
	struct tbs_stream st;
	struct tbs_endpoint ep; /* open while the body runs */
	bool created; /* this job brought the stream up */
	bool ran; /* the body ran: job_run() returned its result */
	struct tbs_error err; /* why bring-up or open failed */
	int stop_fd; /* @stoppable: readable once a signal asks to end */
	int used; /* TBS_TRANSPORT_STREAM or TBS_TRANSPORT_NET */
	struct tbs_offer offer; /* what the peer offers (auto and net) */
	struct tbs_net *net; /* the network transport's interface */
};

void job_init(struct job *j, const struct cli *cli, const char *name);

/* Option values of JOB_UP_LONGOPTS without a short option. */
#define JOB_OPT_RING_SIZE 0x100
#define JOB_OPT_THROTTLING 0x101

/*
 * How the stream is set up, for commands with options of their own:
 * --profile, --ring-size, --throttling (job_up_opt()).
 */
#define JOB_UP_LONGOPTS                                                        \
	{ "profile", required_argument, NULL, 'P' },                           \
		{ "ring-size", required_argument, NULL, JOB_OPT_RING_SIZE },   \
	{                                                                      \
		"throttling", required_argument, NULL, JOB_OPT_THROTTLING      \
	}

/* The options of job_opt(), for getopt_long(). */
#define JOB_SHORTOPTS "s:p:t:k"
#define JOB_OPT_TRANSPORT 0x7401 /* --transport has no short form */
#define JOB_LONGOPTS                                                           \
	{ "stream", required_argument, NULL, 's' },                            \
		{ "peer", required_argument, NULL, 'p' },                      \
		{ "timeout", required_argument, NULL, 't' }, JOB_UP_LONGOPTS,  \
		{ "transport", required_argument, NULL, JOB_OPT_TRANSPORT },   \
	{                                                                      \
		"keep", no_argument, NULL, 'k'                                 \
	}

/* The help lines of --peer and --timeout, for the commands' usage. */
#define JOB_PEER_HELP                                                          \
	"  -p, --peer ID|NAME|ROUTE  the peer, when several are connected\n"   \
	"  -t, --timeout S           how long to wait for the peer (default "  \
	"30)\n"

/* The help lines of --transport, for the commands' usage. */
#define JOB_TRANSPORT_HELP                                                     \
	"      --transport T         stream, net (IP over Thunderbolt) or "     \
	"auto:\n"                                                              \
	"                            the stream when both hosts have its "     \
	"driver\n"                                                             \
	"                            (default auto; the same on both hosts)\n"

/* Parses a --transport value; -1 when it is none of them. */
int job_parse_transport(const char *arg);

/* The lines of --help for JOB_UP_LONGOPTS. */
#define JOB_UP_HELP                                                            \
	"      --profile P           latency or throughput\n"                   \
	"      --ring-size N         DMA ring entries (32..4096)\n"              \
	"      --throttling NS       interrupt throttling, 0 for none\n"

/*
 * Handles option @c of JOB_UP_LONGOPTS on @up: 1 when handled, 0 when it
 * is not one of them, -1 for a bad value.  The driver checks the ranges.
 */
int job_up_opt(struct tbs_up_opts *up, int c, const char *arg);

/*
 * Handles option @c of JOB_LONGOPTS: 1 when handled, 0 when it is not one
 * of them, -1 for a bad value.
 */
int job_opt(struct job *j, int c, const char *arg);

/* Whether @name is a valid stream name; prints a usage error if not. */
int job_check_name(const struct job *j, const char *cmd);

/* How long to wait for the peer, in ms. */
int job_timeout_ms(const struct job *j);

/* The signal that asked a @stoppable body to end, 0 before one came. */
int job_stop_signal(void);

/*
 * Runs the job as the comment at the top says.  Return: the body's result
 * when it ran (j->ran), else the negative errno of the bring-up or the
 * open, explained in j->err.  A failure to take the stream down again is
 * printed.  Does not return after a signal.
 */
int job_run(struct job *j, job_body_fn body, void *arg);

#endif
