// SPDX-License-Identifier: MIT
/*
 * tbstream forward: sockets over the cable, in the manner of ssh -L and
 * socat.  One host listens, the other connects (or runs a command) for
 * every connection; both run until stopped, across unplugs and restarts
 * of the other side.  Nothing is done in the background of its own: for a
 * service manager, it runs in the foreground, logs on standard error and
 * ends cleanly on SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "forward.h"
#include "job.h"

#define DEFAULT_NAME "fwd"
#define DEFAULT_CONNS 128
#define DEFAULT_WINDOW (1u << 20)
#define DEFAULT_CONNECT_S 10

static void forward_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream forward [NAME] --listen ADDR\n"
		"       tbstream forward [NAME] --connect ADDR | --exec CMD\n"
		"\n"
		"Carries connections over stream NAME (default 'fwd'): run it "
		"with\n"
		"--listen on one host and --connect (or --exec) on the other, "
		"in\n"
		"either order.  It runs until stopped, through unplugs and "
		"restarts\n"
		"of the other side.  ADDR is HOST:PORT, [V6]:PORT, PORT (on\n"
		"127.0.0.1) or unix:PATH.\n"
		"\n"
		"  -l, --listen ADDR         accept connections here, carry "
		"them to\n"
		"                            the peer\n"
		"  -c, --connect ADDR        connect each of the peer's "
		"connections\n"
		"                            to ADDR (only ever there)\n"
		"  -e, --exec CMD            run 'sh -c CMD' per connection, "
		"the\n"
		"                            connection on its standard input "
		"and\n"
		"                            output\n"
		"  -m, --max-connections N   connections at once (default %d)\n"
		"  -w, --window BYTES        buffer of one connection (default "
		"1M;\n"
		"                            K and M suffixes)\n"
		"      --connect-timeout S   for --connect (default %d)\n"
		"  -s, --stream NAME         the stream (as NAME)\n"
		FWD_RUN_HELP_PEER
		FWD_RUN_HELP_JOB,
		DEFAULT_CONNS, DEFAULT_CONNECT_S);
}

/* "1048576", "512K", "4M" */
static long parse_size(const char *s)
{
	char num[32];
	size_t n = strlen(s);
	long v, mul = 1;

	if (!n || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	if (num[n - 1] == 'K' || num[n - 1] == 'k')
		mul = 1024;
	else if (num[n - 1] == 'M' || num[n - 1] == 'm')
		mul = 1024 * 1024;
	if (mul > 1)
		num[n - 1] = '\0';
	v = cli_parse_num(num);
	return v < 0 || v > (1L << 30) ? -1 : v * mul;
}

enum { OPT_CONNECT_TIMEOUT = 256 };

int fwd_run_opt(struct fwd_run *r, int c, const char *arg)
{
	long v;

	switch (job_opt(&r->j, c, arg)) {
	case 1:
		return 0;
	case -1:
		return -1;
	}
	switch (c) {
	case 'm':
		v = cli_parse_num(arg);
		r->conf.max_conns = (uint32_t)v;
		return v >= 1 && v <= FWD_MAX_CONNS ? 0 : -1;
	case 'v':
		r->conf.log.verbose = true;
		return 0;
	case FWD_OPT_JSON:
		r->conf.log.json = true;
		return 0;
	default:
		return -1;
	}
}

static int forward_opt(void *run, int c, const char *arg)
{
	struct fwd_run *r = run;
	long v;

	switch (c) {
	case 'l':
		r->listen = arg;
		return 0;
	case 'c':
		r->connect = arg;
		return 0;
	case 'e':
		r->conf.cmd = arg;
		return 0;
	case 'w':
		v = parse_size(arg);
		r->conf.window = (uint32_t)v;
		return v >= FWD_MIN_WINDOW && v <= FWD_MAX_WINDOW ? 0 : -1;
	case OPT_CONNECT_TIMEOUT:
		v = cli_parse_num(arg);
		r->conf.connect_timeout_ms = (int)v * 1000;
		return v >= 1 && v <= 3600 ? 0 : -1;
	default:
		return fwd_run_opt(r, c, arg);
	}
}

static int forward_check(struct fwd_run *r)
{
	int ends = !!r->listen + !!r->connect + !!r->conf.cmd;

	if (ends != 1)
		return cli_usage_error("forward",
				       "give one of --listen, --connect, --exec");
	return job_check_name(&r->j, "forward");
}

static int forward_parse(int argc, char **argv, struct fwd_run *r)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "exec", required_argument, NULL, 'e' },
		{ "window", required_argument, NULL, 'w' },
		{ "connect-timeout", required_argument, NULL,
		  OPT_CONNECT_TIMEOUT },
		FWD_RUN_LONGOPTS,
		{ 0 },
	};
	int ret;

	ret = cli_getopt("forward", argc, argv, "l:c:e:w:" FWD_RUN_SHORTOPTS,
			 opts, forward_usage, forward_opt, r);
	if (ret)
		return ret;
	if (optind + 1 < argc)
		return cli_usage_error("forward", "at most one stream NAME");
	if (optind < argc)
		r->j.name = argv[optind];
	return forward_check(r);
}

