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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "forward.h"

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
		"  -p, --peer ID|NAME|ROUTE  the peer, when several are "
		"connected\n"
		"      --profile P           latency or throughput\n"
		"  -k, --keep                leave the stream up afterwards\n"
		"  -v, --verbose             a line per connection\n"
		"      --json                events as JSON lines on standard "
		"output\n"
		"  -h, --help                show this help\n",
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

	switch (c) {
	case 's':
		r->name = arg;
		return 0;
	case 'p':
		r->peer = arg;
		return 0;
	case 'm':
		v = cli_parse_num(arg);
		r->conf.max_conns = (uint32_t)v;
		return v >= 1 && v <= FWD_MAX_CONNS ? 0 : -1;
	case FWD_OPT_PROFILE:
		return tbs_up_opts_profile(&r->up, arg) ? -1 : 0;
	case 'k':
		r->keep = true;
		return 0;
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

static int forward_opt(struct fwd_run *r, int c, const char *arg)
{
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
	if (!r->name[0] || strlen(r->name) > TBS_NAME_MAX ||
	    strchr(r->name, '/'))
		return cli_usage_error("forward",
				       "a stream NAME has 1 to 8 bytes, no '/'");
	return 0;
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
	int c;

	while ((c = getopt_long(argc, argv, "l:c:e:w:" FWD_RUN_SHORTOPTS,
				opts, NULL)) != -1) {
		if (c == 'h') {
			forward_usage(stdout);
			return -1;
		}
		if (forward_opt(r, c, optarg))
			return cli_usage_error("forward",
					       "bad option or value");
	}
	if (optind + 1 < argc)
		return cli_usage_error("forward", "at most one stream NAME");
	if (optind < argc)
		r->name = argv[optind];
	return forward_check(r);
}

void fwd_run_init(struct fwd_run *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	tbs_up_opts_init(&r->up);
	r->conf.max_conns = DEFAULT_CONNS;
	r->conf.window = DEFAULT_WINDOW;
	r->conf.connect_timeout_ms = DEFAULT_CONNECT_S * 1000;
}

/* Blocks the signals the loop takes (in every thread started later). */
static int signals_take(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
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

int fwd_run(const struct cli *cli, struct fwd_run *r)
{
	struct fwd_link_conf lc = { .root = cli->root, .name = r->name,
				    .peer = r->peer, .up = r->up,
				    .keep = r->keep, .log = &r->conf.log };
	struct fwd_link *l = NULL;
	struct fwd_mux *m = NULL;
	int lfd, sfd, ret;

	ret = forward_setup(r, &lfd);
	if (ret)
		return ret;
	sfd = signals_take();
	m = sfd < 0 ? NULL : fwd_mux_new(&r->conf, lfd);
	if (!m || fwd_link_start(&l, &lc)) {
		cli_msg("forward: could not start: %s", strerror(errno));
		ret = EXIT_FAIL;
		goto out;
	}
	if (fwd_mux_run(m, l, sfd) < 0)
		ret = EXIT_FAIL;
	fwd_link_stop(l);
out:
	fwd_mux_free(m);
	fwd_unlisten(&r->conf.addr, lfd);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

int cmd_forward(const struct cli *cli, int argc, char **argv)
{
	struct fwd_run r;
	int ret;

	fwd_run_init(&r, DEFAULT_NAME);
	ret = forward_parse(argc, argv, &r);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	return fwd_run(cli, &r);
}
