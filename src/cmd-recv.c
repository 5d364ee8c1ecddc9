// SPDX-License-Identifier: MIT
/*
 * tbstream recv: writes what tbstream send sends on the peer into a
 * directory, checked, durable and never outside that directory.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "send.h"

#define FILES_HELD 8192 /* descriptors a receiver holds at most, about */

static void recv_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream recv [OPTIONS] [DIR]\n"
		"\n"
		"Receives what 'tbstream send' sends on the peer into DIR "
		"(default:\n"
		"the current directory; created if missing).  Every file is "
		"written\n"
		"unnamed or beside its target, checked by hash, made durable "
		"and only\n"
		"then given its name.  Nothing is written outside DIR.  "
		"Existing files\n"
		"are kept unless --overwrite or --update is given; files "
		"already there\n"
		"and identical are not sent again.\n"
		"\n" XFER_COMMON_HELP
		"      --overwrite           replace existing files and links\n"
		"      --update              replace files older than the "
		"sender's\n"
		"      --specials            create device nodes and FIFOs (as "
		"root)\n"
		"      --delete              after a complete transfer, remove "
		"what the\n"
		"                            sender no longer has (inside DIR "
		"only)\n"
		"      --all-xattrs          as root, also set trusted.* and "
		"security.*\n"
		"                            attributes (file capabilities)\n");
}

static int recv_engine(struct xfer *x, struct tbs_session *s,
		       struct tbs_error *e)
{
	return tbs_tree_recv(s, x->npaths ? x->paths[0] : ".", &x->tree, &x->st,
			     e);
}

static int recv_parse(struct xfer *x, int argc, char **argv)
{
	static const struct option opts[] = {
		XFER_LONGOPTS,
		{ "overwrite", no_argument, NULL, 'O' },
		{ "update", no_argument, NULL, 'U' },
		{ "delete", no_argument, NULL, 'D' },
		{ "all-xattrs", no_argument, NULL, 'Z' },
		{ 0 },
	};
	int c, r;

	while ((c = getopt_long(argc, argv, XFER_SHORTOPTS, opts, NULL)) !=
	       -1) {
		if (c == 'h') {
			recv_usage(stdout);
			return -1;
		}
		if (c == 'O' || c == 'U' || c == 'D' || c == 'Z') {
			x->tree.flags |= c == 'O'   ? TBS_TREE_OVERWRITE
					 : c == 'U' ? TBS_TREE_UPDATE
					 : c == 'D' ? TBS_TREE_DELETE
						    : TBS_TREE_ALL_XATTRS;
			continue;
		}
		r = xfer_opt(x, c, optarg);
		if (r <= 0)
			return cli_bad_option("recv", c, argv);
	}
	if (optind + 1 < argc)
		return cli_usage_error("recv", "at most one DIR");
	x->paths = argv + optind;
	x->npaths = argc - optind;
	return 0;
}

/*
 * New small files wait, each with a descriptor, until their batch is
 * durable: the soft limit of open files goes up to the hard one (at most
 * 65536) so that the batches are full.  Where it cannot, the library
 * makes do with what there is.
 *
 * The table of descriptors then grows at once to what the receiver holds
 * at most (a few thousand), while this process has one thread.  Left to
 * grow by doubling as files are opened, each growth in a process of
 * several threads waits for an RCU grace period with the opening thread
 * stopped: five or six stalls of several milliseconds during a transfer.
 */
static void more_files(void)
{
	struct rlimit rl;
	rlim_t want = 65536, slots;
	int fd;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		want = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit up = { .rlim_cur = want, .rlim_max = rl.rlim_max };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl.rlim_cur = want;
	}
	slots = rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < FILES_HELD
			? rl.rlim_cur
			: FILES_HELD;
	fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, (int)slots - 1);
	if (fd >= 0)
		close(fd);
}

int cmd_recv(const struct cli *cli, int argc, char **argv)
{
	struct xfer x;
	int r;

	xfer_init(&x, cli, "recv");
	r = recv_parse(&x, argc, argv);
	if (r)
		return r < 0 ? EXIT_OK : r;
	r = job_check_name(&x.job, "recv");
	if (r)
		return r;
	more_files();
	return xfer_run(&x, TBS_ROLE_RECEIVER, recv_engine);
}