/* The job's lines about the transport, as events of the log. */
static void fwd_say(void *arg, const char *line)
{
	fwd_log(arg, "transport", "%s", line);
}

void fwd_run_init(struct fwd_run *r, const struct cli *cli, const char *name)
{
	memset(r, 0, sizeof(*r));
	job_init(&r->j, cli, name);
	/*
	 * A service: waits for the peer as long as it takes (unless
	 * --timeout), opens the stream itself (again after every failure)
	 * and ends in order on a signal.
	 */
	r->j.up.timeout_ms = INT_MAX;
	r->j.no_open = true;
	r->j.stoppable = true;
	r->j.say = fwd_say;
	r->j.say_arg = &r->conf.log;
	r->conf.max_conns = DEFAULT_CONNS;
	r->conf.window = DEFAULT_WINDOW;
	r->conf.connect_timeout_ms = DEFAULT_CONNECT_S * 1000;
}

/* SIGCHLD, blocked in every thread, as a descriptor for the loop. */
static int sigchld_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Resolves the address and listens; the exit status of a failure. */
static int forward_setup(struct fwd_run *r, int *lfd)
{
	char msg[TBS_MSG_MAX];
	int ret;

	*lfd = -1;
	r->conf.role = r->listen ? FWD_ROLE_LISTEN : FWD_ROLE_CONNECT;
	r->conf.exec = !!r->conf.cmd || !!r->conf.argv;
	if (r->conf.exec)
		return 0;
	ret = fwd_addr_parse(r->listen ? r->listen : r->connect,
			     &r->conf.addr, msg, sizeof(msg));
	if (!ret && r->listen) {
		*lfd = fwd_listen(&r->conf.addr, msg, sizeof(msg));
		ret = *lfd < 0 ? *lfd : 0;
	}
	if (!ret)
		return 0;
	cli_msg("forward: %s", msg);
	return ret == -EINVAL ? EXIT_USAGE :
	       ret == -EADDRINUSE ? EXIT_BUSY :
				    EXIT_FAIL;
}

struct fwd_body {
	struct fwd_run *r;
	int lfd, cfd;
};

/* The job's body: the link and the multiplexer, until a signal. */
static int fwd_body(struct job *j, void *arg)
{
	struct fwd_body *b = arg;
	struct fwd_run *r = b->r;
	struct fwd_link_conf lc = { .root = j->cli->root, .name = j->name,
				    .peer = j->peer, .up = j->up,
				    .log = &r->conf.log,
				    .transport = j->used };
	struct fwd_link *l;
	struct fwd_mux *m;
	int ret = -ENOMEM;

	m = fwd_mux_new(&r->conf, b->lfd);
	if (m)
		ret = fwd_link_start(&l, &lc);
	if (ret) {
		cli_msg("forward: could not start: %s", strerror(-ret));
		fwd_mux_free(m);
		return ret;
	}
	ret = fwd_mux_run(m, l, j->stop_fd, b->cfd);
	if (fwd_link_stop(l) > 0)
		j->created = true; /* made again after it vanished */
	fwd_mux_free(m);
	fwd_log(&r->conf.log, "stop", "stopped by %s",
		strsignal(job_stop_signal()));
	return ret;
}

int fwd_run(struct fwd_run *r)
{
	struct fwd_body b = { .r = r, .cfd = -1 };
	int ret;

	ret = forward_setup(r, &b.lfd);
	if (ret)
		return ret;
	b.cfd = sigchld_fd();
	if (b.cfd < 0) {
		cli_msg("forward: could not set up signal handling: %s",
			strerror(errno));
		ret = EXIT_FAIL;
	} else {
		ret = job_run(&r->j, fwd_body, &b);
		ret = !r->j.ran ? cli_fail(&r->j.err) : cli_exit_status(ret);
		close(b.cfd);
	}
	fwd_unlisten(&r->conf.addr, b.lfd);
	return ret;
}

int cmd_forward(const struct cli *cli, int argc, char **argv)
{
	struct fwd_run r;
	int ret;

	fwd_run_init(&r, cli, DEFAULT_NAME);
	ret = forward_parse(argc, argv, &r);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	return fwd_run(&r);
}
